"""Deposits and prices taken at booking (the money side; the booking side is
``booking/payment_gate.py``).

A consultation type with a deposit (or, without one, a price) takes it when the booking is
made: the booking stays *pending* (holding its slot for ``LIVEDESK_BOOKING_PAYMENT_MINUTES``)
until the shopper pays with the same client flow as in a call — Stripe's Payment Element with
a PaymentIntent, or the sandbox in test mode — and is confirmed once the money is paid
(``charge``) or authorised (``hold``: a PaymentIntent with ``capture_method=manual``). If
nobody pays in time the booking lapses (EXPIRED) and its slot is free.

Policy, applied by the deposits job once the booking's fate is known:

| booking becomes | charged (``charge``) | held (``hold``) |
|---|---|---|
| cancelled | refunded (``LIVEDESK_BOOKING_REFUND_ON_CANCEL``, default on; off: kept) | released |
| lapsed / advisor no-show | refunded | released |
| shopper no-show | kept | captured |
| attended | kept | a price is captured, a deposit released |

Provider calls happen outside any transaction with our own idempotency keys (so two
processes doing the same settlement make one refund or capture at Stripe); the row is then
settled once, under its lock. Amounts are integers in the currency's minor unit (JPY: yen).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.booking import catalog, payment_gate
from livedesk.kit import money
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.kit.errors import Conflict
from livedesk.kit.logging import get_logger
from livedesk.models import (
    Booking,
    BookingPayment,
    BookingPaymentStatus,
    BookingStatus,
    PaymentProviderName,
    TimelineKind,
)
from livedesk.payments.providers import Intent, PaymentProvider, ProviderError
from livedesk.settings import Settings
from livedesk.timeline import append_event

log = get_logger("livedesk.payments.deposits")

SUCCEEDED = "payment_intent.succeeded"
AUTHORISED = "payment_intent.amount_capturable_updated"
FAILED = "payment_intent.payment_failed"
CANCELED = "payment_intent.canceled"
_TAKEN = (BookingPaymentStatus.HELD, BookingPaymentStatus.PAID)
_CLOSED = (
    BookingStatus.CANCELLED,
    BookingStatus.EXPIRED,
    BookingStatus.NO_SHOW_SHOPPER,
    BookingStatus.NO_SHOW_ADVISOR,
    BookingStatus.ATTENDED,
)


def intent_key(row: BookingPayment) -> str:
    return f"livedesk-booking-payment-{row.id}"


async def payment_of(
    session: AsyncSession, booking_id: uuid.UUID, *, lock: bool = False
) -> BookingPayment | None:
    stmt = select(BookingPayment).where(BookingPayment.booking_id == booking_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).one_or_none()


async def start(session: AsyncSession, provider: PaymentProvider, booking: Booking) -> BookingPayment:
    """The booking's payment, made on first ask (once per booking). 409 ``no_payment_due``
    for a free type; ``not_payable`` when the booking no longer waits for its money."""
    row = await payment_of(session, booking.id, lock=True)
    if row is not None:
        if row.provider != provider.name:
            raise Conflict(
                "This booking's payment was started with another provider", code="provider_changed"
            )
        return row
    ctype = await catalog.get_type(session, booking.consultation_type_id, active_only=False)
    due = payment_gate.amount_due(ctype)
    if due is None:
        raise Conflict("This booking takes no payment", code="no_payment_due")
    if not payment_gate.awaits_payment(booking):
        raise Conflict("This booking is not waiting for a payment", code="not_payable")
    money.stripe_amount(due.amount_minor, due.currency)  # refuses an amount the provider cannot take
    row = BookingPayment(
        id=uuid.uuid4(),
        booking_id=booking.id,
        shopper_id=booking.shopper_id,
        purpose=due.purpose,
        capture=due.capture,
        status=BookingPaymentStatus.OPEN,
        provider=provider.name,
        currency=due.currency,
        amount_minor=due.amount_minor,
        kept_minor=0,
    )
    session.add(row)
    await session.flush()
    return row


async def attach_intent(session: AsyncSession, payment_id: uuid.UUID, intent: Intent) -> BookingPayment:
    row = await session.get(BookingPayment, payment_id, with_for_update=True)
    assert row is not None
    if row.provider_ref is None:
        row.provider_ref = intent.ref
        row.client_secret = intent.client_secret
        await session.flush()
    return row


async def _note(session: AsyncSession, row: BookingPayment, booking: Booking, summary: str) -> None:
    await append_event(
        session,
        row.shopper_id,
        TimelineKind.PAYMENT,
        summary,
        {
            "status": row.status.value,
            "booking_id": booking.id,
            "booking_payment_id": row.id,
            "purpose": row.purpose,
            "capture": row.capture,
            "amount_minor": row.amount_minor,
            "kept_minor": row.kept_minor,
            "currency": row.currency,
        },
        consultation_id=booking.consultation_id,
        ref_id=str(booking.id),
    )


async def apply_event(
    session: AsyncSession, settings: Settings, ref: str, kind: str, failure: tuple[str | None, str | None]
) -> str | None:
    """A provider event about a booking's payment (None: no booking payment has ``ref``).
    Paid or held → the booking is confirmed (if it still waits; a lapsed or cancelled one is
    settled by the job: refunded or released)."""
    row = (
        await session.scalars(
            select(BookingPayment).where(BookingPayment.provider_ref == ref).with_for_update()
        )
    ).one_or_none()
    if row is None:
        return None
    booking = await session.get(Booking, row.booking_id, with_for_update=True)
    assert booking is not None
    amount = money.format_money(row.amount_minor, row.currency)
    if kind in (SUCCEEDED, AUTHORISED):
        if row.status != BookingPaymentStatus.OPEN:
            return f"ignored: booking payment is {row.status.value}"
        if kind == AUTHORISED and row.capture != "hold":
            return "ignored: not a hold"
        held = kind == AUTHORISED
        row.status = BookingPaymentStatus.HELD if held else BookingPaymentStatus.PAID
        row.paid_at = utcnow()
        row.failure_code = row.failure_message = None
        await _note(session, row, booking, f"Booking {row.purpose} of {amount} {'held' if held else 'paid'}")
        confirmed = await payment_gate.payment_done(session, settings, booking, utcnow())
        return f"booking {row.status.value}" + ("" if confirmed else f" (booking is {booking.status.value})")
    if kind == FAILED:
        if row.status != BookingPaymentStatus.OPEN:
            return f"ignored: booking payment is {row.status.value}"
        row.failure_code = (failure[0] or "payment_failed")[:64]
        row.failure_message = (failure[1] or "The payment did not go through")[:500]
        return "booking payment failed"
    if kind == CANCELED and row.status in (BookingPaymentStatus.OPEN, BookingPaymentStatus.HELD):
        row.status = (
            BookingPaymentStatus.RELEASED
            if row.status == BookingPaymentStatus.HELD
            else BookingPaymentStatus.CANCELED
        )
        row.settled_at = row.settled_at or utcnow()
        return f"booking payment {row.status.value}"
    return f"ignored: booking payment is {row.status.value}"


@dataclass(frozen=True)
class Settlement:
    action: str  # "refund", "release", "capture", "keep"
    status: BookingPaymentStatus
    kept: bool


def decide(row: BookingPayment, booking_status: BookingStatus, settings: Settings) -> Settlement:
    """What the policy (module docstring) does with this payment now its booking is closed."""
    if row.status == BookingPaymentStatus.OPEN:
        return Settlement("release", BookingPaymentStatus.CANCELED, kept=False)
    held = row.status == BookingPaymentStatus.HELD
    if booking_status == BookingStatus.NO_SHOW_SHOPPER:
        return (
            Settlement("capture", BookingPaymentStatus.PAID, True)
            if held
            else Settlement("keep", row.status, True)
        )
    if booking_status == BookingStatus.ATTENDED:
        if held:
            if row.purpose == "price":
                return Settlement("capture", BookingPaymentStatus.PAID, True)
            return Settlement("release", BookingPaymentStatus.RELEASED, False)
        return Settlement("keep", row.status, True)
    # Cancelled, lapsed, or the advisor did not come.
    if held:
        return Settlement("release", BookingPaymentStatus.RELEASED, False)
    if booking_status == BookingStatus.CANCELLED and not settings.booking_refund_on_cancel:
        return Settlement("keep", row.status, True)
    return Settlement("refund", BookingPaymentStatus.REFUNDED, False)


async def settle_due(db: Database, provider: PaymentProvider, settings: Settings) -> int:
    """Settle the payments of closed bookings (at most 50 a pass). Returns how many."""
    async with db.read() as session:
        rows = (
            await session.execute(
                select(BookingPayment.id, Booking.status)
                .join(Booking, Booking.id == BookingPayment.booking_id)
                .where(
                    BookingPayment.settled_at.is_(None),
                    BookingPayment.provider == provider.name,
                    Booking.status.in_(_CLOSED),
                    # An open payment of a booking that took place cannot be paid any more
                    # either, but only a closed-before-paid one needs its intent dropped.
                    BookingPayment.status.in_((*_TAKEN, BookingPaymentStatus.OPEN)),
                )
                .order_by(BookingPayment.created_at)
                .limit(50)
            )
        ).all()
    done = 0
    for payment_id, booking_status in rows:
        try:
            done += await _settle_one(db, provider, settings, payment_id, booking_status)
        except ProviderError as exc:  # tried again on the next pass (same idempotency key)
            log.warning("booking payment not settled", payment_id=str(payment_id), error=exc.message)
    return done


async def _settle_one(
    db: Database,
    provider: PaymentProvider,
    settings: Settings,
    payment_id: uuid.UUID,
    booking_status: BookingStatus,
) -> int:
    async with db.read() as session:
        row = await session.get(BookingPayment, payment_id)
        assert row is not None
        plan = decide(row, booking_status, settings)
        ref, amount, currency, status_before = row.provider_ref, row.amount_minor, row.currency, row.status
    if ref is not None and plan.action != "keep":
        key = f"livedesk-booking-{plan.action}-{payment_id}"
        if plan.action == "refund":
            await provider.refund(
                ref=ref,
                amount_minor=amount,
                currency=currency,
                metadata={"livedesk_booking_payment_id": str(payment_id)},
                idempotency_key=key,
            )
        elif plan.action == "capture":
            await provider.capture(ref=ref, idempotency_key=key)
        elif status_before != BookingPaymentStatus.OPEN or provider.name == PaymentProviderName.STRIPE:
            await provider.release(ref=ref, idempotency_key=key)
    async with db.transaction() as session:
        row = await session.get(BookingPayment, payment_id, with_for_update=True)
        if row is None or row.settled_at is not None or row.status != status_before:
            return 0  # another process settled it, or news moved it: the next pass decides again
        booking = await session.get(Booking, row.booking_id)
        assert booking is not None
        row.status = plan.status
        row.kept_minor = row.amount_minor if plan.kept else 0
        row.settled_at = utcnow()
        amount_text = money.format_money(row.amount_minor, row.currency)
        words = {"refund": "refunded", "release": "released", "capture": "captured", "keep": "kept"}[
            plan.action
        ]
        if status_before != BookingPaymentStatus.OPEN:
            await _note(
                session,
                row,
                booking,
                f"Booking {row.purpose} of {amount_text} {words} (booking {booking_status.value})",
            )
    return 1
