"""Shopper-side booking API: consultation types, advisors and slots (public), booking, and
what a booking link (a signed token) allows: see, reschedule, cancel, join, calendar file.

Handlers parse, authorise and call the services; the rules live in ``service``/``joining``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r201, r401, r404, r409, r410, r422, r429
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.booking import catalog, confirmation, joining, mails, payment_gate, service
from livedesk.booking.jobs import JOBS, kick_soon
from livedesk.booking.schemas import (
    BookingAction,
    BookingAdvisor,
    BookingAdvisorList,
    BookingConfirmed,
    BookingCreate,
    BookingCreated,
    BookingLinks,
    BookingOut,
    BookingPaymentView,
    CancelByLink,
    Confirm,
    ConsultationTypeList,
    ConsultationTypeOut,
    JoinOut,
    Reschedule,
    SlotList,
)
from livedesk.booking.slots import zone
from livedesk.booking.tokens import BookingTokens
from livedesk.consultations import routing_runner
from livedesk.identity import TOKENS
from livedesk.kit.clock import utcnow
from livedesk.kit.context import DB, RATE_LIMITS, SETTINGS
from livedesk.kit.http import ErrorResponse, client_ip, endpoint, json_ok, model_json
from livedesk.models import (
    Booking,
    BookingPayment,
    BookingStatus,
    ConsultationType,
    PaymentProviderName,
    Staff,
)
from livedesk.settings import Settings
from livedesk.surveys import service as surveys


def tokens_of(request: web.Request) -> BookingTokens:
    return request.app[JOBS].tokens


def type_out(ctype: ConsultationType) -> ConsultationTypeOut:
    return ConsultationTypeOut.model_validate(ctype)


async def booking_out(
    session: AsyncSession, settings: Settings, booking: Booking, token: str | None = None
) -> BookingOut:
    ctype = await session.get(ConsultationType, booking.consultation_type_id)
    advisor = await session.get(Staff, booking.advisor_id)
    assert ctype is not None
    assert advisor is not None
    local = booking.starts_at.astimezone(zone(booking.shopper_timezone))
    # A link outlives what it may show: once a booking is off, its link shows no contact data.
    closed = booking.status in (BookingStatus.CANCELLED, BookingStatus.EXPIRED)
    return BookingOut(
        id=booking.id,
        status=booking.status.value,
        type_id=ctype.id,
        type_name=ctype.name,
        type_name_en=ctype.name_en,
        kind=ctype.kind,
        duration_minutes=ctype.duration_minutes,
        advisor_id=advisor.id,
        advisor_name=advisor.display_name,
        advisor_name_en=str(advisor.extra.get("display_name_en", "")) or advisor.display_name,
        advisor_photo_url=advisor.photo_url,
        nominated=booking.nominated,
        starts_at=booking.starts_at,
        ends_at=booking.ends_at,
        timezone=booking.shopper_timezone,
        local_start=local.isoformat(),
        contact_name="" if closed else booking.contact_name,
        contact_email="" if closed else booking.contact_email,
        contact_phone=None if closed else booking.contact_phone,
        locale=booking.locale,
        sequence=booking.sequence,
        join_opens_at=joining.join_opens_at(booking, settings),
        changeable=service.changeable(booking, utcnow()),
        pending_until=booking.pending_until,
        links=BookingLinks(**mails.links(settings, token)) if token and not closed else None,
        awaiting_payment=payment_gate.awaits_payment(booking),
        payment=await _payment_view(session, booking),
    )


async def _payment_view(session: AsyncSession, booking: Booking) -> BookingPaymentView | None:
    row = await session.scalar(select(BookingPayment).where(BookingPayment.booking_id == booking.id))
    if row is None:
        return None
    return BookingPaymentView(
        status=row.status.value,
        purpose=row.purpose,
        capture=row.capture,
        amount_minor=row.amount_minor,
        currency=row.currency,
        kept_minor=row.kept_minor,
        test_mode=row.provider == PaymentProviderName.SANDBOX,
        failure_code=row.failure_code,
    )


# ---------------------------------------------------------------- public


@endpoint
async def list_types(request: web.Request) -> r200[ConsultationTypeList]:
    """Consultation types a shopper can book (public).

    Tags: booking
    """
    async with request.app[DB].read() as session:
        types = await catalog.list_types(session)
    return model_json(ConsultationTypeList(types=[type_out(t) for t in types]))


@endpoint
async def type_advisors(
    request: web.Request, type_id: uuid.UUID, /
) -> r200[BookingAdvisorList] | r404[ErrorResponse]:
    """Advisors a shopper may nominate for this type (public: nomination profile only).

    Tags: booking
    """
    async with request.app[DB].read() as session:
        ctype = await catalog.get_type(session, type_id)
        advisors = await service.eligible_advisors(session, ctype)
    cards = [
        BookingAdvisor(
            id=a.id,
            display_name=a.display_name,
            display_name_en=str(a.extra.get("display_name_en", "")) or a.display_name,
            photo_url=a.photo_url,
            bio=a.bio,
            bio_en=str(a.extra.get("bio_en", "")),
            languages=list(a.languages),
        )
        for a in advisors
    ]
    return model_json(BookingAdvisorList(advisors=cards))


@endpoint
async def type_survey(
    request: web.Request, type_id: uuid.UUID, /
) -> r200[dict[str, object]] | r404[ErrorResponse]:
    """The survey to answer before booking this type ({"survey": null} when none).

    Tags: booking
    """
    async with request.app[DB].read() as session:
        await catalog.get_type(session, type_id)
        survey = await surveys.intake_survey_for(session, type_id)
    return json_ok({"survey": None if survey is None else survey.model_dump(mode="json")})


@endpoint
async def search_slots(
    request: web.Request, type_id: uuid.UUID, start: date, end: date, timezone: str, advisor: str = "any"
) -> r200[SlotList] | r404[ErrorResponse] | r422[ErrorResponse]:
    """Free start times of a consultation type between two of the shopper's days (inclusive),
    in the shopper's time zone, for one advisor (their id) or "any" (merged).

    Tags: booking
    """
    settings = request.app[SETTINGS]
    advisor_id: uuid.UUID | None = None
    if advisor != "any":
        try:
            advisor_id = uuid.UUID(advisor)
        except ValueError:
            raise catalog.invalid("advisor", 'give an advisor id or "any"', code="unknown_advisor") from None
    async with request.app[DB].read() as session:
        starts = await service.search_slots(
            session,
            settings,
            type_id=type_id,
            advisor_id=advisor_id,
            first=start,
            last=end,
            timezone=timezone,
        )
        ctype = await catalog.get_type(session, type_id)
    tz = zone(timezone)
    duration = ctype.duration_minutes * 60
    # Plain dicts (the same shape as Slot): a month for "any" is a few thousand slots, and
    # building a pydantic model for each would cost more than finding them.
    slots = []
    for t in starts:
        local = datetime.fromtimestamp(t, tz)
        slots.append(
            {
                "start": local.isoformat(),
                "end": datetime.fromtimestamp(t + duration, tz).isoformat(),
                "date": local.date().isoformat(),
                "time": f"{local:%H:%M}",
            }
        )
    return json_ok(
        {
            "type_id": str(type_id),
            "advisor": advisor,
            "timezone": timezone,
            "step_minutes": settings.booking_slot_step_minutes,
            "slots": slots,
        }
    )


@endpoint
async def create_booking(
    request: web.Request, body: BookingCreate
) -> (
    r201[BookingCreated]
    | r401[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
    | r429[ErrorResponse]
):
    """Book a slot (public). An anonymous booking lands on a new guest profile and stays
    ``pending`` until the link in its mail is opened (``pending_until`` says how long it holds
    the slot); one carrying the shop's signed customer id is confirmed at once. The token
    answered opens the booking until then; the mailed links replace it on confirmation.
    Errors: slot_in_past, too_soon, too_far, outside_hours, unknown_advisor, bad_timezone
    (422); bad_shop_signature (401); slot_taken (409); mail_budget (429).

    Tags: booking
    """
    settings = request.app[SETTINGS]
    await request.app[RATE_LIMITS].hit(
        settings.booking_rate_limit, "booking", client_ip(request), message="Too many bookings; wait a minute"
    )
    tokens = tokens_of(request)
    async with request.app[DB].transaction() as session:
        booking = await service.create_booking(
            session, settings, body, shop_secret=settings.shop_signing_secret.get_secret_value()
        )
        token = tokens.issue(booking.id, booking.link_nonce)
        out = BookingCreated(
            booking=await booking_out(session, settings, booking, token),
            token=token,
            pending_until=booking.pending_until,
        )
    kick_soon(request.app)
    return model_json(out, status=201)


@endpoint
async def confirm_booking(
    request: web.Request, body: Confirm
) -> r200[BookingConfirmed] | r404[ErrorResponse] | r409[ErrorResponse]:
    """Open the link of a "please confirm" mail: the pending booking is confirmed, the
    address is proven (the booking joins the profile that holds it, if any), and the answer
    carries the booking's new link token; links handed out before stop working. Single-use:
    409 link_used, link_expired, booking_closed.

    Tags: booking
    """
    settings = request.app[SETTINGS]
    tokens = tokens_of(request)
    verification_id = tokens.verification.verify(body.token)
    async with request.app[DB].transaction() as session:
        booking = await confirmation.confirm(session, settings, verification_id)
        token = tokens.issue(booking.id, booking.link_nonce)
        out = BookingConfirmed(booking=await booking_out(session, settings, booking, token), token=token)
    kick_soon(request.app)
    return model_json(out)


# ---------------------------------------------------------------- by token


async def _by_token(
    request: web.Request, session: AsyncSession, token: str, *, lock: bool = False
) -> Booking:
    """The booking a link stands for, if the link still works (see ``service.load_by_token``)."""
    claims = tokens_of(request).verify(token)
    booking = await service.load(session, claims.booking_id, lock=lock)
    return service.load_by_token(booking, claims, request.app[SETTINGS], utcnow())


@endpoint
async def get_booking(
    request: web.Request, token: str, /
) -> r200[BookingOut] | r404[ErrorResponse] | r410[ErrorResponse]:
    """The booking a link stands for (a read: the only route with the token in its path,
    which the access log redacts).

    Tags: booking
    """
    async with request.app[DB].read() as session:
        booking = await _by_token(request, session, token)
        out = await booking_out(session, request.app[SETTINGS], booking, token)
    return model_json(out)


@endpoint
async def reschedule_booking(
    request: web.Request, body: Reschedule
) -> (
    r200[BookingOut]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r410[ErrorResponse]
    | r422[ErrorResponse]
    | r429[ErrorResponse]
):
    """Move the booking to another free start with the same advisor (token in the body).

    Tags: booking
    """
    settings = request.app[SETTINGS]
    await request.app[RATE_LIMITS].hit(
        settings.booking_rate_limit, "booking", client_ip(request), message="Too many changes; wait a minute"
    )
    async with request.app[DB].transaction() as session:
        booking = await _by_token(request, session, body.token, lock=True)
        await service.reschedule(session, settings, booking, body.start, body.timezone)
        out = await booking_out(session, settings, booking, body.token)
    kick_soon(request.app)
    return model_json(out)


@endpoint
async def cancel_booking(
    request: web.Request, body: CancelByLink
) -> r200[BookingOut] | r404[ErrorResponse] | r409[ErrorResponse] | r410[ErrorResponse]:
    """Cancel the booking (token in the body); a pending one too.

    Tags: booking
    """
    settings = request.app[SETTINGS]
    async with request.app[DB].transaction() as session:
        booking = await _by_token(request, session, body.token, lock=True)
        await service.cancel(session, settings, booking, body.reason)
        out = await booking_out(session, settings, booking, body.token)
    kick_soon(request.app)
    return model_json(out)


@endpoint
async def join_booking(
    request: web.Request, body: BookingAction
) -> r200[JoinOut] | r404[ErrorResponse] | r409[ErrorResponse] | r410[ErrorResponse]:
    """Join the booked call (token in the body): {"status": "early"} with the opening time
    before the join window; otherwise the consultation and a visitor token for that one
    consultation, valid until the booking's end plus a grace (it cannot be renewed into a
    shopper-wide token). 409 booking_pending until the booking is confirmed.

    Tags: booking
    """
    settings = request.app[SETTINGS]
    async with request.app[DB].transaction() as session:
        booking = await _by_token(request, session, body.token, lock=True)
        joined = await joining.join(session, settings, request.app[TOKENS], booking)
        now = utcnow()
        out = JoinOut(
            status="open" if joined.consultation else "early",
            starts_at=booking.starts_at,
            join_opens_at=joined.join_opens_at,
            seconds_to_open=max(0, int((joined.join_opens_at - now).total_seconds())),
            consultation_id=joined.consultation.id if joined.consultation else None,
            visitor_token=joined.visitor_token,
            shopper_id=booking.shopper_id if joined.consultation else None,
            expires_in=joined.expires_in,
        )
    if joined.consultation is not None:
        await routing_runner.kick(request.app)
    return model_json(out)


@endpoint
async def booking_calendar_file(
    request: web.Request, token: str, /
) -> r200[str] | r404[ErrorResponse] | r410[ErrorResponse]:
    """The booking as an ICS file (METHOD:CANCEL once cancelled).

    Tags: booking
    """
    settings = request.app[SETTINGS]
    async with request.app[DB].read() as session:
        booking = await _by_token(request, session, token)
        ctype = await session.get(ConsultationType, booking.consultation_type_id)
        advisor = await session.get(Staff, booking.advisor_id)
        assert ctype is not None
        assert advisor is not None
        cancel = booking.status.value in ("cancelled", "expired")
        body = mails.ics(
            mails.MailFacts(booking, ctype, advisor), settings, mails.links(settings, token), cancel=cancel
        )
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="booking-{booking.id}.ics"'},
    )


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/booking/types", list_types)
    app.router.add_get("/api/v1/booking/types/{type_id}/advisors", type_advisors)
    app.router.add_get("/api/v1/booking/types/{type_id}/survey", type_survey)
    app.router.add_get("/api/v1/booking/slots", search_slots)
    app.router.add_post("/api/v1/bookings", create_booking)
    # State changes carry the link's token in the body, never in the path.
    app.router.add_post("/api/v1/bookings/confirm", confirm_booking)
    app.router.add_post("/api/v1/bookings/reschedule", reschedule_booking)
    app.router.add_post("/api/v1/bookings/cancel", cancel_booking)
    app.router.add_post("/api/v1/bookings/join", join_booking)
    app.router.add_get("/api/v1/bookings/{token}", get_booking)
    app.router.add_get("/api/v1/bookings/{token}/calendar.ics", booking_calendar_file)
