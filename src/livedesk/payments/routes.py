"""HTTP routes of payments. The advisor (staff cookie) builds and sends payment requests; the
shopper (``Authorization: Bearer <visitor token>``) reads them and pays; supervisors and
admins refund. Handlers parse, authorise and call the services; provider calls happen
between two short transactions, never while a request is half-written."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r201, r401, r403, r404, r409, r422, r502
from pydantic import BaseModel, Field

from livedesk.booking.jobs import kick_soon
from livedesk.identity import OVERSEERS, Actor, ShopperActor, guarded, request_actor, require_staff
from livedesk.kit.context import DB
from livedesk.kit.errors import ValidationFailed
from livedesk.kit.http import ErrorResponse, endpoint, model_json
from livedesk.models import PaymentRefund, PaymentRequest, PaymentStatus, Role
from livedesk.payments import fulfilment, repository, service
from livedesk.payments import refunds as refunds_service
from livedesk.payments.providers import PROVIDER
from livedesk.payments.schemas import (
    CheckoutOut,
    PaymentOverviewOut,
    PaymentRequestCreate,
    PaymentRequestOut,
    PurchasablesOut,
    RefundCreate,
    RevenueOut,
    SandboxAction,
)
from livedesk.payments.webhook import stripe_webhook


async def _party(request: web.Request) -> Actor:
    """A visitor token (``Authorization: Bearer …``) or a staff session cookie."""
    return await request_actor(request)


def _out(
    request: web.Request,
    r: PaymentRequest,
    refunds: list[PaymentRefund] | None = None,
    order_number: str | None = None,
) -> PaymentRequestOut:
    return PaymentRequestOut.of(
        r, test_mode=request.app[PROVIDER].test_mode, refunds=refunds, order_number=order_number
    )


async def _with_intent(request: web.Request, r: PaymentRequest) -> PaymentRequest:
    """Make the provider's payment object if the request has none yet (outside any
    transaction: a slow provider must not hold the database), then store it."""
    provider = request.app[PROVIDER]
    if not service.needs_intent(r, provider):
        return r
    intent = await provider.create_intent(
        amount_minor=r.total_minor,
        currency=r.currency,
        metadata=service.intent_metadata(r),
        idempotency_key=service.intent_key(r),
    )
    async with request.app[DB].transaction() as session:
        return await service.attach_intent(session, r.id, intent)


@guarded()
async def purchasables(
    request: web.Request, consultation_id: uuid.UUID, /
) -> r200[PurchasablesOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse]:
    """What the advisor can put in a payment request: the catalogue and the shopper's past
    purchases (re-ordered at today's catalogue price when the product is still sold).

    Tags: payments
    """
    staff = await require_staff(request)
    async with request.app[DB].read() as session:
        out = await service.purchasables(session, consultation_id, staff, request.app[PROVIDER])
    return model_json(out)


@guarded(Role.ADVISOR, Role.SUPERVISOR, Role.ADMIN)
async def create_payment_request(
    request: web.Request, consultation_id: uuid.UUID, /, body: PaymentRequestCreate
) -> (
    r200[PaymentRequestOut]
    | r201[PaymentRequestOut]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
    | r502[ErrorResponse]
):
    """Send a payment request to the shopper (the consultation's advisor, while it is active).

    Prices come from the catalogue (or the shopper's past purchase), never from the caller.
    The same client_key again answers 200 with the request made the first time: a double
    click or a retry makes one request. Both parties hear payment.updated.

    Tags: payments
    """
    staff = await require_staff(request)
    async with request.app[DB].transaction() as session:
        r, created = await service.create_request(
            session, request.app[PROVIDER], staff, consultation_id, body
        )
    r = await _with_intent(request, r)
    response = model_json(_out(request, r), status=201 if created else 200)
    response.headers["Location"] = f"/api/v1/payment-requests/{r.id}"
    return response


@endpoint
async def list_payment_requests(
    request: web.Request, consultation_id: uuid.UUID, /
) -> r200[list[PaymentRequestOut]] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse]:
    """The consultation's payment requests, oldest first (its shopper, its advisor,
    supervisors and admins).

    Tags: payments
    """
    party = await _party(request)
    async with request.app[DB].read() as session:
        rows = await service.list_requests(session, consultation_id, party)
        refunds = await repository.refunds_of(session, [r.id for r in rows])
        numbers = await repository.order_numbers(session, rows)
        out: list[BaseModel] = [_out(request, r, refunds[r.id], numbers.get(r.id)) for r in rows]
    return model_json(out)


@endpoint
async def get_payment_request(
    request: web.Request, request_id: uuid.UUID, /
) -> r200[PaymentRequestOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse]:
    """One payment request with its lines and refunds.

    Tags: payments
    """
    party = await _party(request)
    async with request.app[DB].read() as session:
        r = await service.get_request(session, request_id, party)
        refunds = await repository.refunds_of(session, [r.id])
        out = _out(request, r, refunds[r.id], await repository.order_number(session, r))
    return model_json(out)


@endpoint
async def checkout(
    request: web.Request, request_id: uuid.UUID, /
) -> (
    r200[CheckoutOut]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r502[ErrorResponse]
):
    """What the shopper's payment sheet needs to pay: the provider, test mode, and for Stripe
    the publishable key and the PaymentIntent's client secret (the shopper only).

    Tags: payments
    """
    party = await _party(request)
    async with request.app[DB].read() as session:
        r = await service.get_request(session, request_id, party)
        number = await repository.order_number(session, r)
    service.check_checkout(r, party)
    r = await _with_intent(request, r)
    provider = request.app[PROVIDER]
    out = CheckoutOut(
        request=_out(request, r, order_number=number),
        provider=r.provider,
        test_mode=provider.test_mode,
        publishable_key=provider.publishable_key,
        client_secret=r.client_secret if r.status in (PaymentStatus.OPEN, PaymentStatus.PROCESSING) else None,
    )
    return model_json(out)


@endpoint
async def sandbox_action(
    request: web.Request, request_id: uuid.UUID, /, body: SandboxAction
) -> (
    r200[PaymentRequestOut]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
):
    """Test mode only: the shopper's test card pays, is declined, or asks for extra
    authentication (then authenticate or fail_authentication). Applied like a provider
    webhook, exactly once.

    Tags: payments
    """
    party = await _party(request)
    if not isinstance(party, ShopperActor):
        raise ValidationFailed("Only the shopper acts in the payment sheet", code="not_the_shopper")
    async with request.app[DB].transaction() as session:
        r = await fulfilment.sandbox_act(session, request.app[PROVIDER], request_id, party, body.action)
        out = _out(request, r, order_number=await repository.order_number(session, r))
    if out.order_number is not None:
        kick_soon(request.app)  # a booked consultation's receipt mail, if one was queued
    return model_json(out)


@guarded(*OVERSEERS)
async def create_refund(
    request: web.Request, request_id: uuid.UUID, /, body: RefundCreate
) -> (
    r200[PaymentRequestOut]
    | r201[PaymentRequestOut]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
    | r502[ErrorResponse]
):
    """Refund all (no amount) or part of a paid payment (supervisors and admins).

    The same client_key again answers 200 and refunds nothing more. Lands on the shopper's
    timeline; both parties hear payment.updated.

    Tags: payments
    """
    staff = await require_staff(request, *OVERSEERS)
    async with request.app[DB].transaction() as session:
        r, _refund, created = await refunds_service.refund(
            session, request.app[PROVIDER], staff, request_id, body
        )
        refunds = await repository.refunds_of(session, [r.id])
        out = _out(request, r, refunds[r.id], await repository.order_number(session, r))
    return model_json(out, status=201 if created else 200)


@guarded(*OVERSEERS)
async def recent_payment_requests(
    request: web.Request,
    status: list[PaymentStatus] = Field(default_factory=list),  # noqa: B008 (a fresh list per request)
    limit: Annotated[int, Field(ge=1, le=500)] = 100,
) -> r200[list[PaymentOverviewOut]] | r401[ErrorResponse] | r403[ErrorResponse] | r422[ErrorResponse]:
    """The newest payment requests of all consultations (supervisors and admins), to refund:
    each with its shopper (name, e-mail), advisor and order number.

    Tags: payments
    """
    await require_staff(request, *OVERSEERS)
    async with request.app[DB].read() as session:
        rows = await repository.recent_requests(session, statuses=status, limit=limit)
        refunds = await repository.refunds_of(session, [r.id for r in rows])
        numbers = await repository.order_numbers(session, rows)
        shoppers, advisors = await repository.people(session, rows)
    out: list[BaseModel] = []
    for r in rows:
        base = _out(request, r, refunds[r.id], numbers.get(r.id))
        shopper = shoppers.get(r.shopper_id)
        advisor = advisors.get(r.advisor_id) if r.advisor_id else None
        out.append(
            PaymentOverviewOut(
                **base.model_dump(),
                shopper_name=shopper.display_name if shopper else "",
                shopper_email=shopper.email if shopper else None,
                advisor_name=advisor.display_name if advisor else None,
            )
        )
    return model_json(out)


@guarded(*OVERSEERS)
async def revenue(
    request: web.Request, start: datetime, end: datetime
) -> r200[list[RevenueOut]] | r401[ErrorResponse] | r403[ErrorResponse] | r422[ErrorResponse]:
    """Money taken in calls paid in [start, end), per currency, net of refunds.

    Tags: payments
    """
    await require_staff(request, *OVERSEERS)
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationFailed(
            "query fields 'start' and 'end' need a time zone (e.g. Z)", code="validation_failed"
        )
    async with request.app[DB].read() as session:
        figures = await service.revenue_between(session, start, end)
    out: list[BaseModel] = [
        RevenueOut(currency=f.currency, amount_minor=f.amount_minor, paid_consultations=f.paid_consultations)
        for f in figures
    ]
    return model_json(out)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/consultations/{consultation_id}/purchasables", purchasables)
    app.router.add_post("/api/v1/consultations/{consultation_id}/payment-requests", create_payment_request)
    app.router.add_get("/api/v1/consultations/{consultation_id}/payment-requests", list_payment_requests)
    app.router.add_get("/api/v1/payment-requests", recent_payment_requests)
    app.router.add_get("/api/v1/payment-requests/{request_id}", get_payment_request)
    app.router.add_post("/api/v1/payment-requests/{request_id}/checkout", checkout)
    app.router.add_post("/api/v1/payment-requests/{request_id}/sandbox", sandbox_action)
    app.router.add_post("/api/v1/payment-requests/{request_id}/refunds", create_refund)
    app.router.add_get("/api/v1/payments/revenue", revenue)
    app.router.add_post("/api/v1/payments/stripe/webhook", stripe_webhook)
