"""The shopper's receipt after paying: the order number a paid request's shop order carries, the
receipt mail of a booked consultation (Japanese or English), and finding which paid request a
queued receipt mail is about.

The order number is the shop order's ``external_id`` — a column that is already unique, so
no schema change was needed: ``LD-`` and eight Crockford base-32 characters (no I, L, O, U: it
is read out over the phone) taken from a hash of the payment request id. It is made once, at
fulfilment, checked against the orders already stored, and never recomputed, so it is stable
for the life of the order. Orders paid before order numbers existed keep their
``livedesk-call-<request id>`` external id, which the receipt shows as it is.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit import money
from livedesk.kit.mail import Mail
from livedesk.models import Booking, PaymentProviderName, PaymentRequest, ShopOrder, Staff
from livedesk.payments import repository

ORDER_PREFIX = "LD-"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Receipt mails are booking mails (``booking_mails``, sent exactly once by the booking jobs);
# the row's id names the payment request it is about.
_RECEIPT_NAMESPACE = uuid.UUID("0b9d7c55-2f1e-4e0a-9c55-6d7a1e3c2b41")


def order_number_candidates(request_id: uuid.UUID) -> Iterator[str]:
    """Eight characters first (40 bits: short enough to read out); longer ones only if a
    stored order already has the shorter number; the request id itself as the last resort."""
    bits = int.from_bytes(hashlib.sha256(request_id.bytes).digest(), "big")
    chars = "".join(_CROCKFORD[(bits >> (5 * i)) & 31] for i in range(24))
    for length in (8, 12, 16, 24):
        part = chars[:length]
        yield ORDER_PREFIX + "-".join(part[i : i + 4] for i in range(0, length, 4))
    yield f"{ORDER_PREFIX}{request_id.hex.upper()}"


async def new_order_number(session: AsyncSession, request_id: uuid.UUID) -> str:
    """The order number for the order a paid request becomes: the first candidate no stored
    order has (the unique ``shop_orders.external_id`` is the final guard)."""
    candidate = ""
    for candidate in order_number_candidates(request_id):
        taken = await session.scalar(select(ShopOrder.id).where(ShopOrder.external_id == candidate))
        if taken is None:
            return candidate
    return candidate


def receipt_mail_id(request_id: uuid.UUID) -> uuid.UUID:
    """The id of the receipt mail row of one paid request: one row per request, whatever
    happens (the row's primary key stops a second one)."""
    return uuid.uuid5(_RECEIPT_NAMESPACE, str(request_id))


def receipt_mail_sequence(request_id: uuid.UUID) -> int:
    """A number that tells the receipt rows of one booking apart in the mail outbox's unique
    key (booking, kind, sequence, lead): derived from the request, so two payments made at
    the same moment in one consultation never compete for the same value."""
    return int.from_bytes(request_id.bytes[:4], "big") & 0x7FFFFFFF


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


_MAIL = {
    "ja": {
        "subject": "お支払いの領収書（ご注文番号 {number}）",
        "intro": "{name}様\n\nご相談中のお支払いをありがとうございました。領収書をお送りします。",
        "number": "ご注文番号",
        "paid_at": "お支払い日時",
        "advisor": "担当",
        "items": "ご注文内容",
        "line": "・{name} × {quantity}　{amount}",
        "total": "合計（{currency}）",
        "test": "※テストモードのお支払いです。実際の請求はありません。",
        "footer": "お問い合わせの際はご注文番号をお知らせください。",
        "guest": "お客",
        "date": "%Y年%m月%d日 %H:%M",
    },
    "en": {
        "subject": "Your receipt (order {number})",
        "intro": "Dear {name},\n\nThank you for your payment during your consultation. Here is your receipt.",
        "number": "Order number",
        "paid_at": "Paid",
        "advisor": "Advisor",
        "items": "Items",
        "line": "- {name} × {quantity}  {amount}",
        "total": "Total ({currency})",
        "test": "This was a test-mode payment: no money was taken.",
        "footer": "If you have a question, please give us your order number.",
        "guest": "customer",
        "date": "%d %b %Y, %H:%M",
    },
}


def compose_receipt(
    r: PaymentRequest, order_number: str, *, to: str, name: str, locale: str, timezone: str, advisor: str
) -> Mail:
    """The receipt as a mail: order number, when, advisor, items, total and currency, in the
    booking's language and the shopper's time zone."""
    lang = "ja" if locale.startswith("ja") else "en"
    words = _MAIL[lang]
    assert r.paid_at is not None
    paid_at = r.paid_at.astimezone(_zone(timezone))
    lines = [
        words["intro"].format(name=name or words["guest"]),
        "",
        f"{words['number']}: {order_number}",
        f"{words['paid_at']}: {paid_at.strftime(words['date'])} ({timezone})",
    ]
    if advisor:
        lines.append(f"{words['advisor']}: {advisor}")
    lines += ["", f"{words['items']}:"]
    for line in r.lines:
        shown = line.name_ja if lang == "ja" and line.name_ja else line.name
        amount = money.format_money(line.unit_price_minor * line.quantity, r.currency)
        lines.append(words["line"].format(name=shown, quantity=line.quantity, amount=amount))
    total = money.format_money(r.total_minor, r.currency)
    lines += ["", f"{words['total'].format(currency=r.currency)}: {total}"]
    if r.provider == PaymentProviderName.SANDBOX:
        lines += ["", words["test"]]
    lines += ["", words["footer"]]
    return Mail(to=to, subject=words["subject"].format(number=order_number), text="\n".join(lines) + "\n")


async def receipt_mail_for(session: AsyncSession, mail_id: uuid.UUID, booking: Booking) -> Mail | None:
    """The receipt mail a queued row stands for, to the booking's address; None when there
    is nothing to send any more (the payment or the address is gone)."""
    if booking.consultation_id is None or not booking.contact_email:
        return None
    for r in await repository.requests_of_consultation(session, booking.consultation_id):
        if receipt_mail_id(r.id) != mail_id:
            continue
        if r.order_id is None or r.paid_at is None:
            return None
        number = await session.scalar(select(ShopOrder.external_id).where(ShopOrder.id == r.order_id))
        staff = await session.get(Staff, r.advisor_id) if r.advisor_id else None
        advisor = ""
        if staff is not None:
            english = str(staff.extra.get("display_name_en", "")) if booking.locale == "en" else ""
            advisor = english or staff.display_name
        return compose_receipt(
            r,
            number or "",
            to=booking.contact_email,
            name=booking.contact_name,
            locale=booking.locale,
            timezone=booking.shopper_timezone,
            advisor=advisor,
        )
    return None
