"""Payment requests in a consultation: what the advisor may sell, building and sending a
request (once per client key), what each party may see, the shopper's checkout, and revenue.

Fulfilment (provider events, sandbox outcomes) and refunds live in ``fulfilment.py``. Services
never commit; events go out after the handler's transaction commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.catalogue.service import list_products, products_by_sku
from livedesk.identity import Actor, Parties, Principal, ShopperActor, authorise_party, is_party
from livedesk.kit import money
from livedesk.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from livedesk.models import (
    Consultation,
    ConsultationStatus,
    LineSource,
    PaymentRequest,
    PaymentRequestLine,
    PaymentStatus,
    TimelineKind,
)
from livedesk.payments import repository
from livedesk.payments.outgoing import PAYMENT_UPDATED
from livedesk.payments.providers import Intent, PaymentProvider
from livedesk.payments.schemas import (
    PaymentRequestCreate,
    PaymentRequestOut,
    PurchasableItem,
    PurchasablesOut,
)
from livedesk.realtime import rooms
from livedesk.realtime.emit import emit
from livedesk.timeline import append_event

# Statuses whose money counts as taken (refunds are subtracted).
PAID_STATUSES = (PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)
# Request ids follow from (consultation, client key): a retried send after a lost answer makes
# the same id, so the provider's idempotency key and metadata stay the same too.
_ID_NAMESPACE = uuid.UUID("6f1c2b0e-6a59-4c33-9a55-3d1c5f0f7a10")


@dataclass(frozen=True)
class RevenueFigure:
    currency: str
    # Paid minus refunded, in the currency's minor unit.
    amount_minor: int
    paid_consultations: int


def request_id_for(consultation_id: uuid.UUID, client_key: str) -> uuid.UUID:
    return uuid.uuid5(_ID_NAMESPACE, f"{consultation_id}:{client_key}")


def intent_key(request: PaymentRequest) -> str:
    """Our idempotency key for the provider's payment object of this request."""
    return f"livedesk-payment-request-{request.id}"


def recipients(r: PaymentRequest) -> list[tuple[rooms.Room, str]]:
    """Who hears of a payment request: the shopper's tabs, the advisor's tabs, and the
    supervisors' board."""
    targets: list[tuple[rooms.Room, str]] = [
        (rooms.shopper_of(r.shopper_id, r.consultation_id), rooms.SHOPPER_NS),
        (rooms.supervisors(), rooms.STAFF_NS),
    ]
    if r.advisor_id is not None:
        targets.append((rooms.staff(r.advisor_id), rooms.STAFF_NS))
    return targets


def announce(
    session: AsyncSession,
    r: PaymentRequest,
    *,
    test_mode: bool,
    order_number: str | None = None,
) -> None:
    """``payment.updated`` to the parties, after the commit (with the order number once paid:
    the shopper's receipt). Carries no client secret."""
    payload = PaymentRequestOut.of(r, test_mode=test_mode, order_number=order_number).model_dump(mode="json")
    for room, namespace in recipients(r):
        emit(session, PAYMENT_UPDATED, payload, room=room, namespace=namespace)


async def _consultation(
    session: AsyncSession, consultation_id: uuid.UUID, *, lock: bool = False
) -> Consultation:
    c = await session.get(Consultation, consultation_id, with_for_update=lock)
    if c is None:
        raise NotFound("No such consultation", code="consultation_not_found")
    return c


def _check_party(c: Consultation, party: Actor) -> None:
    # The shopper, the assigned advisor, and supervisors and admins (who only read here).
    authorise_party(party, Parties.of(c, offered=False), write=False)


def _check_advisor(c: Consultation, staff: Principal) -> None:
    if staff.staff_id != c.advisor_id:
        raise Forbidden("Only the consultation's advisor asks for payment", code="not_a_party")
    if c.status != ConsultationStatus.ACTIVE:
        raise Conflict("Payment requests are made during an active consultation", code="not_active")


