"""``POST /api/v1/payments/stripe/webhook``: Stripe's signed events, acted on exactly once.

Raw body, ``stripe.Webhook.construct_event`` with the endpoint's signing secret (404 when none
is configured, so an installation without Stripe has no such endpoint), only the listed event
types; each event is stored by its id in the same transaction as its effect. Refund news is
checked against Stripe's current objects first (``_with_truth``), so its order does not matter.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import stripe
from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r400, r404, r503
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from livedesk.booking.jobs import kick_soon
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.errors import BadRequest, NotFound, ServiceUnavailable
from livedesk.kit.http import ErrorResponse, endpoint, json_ok
from livedesk.kit.logging import get_logger
from livedesk.models import PaymentProviderName, PaymentWebhookEvent
from livedesk.payments import fulfilment, repository
from livedesk.payments.providers import PROVIDER, ProviderError, RefundFact, refund_fact
from livedesk.payments.schemas import WebhookAnswer

log = get_logger("livedesk.payments.webhook")
SIGNATURE_HEADER = "Stripe-Signature"


def _refunds_named(kind: str, obj: dict[str, Any]) -> tuple[RefundFact, ...]:
    """The refunds an event itself names: its Refund object, or the Charge's refund list
    (which newer API versions leave out: then only the fetched truth names them)."""
    if kind != fulfilment.CHARGE_REFUNDED:
        fact = refund_fact(obj)
        return (fact,) if fact is not None else ()
    listed = (obj.get("refunds") or {}).get("data") or []
    facts = [refund_fact(x) for x in listed if isinstance(x, dict)]
    return tuple(f for f in facts if f is not None)


def _event_of(payload: dict[str, Any]) -> fulfilment.ProviderEvent | None:
    """Our view of a Stripe event, or None when it names no payment object."""
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return None
    kind = str(payload.get("type", ""))
    refund_news = kind in fulfilment.REFUND_TYPES
    # Refund news names the payment by its PaymentIntent; PaymentIntent events are about it.
    ref = obj.get("payment_intent") if refund_news else obj.get("id")
    if not isinstance(ref, str) or not ref:
        return None
    error = obj.get("last_payment_error") or {}
    created = payload.get("created")
    return fulfilment.ProviderEvent(
        provider=PaymentProviderName.STRIPE,
        event_id=str(payload["id"]),
        event_type=kind,
        ref=ref,
        occurred_at=datetime.fromtimestamp(created, UTC) if isinstance(created, int) else None,
        failure_code=error.get("decline_code") or error.get("code"),
        failure_message=error.get("message"),
        refunds=_refunds_named(kind, obj) if refund_news else (),
    )


async def _with_truth(request: web.Request, event: fulfilment.ProviderEvent) -> fulfilment.ProviderEvent:
    """Refund news with Stripe's current PaymentIntent and refunds attached: the event may
    have come before the payment's own success, or after a newer refund event, and its copy
    of the refund may be stale. Fetched before the transaction (no lock held over the
    network); only for payments that are ours (an unknown one is stored as such, unfetched).
    When Stripe cannot be reached the event is not stored and Stripe is asked to send it
    again (503), so nothing is taken as handled that was not."""
    async with request.app[DB].read() as session:
        if await repository.request_by_ref(session, event.ref, lock=False) is None:
            return event
    try:
        truth = await request.app[PROVIDER].snapshot(event.ref)
    except ProviderError:
        raise ServiceUnavailable(
            "Stripe could not be asked about this payment; send the event again", code="provider_unreachable"
        ) from None
    return replace(event, snapshot=truth)


@endpoint
async def stripe_webhook(
    request: web.Request,
) -> r200[WebhookAnswer] | r400[ErrorResponse] | r404[ErrorResponse] | r503[ErrorResponse]:
    """Stripe's signed events (Stripe-Signature header, raw JSON body), acted on once.

    Answers 200 for anything Stripe should not send again (handled, duplicate, a type we do
    not act on); 400 for a missing or wrong signature or a body that is not an event; 404
    when no webhook signing secret is configured; 503 when refund news could not be checked
    against Stripe (nothing was stored: Stripe sends it again).

    Tags: payments
    """
    secret = request.app[SETTINGS].stripe_webhook_secret.get_secret_value()
    if not secret:
        raise NotFound("No Stripe webhook is configured here", code="not_found")
    body = await request.read()
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise BadRequest(f"Missing {SIGNATURE_HEADER} header", code="signature_missing")
    try:
        stripe.Webhook.construct_event(body.decode("utf-8"), signature, secret)
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The body is not a Stripe event", code="payload_invalid") from None
    except stripe.SignatureVerificationError:
        raise BadRequest("The Stripe signature does not match", code="signature_invalid") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
        raise BadRequest("The body is not a Stripe event", code="payload_invalid")
    kind = payload.get("type")
    if kind not in fulfilment.HANDLED_TYPES:
        return json_ok({"received": True, "duplicate": False, "outcome": "ignored: event type not handled"})
    event = _event_of(payload)
    if event is None:
        raise BadRequest("The event names no payment", code="payload_invalid")
    provider = request.app[PROVIDER]
    if event.event_type in fulfilment.REFUND_TYPES:
        event = await _with_truth(request, event)
    try:
        async with request.app[DB].transaction() as session:
            outcome = await fulfilment.apply_event(
                session, event, test_mode=provider.test_mode, settings=request.app[SETTINGS]
            )
    except IntegrityError:
        async with request.app[DB].read() as session:
            stored = await session.scalar(
                select(PaymentWebhookEvent.id).where(
                    PaymentWebhookEvent.provider == event.provider,
                    PaymentWebhookEvent.event_id == event.event_id,
                )
            )
        if stored is None:
            # Another event about the same refund made its row at the same moment: this one
            # was not applied, so Stripe must send it again (it then finds the row).
            raise ServiceUnavailable(
                "A concurrent event was applied first; send again", code="retry"
            ) from None
        # The same event delivered twice at once: the other delivery stored and acted on it.
        return json_ok({"received": True, "duplicate": True, "outcome": "duplicate"})
    log.info("stripe event", event_id=event.event_id, event_type=event.event_type, outcome=outcome.outcome)
    if outcome.outcome == "paid" or outcome.outcome.startswith("booking "):
        kick_soon(request.app)  # a booked consultation's receipt mail, if one was queued
    return json_ok({"received": True, "duplicate": outcome.duplicate, "outcome": outcome.outcome})
