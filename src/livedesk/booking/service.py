"""Booking rules: slot search, booking (nominated or "any"), rescheduling and cancelling.

No double booking: the booking transaction re-checks the slot against the advisor's live
bookings before it inserts. On SQLite that transaction is a serialised write transaction
(BEGIN IMMEDIATE, see ``kit/db.py``), so the check is decisive; on PostgreSQL booking
writes take a transaction-scoped advisory lock for the same effect, and the exclusion
constraint ``ex_bookings_advisor_block`` is the database's own guarantee behind it.

Everything that happens to a booking lands on the shopper's timeline and goes to the
outgoing webhooks in the same transaction; its mails are queued in the same transaction too
(``mails.queue_*``) and sent by the booking jobs after the commit.
"""

from __future__ import annotations

import hmac
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.booking import catalog, confirmation, mails, payment_gate
from livedesk.booking.records import load, record, summary_data
from livedesk.booking.schemas import MAX_SEARCH_DAYS, BookingCreate, SurveyAnswers
from livedesk.booking.slots import AdvisorCalendar, DayException, SlotRules, free_starts, merged_starts, zone
from livedesk.booking.tokens import LinkClaims
from livedesk.customers import guests, verification
from livedesk.customers import service as customers
from livedesk.customers.identity import DEFAULT_PHONE_REGION, IdentityError, normalize_email, normalize_phone
from livedesk.identity import verify_shop_signature
from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Conflict, Gone, NotFound, Unauthenticated, ValidationFailed
from livedesk.models import (
    LIVE_BOOKING_STATUSES,
    AvailabilityException,
    Booking,
    BookingStatus,
    ConsultationType,
    Role,
    Staff,
    WeeklyHours,
)
from livedesk.outbox import webhooks
from livedesk.settings import Settings
from livedesk.surveys import service as surveys

_BOOKING_LOCK = 727003


@dataclass(frozen=True)
class Window:
    """Where start times may fall for one search: epoch seconds [lo, hi)."""

    lo: int
    hi: int


def rules_of(ctype: ConsultationType, settings: Settings) -> SlotRules:
    return SlotRules(
        duration_minutes=ctype.duration_minutes,
        buffer_before_minutes=ctype.buffer_before_minutes,
        buffer_after_minutes=ctype.buffer_after_minutes,
        step_minutes=settings.booking_slot_step_minutes,
    )


def bookable_window(ctype: ConsultationType, now: datetime) -> Window:
    """From now + minimum notice to now + horizon."""
    earliest = now + timedelta(minutes=ctype.min_notice_minutes)
    latest = now + timedelta(days=ctype.horizon_days)
    return Window(int(earliest.timestamp()) + (1 if earliest.microsecond else 0), int(latest.timestamp()))


def day_range(first: date, last: date, timezone: str) -> Window:
    """The shopper's days ``first``..``last`` (inclusive) as instants."""
    tz = zone(timezone)
    lo = datetime(first.year, first.month, first.day, tzinfo=tz)
    after = last + timedelta(days=1)
    hi = datetime(after.year, after.month, after.day, tzinfo=tz)
    return Window(int(lo.timestamp()), int(hi.timestamp()))


@dataclass(frozen=True)
class AdvisorRef:
    """What slot search needs of an advisor."""

    id: uuid.UUID
    timezone: str


async def eligible_advisors(session: AsyncSession, ctype: ConsultationType) -> list[Staff]:
    """Advisors who may take this type: active, nominable, with every required skill and (if
    the type names languages) speaking one of them."""
    rows = (
        await session.scalars(
            select(Staff)
            .where(Staff.role == Role.ADVISOR, Staff.active.is_(True), Staff.nominable.is_(True))
            .order_by(Staff.display_name)
        )
    ).all()
    return [s for s in rows if _takes(ctype, s.skills, s.languages)]


