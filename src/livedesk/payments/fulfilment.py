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

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.booking import mails as booking_mails
from livedesk.identity import Actor
from livedesk.kit import money
from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Conflict, NotFound
from livedesk.models import (
    OrderChannel,
    PaymentProviderName,
    PaymentRequest,
    PaymentStatus,
    PaymentWebhookEvent,
    ShopOrder,
    ShopOrderLine,
    TimelineKind,
)
from livedesk.outbox import webhooks as outgoing
from livedesk.payments import deposits, receipts, refunds, repository
from livedesk.payments.providers import PaymentProvider, PaymentSnapshot, RefundFact
from livedesk.payments.service import PAID_STATUSES, announce, check_checkout, pays
from livedesk.settings import Settings
from livedesk.timeline import append_event

SUCCEEDED = "payment_intent.succeeded"
FAILED = "payment_intent.payment_failed"
PROCESSING = "payment_intent.processing"
REQUIRES_ACTION = "payment_intent.requires_action"
CANCELED = "payment_intent.canceled"
CHARGE_REFUNDED = "charge.refunded"
CHARGE_REFUND_UPDATED = "charge.refund.updated"
REFUND_CREATED = "refund.created"
REFUND_UPDATED = "refund.updated"
REFUND_FAILED = "refund.failed"
# News about refunds: the event's object is a Refund, or (charge.refunded) the Charge.
REFUND_TYPES = frozenset(
    {CHARGE_REFUNDED, CHARGE_REFUND_UPDATED, REFUND_CREATED, REFUND_UPDATED, REFUND_FAILED}
)
# A held (manual-capture) payment is authorised: a booking's deposit that holds.
AUTHORISED = deposits.AUTHORISED
# The Stripe event types the webhook acts on; any other type is acknowledged and not stored.
HANDLED_TYPES = (
    frozenset({SUCCEEDED, FAILED, PROCESSING, REQUIRES_ACTION, CANCELED, AUTHORISED}) | REFUND_TYPES
)
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
    # Refund news: the refunds the event itself names (a Refund object, or a Charge's list).
    refunds: tuple[RefundFact, ...] = ()
    # Refund news: the provider's current truth, fetched before the transaction (None when the
    # provider sends no events). It wins over the event's own copy, which may be stale.
    snapshot: PaymentSnapshot | None = None


@dataclass(frozen=True)
class EventOutcome:
    duplicate: bool
    outcome: str
    request: PaymentRequest | None = None


async def apply_event(
    session: AsyncSession, event: ProviderEvent, *, test_mode: bool, settings: Settings | None = None
) -> EventOutcome:
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
        data={
            "ref": event.ref,
            "failure_code": event.failure_code,
            "refunds": [
                {"ref": f.ref, "amount": f.amount_minor, "status": f.status.value} for f in event.refunds
            ],
            "intent_status": event.snapshot.intent_status if event.snapshot else None,
        },
    )
    session.add(stored)
    await session.flush()
    if r is None:
        # Not a payment request's: maybe a booking's deposit or price.
        found = (
            await deposits.apply_event(
                session, settings, event.ref, event.event_type, (event.failure_code, event.failure_message)
            )
            if settings is not None
            else None
        )
        stored.outcome = (found or "no payment request has this payment object")[:200]
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
    if kind in REFUND_TYPES:
        return await _refund_news(session, r, event)
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
            **refunds.event_payload(r),
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
    await outgoing.enqueue(
        session, outgoing.PAYMENT_SUCCEEDED, {**refunds.event_payload(r), "order_number": number}
    )
    # Refunds that arrived before the payment's own success were kept: they count from now.
    await refunds.settle(session, r, [])


async def _refund_news(session: AsyncSession, r: PaymentRequest, event: ProviderEvent) -> str:
    """Refund news, in whatever order it comes. With the provider's current truth at hand, a
    payment whose success we have not heard of yet is fulfilled first (Stripe says it
    succeeded: refunds exist only of paid payments), then every refund is brought up to
    date. Without it, the refunds the event names are kept on the payment and count once it
    is paid."""
    done: list[str] = []
    truth = event.snapshot
    if truth is not None and truth.intent_status == "succeeded" and r.status in OPEN_STATES:
        await _fulfil(session, r, event.occurred_at or utcnow())
        done.append("paid (from Stripe's PaymentIntent)")
    changes = await refunds.record(session, r, truth.refunds if truth is not None else event.refunds)
    if changes or done:
        await refunds.settle(session, r, changes)
    done += [f"refund {c.refund.provider_ref} {c.refund.status.value}" for c in changes]
    if not done:
        return "ignored: refunds already known"
    if r.status not in PAID_STATUSES:
        done.append(f"kept until the payment succeeds (request is {r.status.value})")
    return "; ".join(done)[:200]


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
