"""Refunds as records with a lifecycle: pending → succeeded, pending → failed or canceled, and
(rarely, at Stripe) succeeded → failed.

A refund is one row per provider refund (Stripe ``re_…``), whoever made it: staff here (the
row is made with the status Stripe answered, usually pending) or someone at the provider (the
Stripe dashboard; the row is made from the provider's event or object). The provider's events
and objects move the status; they may come in any order and more than once, so a status only
moves forward (pending < succeeded < failed/canceled): a late "pending" never undoes a
"succeeded", a late "succeeded" never undoes a "failed".

Money: the payment's ``refunded_minor`` is the sum of its *succeeded* refunds, and its status
(paid / partially_refunded / refunded) follows from it, so revenue counts settled amounts
only. A pending refund still holds its amount: nobody can refund the same money twice while
the provider decides.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.identity import Principal
from livedesk.kit import money
from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Conflict, NotFound, ValidationFailed
from livedesk.models import PaymentRefund, PaymentRequest, PaymentStatus, RefundStatus, TimelineKind
from livedesk.outbox import webhooks as outgoing
from livedesk.payments import repository
from livedesk.payments.providers import PaymentProvider, RefundFact
from livedesk.payments.schemas import RefundCreate
from livedesk.payments.service import PAID_STATUSES, announce
from livedesk.timeline import append_event

# A status only moves to a higher rank; failed and canceled are final.
_RANK = {RefundStatus.PENDING: 0, RefundStatus.SUCCEEDED: 1, RefundStatus.FAILED: 2, RefundStatus.CANCELED: 2}
# Statuses whose amount is not refundable again: given back, or on its way.
_HOLDING = (RefundStatus.PENDING, RefundStatus.SUCCEEDED)


@dataclass(frozen=True)
class Change:
    """One refund whose status we just learnt: ``before`` is None for a refund new to us."""

    refund: PaymentRefund
    before: RefundStatus | None


def event_payload(r: PaymentRequest) -> dict[str, Any]:
    """The payment as outgoing webhooks describe it."""
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


def moves(current: RefundStatus, news: RefundStatus) -> bool:
    """Whether news of status ``news`` moves a refund that is ``current`` (forward only)."""
    return _RANK[news] > _RANK[current]


async def record(session: AsyncSession, r: PaymentRequest, facts: Sequence[RefundFact]) -> list[Change]:
    """Store what the provider says about refunds of ``r``: new refunds become rows, known
    ones move forward. Returns what changed (nothing, for news we already had)."""
    if not facts:
        return []
    refs = [f.ref for f in facts]
    known = {
        row.provider_ref: row
        for row in await session.scalars(
            select(PaymentRefund).where(PaymentRefund.provider_ref.in_(refs)).with_for_update()
        )
    }
    changes: list[Change] = []
    for fact in facts:
        row = known.get(fact.ref)
        if row is not None and row.request_id != r.id:
            continue  # a refund of another payment named in this one's event: not ours to move
        if row is None:
            row = PaymentRefund(
                id=uuid.uuid4(),
                request_id=r.id,
                client_key=f"provider-{fact.ref}"[:64],
                amount_minor=fact.amount_minor,
                status=fact.status,
                provider_ref=fact.ref,
                reason="Refunded at the payment provider",
                failure_reason=fact.failure_reason,
                created_at=fact.created or utcnow(),
                status_at=utcnow(),
            )
            session.add(row)
            known[fact.ref] = row
            changes.append(Change(row, None))
        elif moves(row.status, fact.status):
            before = row.status
            row.status = fact.status
            row.status_at = utcnow()
            if fact.failure_reason:
                row.failure_reason = fact.failure_reason
            changes.append(Change(row, before))
    await session.flush()
    return changes


async def settle(
    session: AsyncSession, r: PaymentRequest, changes: Sequence[Change], *, actor: uuid.UUID | None = None
) -> None:
    """Recount ``r`` from its refunds (refunded = sum of succeeded ones) and tell the
    shopper's timeline and the outgoing webhooks about each change."""
    rows = (await repository.refunds_of(session, [r.id]))[r.id]
    r.refunded_minor = sum(x.amount_minor for x in rows if x.status == RefundStatus.SUCCEEDED)
    if r.status in PAID_STATUSES:
        if r.refunded_minor >= r.total_minor:
            r.status = PaymentStatus.REFUNDED
        elif r.refunded_minor > 0:
            r.status = PaymentStatus.PARTIALLY_REFUNDED
        else:
            r.status = PaymentStatus.PAID
    await session.flush()
    for change in changes:
        await _tell(session, r, change, actor)


