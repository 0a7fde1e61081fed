"""What happens once the provider decides: payment events applied exactly once (paid →
an order on the shopper's timeline, declined, authentication, canceled), the sandbox's
test-mode outcomes, and refunds.

The order a paid request becomes carries an order number (``receipts.py``); the shopper sees
it on the receipt in the call, and in the receipt mail when the consultation was booked.

Stripe webhooks and sandbox outcomes take the same path, ``apply_event``: the event's id is
stored in the same transaction as its effect, so a redelivered or concurrent duplicate changes
nothing. Events may arrive in any order: a payment that is paid stays paid whatever older news
arrives after it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.booking import mails as booking_mails
from livedesk.identity import Actor, Principal
from livedesk.kit import money
from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Conflict, NotFound, ValidationFailed
from livedesk.models import (
    OrderChannel,
    PaymentProviderName,
    PaymentRefund,
    PaymentRequest,
    PaymentStatus,
    PaymentWebhookEvent,
    RefundStatus,
    ShopOrder,
    ShopOrderLine,
    TimelineKind,
)
from livedesk.outbox import webhooks as outgoing
from livedesk.payments import receipts, repository
from livedesk.payments.providers import PaymentProvider
from livedesk.payments.schemas import RefundCreate
from livedesk.payments.service import PAID_STATUSES, announce, check_checkout, pays
from livedesk.timeline import append_event

SUCCEEDED = "payment_intent.succeeded"
FAILED = "payment_intent.payment_failed"
PROCESSING = "payment_intent.processing"
REQUIRES_ACTION = "payment_intent.requires_action"
CANCELED = "payment_intent.canceled"
CHARGE_REFUNDED = "charge.refunded"
# The Stripe event types the webhook acts on; any other type is acknowledged and not stored.
HANDLED_TYPES = frozenset({SUCCEEDED, FAILED, PROCESSING, REQUIRES_ACTION, CANCELED, CHARGE_REFUNDED})
OPEN_STATES = (PaymentStatus.OPEN, PaymentStatus.PROCESSING)


@dataclass(frozen=True)
class ProviderEvent:
    """A provider's news about one payment object, already verified."""

    provider: PaymentProviderName
    event_id: str
    event_type: str
    ref: str
    occurred_at: datetime | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    # charge.refunded: everything refunded so far (cumulative, so order does not matter).
    amount_refunded: int | None = None


@dataclass(frozen=True)
class EventOutcome:
    duplicate: bool
    outcome: str
    request: PaymentRequest | None = None


def _payload(r: PaymentRequest) -> dict[str, Any]:
    return {
        "payment_request_id": r.id,
        "consultation_id": r.consultation_id,
        "shopper_id": r.shopper_id,
        "status": r.status.value,
        "currency": r.currency,
        "total_minor": r.total_minor,
        "refunded_minor": r.refunded_minor,
        "order_id": r.order_id,
        "provider": r.provider.value,
        "items": [
            {"sku": x.sku, "name": x.name, "quantity": x.quantity, "unit_price_minor": x.unit_price_minor}
            for x in r.lines
        ],
    }


async def apply_event(session: AsyncSession, event: ProviderEvent, *, test_mode: bool) -> EventOutcome:
    """Act on one provider event, once. The payment request row is locked first, so two
    deliveries of events about one payment take turns; the (provider, event id) unique key
    makes a concurrent duplicate fail at commit (the handler answers it as a duplicate)."""
    r = await repository.request_by_ref(session, event.ref)
    seen = await session.scalar(
        select(PaymentWebhookEvent.id).where(
            PaymentWebhookEvent.provider == event.provider, PaymentWebhookEvent.event_id == event.event_id
        )
    )
    if seen is not None:
        return EventOutcome(duplicate=True, outcome="duplicate", request=r)
    stored = PaymentWebhookEvent(
        provider=event.provider,
        event_id=event.event_id,
        event_type=event.event_type,
        request_id=r.id if r is not None else None,
        data={"ref": event.ref, "failure_code": event.failure_code, "amount_refunded": event.amount_refunded},
    )
    session.add(stored)
    await session.flush()
    if r is None:
        stored.outcome = "no payment request has this payment object"
        return EventOutcome(duplicate=False, outcome=stored.outcome)
    stored.outcome = await _act(session, r, event)
    if not stored.outcome.startswith("ignored"):
        announce(session, r, test_mode=test_mode, order_number=await repository.order_number(session, r))
    return EventOutcome(duplicate=False, outcome=stored.outcome, request=r)


