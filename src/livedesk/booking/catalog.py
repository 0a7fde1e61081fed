"""What can be booked, and when: consultation types (admin) and advisors' availability (the
advisor's own weekly hours and date exceptions, in their time zone)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.booking.schemas import (
    AvailabilityIn,
    AvailabilityOut,
    ConsultationTypeCreate,
    ConsultationTypeUpdate,
    ExceptionOut,
    WeeklySpanOut,
    hhmm,
    minutes_of,
)
from livedesk.customers.identity import IdentityError, validate_timezone
from livedesk.kit.clock import utcnow
from livedesk.kit.errors import NotFound, ValidationFailed
from livedesk.models import (
    AvailabilityException,
    ConsultationType,
    ExceptionKind,
    Role,
    Staff,
    WeeklyHours,
)


def invalid(field: str, message: str, code: str = "validation_failed") -> ValidationFailed:
    return ValidationFailed(
        f"field '{field}': {message}", code=code, details=[{"field": field, "message": message}]
    )


def checked_timezone(name: str, field: str = "timezone") -> str:
    """An IANA zone name, or 422 ``bad_timezone`` naming the field."""
    try:
        return validate_timezone(name)
    except IdentityError as exc:
        raise invalid(field, str(exc), code="bad_timezone") from None


def _check_money(ctype: ConsultationType) -> None:
    if (ctype.price_amount is not None or ctype.deposit_amount is not None) and not ctype.currency:
        raise invalid("currency", "a price or deposit needs a currency (ISO 4217, e.g. JPY)")
    price, deposit = ctype.price_amount, ctype.deposit_amount
    if price is not None and deposit is not None and deposit > price:
        raise invalid("deposit_amount", "the deposit cannot be more than the price")
    if ctype.payment_capture == "hold" and ctype.horizon_days > 6:
        # A card authorisation lapses after about 7 days (Stripe): a hold must be booked
        # within 6 days of the call so it can still be captured on a no-show.
        raise invalid(
            "payment_capture", "a hold needs horizon_days of 6 or less (card holds lapse after 7 days)"
        )


async def list_types(session: AsyncSession, *, include_inactive: bool = False) -> list[ConsultationType]:
    """Consultation types in display order (active ones only, unless asked)."""
    stmt = select(ConsultationType).order_by(ConsultationType.position, ConsultationType.name)
    if not include_inactive:
        stmt = stmt.where(ConsultationType.active.is_(True))
    return list((await session.scalars(stmt)).all())


async def get_type(
    session: AsyncSession, type_id: uuid.UUID, *, active_only: bool = True
) -> ConsultationType:
    """The consultation type; NotFound (``unknown_type``) when there is none (or it is
    switched off and ``active_only``)."""
    ctype = await session.get(ConsultationType, type_id)
    if ctype is None or (active_only and not ctype.active):
        raise NotFound("No such consultation type", code="unknown_type")
    return ctype


async def create_type(session: AsyncSession, data: ConsultationTypeCreate) -> ConsultationType:
    """Add a consultation type (admin)."""
    now = utcnow()
    ctype = ConsultationType(id=uuid.uuid4(), created_at=now, updated_at=now, **data.model_dump())
    _check_money(ctype)
    session.add(ctype)
    await session.flush()
    return ctype


async def update_type(
    session: AsyncSession, type_id: uuid.UUID, data: ConsultationTypeUpdate
) -> ConsultationType:
    """Change the fields sent (PATCH). Existing bookings keep their times; new slots follow
    the new duration and buffers."""
    ctype = await get_type(session, type_id, active_only=False)
    for name in data.model_fields_set:
        value = getattr(data, name)
        if value is None and name not in {"price_amount", "deposit_amount", "currency"}:
            raise invalid(name, "may not be null")
        setattr(ctype, name, value)
    _check_money(ctype)
    ctype.updated_at = utcnow()
    return ctype


# ---------------------------------------------------------------- availability


async def advisor(session: AsyncSession, staff_id: uuid.UUID) -> Staff:
    staff = await session.get(Staff, staff_id)
    if staff is None or staff.role != Role.ADVISOR:
        raise NotFound("No such advisor", code="unknown_advisor")
    return staff


async def get_availability(session: AsyncSession, staff_id: uuid.UUID) -> AvailabilityOut:
    """An advisor's weekly hours and exceptions (from today on), in their time zone."""
    staff = await advisor(session, staff_id)
    weekly = (
        await session.scalars(
            select(WeeklyHours)
            .where(WeeklyHours.staff_id == staff_id)
            .order_by(WeeklyHours.weekday, WeeklyHours.start_minute)
        )
    ).all()
    exceptions = (
        await session.scalars(
            select(AvailabilityException)
            .where(AvailabilityException.staff_id == staff_id)
            .order_by(AvailabilityException.day, AvailabilityException.start_minute)
        )
    ).all()
    return AvailabilityOut(
        staff_id=staff_id,
        timezone=staff.timezone,
        weekly=[
            WeeklySpanOut(weekday=w.weekday, start=hhmm(w.start_minute), end=hhmm(w.end_minute))
            for w in weekly
        ],
        exceptions=[
            ExceptionOut(
                day=e.day,
                kind=e.kind.value,
                start=None if e.start_minute is None else hhmm(e.start_minute),
                end=None if e.end_minute is None else hhmm(e.end_minute),
            )
            for e in exceptions
        ],
    )


async def set_availability(
    session: AsyncSession, staff_id: uuid.UUID, data: AvailabilityIn
) -> AvailabilityOut:
    """Replace an advisor's time zone, weekly hours and exceptions. Existing bookings stay
    (the advisor moves or cancels them deliberately); only new slots follow."""
    staff = await advisor(session, staff_id)
    staff.timezone = checked_timezone(data.timezone)
    await session.execute(delete(WeeklyHours).where(WeeklyHours.staff_id == staff_id))
    await session.execute(delete(AvailabilityException).where(AvailabilityException.staff_id == staff_id))
    for span in data.weekly:
        session.add(
            WeeklyHours(
                id=uuid.uuid4(),
                staff_id=staff_id,
                weekday=span.weekday,
                start_minute=minutes_of(span.start),
                end_minute=minutes_of(span.end),
            )
        )
    for exc in data.exceptions:
        session.add(
            AvailabilityException(
                id=uuid.uuid4(),
                staff_id=staff_id,
                day=exc.day,
                kind=ExceptionKind(exc.kind),
                start_minute=None if exc.start is None else minutes_of(exc.start),
                end_minute=None if exc.end is None else minutes_of(exc.end),
            )
        )
    await session.flush()
    return await get_availability(session, staff_id)