async def purchasables(
    session: AsyncSession, consultation_id: uuid.UUID, staff: Principal, provider: PaymentProvider
) -> PurchasablesOut:
    """The catalogue and the shopper's past purchases, for the advisor's payment builder."""
    c = await _consultation(session, consultation_id)
    _check_party(c, staff)
    catalogue = await list_products(session, limit=500)
    history = await repository.past_purchases(session, c.shopper_id)
    current = await products_by_sku(session, [h.sku for h in history])
    items: list[PurchasableItem] = []
    for h in history:
        product = current.get(h.sku)
        # Re-ordering pays today's price when the product is still sold, else the last price.
        live = product is not None and product.active
        items.append(
            PurchasableItem(
                sku=h.sku,
                name=product.name if live and product else h.name,
                name_ja=product.name_ja if live and product else "",
                unit_price_minor=product.price_minor if live and product else h.unit_price_minor,
                currency=product.currency if live and product else h.currency,
                image_url=product.image_url if product else "",
                source=LineSource.HISTORY,
                last_bought_at=h.last_bought_at,
                times_bought=h.times_bought,
            )
        )
    return PurchasablesOut(
        catalogue=[
            PurchasableItem(
                sku=p.sku,
                name=p.name,
                name_ja=p.name_ja,
                unit_price_minor=p.price_minor,
                currency=p.currency,
                image_url=p.image_url,
                source=LineSource.CATALOGUE,
            )
            for p in catalogue
        ],
        history=items,
        provider=provider.name,
        test_mode=provider.test_mode,
    )


async def _price_lines(
    session: AsyncSession, shopper_id: uuid.UUID, body: PaymentRequestCreate
) -> tuple[str, list[PaymentRequestLine]]:
    """Prices come from the catalogue (or the shopper's own past purchase), never from the
    browser. Repeated SKUs of one source are added up."""
    merged: dict[tuple[str, LineSource], int] = {}
    for line in body.lines:
        key = (line.sku, line.source)
        merged[key] = merged.get(key, 0) + line.quantity
    products = await products_by_sku(session, [sku for sku, _source in merged])
    history = {h.sku: h for h in await repository.past_purchases(session, shopper_id, limit=10_000)}
    lines: list[PaymentRequestLine] = []
    currencies: set[str] = set()
    for position, ((sku, source), quantity) in enumerate(merged.items(), start=1):
        product = products.get(sku)
        field = f"lines.{position - 1}.sku"
        if source == LineSource.CATALOGUE:
            if product is None or not product.active:
                raise ValidationFailed(f"field '{field}': {sku} is not in the catalogue", code="unknown_sku")
            name, name_ja, price, currency = (
                product.name,
                product.name_ja,
                product.price_minor,
                product.currency,
            )
        else:
            past = history.get(sku)
            if past is None:
                raise ValidationFailed(
                    f"field '{field}': the shopper has not bought {sku} before", code="not_in_history"
                )
            if product is not None and product.active:
                name, name_ja, price, currency = (
                    product.name,
                    product.name_ja,
                    product.price_minor,
                    product.currency,
                )
            else:
                name, name_ja, price, currency = past.name, "", past.unit_price_minor, past.currency
        if quantity > 99:
            raise ValidationFailed(f"field '{field}': at most 99 of one item", code="validation_failed")
        currencies.add(currency)
        lines.append(
            PaymentRequestLine(
                id=uuid.uuid4(),
                position=position,
                sku=sku,
                name=name,
                name_ja=name_ja,
                quantity=quantity,
                unit_price_minor=price,
                source=source,
            )
        )
    if len(currencies) != 1:
        raise ValidationFailed(
            f"All items of one payment request must be in one currency (got {', '.join(sorted(currencies))})",
            code="mixed_currencies",
        )
    return currencies.pop(), lines


async def create_request(
    session: AsyncSession,
    provider: PaymentProvider,
    staff: Principal,
    consultation_id: uuid.UUID,
    body: PaymentRequestCreate,
) -> tuple[PaymentRequest, bool]:
    """Send a payment request to the shopper of an active consultation (its advisor only).

    Sending again with the same ``client_key`` (a double click, a retry after a lost answer)
    returns the request made the first time — (request, False) — and changes nothing. The
    consultation row is locked first, so two concurrent sends queue up and the second finds
    the first. The provider's payment object is made afterwards (``attach_intent``).
    """
    c = await _consultation(session, consultation_id, lock=True)
    existing = await repository.request_by_key(session, c.id, body.client_key)
    if existing is not None:
        _check_party(c, staff)
        return existing, False
    _check_advisor(c, staff)
    currency, lines = await _price_lines(session, c.shopper_id, body)
    total = sum(line.unit_price_minor * line.quantity for line in lines)
    if total > money.MAX_MINOR:
        raise ValidationFailed(
            f"The total is larger than {money.format_money(money.MAX_MINOR, currency)}",
            code="total_too_large",
        )
    r = PaymentRequest(
        id=request_id_for(c.id, body.client_key),
        consultation_id=c.id,
        shopper_id=c.shopper_id,
        advisor_id=staff.staff_id,
        client_key=body.client_key,
        status=PaymentStatus.OPEN,
        provider=provider.name,
        currency=currency,
        total_minor=total,
        refunded_minor=0,
        lines=lines,
    )
    session.add(r)
    await session.flush()
    items = sum(line.quantity for line in lines)
    await append_event(
        session,
        c.shopper_id,
        TimelineKind.PAYMENT,
        f"Payment request for {money.format_money(total, currency)} "
        f"({items} item{'s' if items != 1 else ''}) sent in the consultation",
        {
            "status": "requested",
            "payment_request_id": r.id,
            "currency": currency,
            "total_minor": total,
            "provider": provider.name.value,
            "items": [{"sku": x.sku, "name": x.name, "quantity": x.quantity} for x in lines],
        },
        actor_staff_id=staff.staff_id,
        consultation_id=c.id,
        ref_id=str(r.id),
    )
    announce(session, r, test_mode=provider.test_mode)
    return r, True


