"""What a shop tells livedesk: its customers, their orders (with line items) and other
channel events such as store visits. Every write is an upsert keyed by the shop's own id, so
sending the same thing twice (a retry, a re-run import) changes nothing the second time.

The shop API and the CSV import both come through here; the shopper is found by the shop
customer id first (then e-mail, then phone — see ``customers.service.resolve_shopper``). A
shop customer id nobody holds yet never leads to another person's profile: sent with an
e-mail or phone number of someone else it is a 409 ``identity_conflict`` (strict_shop_id).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.customers import service as customers
from livedesk.customers.repository import ShopperView
from livedesk.customers.schemas import ShopperUpdate
from livedesk.integrations.schemas import ChannelEventUpsert, OrderUpsert, ShopCustomer, ShopperUpsert
from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Conflict
from livedesk.models import ShopOrder, ShopOrderLine, TimelineKind
from livedesk.models.integrations import ChannelEvent
from livedesk.timeline import live_shopper_id, new_event

STORE_VISIT = "store.visit"


@dataclass(frozen=True)
class Upserted:
    id: uuid.UUID
    shopper_id: uuid.UUID
    created: bool
    changed: bool = True


async def shopper_for(session: AsyncSession, customer: ShopCustomer, *, source: str) -> uuid.UUID:
    """The live profile of this shop customer, made if new; fills identities it lacks.
    Conflict (409 ``identity_conflict``) for a new shop customer id sent with an e-mail or
    phone number of another profile: the data is refused rather than filed under them."""
    found = await customers.resolve_shopper(
        session,
        shop_customer_id=customer.shop_customer_id,
        email=customer.email,
        phone=customer.phone,
        phone_region=customer.phone_region,
        display_name=customer.display_name,
        locale=customer.locale,
        source=source,
        strict_shop_id=True,
    )
    assert found.view is not None
    return found.view.shopper.id


def _state(view: ShopperView) -> tuple[object, ...]:
    """What a customer push can change, to tell whether it did."""
    shopper = view.shopper
    identities = sorted((row.kind.value, row.value) for row in view.identities)
    return (shopper.display_name, shopper.email, shopper.phone, shopper.locale, identities)


async def upsert_shopper(
    session: AsyncSession, shop_customer_id: str, data: ShopperUpsert, *, source: str = "shop"
) -> Upserted:
    """Create or update the profile of one shop customer. A name, e-mail, phone number or
    locale sent replaces the profile's; fields not sent are kept. Conflict (409) when the
    e-mail or phone number belongs to another profile (nothing is merged automatically).

    Only the profile that holds this shop customer id is ever written: a new id gets a
    profile of its own (made with everything sent, in one step, so a conflict refuses it
    before anything exists)."""
    found = await customers.resolve_shopper(session, shop_customer_id=shop_customer_id, create=False)
    if found.view is None:
        found = await customers.resolve_shopper(
            session,
            shop_customer_id=shop_customer_id,
            email=data.email,
            phone=data.phone,
            phone_region=data.phone_region,
            display_name=data.display_name,
            locale=data.locale,
            source=source,
            strict_shop_id=True,
        )
        assert found.view is not None
        if found.created:
            return Upserted(found.view.shopper.id, found.view.shopper.id, created=True)
        # Another request made this shop customer between our two looks: update theirs.
    assert found.view is not None
    shopper = found.view.shopper
    before = _state(found.view)
    changes: dict[str, object] = {"phone_region": data.phone_region}
    if data.display_name is not None and data.display_name != shopper.display_name:
        changes["display_name"] = data.display_name
    if data.locale is not None and data.locale != shopper.locale:
        changes["locale"] = data.locale
    if data.email is not None:
        changes["email"] = data.email
    if data.phone is not None:
        changes["phone"] = data.phone
    if len(changes) == 1:
        return Upserted(shopper.id, shopper.id, created=False, changed=bool(found.attached))
    view = await customers.update_shopper(session, shopper.id, ShopperUpdate.model_validate(changes))
    changed = bool(found.attached) or _state(view) != before
    return Upserted(shopper.id, shopper.id, created=False, changed=changed)


def _order_summary(order: OrderUpsert) -> str:
    where = f" at {order.store_name}" if order.store_name else ""
    first = order.lines[0].name
    more = f" and {len(order.lines) - 1} more" if len(order.lines) > 1 else ""
    return f"{order.channel.value} order{where}: {first}{more} ({order.total_minor} {order.currency})"


async def upsert_order(
    session: AsyncSession,
    external_id: str,
    order: OrderUpsert,
    *,
    source: str = "shop",
) -> Upserted:
    """Create or replace the shop order ``external_id`` with its lines. The first time, the
    order lands on the shopper's timeline (``shop.order``); a later upsert with other values
    replaces the order's fields and lines (the timeline keeps its first entry). Conflict (409)
    when the id is already another shopper's order."""
    assert order.total_minor is not None
    shopper_id = await shopper_for(session, order.customer, source=source)
    existing = await session.scalar(
        select(ShopOrder).where(ShopOrder.external_id == external_id).with_for_update()
    )
    lines = [
        ShopOrderLine(
            id=uuid.uuid4(),
            position=n,
            sku=line.sku,
            name=line.name,
            quantity=line.quantity,
            unit_price_minor=line.unit_price_minor,
        )
        for n, line in enumerate(order.lines)
    ]
    if existing is not None:
        if await live_shopper_id(session, existing.shopper_id, lock=False) != shopper_id:
            raise Conflict(
                f"Order {external_id} belongs to another customer",
                code="order_customer_mismatch",
                details={"external_id": external_id},
            )
        old_lines = (
            await session.execute(
                select(
                    ShopOrderLine.sku,
                    ShopOrderLine.name,
                    ShopOrderLine.quantity,
                    ShopOrderLine.unit_price_minor,
                )
                .where(ShopOrderLine.order_id == existing.id)
                .order_by(ShopOrderLine.position)
            )
        ).all()
        same = (
            existing.channel == order.channel
            and existing.ordered_at == order.ordered_at
            and existing.currency == order.currency
            and existing.total_minor == order.total_minor
            and existing.store_name == order.store_name
            and [tuple(r) for r in old_lines]
            == [(x.sku, x.name, x.quantity, x.unit_price_minor) for x in order.lines]
        )
        if same:
            return Upserted(existing.id, shopper_id, created=False, changed=False)
        existing.channel = order.channel
        existing.ordered_at = order.ordered_at
        existing.currency = order.currency
        existing.total_minor = order.total_minor
        existing.store_name = order.store_name
        existing.updated_at = utcnow()
        await session.execute(
            delete(ShopOrderLine)
            .where(ShopOrderLine.order_id == existing.id)
            .execution_options(synchronize_session=False)
        )
        for line in lines:
            line.order_id = existing.id
        session.add_all(lines)
        return Upserted(existing.id, shopper_id, created=False, changed=True)
    row = ShopOrder(
        id=uuid.uuid4(),
        shopper_id=shopper_id,
        external_id=external_id,
        channel=order.channel,
        ordered_at=order.ordered_at,
        currency=order.currency,
        total_minor=order.total_minor,
        store_name=order.store_name,
    )
    session.add(row)
    await session.flush()
    for line in lines:
        line.order_id = row.id
    session.add_all(lines)
    # shopper_for gave the live profile's id in this transaction: no need to look it up again.
    session.add(
        new_event(
            shopper_id,
            TimelineKind.SHOP_ORDER,
            _order_summary(order),
            {
                "external_id": external_id,
                "channel": order.channel.value,
                "currency": order.currency,
                "total_minor": order.total_minor,
                "store_name": order.store_name,
                "items": [line.model_dump() for line in order.lines[:20]],
            },
            occurred_at=order.ordered_at,
            ref_id=str(row.id),
        )
    )
    return Upserted(row.id, shopper_id, created=True)