def _takes(ctype: ConsultationType, skills: list[str], languages: list[str]) -> bool:
    wanted = set(ctype.languages)
    return set(ctype.required_skills) <= set(skills) and (not wanted or bool(wanted & set(languages)))


async def _eligible_refs(session: AsyncSession, ctype: ConsultationType) -> list[AdvisorRef]:
    # Columns only: slot search runs on every page view of the calendar.
    rows = (
        await session.execute(
            select(Staff.id, Staff.timezone, Staff.skills, Staff.languages).where(
                Staff.role == Role.ADVISOR, Staff.active.is_(True), Staff.nominable.is_(True)
            )
        )
    ).all()
    return [AdvisorRef(r[0], r[1]) for r in rows if _takes(ctype, r[2], r[3])]


async def load_calendars(
    session: AsyncSession,
    advisors: list[AdvisorRef],
    window: Window,
    *,
    ignore_booking: uuid.UUID | None = None,
) -> list[AdvisorCalendar]:
    """Each advisor's week, exceptions and busy blocks around ``window``: three queries,
    whatever the number of advisors."""
    if not advisors:
        return []
    ids = [a.id for a in advisors]
    weekly: dict[uuid.UUID, dict[int, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    for row in (
        await session.execute(
            select(
                WeeklyHours.staff_id, WeeklyHours.weekday, WeeklyHours.start_minute, WeeklyHours.end_minute
            ).where(WeeklyHours.staff_id.in_(ids))
        )
    ).all():
        weekly[row[0]][row[1]].append((row[2], row[3]))
    lo_day = datetime.fromtimestamp(window.lo, UTC).date() - timedelta(days=2)
    hi_day = datetime.fromtimestamp(window.hi, UTC).date() + timedelta(days=2)
    exceptions: dict[uuid.UUID, dict[date, list[DayException]]] = defaultdict(lambda: defaultdict(list))
    for exc in (
        await session.scalars(
            select(AvailabilityException).where(
                AvailabilityException.staff_id.in_(ids),
                AvailabilityException.day >= lo_day,
                AvailabilityException.day <= hi_day,
            )
        )
    ).all():
        exceptions[exc.staff_id][exc.day].append(
            DayException(exc.kind.value, exc.start_minute, exc.end_minute)
        )
    # Blocks that could touch a start in the window, with the longest buffers we allow.
    margin = timedelta(hours=10)
    busy: dict[uuid.UUID, list[tuple[int, int]]] = defaultdict(list)
    stmt = select(Booking.advisor_id, Booking.block_start, Booking.block_end).where(
        Booking.advisor_id.in_(ids),
        Booking.status.in_(LIVE_BOOKING_STATUSES),
        # A pending booking whose hold has passed is free, released or not yet.
        or_(Booking.status != BookingStatus.PENDING, Booking.pending_until > utcnow()),
        Booking.block_end > datetime.fromtimestamp(window.lo, UTC) - margin,
        Booking.block_start < datetime.fromtimestamp(window.hi, UTC) + margin,
    )
    if ignore_booking is not None:
        stmt = stmt.where(Booking.id != ignore_booking)
    for advisor_id, block_start, block_end in (await session.execute(stmt)).all():
        busy[advisor_id].append((int(block_start.timestamp()), int(block_end.timestamp())))
    return [
        AdvisorCalendar(
            advisor_id=a.id,
            timezone=a.timezone,
            weekly=dict(weekly.get(a.id, {})),
            exceptions=dict(exceptions.get(a.id, {})),
            busy=sorted(busy.get(a.id, [])),
        )
        for a in advisors
    ]


async def _advisors_for(
    session: AsyncSession, ctype: ConsultationType, advisor_id: uuid.UUID | None
) -> list[AdvisorRef]:
    """The nominated advisor (422 ``unknown_advisor`` if they cannot take this type), or
    every eligible advisor for "any"."""
    eligible = await _eligible_refs(session, ctype)
    if advisor_id is None:
        return eligible
    chosen = [a for a in eligible if a.id == advisor_id]
    if not chosen:
        raise catalog.invalid(
            "advisor_id", "no such advisor takes this consultation type", code="unknown_advisor"
        )
    return chosen


async def search_slots(
    session: AsyncSession,
    settings: Settings,
    *,
    type_id: uuid.UUID,
    advisor_id: uuid.UUID | None,
    first: date,
    last: date,
    timezone: str,
    now: datetime | None = None,
) -> list[int]:
    """Free start times (epoch seconds, in order) of one type between the shopper's days
    ``first`` and ``last``, for one advisor or merged over every eligible advisor."""
    tz_name = catalog.checked_timezone(timezone)
    if last < first:
        raise catalog.invalid("end", "the last day is before the first")
    if (last - first).days >= MAX_SEARCH_DAYS:
        raise catalog.invalid("end", f"search at most {MAX_SEARCH_DAYS} days at once")
    ctype = await catalog.get_type(session, type_id)
    advisors = await _advisors_for(session, ctype, advisor_id)
    asked = day_range(first, last, tz_name)
    allowed = bookable_window(ctype, now or utcnow())
    window = Window(max(asked.lo, allowed.lo), min(asked.hi, allowed.hi))
    if window.hi <= window.lo:
        return []
    calendars = await load_calendars(session, advisors, window)
    return merged_starts(calendars, rules_of(ctype, settings), window.lo, window.hi)


# ---------------------------------------------------------------- booking


async def _serialise(session: AsyncSession) -> None:
    """Booking writes one at a time. SQLite's write transaction already is exclusive;
    PostgreSQL takes a transaction-scoped advisory lock (the exclusion constraint stays the
    last word if anything ever writes around this)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(f"SELECT pg_advisory_xact_lock({_BOOKING_LOCK})"))


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise catalog.invalid(field, "give the time with its UTC offset (e.g. 2026-03-29T10:00:00+01:00)")
    return value.astimezone(UTC)


async def _check_slot(
    session: AsyncSession,
    settings: Settings,
    ctype: ConsultationType,
    advisors: list[AdvisorRef],
    start: datetime,
    now: datetime,
    *,
    ignore_booking: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """The advisors (of ``advisors``) for whom ``start`` is free; a clear error otherwise:
    in the past, too soon / too far, outside hours, or taken."""
    if start <= now:
        raise catalog.invalid("start", "this time is in the past", code="slot_in_past")
    t = int(start.timestamp())
    allowed = bookable_window(ctype, now)
    if t < allowed.lo:
        raise catalog.invalid(
            "start", f"bookings need {ctype.min_notice_minutes} minutes' notice", code="too_soon"
        )
    if t >= allowed.hi:
        raise catalog.invalid(
            "start", f"bookings open {ctype.horizon_days} days ahead at most", code="too_far"
        )
    rules = rules_of(ctype, settings)
    probe = Window(t, t + 1)
    calendars = await load_calendars(session, advisors, probe, ignore_booking=ignore_booking)
    free = [c.advisor_id for c in calendars if any(t in r for r in free_starts(c, rules, t, t + 1))]
    if free:
        return free
    idle = [AdvisorCalendar(c.advisor_id, c.timezone, c.weekly, c.exceptions, []) for c in calendars]
    if any(any(t in r for r in free_starts(c, rules, t, t + 1)) for c in idle):
        raise Conflict("This time has just been taken; please choose another", code="slot_taken")
    raise catalog.invalid("start", "this time is outside the advisor's hours", code="outside_hours")


async def _least_booked(session: AsyncSession, candidates: list[uuid.UUID], now: datetime) -> uuid.UUID:
    """ "Any advisor": the one with the fewest upcoming bookings; on a tie, the one whose
    last booking was made longest ago (round robin); then by id, so the choice is stable."""
    if len(candidates) == 1:
        return candidates[0]
    rows = (
        await session.execute(
            select(
                Booking.advisor_id,
                func.count().filter(Booking.starts_at >= now, Booking.status.in_(LIVE_BOOKING_STATUSES)),
                func.max(Booking.created_at),
            )
            .where(Booking.advisor_id.in_(candidates))
            .group_by(Booking.advisor_id)
        )
    ).all()
    stats = {row[0]: (int(row[1] or 0), row[2]) for row in rows}
    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def key(advisor_id: uuid.UUID) -> tuple[int, datetime, str]:
        count, last = stats.get(advisor_id, (0, None))
        last_at = epoch if last is None else (last if last.tzinfo else last.replace(tzinfo=UTC))
        return (count, last_at, str(advisor_id))

    return min(candidates, key=key)


def _blocks(ctype: ConsultationType, start: datetime) -> tuple[datetime, datetime, datetime]:
    end = start + timedelta(minutes=ctype.duration_minutes)
    return (
        end,
        start - timedelta(minutes=ctype.buffer_before_minutes),
        end + timedelta(minutes=ctype.buffer_after_minutes),
    )


async def _flush_or_taken(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        # The exclusion constraint (PostgreSQL) refused an overlapping live booking.
        if "ex_bookings_advisor_block" in str(exc.orig):
            raise Conflict(
                "This time has just been taken; please choose another", code="slot_taken"
            ) from None
        raise


async def create_booking(
    session: AsyncSession,
    settings: Settings,
    data: BookingCreate,
    *,
    now: datetime | None = None,
    shop_secret: str = "",
) -> Booking:
    """Book a slot; "any" picks the least-booked free advisor (round robin on a tie). The
    booking, its survey answers, its timeline row, its webhook and its mail are one
    transaction.

    Who the booking is for: with the shop's signed customer id, that customer's profile, and
    the booking is confirmed at once. Otherwise the booker is anonymous: the booking goes
    onto a new guest profile holding exactly what was typed (never onto a profile that owns
    the e-mail or phone, see ``customers/guests.py``) and, with
    ``LIVEDESK_BOOKING_CONFIRM_BY_MAIL``, stays *pending* until the link in its mail is
    opened (``booking/confirmation.py``).

    Errors: 404 ``unknown_type``; 401 ``bad_shop_signature``; 422 ``unknown_advisor``,
    ``bad_timezone``, ``slot_in_past``, ``too_soon``, ``too_far``, ``outside_hours``, a bad
    contact field; 409 ``slot_taken``; 429 ``mail_budget``.
    """
    now = now or utcnow()
    timezone = catalog.checked_timezone(data.timezone)
    start = _aware(data.start, "start")
    email, phone = _contact(data)
    signed = _signed_customer(data, shop_secret)
    ctype = await catalog.get_type(session, data.type_id)
    await _serialise(session)
    advisors = await _advisors_for(session, ctype, data.advisor_id)
    # Expired holds of these advisors give their time back before we look at it (and before
    # PostgreSQL's exclusion constraint, which counts pending bookings, sees the insert).
    await confirmation.release_unconfirmed(session, now=now, advisor_ids=[a.id for a in advisors])
    free = await _check_slot(session, settings, ctype, advisors, start, now)
    advisor_id = data.advisor_id or await _least_booked(session, free, now)
    await verification.check_budget(session, email, settings.verification_mails_per_day, now=now)
    if signed is not None:
        resolution = await customers.resolve_shopper(
            session, shop_customer_id=signed, locale=data.locale, timezone=timezone, source="booking"
        )
        assert resolution.view is not None
        shopper_id = resolution.view.shopper.id
    else:
        guest = await guests.create_guest(
            session,
            display_name=data.contact.name,
            email=email,
            phone=phone,
            locale=data.locale,
            timezone=timezone,
            source="booking",
        )
        shopper_id = guest.id
    end, block_start, block_end = _blocks(ctype, start)
    booking = Booking(
        id=uuid.uuid4(),
        consultation_type_id=ctype.id,
        advisor_id=advisor_id,
        shopper_id=shopper_id,
        status=BookingStatus.CONFIRMED,
        starts_at=start,
        ends_at=end,
        block_start=block_start,
        block_end=block_end,
        nominated=data.advisor_id is not None,
        shopper_timezone=timezone,
        locale=data.locale,
        # Exactly what the booker typed (normalised), never what a profile holds.
        contact_name=data.contact.name,
        contact_email=email,
        contact_phone=phone,
        sequence=0,
        cancel_reason="",
        extra={},
        link_nonce="",
        created_at=now,
        updated_at=now,
    )
    session.add(booking)
    pending = signed is None and settings.booking_confirm_by_mail
    if pending:
        await _flush_or_taken(session)
        await confirmation.hold(session, settings, booking, now)
    due = payment_gate.amount_due(ctype)
    if due is not None:
        # Confirmed once the deposit or price is paid or held (payments/deposits.py).
        payment_gate.hold_for_payment(settings, booking, now)
    await _flush_or_taken(session)
    if data.survey is not None:
        booking.survey_response_id = await _submit_survey(session, data.survey, booking)
    summary = (
        f"Booked (waiting for e-mail confirmation): {ctype.name}" if pending else f"Booked: {ctype.name}"
    )
    await record(session, booking, ctype, summary, webhook=webhooks.BOOKING_CREATED)
    if pending or due is None:
        kind = mails.BookingMailKind.VERIFY if pending else mails.BookingMailKind.CONFIRMATION
        await mails.queue_for_change(session, settings, booking, kind, now)
    # else: the confirmation mail goes once it is paid (payment_gate.payment_done).
    return booking


def _contact(data: BookingCreate) -> tuple[str, str | None]:
    """The typed e-mail and phone, normalised; 422 naming the field otherwise."""
    try:
        email = normalize_email(data.contact.email)
    except IdentityError as exc:
        raise catalog.invalid("contact.email", str(exc)) from None
    phone = None
    if data.contact.phone:
        try:
            phone = normalize_phone(data.contact.phone, data.contact.phone_region or DEFAULT_PHONE_REGION)
        except IdentityError as exc:
            raise catalog.invalid("contact.phone", str(exc)) from None
    return email, phone


def _signed_customer(data: BookingCreate, shop_secret: str) -> str | None:
    """The shop customer id the booking is for, if the shop signed it; 401 if it is claimed
    without a valid signature (a claim is never taken on trust)."""
    if data.shop_customer_id is None:
        return None
    if not data.shop_signature or not verify_shop_signature(
        shop_secret, data.shop_customer_id, data.shop_signature
    ):
        raise Unauthenticated("The shop customer id is not signed correctly", code="bad_shop_signature")
    return data.shop_customer_id


async def _submit_survey(session: AsyncSession, answers: SurveyAnswers, booking: Booking) -> uuid.UUID:
    submitted = await surveys.submit_intake(
        session,
        survey_id=answers.survey_id,
        version=answers.version,
        answers=answers.answers,
        shopper_id=booking.shopper_id,
        booking_id=booking.id,
    )
    return submitted.response_id


def changeable(booking: Booking, now: datetime) -> bool:
    return booking.status == BookingStatus.CONFIRMED and booking.starts_at > now


def _must_be_changeable(booking: Booking, now: datetime, *, pending_ok: bool = False) -> None:
    if booking.status == BookingStatus.PENDING and not pending_ok:
        raise Conflict(
            "Confirm this booking first, with the link in the mail we sent", code="booking_pending"
        )
    if booking.status not in (
        (BookingStatus.CONFIRMED, BookingStatus.PENDING) if pending_ok else (BookingStatus.CONFIRMED,)
    ):
        raise Conflict(f"This booking is {booking.status.value.replace('_', ' ')}", code="booking_closed")
    if booking.starts_at <= now:
        raise Conflict("This booking has already started", code="booking_started")


async def reschedule(
    session: AsyncSession,
    settings: Settings,
    booking: Booking,
    start: datetime,
    timezone: str | None,
    *,
    now: datetime | None = None,
    actor: uuid.UUID | None = None,
) -> Booking:
    """Move a booking to another free start with the same advisor. The ICS SEQUENCE goes up,
    reminders are re-planned and a "moved" mail goes out."""
    now = now or utcnow()
    _must_be_changeable(booking, now)
    new_start = _aware(start, "start")
    if new_start == booking.starts_at:
        # Not a move: no "moved" mail, no new SEQUENCE for calendars to apply.
        raise ValidationFailed(
            "The booking already starts at this time; choose another time to move it to",
            code="same_start",
            details={"start": booking.starts_at.isoformat()},
        )
    if timezone is not None:
        booking.shopper_timezone = catalog.checked_timezone(timezone)
    ctype = await catalog.get_type(session, booking.consultation_type_id, active_only=False)
    await _serialise(session)
    staff = await session.get(Staff, booking.advisor_id)
    assert staff is not None
    ref = AdvisorRef(staff.id, staff.timezone)
    await _check_slot(session, settings, ctype, [ref], new_start, now, ignore_booking=booking.id)
    previous = booking.starts_at
    booking.ends_at, booking.block_start, booking.block_end = _blocks(ctype, new_start)
    booking.starts_at = new_start
    booking.sequence += 1
    booking.updated_at = now
    await _flush_or_taken(session)
    await record(
        session,
        booking,
        ctype,
        f"Booking moved: {ctype.name}",
        webhook=webhooks.BOOKING_CHANGED,
        actor=actor,
        extra={"change": "rescheduled", "previous_starts_at": previous},
    )
    await mails.queue_for_change(session, settings, booking, mails.BookingMailKind.RESCHEDULED, now)
    return booking


async def cancel(
    session: AsyncSession,
    settings: Settings,
    booking: Booking,
    reason: str,
    *,
    now: datetime | None = None,
    actor: uuid.UUID | None = None,
) -> Booking:
    """Cancel a booking: the time is free again, pending reminders are dropped, and a
    cancellation (ICS METHOD:CANCEL) goes out."""
    now = now or utcnow()
    _must_be_changeable(booking, now, pending_ok=True)
    was_pending = booking.status == BookingStatus.PENDING
    ctype = await catalog.get_type(session, booking.consultation_type_id, active_only=False)
    booking.status = BookingStatus.CANCELLED
    booking.pending_until = None
    booking.cancelled_at = now
    booking.cancel_reason = reason
    booking.sequence += 1
    booking.updated_at = now
    who = "staff" if actor else "the shopper"
    await record(
        session,
        booking,
        ctype,
        f"Booking cancelled by {who}: {ctype.name}",
        webhook=webhooks.BOOKING_CHANGED,
        actor=actor,
        extra={"change": "cancelled", "reason": reason},
    )
    if not was_pending:
        # A booking never confirmed was never announced: nothing to take back by mail.
        await mails.queue_for_change(session, settings, booking, mails.BookingMailKind.CANCELLED, now)
    return booking


def load_by_token(booking: Booking, claims: LinkClaims, settings: Settings, now: datetime) -> Booking:
    """A booking link still works: its nonce is the booking's (links handed out before a
    pending booking was confirmed stop), and the booking ended less than
    ``LIVEDESK_BOOKING_LINK_DAYS`` ago. 404 ``link_replaced``; 410 ``link_expired``."""
    if not hmac.compare_digest(claims.nonce, booking.link_nonce):
        raise NotFound(
            "This link has been replaced: use the link in the mail that confirmed your booking",
            code="link_replaced",
        )
    if now > booking.ends_at + timedelta(days=settings.booking_link_days):
        raise Gone("This booking link has expired", code="link_expired")
    return booking


__all__ = ["load", "load_by_token", "record", "summary_data"]
