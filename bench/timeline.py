"""Customer history benchmark: the newest page of one shopper's timeline among 1,000,000
events, customer search among 100,000 shoppers, and the CSV order import rate.

Runs in this process on a fresh SQLite database in a temporary directory (or on PostgreSQL
with ``--database-url``, whose tables are emptied first — use a database of its own).

    .venv/bin/python bench/timeline.py --quick     # within a minute
    .venv/bin/python bench/timeline.py             # 1,000,000 events, 100,000 shoppers

Data: N shoppers with name, e-mail, phone and shop id (and their search terms); E timeline
events spread over them, of mixed kinds over two years, of which 2,000 belong to one "heavy"
shopper — the one whose page is read. Rows are written in bulk (not through the services);
the reads and the import go through the same functions as the API.

The last stdout line is one JSON object: ``events``, ``shoppers``, ``page_p50_ms`` /
``page_p99_ms`` (``read_timeline`` for the newest 50 events of the heavy shopper, each in its
own read session, as the route runs it; budget p99 ≤ 5 ms), ``older_page_p99_ms`` (pages
further back, through cursors), ``search_p50_ms`` / ``search_p99_ms`` (prefix searches by
name, e-mail, phone and shop id), ``import_orders_per_s`` (a CSV of two-line orders for new
and existing customers, through ``livedesk import``'s code path), ``budgets``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import insert, text

from _common import percentile, say
from _realtime_seed import fresh_database
from livedesk.customers import search
from livedesk.integrations import imports
from livedesk.kit.db import Database
from livedesk.kit.logging import configure_logging
from livedesk.models import IdentityKind, Shopper, ShopperIdentity, TimelineEvent, TimelineKind
from livedesk.models.integrations import ShopperSearchTerm
from livedesk.timeline import read_timeline

FAMILY = [
    "Tanaka",
    "Sato",
    "Suzuki",
    "Takahashi",
    "Ito",
    "Watanabe",
    "Yamamoto",
    "Nakamura",
    "Kobayashi",
    "Kato",
]
GIVEN = ["Sakura", "Hina", "Yui", "Aoi", "Mei", "Ren", "Haruto", "Sota", "Yuto", "Emma", "Oliver", "Misaki"]
KINDS = [
    TimelineKind.CONSULTATION,
    TimelineKind.MESSAGE,
    TimelineKind.SHOP_ORDER,
    TimelineKind.STORE_VISIT,
    TimelineKind.BOOKING,
    TimelineKind.PAYMENT,
    TimelineKind.NOTE,
]
HEAVY_EVENTS = 2000
BATCH = 20_000
START = datetime(2024, 11, 1, tzinfo=UTC)


async def _bulk(db: Database, table: Any, rows: list[dict[str, Any]]) -> None:
    for n in range(0, len(rows), BATCH):
        async with db.transaction() as session:
            await session.execute(insert(table), rows[n : n + BATCH])


async def seed(db: Database, shoppers: int, events: int, rng: random.Random) -> tuple[uuid.UUID, list[str]]:
    """Shoppers (with identities and search terms) and events; the heavy shopper's id and
    some search queries that hit."""
    ids = [uuid.uuid4() for _ in range(shoppers)]
    people: list[dict[str, Any]] = []
    identities: list[dict[str, Any]] = []
    terms: list[dict[str, Any]] = []
    queries: list[str] = []
    now = datetime.now(UTC)
    for n, sid in enumerate(ids):
        name = f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}"
        email = f"user{n:06d}@example.com"
        phone = f"+8190{n:08d}"
        shop_id = f"HB-{n:07d}"
        people.append(
            {
                "id": sid,
                "display_name": name,
                "email": email,
                "phone": phone,
                "locale": "ja",
                "timezone": "Asia/Tokyo",
                "notes": "",
                "attributes": {},
                "created_at": now,
                "updated_at": now,
            }
        )
        for kind, value in (
            (IdentityKind.EMAIL, email),
            (IdentityKind.PHONE, phone),
            (IdentityKind.SHOP_CUSTOMER_ID, shop_id),
        ):
            identities.append(
                {"id": uuid.uuid4(), "shopper_id": sid, "kind": kind, "value": value, "created_at": now}
            )
        for term in search.terms_for(
            name,
            [
                (IdentityKind.EMAIL, email),
                (IdentityKind.PHONE, phone),
                (IdentityKind.SHOP_CUSTOMER_ID, shop_id),
            ],
        ):
            terms.append({"id": uuid.uuid4(), "shopper_id": sid, "term": term})
        if n % max(1, shoppers // 50) == 0:
            queries += [f"user{n:06d}", f"090{n:08d}"[:9], f"hb-{n:07d}"[:8], name.split()[1][:4].lower()]
    say(f"writing {shoppers} shoppers, {len(identities)} identities, {len(terms)} search terms")
    await _bulk(db, Shopper.__table__, people)
    await _bulk(db, ShopperIdentity.__table__, identities)
    await _bulk(db, ShopperSearchTerm.__table__, terms)
    heavy = ids[0]
    say(f"writing {events} timeline events ({HEAVY_EVENTS} of one shopper)")
    span = (now - START).total_seconds()
    written = 0
    while written < events:
        chunk = []
        for _ in range(min(BATCH, events - written)):
            owner = heavy if written < HEAVY_EVENTS else ids[rng.randrange(shoppers)]
            at = START + timedelta(seconds=rng.random() * span)
            chunk.append(
                {
                    "id": uuid.uuid4(),
                    "shopper_id": owner,
                    "occurred_at": at,
                    "kind": rng.choice(KINDS),
                    "summary": "benchmark event",
                    "data": {"n": written},
                    "actor_staff_id": None,
                    "consultation_id": None,
                    "ref_id": None,
                    "recorded_at": at,
                }
            )
            written += 1
        async with db.transaction() as session:
            await session.execute(insert(TimelineEvent.__table__), chunk)
        if written % 200_000 == 0:
            say(f"  {written} events")
    if db.is_sqlite:
        async with db.transaction() as session:
            await session.execute(text("ANALYZE"))
    else:
        async with db.transaction() as session:
            await session.execute(text("ANALYZE timeline_events"))
            await session.execute(text("ANALYZE shopper_search_terms"))
    return heavy, queries


async def time_pages(
    db: Database, shopper_id: uuid.UUID, repeat: int
) -> tuple[list[float], list[float], list[float]]:
    """Wall-clock ms of the newest page and of older pages, and the process CPU ms of the
    newest page (the part other processes on a busy machine cannot inflate)."""
    first: list[float] = []
    older: list[float] = []
    cpu: list[float] = []
    cursors: list[str] = []
    async with db.read() as session:
        page = await read_timeline(session, shopper_id, limit=50)
        while page.next_cursor and len(cursors) < 30:
            cursors.append(page.next_cursor)
            page = await read_timeline(session, shopper_id, limit=50, cursor=page.next_cursor)
    for n in range(repeat):
        started = time.perf_counter()
        cpu_started = time.process_time()
        async with db.read() as session:
            page = await read_timeline(session, shopper_id, limit=50)
        first.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        assert len(page.events) == 50
        started = time.perf_counter()
        async with db.read() as session:
            await read_timeline(session, shopper_id, limit=50, cursor=cursors[n % len(cursors)])
        older.append((time.perf_counter() - started) * 1000)
    return first, older, cpu


async def time_search(db: Database, queries: list[str], repeat: int) -> list[float]:
    times: list[float] = []
    for n in range(repeat):
        query = queries[n % len(queries)]
        started = time.perf_counter()
        async with db.read() as session:
            hits = await search.search(session, query)
        times.append((time.perf_counter() - started) * 1000)
        assert hits, query
    return times


def orders_csv(orders: int, shoppers: int, rng: random.Random) -> bytes:
    lines = ["order_id,shop_customer_id,email,display_name,ordered_at,sku,name,quantity,unit_price_minor"]
    for n in range(orders):
        # Half for customers already known (by shop id), half for new ones.
        customer = rng.randrange(shoppers) if n % 2 else shoppers + n
        at = (START + timedelta(hours=n)).isoformat()
        for sku, price in (("SERUM-30", 4800), (f"MASK-{n % 7}", 1200)):
            who = f"HB-{customer:07d},user{customer:06d}@example.com,Bench Buyer"
            lines.append(f"BENCH-{n},{who},{at},{sku},Item {sku},1,{price}")
    return ("\n".join(lines) + "\n").encode()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, within a minute")
    parser.add_argument(
        "--database-url", default="", help="PostgreSQL URL of a database of its own (emptied)"
    )
    parser.add_argument("--keep", default="", help="keep the SQLite database in this directory")
    args = parser.parse_args()
    configure_logging("warning", "console")
    rng = random.Random(20261122)
    shoppers, events, orders, repeat = (
        (5_000, 50_000, 200, 300) if args.quick else (100_000, 1_000_000, 2_000, 2_000)
    )
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="livedesk-bench-timeline-"))
    workdir.mkdir(parents=True, exist_ok=True)
    say(f"database: {'postgresql' if args.database_url else 'sqlite'} ({workdir})")
    url = await fresh_database(workdir, args.database_url)
    db = Database(url)
    try:
        started = time.perf_counter()
        heavy, queries = await seed(db, shoppers, events, rng)
        say(f"seeded in {time.perf_counter() - started:.1f} s")
        first, older, cpu = await time_pages(db, heavy, repeat)
        say(
            f"page p50 {percentile(first, 50):.2f} ms, p99 {percentile(first, 99):.2f} ms "
            f"(cpu p99 {percentile(cpu, 99):.2f} ms)"
        )
        searches = await time_search(db, queries, repeat)
        say(f"search p50 {percentile(searches, 50):.2f} ms, p99 {percentile(searches, 99):.2f} ms")
        raw = orders_csv(orders, shoppers, rng)
        job, _ = await imports.create_job(
            db, workdir / "data", "orders", raw, "bench.csv", actor_staff_id=None
        )
        started = time.perf_counter()
        cpu_started = time.process_time()
        job = await imports.run_job(db, workdir / "data", job.id)
        took = time.perf_counter() - started
        import_cpu = time.process_time() - cpu_started
        assert job.error_rows == 0, job.errors[:3]
        say(f"imported {orders} orders ({job.ok_rows} rows) in {took:.1f} s")
        figures = {
            "mode": "quick" if args.quick else "full",
            "database": "postgresql" if args.database_url else "sqlite",
            "events": events,
            "shoppers": shoppers,
            "page_p50_ms": round(percentile(first, 50), 3),
            "page_p99_ms": round(percentile(first, 99), 3),
            "page_cpu_p99_ms": round(percentile(cpu, 99), 3),
            "older_page_p99_ms": round(percentile(older, 99), 3),
            "search_p50_ms": round(percentile(searches, 50), 3),
            "search_p99_ms": round(percentile(searches, 99), 3),
            "import_orders": orders,
            "import_orders_per_s": round(orders / took, 1),
            "import_orders_per_cpu_s": round(orders / import_cpu, 1),
            "load_average": round(os.getloadavg()[0], 1),
            "budgets": {"page_p99_ms": 5.0},
        }
    finally:
        await db.dispose()
        if not args.keep and not args.database_url:
            for path in workdir.rglob("*"):
                if path.is_file():
                    path.unlink()
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
