"""Shop data never re-points a profile (issue 17, item 5).

An outside caller holding an integration key (or an admin loading a CSV) sends a *new* shop
customer id together with a phone number or e-mail that already belongs to someone else. The
data must be refused (``409 identity_conflict``, a CSV row reported by its line), never
attached to that other person: their identities, name, e-mail and timeline stay as they were,
and a later push for the new shop id cannot overwrite them. ``PUT /shop/customers`` answers
with ``changed`` as the docs promise.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from livedesk.customers import service
from livedesk.customers.schemas import ShopperCreate
from livedesk.integrations import imports
from livedesk.kit.db import Database
from livedesk.models import (
    IdentityKind,
    ShopOrder,
    Shopper,
    ShopperIdentity,
    TimelineEvent,
    TimelineKind,
)
from livedesk.models.integrations import ChannelEvent, ImportStatus
from livedesk.settings import Settings
from tests.integration.test_integration_api import bearer, make_key

Client = TestClient[web.Request, web.Application]

VICTIM = {"display_name": "Hana Mori", "email": "hana@example.com", "phone": "090-1234-5678"}
VICTIM_PHONE = "+819012345678"
LINES = [{"sku": "SERUM-30", "name": "Hydrating serum", "quantity": 1, "unit_price_minor": 4800}]


async def make_victim(client: Client, db: Database, key: str, made_by: str) -> uuid.UUID:
    """The person whose profile the attacker aims at: a shop customer of their own, or a
    profile a booking made (no shop id at all)."""
    if made_by == "shop":
        response = await client.put("/api/v1/shop/customers/C-1", json=VICTIM, headers=bearer(key))
        assert response.status == 201, await response.text()
        return uuid.UUID((await response.json())["shopper_id"])
    async with db.transaction() as session:
        view = await service.create_shopper(session, ShopperCreate(**VICTIM), source="booking")
    return view.shopper.id


async def snapshot(db: Database, shopper_id: uuid.UUID) -> dict[str, Any]:
    """Everything about a profile that a re-pointing would change."""
    async with db.read() as session:
        shopper = await session.get(Shopper, shopper_id)
        assert shopper is not None
        identities = (
            await session.execute(
                select(ShopperIdentity.kind, ShopperIdentity.value).where(
                    ShopperIdentity.shopper_id == shopper_id
                )
            )
        ).all()
        timeline = (
            await session.execute(
                select(TimelineEvent.kind, TimelineEvent.summary)
                .where(TimelineEvent.shopper_id == shopper_id)
                .order_by(TimelineEvent.recorded_at, TimelineEvent.kind)
            )
        ).all()
        orders = await session.scalar(
            select(func.count()).select_from(ShopOrder).where(ShopOrder.shopper_id == shopper_id)
        )
    return {
        "profile": (shopper.display_name, shopper.email, shopper.phone, shopper.locale, shopper.updated_at),
        "identities": sorted((kind.value, value) for kind, value in identities),
        "timeline": [(kind.value, summary) for kind, summary in timeline],
        "orders": orders,
    }


async def holder_of(db: Database, kind: IdentityKind, value: str) -> uuid.UUID | None:
    async with db.read() as session:
        return await session.scalar(
            select(ShopperIdentity.shopper_id).where(
                ShopperIdentity.kind == kind, ShopperIdentity.value == value
            )
        )


@pytest.mark.parametrize("made_by", ["shop", "booking"])
async def test_shop_order_with_a_known_phone_for_a_new_shop_id(
    client: Client, make_staff: Any, db: Database, made_by: str
) -> None:
    key, _ = await make_key(client, make_staff)
    victim = await make_victim(client, db, key, made_by)
    before = await snapshot(db, victim)

    # The attack: an order of a shop customer the system has never seen, carrying the
    # victim's phone number written another way.
    attack = {
        "customer": {"shop_customer_id": "EVIL-1", "phone": "+81 90-1234-5678", "display_name": "Mallory"},
        "ordered_at": "2026-10-01T10:00:00+09:00",
        "lines": LINES,
    }
    refused = await client.put("/api/v1/shop/orders/O-EVIL", json=attack, headers=bearer(key))
    assert refused.status == 409, await refused.text()
    error = (await refused.json())["error"]
    assert error["code"] == "identity_conflict"
    assert error["details"]["field"] == "phone"

    # The same through a channel event, and with the victim's e-mail instead.
    visit = {
        "customer": {"shop_customer_id": "EVIL-1", "email": "HANA@example.com"},
        "occurred_at": "2026-10-02T15:00:00+09:00",
        "store_name": "Ginza",
    }
    refused_visit = await client.put("/api/v1/shop/events/V-EVIL", json=visit, headers=bearer(key))
    assert refused_visit.status == 409, await refused_visit.text()
    assert (await refused_visit.json())["error"]["details"]["field"] == "email"

    assert await snapshot(db, victim) == before
    assert await holder_of(db, IdentityKind.SHOP_CUSTOMER_ID, "EVIL-1") is None
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(ShopOrder)) == 0
        assert await session.scalar(select(func.count()).select_from(ChannelEvent)) == 0

    # The follow-up of the finding: a customer push for the new id makes its own profile and
    # cannot rename the victim or take their e-mail.
    own = await client.put(
        "/api/v1/shop/customers/EVIL-1",
        json={"display_name": "Mallory", "email": "mallory@example.com"},
        headers=bearer(key),
    )
    assert own.status == 201, await own.text()
    assert uuid.UUID((await own.json())["shopper_id"]) != victim
    grab = await client.put(
        "/api/v1/shop/customers/EVIL-1", json={"email": "hana@example.com"}, headers=bearer(key)
    )
    assert grab.status == 409
    assert await snapshot(db, victim) == before
    assert await holder_of(db, IdentityKind.PHONE, VICTIM_PHONE) == victim


async def test_shop_customer_put_for_a_new_id_with_anothers_email(
    client: Client, make_staff: Any, db: Database
) -> None:
    key, _ = await make_key(client, make_staff)
    victim = await make_victim(client, db, key, "booking")
    before = await snapshot(db, victim)
    async with db.read() as session:
        profiles = await session.scalar(select(func.count()).select_from(Shopper))

    for body in (
        {"display_name": "Mallory", "email": "Hana@Example.com"},
        {"display_name": "Mallory", "phone": "09012345678"},
    ):
        response = await client.put("/api/v1/shop/customers/EVIL-2", json=body, headers=bearer(key))
        assert response.status == 409, await response.text()
        assert (await response.json())["error"]["code"] == "identity_conflict"

    assert await snapshot(db, victim) == before
    assert await holder_of(db, IdentityKind.SHOP_CUSTOMER_ID, "EVIL-2") is None
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Shopper)) == profiles


async def test_known_shop_id_keeps_its_own_profile(client: Client, make_staff: Any, db: Database) -> None:
    """A known shop id's order lands on that shop customer; another person's e-mail sent
    along is not attached to either profile and changes neither."""
    key, _ = await make_key(client, make_staff)
    victim = await make_victim(client, db, key, "booking")
    own = await client.put("/api/v1/shop/customers/C-7", json={"display_name": "Ken"}, headers=bearer(key))
    ken = uuid.UUID((await own.json())["shopper_id"])
    before = await snapshot(db, victim)
    body = {
        "customer": {"shop_customer_id": "C-7", "email": "hana@example.com"},
        "ordered_at": "2026-10-01T10:00:00+09:00",
        "lines": LINES,
    }
    response = await client.put("/api/v1/shop/orders/O-7", json=body, headers=bearer(key))
    assert response.status == 201, await response.text()
    assert uuid.UUID((await response.json())["shopper_id"]) == ken
    assert await snapshot(db, victim) == before
    assert await holder_of(db, IdentityKind.EMAIL, "hana@example.com") == victim
    async with db.read() as session:
        shopper = await session.get(Shopper, ken)
    assert shopper is not None
    assert shopper.email is None


async def test_customer_put_answers_changed(client: Client, make_staff: Any) -> None:
    key, _ = await make_key(client, make_staff)
    url = "/api/v1/shop/customers/C-3"

    async def put(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = await client.put(url, json=body, headers=bearer(key))
        return response.status, await response.json()

    status, first = await put({"email": "aoi@example.com"})
    assert (status, first["created"], first["changed"]) == (201, True, True)
    status, again = await put({"email": "AOI@example.com"})
    assert (status, again["created"], again["changed"]) == (200, False, False)
    # A profile without a name gets one: that is a change, even though it is a blank filled.
    status, named = await put({"display_name": "Aoi Ito"})
    assert (status, named["changed"]) == (200, True)
    status, same = await put({"display_name": "Aoi Ito", "phone": "090-5555-0000"})
    assert same["changed"] is True
    status, nothing = await put({"display_name": "Aoi Ito", "phone": "+81 90 5555 0000"})
    assert (status, nothing["changed"]) == (200, False)
    status, empty = await put({})
    assert (status, empty["changed"]) == (200, False)
    status, relocated = await put({"locale": "en"})
    assert relocated["changed"] is True

    # Events answer the same way: a repeat of the same event id changes nothing.
    visit = {"customer": {"shop_customer_id": "C-3"}, "occurred_at": "2026-10-02T15:00:00+09:00"}
    for expected in (True, False):
        response = await client.put("/api/v1/shop/events/V-3", json=visit, headers=bearer(key))
        assert (await response.json())["changed"] is expected
    assert {first["shopper_id"], again["shopper_id"], named["shopper_id"], empty["shopper_id"]} == {
        first["shopper_id"]
    }


CUSTOMERS = """shop_customer_id,display_name,email,phone
C-1,Hana Mori,hana@example.com,090-1234-5678
EVIL-3,Mallory,mallory@example.com,+81 90 1234 5678
EVIL-4,Eve,HANA@example.com,
C-5,Rin Oda,rin@example.com,080-0000-1111
"""
ORDERS = """order_id,shop_customer_id,phone,email,ordered_at,sku,name,quantity,unit_price_minor
O-1,EVIL-5,090 1234 5678,,2026-09-01T10:00:00+09:00,SERUM,Serum,1,4800
O-1,EVIL-5,090 1234 5678,,2026-09-01T10:00:00+09:00,MASK,Masks,2,1200
O-2,C-1,,,2026-09-02T10:00:00+09:00,CREAM,Cream,1,5200
O-3,EVIL-6,,hana@example.com,2026-09-03T10:00:00+09:00,CREAM,Cream,1,5200
"""


async def test_csv_rows_for_a_new_shop_id_with_anothers_identity_are_refused_by_line(
    db: Database, settings: Settings
) -> None:
    job, _ = await imports.create_job(
        db, settings.data_dir, "customers", CUSTOMERS.encode(), "c.csv", actor_staff_id=None
    )
    job = await imports.run_job(db, settings.data_dir, job.id)
    assert job.status is ImportStatus.DONE
    assert (job.ok_rows, job.error_rows) == (2, 2)
    by_line = {e["line"]: e["message"] for e in job.errors}
    assert set(by_line) == {3, 4}
    assert "phone number +819012345678 already belongs" in by_line[3]
    assert "e-mail hana@example.com already belongs" in by_line[4]
    victim = await holder_of(db, IdentityKind.SHOP_CUSTOMER_ID, "C-1")
    assert victim is not None
    before = await snapshot(db, victim)
    assert before["profile"][:3] == ("Hana Mori", "hana@example.com", VICTIM_PHONE)

    job, _ = await imports.create_job(
        db, settings.data_dir, "orders", ORDERS.encode(), "o.csv", actor_staff_id=None
    )
    job = await imports.run_job(db, settings.data_dir, job.id)
    assert (job.ok_rows, job.error_rows) == (1, 3)
    refused = {e["line"]: e for e in job.errors}
    assert set(refused) == {2, 5}
    assert refused[2]["last_line"] == 3
    assert "already belongs" in refused[2]["message"]
    assert "already belongs" in refused[5]["message"]

    after = await snapshot(db, victim)
    # Only the victim's own order (O-2, by their shop id) reached their timeline.
    assert after["identities"] == before["identities"]
    assert after["profile"] == before["profile"]
    assert after["orders"] == 1
    assert after["timeline"] == [
        *before["timeline"],
        (TimelineKind.SHOP_ORDER.value, after["timeline"][-1][1]),
    ]
    for evil in ("EVIL-3", "EVIL-4", "EVIL-5", "EVIL-6"):
        assert await holder_of(db, IdentityKind.SHOP_CUSTOMER_ID, evil) is None
