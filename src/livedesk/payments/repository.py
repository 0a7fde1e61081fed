"""Queries of the payments capability, including the two it makes on shop orders (the
shopper's past purchases to re-order from, and the order a paid request becomes)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from livedesk.models import PaymentRefund, PaymentRequest, ShopOrder, ShopOrderLine, Shopper, Staff


@dataclass(frozen=True)
class PastPurchase:
    sku: str
    name: str
    unit_price_minor: int
    currency: str
    last_bought_at: datetime
    times_bought: int


async def load_request(
    session: AsyncSession, request_id: uuid.UUID, *, lock: bool = False
) -> PaymentRequest | None:
    stmt = (
        select(PaymentRequest)
        .where(PaymentRequest.id == request_id)
        .options(selectinload(PaymentRequest.lines))
    )
    if lock:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).one_or_none()


async def request_by_ref(session: AsyncSession, ref: str, *, lock: bool = True) -> PaymentRequest | None:
    stmt = (
        select(PaymentRequest)
        .where(PaymentRequest.provider_ref == ref)
        .options(selectinload(PaymentRequest.lines))
    )
    if lock:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).one_or_none()


async def request_by_key(
    session: AsyncSession, consultation_id: uuid.UUID, client_key: str
) -> PaymentRequest | None:
    stmt = (
        select(PaymentRequest)
        .where(PaymentRequest.consultation_id == consultation_id, PaymentRequest.client_key == client_key)
        .options(selectinload(PaymentRequest.lines))
    )
    return (await session.scalars(stmt)).one_or_none()


async def requests_of_consultation(session: AsyncSession, consultation_id: uuid.UUID) -> list[PaymentRequest]:
    stmt = (
        select(PaymentRequest)
        .where(PaymentRequest.consultation_id == consultation_id)
        .options(selectinload(PaymentRequest.lines))
        .order_by(PaymentRequest.created_at, PaymentRequest.id)
    )
    return list((await session.scalars(stmt)).all())


async def recent_requests(
    session: AsyncSession, *, statuses: Sequence[str] | None = None, limit: int = 100
) -> list[PaymentRequest]:
    stmt = select(PaymentRequest).options(selectinload(PaymentRequest.lines))
    if statuses:
        stmt = stmt.where(PaymentRequest.status.in_(list(statuses)))
    stmt = stmt.order_by(PaymentRequest.created_at.desc(), PaymentRequest.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())


async def refunds_of(
    session: AsyncSession, request_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[PaymentRefund]]:
    found: dict[uuid.UUID, list[PaymentRefund]] = {i: [] for i in request_ids}
    if not request_ids:
        return found
    rows = await session.scalars(
        select(PaymentRefund)
        .where(PaymentRefund.request_id.in_(list(request_ids)))
        .order_by(PaymentRefund.created_at, PaymentRefund.id)
    )
    for row in rows:
        found[row.request_id].append(row)
    return found


async def order_numbers(session: AsyncSession, requests: Sequence[PaymentRequest]) -> dict[uuid.UUID, str]:
    """The order number (the shop order's external id) of each paid request, by request id."""
    by_order = {r.order_id: r.id for r in requests if r.order_id is not None}
    if not by_order:
        return {}
    rows = await session.execute(
        select(ShopOrder.id, ShopOrder.external_id).where(ShopOrder.id.in_(list(by_order)))
    )
    return {by_order[order_id]: number for order_id, number in rows.all()}


async def order_number(session: AsyncSession, r: PaymentRequest) -> str | None:
    return (await order_numbers(session, [r])).get(r.id)


async def people(
    session: AsyncSession, requests: Sequence[PaymentRequest]
) -> tuple[dict[uuid.UUID, Shopper], dict[uuid.UUID, Staff]]:
    """The shoppers and advisors of these requests (two queries, for the refunds page)."""
    shopper_ids = {r.shopper_id for r in requests}
    staff_ids = {r.advisor_id for r in requests if r.advisor_id is not None}
    shoppers = (
        {s.id: s for s in await session.scalars(select(Shopper).where(Shopper.id.in_(shopper_ids)))}
        if shopper_ids
        else {}
    )
    staff = (
        {s.id: s for s in await session.scalars(select(Staff).where(Staff.id.in_(staff_ids)))}
        if staff_ids
        else {}
    )
    return shoppers, staff


async def past_purchases(session: AsyncSession, shopper_id: uuid.UUID, limit: int = 50) -> list[PastPurchase]:
    """What the shopper bought before (web shop, store, earlier calls), one row per SKU with
    the price and name of the latest purchase, most recent first."""
    latest = (
        select(
            ShopOrderLine.sku,
            func.max(ShopOrder.ordered_at).label("last_at"),
            func.count(ShopOrderLine.id).label("times"),
        )
        .join(ShopOrder, ShopOrder.id == ShopOrderLine.order_id)
        .where(ShopOrder.shopper_id == shopper_id)
        .group_by(ShopOrderLine.sku)
        .subquery()
    )
    stmt = (
        select(ShopOrderLine, ShopOrder.currency, ShopOrder.ordered_at, latest.c.times)
        .join(ShopOrder, ShopOrder.id == ShopOrderLine.order_id)
        .join(latest, (latest.c.sku == ShopOrderLine.sku) & (latest.c.last_at == ShopOrder.ordered_at))
        .where(ShopOrder.shopper_id == shopper_id)
        .order_by(ShopOrder.ordered_at.desc(), ShopOrderLine.sku)
    )
    seen: dict[str, PastPurchase] = {}
    for line, currency, ordered_at, times in (await session.execute(stmt)).all():
        if line.sku not in seen:
            seen[line.sku] = PastPurchase(
                sku=line.sku,
                name=line.name,
                unit_price_minor=line.unit_price_minor,
                currency=currency,
                last_bought_at=ordered_at,
                times_bought=int(times),
            )
    return list(seen.values())[:limit]
