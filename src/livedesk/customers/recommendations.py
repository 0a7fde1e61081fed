"""Recommendations for the advisor, from purchase history.

* **Bought together**: items that appear in the same orders as what this shopper bought,
  across all shoppers, ranked by how many orders hold both (items they already have are
  left out).
* **Repurchase reminders**: consumables — items that shoppers buy again and again — at their
  typical interval: the median gap between one shopper's consecutive purchases of the item,
  over all shoppers. An item is due when this shopper's last purchase plus that interval is
  near (or past).
"""

from __future__ import annotations

import itertools
import statistics
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.clock import as_utc, utcnow
from livedesk.models import ShopOrder, ShopOrderLine

TOGETHER_LIMIT = 5
# A gap needs this many observations (across shoppers) before it is called "typical".
MIN_GAPS = 3
# Repeat purchases within a day are one shopping trip, not a repurchase.
MIN_GAP = timedelta(days=1)
# Remind this long before the item is due, and stop once it is this many intervals late.
LEAD = timedelta(days=7)
GIVE_UP_AFTER_INTERVALS = 3
# The newest purchases of an item read to learn its interval (a bound for best-sellers).
HISTORY_ROWS = 5000


@dataclass(frozen=True)
class Suggestion:
    sku: str
    name: str
    quantity: int
    unit_price_minor: int
    currency: str


@dataclass(frozen=True)
class BoughtTogether(Suggestion):
    orders_together: int


@dataclass(frozen=True)
class Reminder(Suggestion):
    last_bought_at: datetime
    interval_days: int
    due_at: datetime
    overdue: bool


@dataclass(frozen=True)
class Recommendations:
    bought_together: list[BoughtTogether]
    reminders: list[Reminder]


async def _owned(
    session: AsyncSession, shopper_id: uuid.UUID
) -> dict[str, tuple[str, int, int, str, datetime]]:
    """sku → (name, last quantity, last unit price, currency, last bought) for this shopper."""
    rows = await session.execute(
        select(
            ShopOrderLine.sku,
            ShopOrderLine.name,
            ShopOrderLine.quantity,
            ShopOrderLine.unit_price_minor,
            ShopOrder.currency,
            ShopOrder.ordered_at,
        )
        .join(ShopOrder, ShopOrder.id == ShopOrderLine.order_id)
        .where(ShopOrder.shopper_id == shopper_id)
        .order_by(ShopOrder.ordered_at)
    )
    owned: dict[str, tuple[str, int, int, str, datetime]] = {}
    for sku, name, quantity, price, currency, at in rows:
        owned[sku] = (name, quantity, price, currency, as_utc(at))
    return owned


async def bought_together(
    session: AsyncSession, owned: dict[str, tuple[str, int, int, str, datetime]], limit: int = TOGETHER_LIMIT
) -> list[BoughtTogether]:
    if not owned:
        return []
    mine = ShopOrderLine.__table__.alias("mine")
    other = ShopOrderLine.__table__.alias("other")
    together = func.count(distinct(other.c.order_id)).label("together")
    rows = await session.execute(
        select(other.c.sku, together, func.max(other.c.name), func.max(other.c.unit_price_minor))
        .select_from(mine.join(other, mine.c.order_id == other.c.order_id))
        .where(mine.c.sku.in_(list(owned)), other.c.sku.not_in(list(owned)))
        .group_by(other.c.sku)
        .order_by(together.desc(), other.c.sku)
        .limit(limit)
    )
    currency = next(iter(owned.values()))[3]
    return [
        BoughtTogether(
            sku=sku, name=name, quantity=1, unit_price_minor=price, currency=currency, orders_together=count
        )
        for sku, count, name, price in rows
    ]


def typical_interval(purchases: list[tuple[uuid.UUID, datetime]]) -> timedelta | None:
    """The median gap between one shopper's consecutive purchases, over all shoppers; None
    when too few repurchases were seen to call the item a consumable."""
    by_shopper: dict[uuid.UUID, list[datetime]] = {}
    for shopper_id, at in purchases:
        by_shopper.setdefault(shopper_id, []).append(at)
    gaps: list[float] = []
    for times in by_shopper.values():
        times.sort()
        gaps.extend(
            (later - earlier).total_seconds()
            for earlier, later in itertools.pairwise(times)
            if later - earlier >= MIN_GAP
        )
    if len(gaps) < MIN_GAPS:
        return None
    return timedelta(seconds=statistics.median(gaps))


async def reminders(
    session: AsyncSession, owned: dict[str, tuple[str, int, int, str, datetime]], now: datetime | None = None
) -> list[Reminder]:
    now = now or utcnow()
    out: list[Reminder] = []
    for sku, (name, quantity, price, currency, last) in owned.items():
        rows = await session.execute(
            select(ShopOrder.shopper_id, ShopOrder.ordered_at)
            .join(ShopOrderLine, ShopOrderLine.order_id == ShopOrder.id)
            .where(ShopOrderLine.sku == sku)
            .order_by(ShopOrder.ordered_at.desc())
            .limit(HISTORY_ROWS)
        )
        interval = typical_interval([(shopper, as_utc(at)) for shopper, at in rows])
        if interval is None:
            continue
        due = last + interval
        if now < due - LEAD or now > last + interval * GIVE_UP_AFTER_INTERVALS:
            continue
        out.append(
            Reminder(
                sku=sku,
                name=name,
                quantity=quantity,
                unit_price_minor=price,
                currency=currency,
                last_bought_at=last,
                interval_days=max(1, round(interval / timedelta(days=1))),
                due_at=due,
                overdue=now > due,
            )
        )
    out.sort(key=lambda r: r.due_at)
    return out


async def recommend(
    session: AsyncSession, shopper_id: uuid.UUID, now: datetime | None = None
) -> Recommendations:
    """Bought-together items and repurchase reminders for one (live) shopper."""
    owned = await _owned(session, shopper_id)
    return Recommendations(
        bought_together=await bought_together(session, owned),
        reminders=await reminders(session, owned, now),
    )