async def get_request(session: AsyncSession, request_id: uuid.UUID, party: Actor) -> PaymentRequest:
    """One payment request, for a party to its consultation (supervisors and admins: any)."""
    r = await repository.load_request(session, request_id)
    if r is None:
        raise NotFound("No such payment request", code="payment_request_not_found")
    c = await _consultation(session, r.consultation_id)
    try:
        _check_party(c, party)
    except Forbidden:
        # Someone else's request is as good as non-existent to a shopper: no existence oracle.
        if isinstance(party, ShopperActor):
            raise NotFound("No such payment request", code="payment_request_not_found") from None
        raise
    return r


async def list_requests(
    session: AsyncSession, consultation_id: uuid.UUID, party: Actor
) -> list[PaymentRequest]:
    c = await _consultation(session, consultation_id)
    _check_party(c, party)
    return await repository.requests_of_consultation(session, c.id)


def needs_intent(r: PaymentRequest, provider: PaymentProvider) -> bool:
    if r.provider != provider.name:
        raise Conflict(
            f"This payment request was made with the {r.provider.value} provider, which is not set up now",
            code="provider_changed",
        )
    return r.provider_ref is None and r.status == PaymentStatus.OPEN


def intent_metadata(r: PaymentRequest) -> dict[str, str]:
    return {
        "livedesk_payment_request_id": str(r.id),
        "livedesk_consultation_id": str(r.consultation_id),
        "livedesk_shopper_id": str(r.shopper_id),
    }


async def attach_intent(session: AsyncSession, request_id: uuid.UUID, intent: Intent) -> PaymentRequest:
    """Store the provider's payment object made for this request (first one wins: the same
    idempotency key makes the provider answer with the same object anyway)."""
    r = await repository.load_request(session, request_id, lock=True)
    if r is None:
        raise NotFound("No such payment request", code="payment_request_not_found")
    if r.provider_ref is None:
        r.provider_ref = intent.ref
        r.client_secret = intent.client_secret
        await session.flush()
    return r


def pays(party: Actor, r: PaymentRequest) -> bool:
    """Whether ``party`` is the shopper who pays this request (staff never do)."""
    return isinstance(party, ShopperActor) and is_party(
        party, Parties(r.consultation_id, r.shopper_id, None), write=True
    )


def check_checkout(r: PaymentRequest, party: Actor) -> None:
    """Only the shopper pays, and only an open request."""
    if not pays(party, r):
        raise Forbidden("Only the shopper pays a payment request", code="not_the_shopper")
    if r.status == PaymentStatus.CANCELED:
        raise Conflict("This payment request was withdrawn", code="payment_canceled")


async def revenue_between(session: AsyncSession, start: datetime, end: datetime) -> list[RevenueFigure]:
    """Money taken in calls paid in [start, end), per currency, net of refunds, with the
    number of consultations that paid. One grouped query; for the supervisor dashboard."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    stmt = (
        select(
            PaymentRequest.currency,
            func.coalesce(func.sum(PaymentRequest.total_minor - PaymentRequest.refunded_minor), 0),
            func.count(func.distinct(PaymentRequest.consultation_id)),
        )
        .where(
            PaymentRequest.status.in_(PAID_STATUSES),
            PaymentRequest.paid_at >= start,
            PaymentRequest.paid_at < end,
        )
        .group_by(PaymentRequest.currency)
        .order_by(PaymentRequest.currency)
    )
    return [
        RevenueFigure(currency=currency, amount_minor=int(amount), paid_consultations=int(count))
        for currency, amount, count in (await session.execute(stmt)).all()
    ]
