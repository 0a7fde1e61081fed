"""The customer timeline: appending in the caller's transaction, newest-first order with ties
broken by id, keyset pagination without gaps or duplicates, kind filters, bad cursors, and one
indexed query per page."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from livedesk.customers import merge, service
from livedesk.customers.schemas import ShopperCreate
from livedesk.kit.context import DB
from livedesk.kit.db import Database
from livedesk.kit.errors import NotFound, ValidationFailed
from livedesk.models import Role, Shopper, TimelineEvent, TimelineKind
from livedesk.timeline.log import (
    append_event,
    decode_cursor,
    encode_cursor,
    read_timeline,
)
from tests.conftest import login

API = "/api/v1/shoppers"
BASE = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
KINDS = [TimelineKind.BOOKING, TimelineKind.PAYMENT, TimelineKind.NOTE, TimelineKind.SHOP_ORDER]


@dataclass
class Captured:
    statements: list[tuple[str, Any]] = field(default_factory=list)

    def timeline_selects(self) -> list[tuple[str, Any]]:
        return [
            (sql, params)
            for sql, params in self.statements
            if sql.lstrip().upper().startswith("SELECT") and "timeline_events" in sql
        ]


@contextmanager
def capture_sql(*engines: AsyncEngine) -> Iterator[Captured]:
    """Every statement sent to the database through these engines while the block runs."""
    captured = Captured()

    def on_execute(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        captured.statements.append((statement, parameters))

    # On PostgreSQL the read engine is the write engine: listen once per engine.
    targets = list({id(e.sync_engine): e.sync_engine for e in engines}.values())
    for target in targets:
        event.listen(target, "before_cursor_execute", on_execute)
    try:
        yield captured
    finally:
        for target in targets:
            event.remove(target, "before_cursor_execute", on_execute)


async def bare_shopper(db: Database) -> uuid.UUID:
    """A profile row without its profile.created event, so tests own every timeline row."""
    async with db.transaction() as session:
        shopper = Shopper(id=uuid.uuid4(), display_name="T")
        session.add(shopper)
    return shopper.id


async def seed(db: Database, shopper_id: uuid.UUID, n: int) -> list[tuple[datetime, uuid.UUID]]:
    """``n`` events in groups of three sharing one timestamp (so ties cross page boundaries),
    written out of order; returns their sort keys newest first, as the API must give them."""
    keys: list[tuple[datetime, uuid.UUID]] = []
    async with db.transaction() as session:
        for i in reversed(range(n)):
            occurred = BASE + timedelta(minutes=i // 3)
            written = await append_event(
                session, shopper_id, KINDS[i % len(KINDS)], f"event {i}", {"i": i}, occurred_at=occurred
            )
            keys.append((occurred, written.id))
    return sorted(keys, reverse=True)


@pytest.fixture
async def staff_headers(client: Any, make_staff: Any) -> dict[str, str]:
    return await login(client, await make_staff(Role.ADVISOR))


# --- appending ---------------------------------------------------------------------------


async def test_append_event_lands_in_the_callers_transaction(db: Database) -> None:
    shopper_id = await bare_shopper(db)
    consultation_ref = "booking-42"

    async def book_then_fail() -> None:
        async with db.transaction() as session:
            await append_event(
                session, shopper_id, TimelineKind.BOOKING, "Booked", {}, ref_id=consultation_ref
            )
            raise RuntimeError("the booking failed after the event was added")

    with pytest.raises(RuntimeError):
        await book_then_fail()
    async with db.read() as session:
        assert (await read_timeline(session, shopper_id)).events == []

    async with db.transaction() as session:
        written = await append_event(
            session,
            shopper_id,
            TimelineKind.BOOKING,
            "Booked",
            {"slot": BASE, "advisor": uuid.UUID(int=7), "kind": TimelineKind.CALL},
            ref_id=consultation_ref,
        )
        written_id = written.id
    async with db.read() as session:
        page = await read_timeline(session, shopper_id)
    assert [e.id for e in page.events] == [written_id]
    stored = page.events[0]
    assert stored.kind == TimelineKind.BOOKING
    assert stored.ref_id == consultation_ref
    # Values that JSON has no type for are stored as their usual spelling.
    assert stored.data == {
        "slot": "2025-03-01T09:00:00Z",
        "advisor": "00000000-0000-0000-0000-000000000007",
        "kind": "call",
    }
    assert stored.occurred_at.tzinfo is not None


async def test_append_event_checks_its_input(db: Database) -> None:
    shopper_id = await bare_shopper(db)
    async with db.transaction() as session:
        with pytest.raises(ValueError, match="timezone-aware"):
            await append_event(
                session,
                shopper_id,
                TimelineKind.NOTE,
                "x",
                {},
                occurred_at=datetime(2025, 1, 1),  # noqa: DTZ001
            )
        with pytest.raises(TypeError, match="JSON"):
            await append_event(session, shopper_id, TimelineKind.NOTE, "x", {"bad": object()})
        with pytest.raises(ValueError, match="not a valid TimelineKind"):
            await append_event(session, shopper_id, "no.such.kind", "x", {})
        with pytest.raises(NotFound):
            await append_event(session, uuid.uuid4(), TimelineKind.NOTE, "x", {})
        long = await append_event(session, shopper_id, TimelineKind.NOTE, "é" * 900, {})
        assert len(long.summary) == 500


async def test_append_to_a_merged_profile_lands_on_the_survivor(db: Database) -> None:
    async with db.transaction() as session:
        survivor = (await service.create_shopper(session, ShopperCreate(display_name="A"))).shopper.id
        merged = (await service.create_shopper(session, ShopperCreate(display_name="B"))).shopper.id
    async with db.transaction() as session:
        await merge.merge_shoppers(session, survivor, merged, actor_staff_id=None)
    async with db.transaction() as session:
        late = await append_event(session, merged, TimelineKind.PAYMENT, "Paid", {"amount": 5000})
    assert late.shopper_id == survivor
    async with db.read() as session:
        page = await read_timeline(session, survivor, kinds=[TimelineKind.PAYMENT])
    assert [e.id for e in page.events] == [late.id]


# --- order and pages ---------------------------------------------------------------------


async def test_newest_first_and_ties_broken_by_id(db: Database) -> None:
    shopper_id = await bare_shopper(db)
    same_time = BASE + timedelta(hours=1)
    async with db.transaction() as session:
        older = await append_event(session, shopper_id, TimelineKind.NOTE, "older", {}, occurred_at=BASE)
        tied = [
            await append_event(session, shopper_id, TimelineKind.NOTE, f"tie {n}", {}, occurred_at=same_time)
            for n in range(5)
        ]
        newest = await append_event(
            session,
            shopper_id,
            TimelineKind.NOTE,
            "newest",
            {},
            occurred_at=same_time + timedelta(microseconds=1),
        )
    async with db.read() as session:
        page = await read_timeline(session, shopper_id)
    expected = [newest.id, *sorted((e.id for e in tied), reverse=True), older.id]
    assert [e.id for e in page.events] == expected
    assert page.next_cursor is None


async def test_walk_all_pages_without_gaps_or_duplicates(
    client: Any, db: Database, staff_headers: dict[str, str]
) -> None:
    shopper_id = await bare_shopper(db)
    expected = await seed(db, shopper_id, 120)

    seen: list[tuple[datetime, uuid.UUID]] = []
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"limit": 50}
        if cursor is not None:
            query["cursor"] = cursor
        response = await client.get(f"{API}/{shopper_id}/timeline", params=query)
        assert response.status == 200, await response.text()
        body = await response.json()
        pages.append(body["events"])
        seen.extend((datetime.fromisoformat(e["occurred_at"]), uuid.UUID(e["id"])) for e in body["events"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10, "pagination does not end"

    assert [len(p) for p in pages] == [50, 50, 20]
    assert seen == expected
    assert len(set(seen)) == 120
    # The page boundaries fall inside groups of equal timestamps: only the id decides there.
    assert pages[0][-1]["occurred_at"] == pages[1][0]["occurred_at"]
    assert pages[1][-1]["occurred_at"] == pages[2][0]["occurred_at"]


async def test_exact_multiple_of_the_page_size_ends_without_cursor(db: Database) -> None:
    shopper_id = await bare_shopper(db)
    expected = await seed(db, shopper_id, 10)
    async with db.read() as session:
        first = await read_timeline(session, shopper_id, limit=5)
        assert first.next_cursor is not None
        second = await read_timeline(session, shopper_id, limit=5, cursor=first.next_cursor)
    assert second.next_cursor is None
    assert [(e.occurred_at, e.id) for e in first.events + second.events] == expected


async def test_kind_filter(client: Any, db: Database, staff_headers: dict[str, str]) -> None:
    shopper_id = await bare_shopper(db)
    expected = await seed(db, shopper_id, 40)
    async with db.read() as session:
        kinds_of = {e.id: e.kind for e in (await read_timeline(session, shopper_id, limit=200)).events}

    wanted = {TimelineKind.BOOKING, TimelineKind.NOTE}
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params: list[tuple[str, str]] = [("kind", "booking"), ("kind", "note"), ("limit", "7")]
        if cursor:
            params.append(("cursor", cursor))
        body = await (await client.get(f"{API}/{shopper_id}/timeline", params=params)).json()
        assert {e["kind"] for e in body["events"]} <= {k.value for k in wanted}
        ids.extend(e["id"] for e in body["events"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert ids == [str(i) for _, i in expected if kinds_of[i] in wanted]

    single = await (await client.get(f"{API}/{shopper_id}/timeline", params={"kind": "payment"})).json()
    assert len(single["events"]) == 10
    assert {e["kind"] for e in single["events"]} == {"payment"}

    unknown = await client.get(f"{API}/{shopper_id}/timeline", params={"kind": "gossip"})
    assert unknown.status == 422
    assert "'kind" in (await unknown.json())["error"]["message"]


@pytest.mark.parametrize(
    "cursor",
    [
        "zzz",
        "!!!!",
        "ü",
        base64.urlsafe_b64encode(b"not a cursor").decode(),
        base64.urlsafe_b64encode(b"123.nothex").decode(),
        base64.urlsafe_b64encode(b"99999999999999999999999." + uuid.uuid4().hex.encode()).decode(),
    ],
)
async def test_bad_cursor_is_422_naming_cursor(
    client: Any, db: Database, staff_headers: dict[str, str], cursor: str
) -> None:
    shopper_id = await bare_shopper(db)
    response = await client.get(f"{API}/{shopper_id}/timeline", params={"cursor": cursor})
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "validation_failed"
    assert "cursor" in error["message"]
    async with db.read() as session:
        with pytest.raises(ValidationFailed, match="cursor"):
            await read_timeline(session, shopper_id, cursor=cursor)


@pytest.mark.parametrize("limit", ["0", "201", "-1", "many"])
async def test_limit_out_of_range_is_422(
    client: Any, db: Database, staff_headers: dict[str, str], limit: str
) -> None:
    shopper_id = await bare_shopper(db)
    response = await client.get(f"{API}/{shopper_id}/timeline", params={"limit": limit})
    assert response.status == 422
    assert "'limit'" in (await response.json())["error"]["message"]


def test_cursor_round_trip() -> None:
    moment = datetime(2025, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)
    event_id = uuid.uuid4()
    cursor = encode_cursor(moment, event_id)
    assert "=" not in cursor
    assert base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert decode_cursor(cursor) == (moment, event_id)
    before_epoch = datetime(1960, 1, 1, tzinfo=UTC)
    assert decode_cursor(encode_cursor(before_epoch, event_id)) == (before_epoch, event_id)


# --- one indexed query per page ----------------------------------------------------------


async def test_one_query_per_page(client: Any, db: Database, staff_headers: dict[str, str]) -> None:
    shopper_id = await bare_shopper(db)
    await seed(db, shopper_id, 120)

    # Through the service: exactly one statement in all, and it reads timeline_events.
    cursor: str | None = None
    async with db.read() as session:
        for _ in range(3):
            with capture_sql(db.engine, db.read_engine) as captured:
                page = await read_timeline(
                    session,
                    shopper_id,
                    limit=50,
                    cursor=cursor,
                    kinds=[TimelineKind.NOTE, TimelineKind.BOOKING],
                )
            selects = [s for s, _ in captured.statements if s.lstrip().upper().startswith("SELECT")]
            assert len(selects) == 1, selects
            assert len(captured.timeline_selects()) == 1
            cursor = page.next_cursor
            if cursor is None:
                break

    # Through the HTTP route: one SELECT on timeline_events per page (the others look up the
    # staff session and the shopper).
    app_db: Database = client.app[DB]
    cursor = None
    pages = 0
    while True:
        params = {"limit": "50", **({"cursor": cursor} if cursor else {})}
        with capture_sql(app_db.engine, app_db.read_engine) as captured:
            body = await (await client.get(f"{API}/{shopper_id}/timeline", params=params)).json()
        assert len(captured.timeline_selects()) == 1, captured.timeline_selects()
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3


async def test_page_query_uses_the_index(db: Database) -> None:
    shopper_id = await bare_shopper(db)
    keys = await seed(db, shopper_id, 30)
    cursor = encode_cursor(*keys[9])
    async with db.read() as session:
        with capture_sql(db.engine, db.read_engine) as captured:
            await read_timeline(session, shopper_id, limit=10)
            await read_timeline(session, shopper_id, limit=10, cursor=cursor, kinds=[TimelineKind.NOTE])
        queries = captured.timeline_selects()
        assert len(queries) == 2
        connection = await session.connection()
        for sql, params in queries:
            if db.is_sqlite:
                rows = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
                plan = " | ".join(str(row[-1]) for row in rows)
                assert "USING INDEX ix_timeline_events_shopper_time" in plan or (
                    "USING COVERING INDEX ix_timeline_events_shopper_time" in plan
                ), plan
                # The index gives the order: no separate sort step.
                assert "TEMP B-TREE" not in plan, plan
            else:
                # A handful of rows makes any plan cheap; forbid the sequential scan to see
                # whether the index can serve this query and its order at all.
                await connection.execute(text("SET LOCAL enable_seqscan = off"))
                rows = await connection.exec_driver_sql("EXPLAIN " + sql, params)
                plan = " | ".join(str(row[0]) for row in rows)
                assert "ix_timeline_events_shopper_time" in plan, plan
                assert "Sort" not in plan, plan


async def test_reading_writes_nothing(client: Any, db: Database, staff_headers: dict[str, str]) -> None:
    shopper_id = await bare_shopper(db)
    await seed(db, shopper_id, 3)
    app_db: Database = client.app[DB]
    with capture_sql(app_db.engine, app_db.read_engine) as captured:
        assert (await client.get(f"{API}/{shopper_id}/timeline")).status == 200
        assert (await client.get(f"{API}/{shopper_id}")).status == 200
    writes = [
        s
        for s, _ in captured.statements
        if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) and "staff_sessions" not in s
    ]
    assert writes == []
    async with db.read() as session:
        count = len((await session.scalars(select(TimelineEvent.id))).all())
    assert count == 3