async def record_event(
    session: AsyncSession,
    external_id: str,
    event: ChannelEventUpsert,
    *,
    integration_id: uuid.UUID | None,
    source: str = "shop",
) -> Upserted:
    """Store a channel event once per ``external_id`` (a repeat is a no-op) and put it on the
    shopper's timeline: ``store.visit`` as a store visit, anything else as a channel event."""
    existing = await session.scalar(select(ChannelEvent).where(ChannelEvent.external_id == external_id))
    if existing is not None:
        return Upserted(existing.id, existing.shopper_id, created=False, changed=False)
    shopper_id = await shopper_for(session, event.customer, source=source)
    row = ChannelEvent(
        id=uuid.uuid4(),
        shopper_id=shopper_id,
        integration_id=integration_id,
        external_id=external_id,
        kind=event.kind,
        occurred_at=event.occurred_at,
        store_name=event.store_name,
        description=event.description,
        data=dict(event.data),
    )
    session.add(row)
    await session.flush()
    visit = event.kind == STORE_VISIT
    if visit:
        summary = f"Visited {event.store_name}" if event.store_name else "Store visit"
    else:
        summary = event.description or event.kind
    if visit and event.description:
        summary = f"{summary}: {event.description}"
    # shopper_for gave the live profile's id in this transaction: no need to look it up again.
    session.add(
        new_event(
            shopper_id,
            TimelineKind.STORE_VISIT if visit else TimelineKind.CHANNEL_EVENT,
            summary,
            {
                "kind": event.kind,
                "store_name": event.store_name,
                "description": event.description,
                "data": event.data,
            },
            occurred_at=event.occurred_at,
            ref_id=str(row.id),
        )
    )
    return Upserted(row.id, shopper_id, created=True)
