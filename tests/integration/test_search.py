"""Customer search: by any word of a name (Latin and Japanese), e-mail, phone number in any
notation, shop id; merged profiles drop out; terms follow profile changes; the lookup is an
index range scan (EXPLAIN) on both databases; staff only."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import text

from livedesk.customers import merge, search, service
from livedesk.customers.schemas import ShopperCreate, ShopperUpdate
from livedesk.kit.db import Database
from livedesk.models import Role
from tests.conftest import login


async def make(db: Database, name: str, **identities: Any) -> uuid.UUID:
    async with db.transaction() as session:
        view = await service.create_shopper(session, ShopperCreate(display_name=name, **identities))
    return view.shopper.id


async def find(db: Database, query: str) -> list[uuid.UUID]:
    async with db.read() as session:
        return [hit.shopper.id for hit in await search.search(session, query)]


async def test_finds_by_name_email_phone_and_shop_id(db: Database) -> None:
    emma = await make(db, "Emma Clarke", email="Emma.Clarke@example.com", phone="+44 20 7946 0018")
    sakura = await make(db, "田中 さくら", phone="090-1234-5678", shop_customer_id="HB-000123")
    misaki = await make(db, "佐藤美咲", email="misaki@example.com")
    assert await find(db, "emma") == [emma]
    assert await find(db, "CLAR") == [emma]
    assert await find(db, "emma clarke") == [emma]
    assert await find(db, "emma.clarke@ex") == [emma]
    assert await find(db, "さくら") == [sakura]
    assert await find(db, "田中") == [sakura]
    # Written without spaces, the given name is still found.
    assert await find(db, "美咲") == [misaki]
    assert await find(db, "０９０－１２３４") == [sakura]
    assert await find(db, "090 1234 5678") == [sakura]
    assert await find(db, "+81 90-1234") == [sakura]
    assert await find(db, "4420 7946") == [emma]
    assert await find(db, "hb-0001") == [sakura]
    assert await find(db, "nobody") == []
    assert await find(db, "e") == []  # too short to mean anything


async def test_terms_follow_updates_and_merges(db: Database) -> None:
    a = await make(db, "Hana Mori", email="hana@example.com")
    b = await make(db, "H. Mori", phone="080-5555-0101")
    async with db.transaction() as session:
        await service.update_shopper(session, a, ShopperUpdate(display_name="Hana Ishikawa"))
    assert await find(db, "mori") == [b]
    assert await find(db, "ishik") == [a]
    async with db.transaction() as session:
        await merge.merge_shoppers(session, a, b, actor_staff_id=None)
    # The merged profile's phone now finds the survivor; the merged profile is gone.
    assert await find(db, "08055550101") == [a]
    assert await find(db, "h.") == []


async def test_reindex_missing_covers_rows_written_directly(db: Database) -> None:
    from livedesk.models import Shopper

    async with db.transaction() as session:
        session.add(Shopper(id=uuid.uuid4(), display_name="Direct Row"))
    assert await find(db, "direct") == []
    async with db.transaction() as session:
        assert await search.reindex_missing(session) == 1
        assert await search.reindex_missing(session) == 0
    assert len(await find(db, "direct")) == 1


async def test_lookup_is_an_index_range_scan(db: Database) -> None:
    term = "abc"
    sql = (
        "SELECT shopper_id, term FROM shopper_search_terms "
        "WHERE term >= :lo AND term < :hi ORDER BY term LIMIT 80"
    )
    async with db.read() as session:
        if db.is_sqlite:
            plan = (
                await session.execute(text("EXPLAIN QUERY PLAN " + sql), {"lo": term, "hi": term + "\uffff"})
            ).all()
            detail = " ".join(str(row[-1]) for row in plan)
            assert "ix_shopper_search_terms_term" in detail
            assert "SCAN shopper_search_terms" not in detail
        else:
            # A tiny table makes a sequential scan cheaper; forbid it to see that the index serves.
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = (await session.execute(text("EXPLAIN " + sql), {"lo": term, "hi": term + "\uffff"})).all()
            detail = " ".join(str(row[0]) for row in plan)
            assert "ix_shopper_search_terms_term" in detail


async def test_search_route_is_for_staff(
    client: TestClient[web.Request, web.Application], make_staff: Any, db: Database
) -> None:
    emma = await make(db, "Emma Clarke", email="emma@example.com")
    anonymous = await client.get("/api/v1/customers/search?q=emma")
    assert anonymous.status == 401
    await login(client, await make_staff(Role.ADVISOR))
    response = await client.get("/api/v1/customers/search?q=emma")
    assert response.status == 200
    body = await response.json()
    assert [h["id"] for h in body["hits"]] == [str(emma)]
    assert body["hits"][0]["email"] == "emma@example.com"
    bad = await client.get("/api/v1/customers/search?q=emma&limit=500")
    assert bad.status == 422
