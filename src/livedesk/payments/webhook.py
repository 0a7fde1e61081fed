"""``POST /api/v1/payments/stripe/webhook``: Stripe's signed events, acted on exactly once.

Raw body, ``stripe.Webhook.construct_event`` with the endpoint's signing secret (404 when none
is configured, so an installation without Stripe has no such endpoint), only the listed event
types; each event is stored by its id in the same transaction as its effect.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import stripe
from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r400, r404
from sqlalchemy.exc import IntegrityError

from livedesk.booking.jobs import kick_soon
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.errors import BadRequest, NotFound
from livedesk.kit.http import ErrorResponse, endpoint, json_ok
from livedesk.kit.logging import get_logger
from livedesk.models import PaymentProviderName
from livedesk.payments import fulfilment
from livedesk.payments.providers import PROVIDER
from livedesk.payments.schemas import WebhookAnswer

log = get_logger("livedesk.payments.webhook")
SIGNATURE_HEADER = "Stripe-Signature"


def _event_of(payload: dict[str, Any]) -> fulfilment.ProviderEvent | None:
    """Our view of a Stripe event, or None when it names no payment object."""
    obj = payload.get("data", {}).get("object", {}) or {}
    kind = str(payload.get("type", ""))
    ref = obj.get("payment_intent") if kind == fulfilment.CHARGE_REFUNDED else obj.get("id")
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
        amount_refunded=obj.get("amount_refunded") if kind == fulfilment.CHARGE_REFUNDED else None,
    )


@endpoint
async def stripe_webhook(
    request: web.Request,
) -> r200[WebhookAnswer] | r400[ErrorResponse] | r404[ErrorResponse]:
    """Stripe's signed events (Stripe-Signature header, raw JSON body), acted on once.

    Answers 200 for anything Stripe should not send again (handled, duplicate, a type we do
    not act on); 400 for a missing or wrong signature or a body that is not an event; 404
    when no webhook signing secret is configured.

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
    try:
        async with request.app[DB].transaction() as session:
            outcome = await fulfilment.apply_event(session, event, test_mode=provider.test_mode)
    except IntegrityError:
        # The same event delivered twice at once: the other delivery stored and acted on it.
        return json_ok({"received": True, "duplicate": True, "outcome": "duplicate"})
    log.info("stripe event", event_id=event.event_id, event_type=event.event_type, outcome=outcome.outcome)
    if outcome.outcome == "paid":
        kick_soon(request.app)  # a booked consultation's receipt mail, if one was queued
    return json_ok({"received": True, "duplicate": outcome.duplicate, "outcome": outcome.outcome})