async def _act(session: AsyncSession, r: PaymentRequest, event: ProviderEvent) -> str:
    kind = event.event_type
    if kind == SUCCEEDED:
        if r.status in PAID_STATUSES:
            return "ignored: already paid"
        await _fulfil(session, r, event.occurred_at or utcnow())
        return "paid"
    if kind == CHARGE_REFUNDED:
        return await _sync_refunded(session, r, event)
    if r.status not in OPEN_STATES:
        # Older news about a payment that has since been paid, refunded or withdrawn.
        return f"ignored: request is {r.status.value}"
    if kind in (PROCESSING, REQUIRES_ACTION):
        r.status = PaymentStatus.PROCESSING
        r.failure_code = "authentication_required" if kind == REQUIRES_ACTION else None
        r.failure_message = None
        return "processing"
    if kind == FAILED:
        r.status = PaymentStatus.OPEN
        r.failure_code = (event.failure_code or "payment_failed")[:64]
        r.failure_message = (event.failure_message or "The payment did not go through")[:500]
        await append_event(
            session,
            r.shopper_id,
            TimelineKind.PAYMENT,
            f"Payment of {money.format_money(r.total_minor, r.currency)} failed ({r.failure_code})",
            {"status": "failed", "payment_request_id": r.id, "failure_code": r.failure_code},
            consultation_id=r.consultation_id,
            ref_id=str(r.id),
        )
        return "failed"
    if kind == CANCELED:
        r.status = PaymentStatus.CANCELED
        return "canceled"
    return "ignored: unhandled type"


async def _fulfil(session: AsyncSession, r: PaymentRequest, paid_at: datetime) -> None:
    """Paid: the request becomes a shop order (channel "call") with its order number, a
    purchase (``shop.order``) on the shopper's timeline linked to the payment, the payment's
    own "paid" step, the receipt mail when the consultation was booked, and an outgoing
    ``payment.succeeded`` webhook — all in this transaction."""
    r.status = PaymentStatus.PAID
    r.paid_at = paid_at
    r.failure_code = None
    r.failure_message = None
    number = await receipts.new_order_number(session, r.id)
    order = ShopOrder(
        id=uuid.uuid4(),
        shopper_id=r.shopper_id,
        external_id=number,
        channel=OrderChannel.CALL,
        ordered_at=paid_at,
        currency=r.currency,
        total_minor=r.total_minor,
        store_name="",
        lines=[
            ShopOrderLine(
                id=uuid.uuid4(),
                position=line.position,
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                unit_price_minor=line.unit_price_minor,
            )
            for line in r.lines
        ],
    )
    session.add(order)
    await session.flush()
    r.order_id = order.id
    items = sum(line.quantity for line in r.lines)
    amount = money.format_money(r.total_minor, r.currency)
    count = f"{items} item{'s' if items != 1 else ''}"
    # The purchase, as the shop's own orders are shown (recent purchases, offers, filters);
    # its data names the payment it was paid by.
    await append_event(
        session,
        r.shopper_id,
        TimelineKind.SHOP_ORDER,
        f"Bought in the call: order {number}, {count}, {amount}",
        {
            "external_id": number,
            "order_number": number,
            "channel": OrderChannel.CALL.value,
            "currency": r.currency,
            "total_minor": r.total_minor,
            "store_name": "",
            "items": [
                {"sku": x.sku, "name": x.name, "quantity": x.quantity, "unit_price_minor": x.unit_price_minor}
                for x in r.lines[:20]
            ],
            "payment_request_id": r.id,
        },
        occurred_at=paid_at,
        actor_staff_id=r.advisor_id,
        consultation_id=r.consultation_id,
        ref_id=str(order.id),
    )
    # The payment's own step (requested → paid → refunded), pointing at the purchase.
    await append_event(
        session,
        r.shopper_id,
        TimelineKind.PAYMENT,
        f"Paid {amount} in the call: order {number}, {count}",
        {
            **_payload(r),
            "status": "paid",
            "external_id": number,
            "order_number": number,
            "channel": OrderChannel.CALL.value,
        },
        occurred_at=paid_at,
        consultation_id=r.consultation_id,
        ref_id=str(r.id),
    )
    await booking_mails.queue_receipt(
        session, r.consultation_id, receipts.receipt_mail_id(r.id), receipts.receipt_mail_sequence(r.id)
    )
    await outgoing.enqueue(session, outgoing.PAYMENT_SUCCEEDED, {**_payload(r), "order_number": number})


