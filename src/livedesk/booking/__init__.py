"""Booking calendar with advisor nomination: consultation types, availability, slots,
bookings, mails with ICS, reminders, joining at the booked time and no-shows."""
