"""Recommendations from purchase history: bought together across all shoppers (without what
the shopper already has), repurchase reminders at the typical interval of consumables only,
and the route (staff only, merged ids follow)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from livedesk.customers import recommendations
from livedesk.integrations import shop
from livedesk.integrations.schemas import OrderUpsert
from livedesk.kit.db import Database
from livedesk.models import Role
from tests.conftest import login

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ITEMS = {
    "SERUM": ("Hydrating serum", 4800),
    "CREAM": ("Night cream", 5200),
    "MASK": ("Sheet masks", 1200),
    "BRUSH": ("Foundation brush", 3000),
    "LOTION": ("Toning lotion", 2600),
}


async def buy(db: Database, customer: str, at: datetime, *skus: str) -> uuid.UUID:
    body = OrderUpsert.model_validate(
        {
            "customer": {"shop_customer_id": customer},
            "ordered_at": at,
            "lines": [
                {"sku": sku, "name": ITEMS[sku][0], "quantity": 1, "unit_price_minor": ITEMS[sku][1]}
                for sku in skus
            ],
        }
    )
    async with db.transaction() as session:
        done = await shop.upsert_order(session, f"O-{uuid.uuid4().hex[:10]}", body)
    return done.shopper_id


async def recommend(db: Database, shopper_id: uuid.UUID) -> recommendations.Recommendations:
    async with db.read() as session:
        return await recommendations.recommend(session, shopper_id, now=NOW)


async def test_bought_together_ranks_by_shared_orders(db: Database) -> None:
    start = NOW - timedelta(days=200)
    for n in range(3):
        await buy(db, f"A{n}", start, "SERUM", "CREAM")
    await buy(db, "B0", start, "SERUM", "MASK")
    await buy(db, "B1", start, "BRUSH", "LOTION")  # unrelated to serum
    me = await buy(db, "ME", start, "SERUM")
    found = await recommend(db, me)
    assert [(x.sku, x.orders_together) for x in found.bought_together] == [("CREAM", 3), ("MASK", 1)]
    assert found.bought_together[0].name == "Night cream"
    assert found.bought_together[0].unit_price_minor == 5200
    # What the shopper already bought is not suggested back.
    me_too = await buy(db, "ME", start + timedelta(days=1), "CREAM")
    assert me_too == me
    assert [x.sku for x in (await recommend(db, me)).bought_together] == ["MASK"]


async def test_repurchase_reminder_for_consumables_only(db: Database) -> None:
    # Lotion is bought again every ~30 days by several shoppers; the brush once each.
    for n in range(3):
        for k in range(3):
            await buy(db, f"L{n}", NOW - timedelta(days=300 - 30 * k + n), "LOTION")
    for n in range(4):
        await buy(db, f"BR{n}", NOW - timedelta(days=100 + n), "BRUSH")
    due = await buy(db, "DUE", NOW - timedelta(days=28), "LOTION", "BRUSH")
    fresh = await buy(db, "FRESH", NOW - timedelta(days=3), "LOTION")
    long_gone = await buy(db, "GONE", NOW - timedelta(days=400), "LOTION")

    [reminder] = (await recommend(db, due)).reminders
    assert reminder.sku == "LOTION"
    assert reminder.interval_days == 30
    assert reminder.overdue is False
    assert reminder.due_at == NOW - timedelta(days=28) + timedelta(days=30)
    assert (await recommend(db, fresh)).reminders == []
    assert (await recommend(db, long_gone)).reminders == []


def test_typical_interval_needs_enough_repurchases() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    t = NOW
    assert recommendations.typical_interval([(a, t), (a, t + timedelta(days=10))]) is None
    # Same-day purchases are one trip, not a repurchase.
    same_day = [
        (a, t),
        (a, t + timedelta(hours=2)),
        (b, t),
        (b, t + timedelta(hours=1)),
        (a, t + timedelta(hours=3)),
    ]
    assert recommendations.typical_interval(same_day) is None
    spaced = [
        (a, t),
        (a, t + timedelta(days=20)),
        (a, t + timedelta(days=40)),
        (b, t),
        (b, t + timedelta(days=30)),
    ]
    assert recommendations.typical_interval(spaced) == timedelta(days=20)


async def test_route_for_staff(
    client: TestClient[web.Request, web.Application], make_staff: Any, db: Database
) -> None:
    await buy(db, "X", NOW - timedelta(days=5), "SERUM", "CREAM")
    me = await buy(db, "ME", NOW - timedelta(days=5), "SERUM")
    assert (await client.get(f"/api/v1/shoppers/{me}/recommendations")).status == 401
    await login(client, await make_staff(Role.ADVISOR))
    response = await client.get(f"/api/v1/shoppers/{me}/recommendations")
    assert response.status == 200
    body = await response.json()
    assert body["bought_together"][0]["sku"] == "CREAM"
    assert body["bought_together"][0]["currency"] == "JPY"
    assert (await client.get(f"/api/v1/shoppers/{uuid.uuid4()}/recommendations")).status == 404
