"""Booking: consultation types, advisors' weekly hours and exceptions, bookings, and the
outbox of booking mails (confirmation, reminders, reschedule, cancel).

No double booking: on PostgreSQL the migration adds an exclusion constraint
``ex_bookings_advisor_block`` over (advisor_id, tstzrange(block_start, block_end)) of live
bookings (btree_gist); on SQLite the booking transaction is a serialised write transaction
(BEGIN IMMEDIATE) that checks for overlaps before it inserts. The constraint is not declared
here because SQLite cannot hold it; ``tests/integration/test_booking_concurrency.py`` proves
both paths.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from livedesk.kit.clock import utcnow
from livedesk.models.base import Base, IdMixin, JSONType, TimestampMixin, str_enum


class ConsultationType(IdMixin, TimestampMixin, Base):
    """What a shopper can book: how long, with which buffers, needing which skills and
    languages, at which price or deposit (integer minor units + ISO currency)."""

    __tablename__ = "consultation_types"

    name: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(10), default="video")
    duration_minutes: Mapped[int] = mapped_column(Integer)
    buffer_before_minutes: Mapped[int] = mapped_column(Integer, default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer, default=0)
    required_skills: Mapped[list[str]] = mapped_column(JSONType, default=list)
    languages: Mapped[list[str]] = mapped_column(JSONType, default=list)
    min_notice_minutes: Mapped[int] = mapped_column(Integer, default=120)
    horizon_days: Mapped[int] = mapped_column(Integer, default=60)
    price_amount: Mapped[int | None] = mapped_column(Integer)
    deposit_amount: Mapped[int | None] = mapped_column(Integer)
    currency: Mapped[str | None] = mapped_column(String(3))
    # How the deposit (or, without one, the price) is taken at booking: "charge" takes it at
    # once (refunded on cancel); "hold" only authorises it (Stripe manual capture: released on
    # cancel, captured on a no-show, and for a price, captured once the call took place).
    payment_capture: Mapped[str] = mapped_column(String(10), default="charge")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class WeeklyHours(IdMixin, Base):
    """One stretch of an advisor's regular week, in the advisor's own time zone
    (``staff.timezone``): weekday 0 = Monday, minutes from local midnight."""

    __tablename__ = "advisor_weekly_hours"

    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(Integer)
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_advisor_weekly_hours_staff_id", "staff_id"),)


class ExceptionKind(enum.StrEnum):
    OFF = "off"
    EXTRA = "extra"


class AvailabilityException(IdMixin, Base):
    """A date that differs from the week: time off (the whole day when no minutes are given)
    or extra hours, in the advisor's time zone."""

    __tablename__ = "advisor_availability_exceptions"

    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[ExceptionKind] = mapped_column(str_enum(ExceptionKind, 10))
    start_minute: Mapped[int | None] = mapped_column(Integer)
    end_minute: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_advisor_availability_exceptions_staff_day", "staff_id", "day"),)


class BookingStatus(enum.StrEnum):
    # Made by an anonymous shopper and waiting for the link in its mail to be opened: it holds
    # the slot until ``pending_until``, then becomes EXPIRED and frees it.
    PENDING = "pending"
    EXPIRED = "expired"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    ATTENDED = "attended"
    NO_SHOW_SHOPPER = "no_show_shopper"
    NO_SHOW_ADVISOR = "no_show_advisor"


# Bookings that hold their advisor's time (the exclusion constraint's WHERE clause).
LIVE_BOOKING_STATUSES = (BookingStatus.PENDING, BookingStatus.CONFIRMED, BookingStatus.ATTENDED)


class Booking(IdMixin, TimestampMixin, Base):
    """A booked consultation. ``starts_at``/``ends_at`` is the appointment; ``block_start``/
    ``block_end`` adds the type's buffers and is what may not overlap another live booking
    of the same advisor."""

    __tablename__ = "bookings"

    consultation_type_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("consultation_types.id", ondelete="RESTRICT")
    )
    advisor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id", ondelete="RESTRICT"))
    shopper_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    status: Mapped[BookingStatus] = mapped_column(str_enum(BookingStatus, 20))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    block_start: Mapped[datetime]
    block_end: Mapped[datetime]
    # The advisor was picked by the shopper (true) or assigned for "any" (false).
    nominated: Mapped[bool] = mapped_column(Boolean, default=False)
    shopper_timezone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8), default="ja")
    contact_name: Mapped[str] = mapped_column(String(200), default="")
    contact_email: Mapped[str] = mapped_column(String(254))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    survey_response_id: Mapped[uuid.UUID | None]
    # ICS SEQUENCE: bumped on every reschedule and on cancel, so calendars replace the event.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    consultation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("consultations.id", ondelete="SET NULL")
    )
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str] = mapped_column(String(500), default="")
    extra: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # A pending booking holds its slot until then (None once confirmed).
    pending_until: Mapped[datetime | None]
    # Part of every link token: changing it (on confirmation) voids the links issued before.
    link_nonce: Mapped[str] = mapped_column(String(32), default="")

    __table_args__ = (
        Index("ix_bookings_advisor_time", "advisor_id", "block_start", "block_end"),
        Index("ix_bookings_status_start", "status", "starts_at"),
        Index("ix_bookings_shopper_id", "shopper_id"),
        # The per-address mail budget counts a day's bookings by contact address.
        Index("ix_bookings_contact_email_created", "contact_email", "created_at"),
    )


class BookingMailKind(enum.StrEnum):
    # "Please confirm": the link that proves the address and confirms a pending booking.
    VERIFY = "verify"
    CONFIRMATION = "confirmation"
    REMINDER = "reminder"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"
    # The receipt of a payment made in the booked consultation (payments/receipts.py writes it).
    RECEIPT = "receipt"


class BookingMail(IdMixin, Base):
    """One mail to send, at ``due_at``. Every process's job claims a row with a conditional
    UPDATE (``claimed_until``) before sending, so each mail goes out once however many
    processes run; the unique key stops the same reminder from being queued twice."""

    __tablename__ = "booking_mails"

    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"))
    kind: Mapped[BookingMailKind] = mapped_column(str_enum(BookingMailKind, 20))
    # The booking's sequence when queued; minutes before the start for reminders (else 0).
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    lead_minutes: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")

    __table_args__ = (
        UniqueConstraint("booking_id", "kind", "sequence", "lead_minutes"),
        Index("ix_booking_mails_due", "sent_at", "due_at"),
    )