async def _sync_refunded(session: AsyncSession, r: PaymentRequest, event: ProviderEvent) -> str:
    """A refund made outside livedesk (the Stripe dashboard): catch up. Refunds made here
    already counted themselves, so their own charge.refunded changes nothing."""
    total = event.amount_refunded
    if total is None or total <= r.refunded_minor:
        return "ignored: refunds already known"
    if r.status not in PAID_STATUSES:
        return f"ignored: request is {r.status.value}"
    extra = min(total, r.total_minor) - r.refunded_minor
    refund = PaymentRefund(
        id=uuid.uuid4(),
        request_id=r.id,
        client_key=f"provider-{event.event_id}"[:64],
        amount_minor=extra,
        status=RefundStatus.SUCCEEDED,
        reason="Refunded at the payment provider",
    )
    session.add(refund)
    await _count_refund(session, r, refund, actor=None)
    return "refunded"


async def _count_refund(
    session: AsyncSession, r: PaymentRequest, refund: PaymentRefund, actor: uuid.UUID | None
) -> None:
    r.refunded_minor += refund.amount_minor
    r.status = (
        PaymentStatus.REFUNDED if r.refunded_minor >= r.total_minor else PaymentStatus.PARTIALLY_REFUNDED
    )
    await session.flush()
    amount = money.format_money(refund.amount_minor, r.currency)
    whole = money.format_money(r.total_minor, r.currency)
    await append_event(
        session,
        r.shopper_id,
        TimelineKind.PAYMENT,
        f"Refunded {amount} of {whole}" + (f": {refund.reason}" if refund.reason else ""),
        {
            "status": r.status.value,
            "payment_request_id": r.id,
            "refund_id": refund.id,
            "amount_minor": refund.amount_minor,
            "refunded_minor": r.refunded_minor,
            "currency": r.currency,
        },
        actor_staff_id=actor,
        consultation_id=r.consultation_id,
        ref_id=str(r.id),
    )
    await outgoing.enqueue(
        session,
        outgoing.PAYMENT_REFUNDED,
        {**_payload(r), "refund_id": refund.id, "amount_minor": refund.amount_minor},
    )


_SANDBOX_EVENTS = {
    "pay": (SUCCEEDED, None, None),
    "authenticate": (SUCCEEDED, None, None),
    "decline": (FAILED, "card_declined", "The card was declined (test mode)."),
    "fail_authentication": (
        FAILED,
        "authentication_failed",
        "The extra authentication did not succeed (test mode).",
    ),
    "require_authentication": (REQUIRES_ACTION, None, None),
}


