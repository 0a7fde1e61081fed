"""A booking whose type has a deposit or a price is confirmed only once that is paid or held.

The booking side of deposits: what a type asks at booking, holding the booking *pending*
while the shopper pays (it keeps its slot until ``pending_until``, then lapses like an
unconfirmed booking: EXPIRED, the slot is free), and confirming it when the payments
capability says the money is paid or held. An anonymous booking that must also be confirmed
by e-mail waits for both. The money itself (the PaymentIntent, refunds, captures) is the
payments capability's (``payments/deposits.py``), which sits above booking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.booking import catalog, mails
from livedesk.booking.records import record
from livedesk.models import Booking, BookingMailKind, BookingStatus, ConsultationType
from livedesk.outbox import webhooks
from livedesk.settings import Settings

# Flags in Booking.extra while a pending booking waits for its money and/or its e-mail link.
AWAITING_PAYMENT = "awaiting_payment"
AWAITING_EMAIL = "awaiting_email"
CAPTURE_MODES = ("charge", "hold")


@dataclass(frozen=True)
class AmountDue:
    purpose: str  # "deposit" or "price"
    amount_minor: int
    currency: str
    capture: str  # "charge" or "hold"


def amount_due(ctype: ConsultationType) -> AmountDue | None:
    """What booking this type takes: the deposit when it has one, else the price (integer
    minor units: yen for JPY); None for a free type."""
    if not ctype.currency:
        return None
    capture = ctype.payment_capture if ctype.payment_capture in CAPTURE_MODES else "charge"
    if ctype.deposit_amount:
        return AmountDue("deposit", ctype.deposit_amount, ctype.currency, capture)
    if ctype.price_amount:
        return AmountDue("price", ctype.price_amount, ctype.currency, capture)
    return None


def awaits_payment(booking: Booking) -> bool:
    return booking.status == BookingStatus.PENDING and bool((booking.extra or {}).get(AWAITING_PAYMENT))


def hold_for_payment(settings: Settings, booking: Booking, now: datetime) -> None:
    """Keep a just-made booking pending until its deposit or price is paid (or held)."""
    until = now + timedelta(minutes=settings.booking_payment_minutes)
    booking.status = BookingStatus.PENDING
    booking.pending_until = max(booking.pending_until or until, until)
    booking.extra = {**(booking.extra or {}), AWAITING_PAYMENT: True}


def mark_awaiting_email(booking: Booking) -> None:
    booking.extra = {**(booking.extra or {}), AWAITING_EMAIL: True}


def email_confirmed_first(booking: Booking) -> bool:
    """The e-mail link was opened but the money is not in yet: the booking stays pending
    (True); otherwise (False) the caller confirms it as before."""
    extra = dict(booking.extra or {})
    extra.pop(AWAITING_EMAIL, None)
    booking.extra = extra
    return bool(extra.get(AWAITING_PAYMENT))


async def payment_done(session: AsyncSession, settings: Settings, booking: Booking, now: datetime) -> bool:
    """The deposit or price is paid or held: the booking is confirmed (and its confirmation
    mail queued) unless it still waits for its e-mail link. False when the booking is no
    longer pending (it lapsed or was cancelled first: the payments side gives the money back)."""
    if booking.status != BookingStatus.PENDING:
        return False
    extra = dict(booking.extra or {})
    extra.pop(AWAITING_PAYMENT, None)
    booking.extra = extra
    booking.updated_at = now
    ctype = await catalog.get_type(session, booking.consultation_type_id, active_only=False)
    if extra.get(AWAITING_EMAIL):
        await record(
            session,
            booking,
            ctype,
            f"Booking paid, waiting for e-mail confirmation: {ctype.name}",
            webhook=webhooks.BOOKING_CHANGED,
            extra={"change": "paid"},
        )
        return True
    booking.status = BookingStatus.CONFIRMED
    booking.pending_until = None
    await record(
        session,
        booking,
        ctype,
        f"Booking confirmed (paid): {ctype.name}",
        webhook=webhooks.BOOKING_CHANGED,
        extra={"change": "confirmed"},
    )
    await mails.queue_for_change(session, settings, booking, BookingMailKind.CONFIRMATION, now)
    return True
