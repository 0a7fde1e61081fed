"""The demo seed: what it writes, that a second run writes nothing, and the real CLI."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from livedesk.demo import data
from livedesk.demo.plan import build_plan
from livedesk.demo.seed import DEMO_PASSWORD, seed_demo
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import (
    Base,
    Consultation,
    IdentityKind,
    Message,
    Role,
    ShopOrder,
    ShopOrderLine,
    Shopper,
    ShopperIdentity,
    Staff,
    TimelineEvent,
    TimelineKind,
)
from livedesk.staff.passwords import verify_password


async def table_counts(db: Database) -> dict[str, int]:
    async with db.read() as session:
        return {
            table.name: (await session.scalar(select(func.count()).select_from(table))) or 0
            for table in Base.metadata.sorted_tables
        }


async def test_seeding_twice_writes_nothing_new(db: Database) -> None:
    logins = await seed_demo(db)
    first = await table_counts(db)
    assert await seed_demo(db) == logins
    assert await table_counts(db) == first
    assert first["shoppers"] == 50
    assert first["brands"] == 1
    assert first["teams"] == 2
    assert first["shop_orders"] >= 50
    assert first["consultations"] > 0
    assert first["messages"] > 0


async def test_demo_content_meets_the_spec(db: Database) -> None:
    logins = await seed_demo(db)
    assert Counter(role for role, _email, _name in logins) == {"advisor": 6, "supervisor": 2, "admin": 1}
    async with db.read() as session:
        staff = (await session.scalars(select(Staff))).all()
        shoppers = (await session.scalars(select(Shopper))).all()
        identities = (await session.scalars(select(ShopperIdentity))).all()
        orders = (await session.scalars(select(ShopOrder))).all()
        lines = (await session.scalars(select(ShopOrderLine))).all()
        consultations = (await session.scalars(select(Consultation))).all()
        messages = (await session.scalars(select(Message))).all()
        events = (await session.scalars(select(TimelineEvent))).all()

    assert Counter(s.role for s in staff) == {Role.ADVISOR: 6, Role.SUPERVISOR: 2, Role.ADMIN: 1}
    for advisor in (s for s in staff if s.role is Role.ADVISOR):
        assert advisor.nominable
        assert advisor.team_id is not None
        assert advisor.photo_url.startswith("/demo/avatars/")
        assert advisor.bio
        assert advisor.extra["bio_en"]
        assert advisor.skills
        assert advisor.languages
    assert {s.timezone for s in staff} == {"Asia/Tokyo", "Europe/London"}
    assert verify_password(staff[0].password_hash, DEMO_PASSWORD)

    # Identities are stored normalised, as identity resolution expects them.
    for identity in identities:
        if identity.kind is IdentityKind.EMAIL:
            assert identity.value == identity.value.lower()
            assert "@" in identity.value
        elif identity.kind is IdentityKind.PHONE:
            assert re.fullmatch(r"\+[1-9]\d{9,14}", identity.value)
        else:
            assert re.fullmatch(r"C\d{4}", identity.value)
    assert Counter(i.kind for i in identities)[IdentityKind.SHOP_CUSTOMER_ID] == len(shoppers)

    now = utcnow()
    orders_of = Counter(o.shopper_id for o in orders)
    events_of = Counter(e.shopper_id for e in events)
    for shopper in shoppers:
        assert 1 <= orders_of[shopper.id] <= 6
        assert events_of[shopper.id] >= 2  # the profile and at least one order
        assert shopper.created_at < now

    lines_of: dict[Any, list[ShopOrderLine]] = {}
    for line in lines:
        lines_of.setdefault(line.order_id, []).append(line)
    order_events = {e.ref_id: e for e in events if e.kind is TimelineKind.SHOP_ORDER}
    for order in orders:
        assert order.currency == "JPY"
        assert order.ordered_at < now
        assert order.total_minor == sum(li.quantity * li.unit_price_minor for li in lines_of[order.id])
        assert {li.sku for li in lines_of[order.id]} <= set(data.PRODUCTS_BY_SKU)
        event = order_events[str(order.id)]
        assert event.occurred_at == order.ordered_at
        assert event.shopper_id == order.shopper_id
        assert order.external_id in event.summary
    assert len(order_events) == len(orders)

    messages_of: dict[Any, list[int]] = {}
    for message in messages:
        messages_of.setdefault(message.consultation_id, []).append(message.seq)
    consultation_events = {e.consultation_id: e for e in events if e.kind is TimelineKind.CONSULTATION}
    for c in consultations:
        assert c.status.value == "closed"
        assert c.advisor_id is not None
        assert c.accepted_at
        assert c.ended_at
        assert c.closed_at
        assert c.requested_at <= c.accepted_at <= c.ended_at <= c.closed_at < now
        assert sorted(messages_of[c.id]) == list(range(1, c.last_seq + 1))
        assert consultation_events[c.id].occurred_at == c.requested_at
    assert len(consultation_events) == len(consultations)
    assert {c.kind.value for c in consultations} == {"video", "voice", "chat"}
    assert any(c.nominated_advisor_id is not None for c in consultations)
    assert Counter(e.kind for e in events)[TimelineKind.PROFILE_CREATED] == len(shoppers)


async def test_seed_keeps_what_the_installation_already_has(db: Database) -> None:
    """A shopper already known by a demo identity keeps their profile and gains the history;
    a staff account with a demo e-mail keeps its password."""
    planned = build_plan(date(2030, 1, 1)).shoppers[0]
    async with db.transaction() as session:
        existing = Shopper(display_name="Already here")
        session.add(existing)
        await session.flush()
        session.add(
            ShopperIdentity(
                shopper_id=existing.id, kind=IdentityKind.SHOP_CUSTOMER_ID, value=planned.shop_customer_id
            )
        )
        session.add(
            Staff(
                email=data.STAFF[0].email,
                password_hash="not-a-demo-hash",
                role=Role.ADMIN,
                display_name="Real admin",
            )
        )
    await seed_demo(db)
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Shopper)) == 50
        assert await session.scalar(select(func.count()).where(ShopOrder.shopper_id == existing.id)) == len(
            planned.orders
        )
        admin = await session.scalar(select(Staff).where(Staff.email == data.STAFF[0].email))
        assert admin is not None
        assert admin.password_hash == "not-a-demo-hash"
    counts = await table_counts(db)
    await seed_demo(db)
    assert await table_counts(db) == counts


def test_plan_is_deterministic_and_its_ids_do_not_depend_on_the_day() -> None:
    day = date(2031, 5, 17)
    assert build_plan(day) == build_plan(day)
    earlier, later = build_plan(day), build_plan(day + timedelta(days=400))
    assert [s.id for s in earlier.shoppers] == [s.id for s in later.shoppers]
    assert [o.id for s in earlier.shoppers for o in s.orders] == [
        o.id for s in later.shoppers for o in s.orders
    ]
    assert [c.id for s in earlier.shoppers for c in s.consultations] == [
        c.id for s in later.shoppers for c in s.consultations
    ]


async def test_demo_admin_signs_in_with_the_demo_password(client: Any, db: Database) -> None:
    logins = await seed_demo(db)
    admin_email = next(email for role, email, _name in logins if role == "admin")
    response = await client.post("/api/v1/auth/login", json={"email": admin_email, "password": DEMO_PASSWORD})
    assert response.status == 200, await response.text()
    assert (await response.json())["role"] == "admin"
    me = await client.get("/api/v1/auth/me")
    assert me.status == 200
    assert (await me.json())["email"] == admin_email


def _run_demo_cli(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    env.update(LIVEDESK_DATA_DIR=str(data_dir), LIVEDESK_LOG_LEVEL="warning")
    return subprocess.run(
        [sys.executable, "-m", "livedesk", "demo", "--no-serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_cli_end_to_end_twice(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"
    counts = []
    for _run in range(2):
        result = _run_demo_cli(data_dir)
        assert result.returncode == 0, result.stderr
        assert "demo logins" in result.stdout
        assert DEMO_PASSWORD in result.stdout
        for profile in data.STAFF:
            assert profile.email in result.stdout
        database = Database(f"sqlite+aiosqlite:///{data_dir / 'livedesk.sqlite3'}")

        async def count(database: Database = database) -> dict[str, int]:
            try:
                return await table_counts(database)
            finally:
                await database.dispose()

        counts.append(asyncio.run(count()))
    assert counts[0] == counts[1]
    assert counts[0]["shoppers"] == 50
    assert counts[0]["staff"] == 9
