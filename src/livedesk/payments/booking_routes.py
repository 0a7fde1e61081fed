"""HTTP routes for the deposit or price of a booking, reached with the booking's link token
(the same token the booking page holds). The shopper's page pays with the same client flow
as in a call: Stripe's Payment Element with the client secret answered here, or the sandbox's
test-mode buttons."""

from __future__ import annotations

import uuid
from typing import Literal

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r404, r409, r410, r502
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.booking import service as booking_service
from livedesk.booking.jobs import kick_soon
from livedesk.booking.routes import tokens_of
from livedesk.kit.clock import utcnow
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.errors import Conflict
from livedesk.kit.http import ApiModel, ErrorResponse, endpoint, model_json
from livedesk.models import Booking, BookingPayment, BookingPaymentStatus, PaymentProviderName
from livedesk.payments import deposits, fulfilment
from livedesk.payments.deposit_jobs import kick_deposits
from livedesk.payments.providers import PROVIDER


class BookingPaymentAsk(ApiModel):
    token: str = Field(min_length=10, max_length=1000, description="The booking's link token.")


class BookingSandboxAction(BookingPaymentAsk):
    action: Literal["pay", "decline"] = Field(description="What the test-mode card does.")


class BookingCheckoutOut(BaseModel):
    """What the booking page needs to pay the deposit or price (never card data)."""

    booking_id: uuid.UUID
    payment_id: uuid.UUID
    status: BookingPaymentStatus
    purpose: str
    capture: str
    amount_minor: int
    currency: str
    provider: PaymentProviderName
    test_mode: bool
    publishable_key: str
    client_secret: str | None
    failure_code: str | None
    booking_status: str


async def _booking(request: web.Request, session: AsyncSession, token: str, *, lock: bool = False) -> Booking:
    claims = tokens_of(request).verify(token)
    booking = await booking_service.load(session, claims.booking_id, lock=lock)
    return booking_service.load_by_token(booking, claims, request.app[SETTINGS], utcnow())


def _out(request: web.Request, booking: Booking, row: BookingPayment) -> BookingCheckoutOut:
    provider = request.app[PROVIDER]
    return BookingCheckoutOut(
        booking_id=booking.id,
        payment_id=row.id,
        status=row.status,
        purpose=row.purpose,
        capture=row.capture,
        amount_minor=row.amount_minor,
        currency=row.currency,
        provider=row.provider,
        test_mode=provider.test_mode or row.provider == PaymentProviderName.SANDBOX,
        publishable_key=provider.publishable_key,
        client_secret=row.client_secret if row.status == BookingPaymentStatus.OPEN else None,
        failure_code=row.failure_code,
        booking_status=booking.status.value,
    )


@endpoint
async def booking_checkout(
    request: web.Request, body: BookingPaymentAsk
) -> (
    r200[BookingCheckoutOut]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r410[ErrorResponse]
    | r502[ErrorResponse]
):
    """Start (or read again) the payment of a booking's deposit or price: the provider's
    payment object is made once (Stripe: a PaymentIntent, with manual capture for a type
    that holds). 409 no_payment_due, not_payable.

    Tags: booking
    """
    provider = request.app[PROVIDER]
    async with request.app[DB].transaction() as session:
        booking = await _booking(request, session, body.token, lock=True)
        row = await deposits.start(session, provider, booking)
    if row.provider_ref is None:
        # Outside any transaction: a slow provider must not hold the database.
        intent = await provider.create_intent(
            amount_minor=row.amount_minor,
            currency=row.currency,
            metadata={"livedesk_booking_id": str(booking.id), "livedesk_booking_payment_id": str(row.id)},
            idempotency_key=deposits.intent_key(row),
            hold=row.capture == "hold",
        )
        async with request.app[DB].transaction() as session:
            row = await deposits.attach_intent(session, row.id, intent)
    return model_json(_out(request, booking, row))


@endpoint
async def booking_sandbox(
    request: web.Request, body: BookingSandboxAction
) -> r200[BookingCheckoutOut] | r404[ErrorResponse] | r409[ErrorResponse] | r410[ErrorResponse]:
    """Test mode only: the test card pays (or holds, for a type that holds) or is declined;
    applied like a provider webhook, once.

    Tags: booking
    """
    provider = request.app[PROVIDER]
    if provider.name != PaymentProviderName.SANDBOX:
        raise Conflict("Only test-mode payments take sandbox actions", code="not_sandbox")
    async with request.app[DB].transaction() as session:
        booking = await _booking(request, session, body.token, lock=True)
        row = await deposits.payment_of(session, booking.id, lock=True)
        if row is None or row.provider_ref is None:
            raise Conflict("Start the payment first", code="not_ready")
        if body.action == "pay":
            kind = deposits.AUTHORISED if row.capture == "hold" else deposits.SUCCEEDED
            failure: tuple[str | None, str | None] = (None, None)
        else:
            kind, failure = deposits.FAILED, ("card_declined", "The card was declined (test mode).")
        event = fulfilment.ProviderEvent(
            provider=PaymentProviderName.SANDBOX,
            event_id=f"sbx_evt_{uuid.uuid4().hex}",
            event_type=kind,
            ref=row.provider_ref,
            failure_code=failure[0],
            failure_message=failure[1],
        )
        await fulfilment.apply_event(session, event, test_mode=True, settings=request.app[SETTINGS])
        # The event changed these very objects (one session, one identity map).
        await session.flush()
        out = _out(request, booking, row)
    kick_soon(request.app)
    kick_deposits(request.app)
    return model_json(out)


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/bookings/payment", booking_checkout)
    app.router.add_post("/api/v1/bookings/payment/sandbox", booking_sandbox)