async def sandbox_act(
    session: AsyncSession,
    provider: PaymentProvider,
    request_id: uuid.UUID,
    party: Actor,
    action: str,
) -> PaymentRequest:
    """The shopper's test-mode card does ``action``. Only for sandbox requests; the outcome is
    applied as a provider event, like a Stripe webhook."""
    r = await repository.load_request(session, request_id, lock=True)
    if r is None or not pays(party, r):
        raise NotFound("No such payment request", code="payment_request_not_found")
    if r.provider != PaymentProviderName.SANDBOX or provider.name != PaymentProviderName.SANDBOX:
        raise Conflict("Only test-mode payments take sandbox actions", code="not_sandbox")
    check_checkout(r, party)
    if r.status in PAID_STATUSES:
        return r
    if r.provider_ref is None:
        raise Conflict("This payment request is not ready to pay yet", code="not_ready")
    if action in ("authenticate", "fail_authentication") and r.failure_code != "authentication_required":
        raise Conflict("No authentication was asked for", code="no_authentication_pending")
    event_type, code, message = _SANDBOX_EVENTS[action]
    event = ProviderEvent(
        provider=PaymentProviderName.SANDBOX,
        event_id=f"sbx_evt_{uuid.uuid4().hex}",
        event_type=event_type,
        ref=r.provider_ref,
        failure_code=code,
        failure_message=message,
    )
    outcome = await apply_event(session, event, test_mode=True)
    assert outcome.request is not None
    return outcome.request


async def refund(
    session: AsyncSession,
    provider: PaymentProvider,
    staff: Principal,
    request_id: uuid.UUID,
    body: RefundCreate,
) -> tuple[PaymentRequest, PaymentRefund, bool]:
    """Refund all or part of a paid request (supervisors and admins; the handler checks).

    The request row is locked while the provider refunds, so two refunds cannot together
    exceed what was paid. The same ``client_key`` again returns the first refund —
    (request, refund, False) — and refunds nothing more; the provider is called with our own
    idempotency key too.
    """
    r = await repository.load_request(session, request_id, lock=True)
    if r is None:
        raise NotFound("No such payment request", code="payment_request_not_found")
    existing = await session.scalar(
        select(PaymentRefund).where(
            PaymentRefund.request_id == r.id, PaymentRefund.client_key == body.client_key
        )
    )
    if existing is not None:
        return r, existing, False
    if r.status not in (PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED):
        raise Conflict(
            f"Only paid payments are refunded (this one is {r.status.value})", code="not_refundable"
        )
    if r.provider != provider.name or r.provider_ref is None:
        raise Conflict("This payment was taken by a provider that is not set up now", code="provider_changed")
    remaining = r.total_minor - r.refunded_minor
    amount = body.amount_minor if body.amount_minor is not None else remaining
    if amount > remaining:
        raise ValidationFailed(
            f"field 'amount_minor': at most {money.format_money(remaining, r.currency)} is left to refund",
            code="refund_too_large",
            details=[{"in": "body", "field": "amount_minor", "message": f"at most {remaining}"}],
        )
    outcome = await provider.refund(
        ref=r.provider_ref,
        amount_minor=amount,
        currency=r.currency,
        metadata={"livedesk_payment_request_id": str(r.id)},
        idempotency_key=f"livedesk-refund-{r.id}-{body.client_key}",
    )
    row = PaymentRefund(
        id=uuid.uuid4(),
        request_id=r.id,
        client_key=body.client_key,
        amount_minor=amount,
        status=outcome.status,
        provider_ref=outcome.ref,
        reason=body.reason,
        staff_id=staff.staff_id,
    )
    session.add(row)
    if outcome.status == RefundStatus.FAILED:
        await session.flush()
        raise Conflict("The payment provider refused the refund", code="refund_failed")
    # A pending refund counts at once, so nobody can refund the same money twice meanwhile.
    await _count_refund(session, r, row, actor=staff.staff_id)
    announce(session, r, test_mode=provider.test_mode, order_number=await repository.order_number(session, r))
    return r, row, True
