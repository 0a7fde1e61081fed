"""Booking calendar with advisor nomination: consultation types, availability, slots,
bookings, mails with ICS, reminders, joining at the booked time and no-shows."""

from __future__ import annotations

from aiohttp import web


def setup_booking(app: web.Application) -> None:
    """Routes and the booking jobs (mails, no-shows), hooked into ``create_app``."""
    from livedesk.booking import routes, staff_routes
    from livedesk.booking.jobs import jobs_ctx

    app.cleanup_ctx.append(jobs_ctx)
    routes.setup_routes(app)
    staff_routes.setup_routes(app)
