"""Staff-side booking API: consultation types (admin), availability (an advisor their own;
supervisors and admins anyone's), and the booking calendar (an advisor their own), where a
booking can be cancelled."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r201, r401, r403, r404, r409, r422
from sqlalchemy import select

from livedesk.booking import catalog, service
from livedesk.booking.jobs import kick_soon
from livedesk.booking.routes import type_out
from livedesk.booking.schemas import (
    AvailabilityIn,
    AvailabilityOut,
    CalendarEntry,
    CalendarOut,
    Cancel,
    ConsultationTypeCreate,
    ConsultationTypeList,
    ConsultationTypeOut,
    ConsultationTypeUpdate,
)
from livedesk.booking.slots import zone
from livedesk.identity import Principal, guarded, require_staff
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.errors import Forbidden, NotFound
from livedesk.kit.http import ErrorResponse, model_json
from livedesk.models import Booking, ConsultationType, Role

ADMIN = (Role.ADMIN,)
READERS = (Role.ADMIN, Role.SUPERVISOR)
STAFF = (Role.ADVISOR, Role.SUPERVISOR, Role.ADMIN)
MAX_CALENDAR_DAYS = 62


def _may_see(principal: Principal, staff_id: uuid.UUID) -> None:
    """Advisors see and change only their own calendar; supervisors and admins anyone's."""
    if principal.role == Role.ADVISOR and principal.staff_id != staff_id:
        raise Forbidden("Advisors see only their own calendar", code="not_your_calendar")


@guarded(*READERS)
async def admin_list_types(
    request: web.Request,
) -> r200[ConsultationTypeList] | r401[ErrorResponse] | r403[ErrorResponse]:
    """Every consultation type, switched-off ones included (admins and supervisors).

    Tags: booking-admin
    """
    await require_staff(request, *READERS)
    async with request.app[DB].read() as session:
        types = await catalog.list_types(session, include_inactive=True)
    return model_json(ConsultationTypeList(types=[type_out(t) for t in types]))


@guarded(*ADMIN)
async def admin_create_type(
    request: web.Request, body: ConsultationTypeCreate
) -> r201[ConsultationTypeOut] | r401[ErrorResponse] | r403[ErrorResponse] | r422[ErrorResponse]:
    """Add a consultation type (admins).

    Tags: booking-admin
    """
    await require_staff(request, *ADMIN)
    async with request.app[DB].transaction() as session:
        ctype = await catalog.create_type(session, body)
        out = type_out(ctype)
    return model_json(out, status=201)


@guarded(*ADMIN)
async def admin_update_type(
    request: web.Request, type_id: uuid.UUID, /, body: ConsultationTypeUpdate
) -> (
    r200[ConsultationTypeOut]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r422[ErrorResponse]
):
    """Change a consultation type (admins); send only the fields to change.

    Tags: booking-admin
    """
    await require_staff(request, *ADMIN)
    async with request.app[DB].transaction() as session:
        ctype = await catalog.update_type(session, type_id, body)
        out = type_out(ctype)
    return model_json(out)


@guarded(*STAFF)
async def get_availability(
    request: web.Request, staff_id: uuid.UUID, /
) -> r200[AvailabilityOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse]:
    """An advisor's time zone, weekly hours and date exceptions.

    Tags: booking-staff
    """
    principal = await require_staff(request, *STAFF)
    _may_see(principal, staff_id)
    async with request.app[DB].read() as session:
        out = await catalog.get_availability(session, staff_id)
    return model_json(out)


@guarded(*STAFF)
async def put_availability(
    request: web.Request, staff_id: uuid.UUID, /, body: AvailabilityIn
) -> (
    r200[AvailabilityOut]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r422[ErrorResponse]
):
    """Replace an advisor's time zone, weekly hours and exceptions (the advisor themself,
    or a supervisor or admin). Existing bookings are kept.

    Tags: booking-staff
    """
    principal = await require_staff(request, *STAFF)
    _may_see(principal, staff_id)
    async with request.app[DB].transaction() as session:
        out = await catalog.set_availability(session, staff_id, body)
    return model_json(out)


@guarded(*STAFF)
async def calendar(
    request: web.Request, staff_id: uuid.UUID, /, start: date, end: date
) -> (
    r200[CalendarOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse] | r422[ErrorResponse]
):
    """An advisor's bookings between two of their local days (inclusive), every status.

    Tags: booking-staff
    """
    principal = await require_staff(request, *STAFF)
    _may_see(principal, staff_id)
    if end < start or (end - start).days >= MAX_CALENDAR_DAYS:
        raise catalog.invalid("end", f"give an end on or after start, at most {MAX_CALENDAR_DAYS} days on")
    async with request.app[DB].read() as session:
        advisor = await catalog.advisor(session, staff_id)
        tz = zone(advisor.timezone)
        lo = datetime(start.year, start.month, start.day, tzinfo=tz).astimezone(UTC)
        after = end + timedelta(days=1)
        hi = datetime(after.year, after.month, after.day, tzinfo=tz).astimezone(UTC)
        rows = (
            await session.execute(
                select(Booking, ConsultationType)
                .join(ConsultationType, ConsultationType.id == Booking.consultation_type_id)
                .where(Booking.advisor_id == staff_id, Booking.starts_at >= lo, Booking.starts_at < hi)
                .order_by(Booking.starts_at)
            )
        ).all()
    entries = [_entry(b, t) for b, t in rows]
    return model_json(CalendarOut(advisor_id=staff_id, timezone=advisor.timezone, bookings=entries))


@guarded(*STAFF)
async def cancel_booking(
    request: web.Request, staff_id: uuid.UUID, booking_id: uuid.UUID, /, body: Cancel
) -> (
    r200[CalendarEntry]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
):
    """Cancel one of an advisor's bookings (the advisor themself, or a supervisor or admin);
    the shopper gets the cancellation mail.

    Tags: booking-staff
    """
    principal = await require_staff(request, *STAFF)
    _may_see(principal, staff_id)
    async with request.app[DB].transaction() as session:
        booking = await session.get(Booking, booking_id, with_for_update=True)
        if booking is None or booking.advisor_id != staff_id:
            raise NotFound("No such booking in this calendar", code="booking_not_found")
        await service.cancel(session, request.app[SETTINGS], booking, body.reason, actor=principal.staff_id)
        ctype = await session.get(ConsultationType, booking.consultation_type_id)
        assert ctype is not None
        out = _entry(booking, ctype)
    kick_soon(request.app)
    return model_json(out)


def _entry(b: Booking, t: ConsultationType) -> CalendarEntry:
    return CalendarEntry(
        id=b.id,
        status=b.status.value,
        type_name=t.name,
        type_name_en=t.name_en,
        kind=t.kind,
        starts_at=b.starts_at,
        ends_at=b.ends_at,
        block_start=b.block_start,
        block_end=b.block_end,
        shopper_id=b.shopper_id,
        contact_name=b.contact_name,
        contact_email=b.contact_email,
        nominated=b.nominated,
        consultation_id=b.consultation_id,
    )


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/consultation-types", admin_list_types)
    app.router.add_post("/api/v1/consultation-types", admin_create_type)
    app.router.add_patch("/api/v1/consultation-types/{type_id}", admin_update_type)
    app.router.add_get("/api/v1/advisors/{staff_id}/availability", get_availability)
    app.router.add_put("/api/v1/advisors/{staff_id}/availability", put_availability)
    app.router.add_get("/api/v1/advisors/{staff_id}/bookings", calendar)
    app.router.add_post("/api/v1/advisors/{staff_id}/bookings/{booking_id}/cancel", cancel_booking)