async def _tell(session: AsyncSession, r: PaymentRequest, change: Change, actor: uuid.UUID | None) -> None:
    refund = change.refund
    amount = money.format_money(refund.amount_minor, r.currency)
    whole = money.format_money(r.total_minor, r.currency)
    if refund.status == RefundStatus.SUCCEEDED:
        summary = f"Refunded {amount} of {whole}" + (f": {refund.reason}" if refund.reason else "")
    elif refund.status == RefundStatus.PENDING:
        summary = f"Refund of {amount} of {whole} pending at the payment provider"
    else:
        why = f" ({refund.failure_reason})" if refund.failure_reason else ""
        summary = f"Refund of {amount} {refund.status.value}{why}: nothing was given back"
    await append_event(
        session,
        r.shopper_id,
        TimelineKind.PAYMENT,
        summary,
        {
            "status": r.status.value,
            "payment_request_id": r.id,
            "refund_id": refund.id,
            "refund_status": refund.status.value,
            "amount_minor": refund.amount_minor,
            "refunded_minor": r.refunded_minor,
            "currency": r.currency,
        },
        actor_staff_id=actor,
        consultation_id=r.consultation_id,
        ref_id=str(r.id),
    )
    if refund.status == RefundStatus.SUCCEEDED:
        await outgoing.enqueue(
            session,
            outgoing.PAYMENT_REFUNDED,
            {**event_payload(r), "refund_id": refund.id, "amount_minor": refund.amount_minor},
        )


async def refund(
    session: AsyncSession,
    provider: PaymentProvider,
    staff: Principal,
    request_id: uuid.UUID,
    body: RefundCreate,
) -> tuple[PaymentRequest, PaymentRefund, bool]:
    """Refund all or part of a paid request (supervisors and admins; the handler checks).

    The refund is a record like any made at the provider: it stays pending until the provider
    says it succeeded (the sandbox says so at once; Stripe answers, then its events follow).
    The request row is locked while the provider refunds, so two refunds cannot together
    exceed what was paid (pending ones hold their amount). The same ``client_key`` again
    returns the first refund — (request, refund, False) — and refunds nothing more; the
    provider is called with our own idempotency key too.
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
    rows = (await repository.refunds_of(session, [r.id]))[r.id]
    remaining = r.total_minor - sum(x.amount_minor for x in rows if x.status in _HOLDING)
    if remaining <= 0:
        raise Conflict("Everything paid is refunded or being refunded", code="not_refundable")
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
    if outcome.status in (RefundStatus.FAILED, RefundStatus.CANCELED):
        raise Conflict("The payment provider refused the refund", code="refund_failed")
    # The provider's event may have made the row already (it waited for our lock, so only
    # when an earlier attempt of this refund committed without its client key): adopt it.
    row = await session.scalar(select(PaymentRefund).where(PaymentRefund.provider_ref == outcome.ref))
    before: RefundStatus | None = None
    if row is None:
        row = PaymentRefund(
            id=uuid.uuid4(),
            request_id=r.id,
            client_key=body.client_key,
            amount_minor=amount,
            status=outcome.status,
            provider_ref=outcome.ref,
            reason=body.reason,
            staff_id=staff.staff_id,
            status_at=utcnow(),
        )
        session.add(row)
    else:
        before = row.status
        row.client_key, row.reason, row.staff_id = body.client_key, body.reason, staff.staff_id
        if moves(row.status, outcome.status):
            row.status = outcome.status
    await session.flush()
    await settle(session, r, [Change(row, before)], actor=staff.staff_id)
    announce(session, r, test_mode=provider.test_mode, order_number=await repository.order_number(session, r))
    return r, row, True
