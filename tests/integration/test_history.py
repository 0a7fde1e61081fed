"""Unified history: notes on the timeline, one event opened in full (chat transcript, order
lines, recording player address), a guest visit linked to the signed-in shop customer with a
merge record, and shoppers never reaching staff history routes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from livedesk.identity import sign_shop_customer_id
from livedesk.integrations import shop
from livedesk.integrations.schemas import OrderUpsert
from livedesk.kit.db import Database
from livedesk.models import AuditEntry, Role, ShopperMerge, TimelineEvent, TimelineKind
from livedesk.settings import Settings
from livedesk.timeline import append_event
from tests.conftest import login

SHOP_SECRET = "shop-secret-for-history-tests"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"shop_signing_secret": SecretStr(SHOP_SECRET), "presence_grace_seconds": 0.0}
    )


async def test_notes_land_on_the_timeline(live: Any, make_staff: Any) -> None:
    advisor = await make_staff(Role.ADVISOR)
    visitor = await live.visitor()
    headers = await login(live.http, advisor)
    path = f"/api/v1/shoppers/{visitor['shopper_id']}/notes"
    created = await live.http.post(
        path, json={"text": "Prefers evening calls\nsensitive skin"}, headers=headers
    )
    assert created.status == 201, await created.text()
    assert (await created.json())["summary"] == "Prefers evening calls"
    empty = await live.http.post(path, json={"text": "   "}, headers=headers)
    assert empty.status == 422
    page = await (await live.http.get(f"/api/v1/shoppers/{visitor['shopper_id']}/timeline?kind=note")).json()
    [note] = page["events"]
    assert note["data"]["text"] == "Prefers evening calls\nsensitive skin"
    assert note["actor_staff_id"] == str(advisor.id)
    detail = await (
        await live.http.get(f"/api/v1/shoppers/{visitor['shopper_id']}/timeline/{note['id']}")
    ).json()
    assert detail["detail"]["actor_name"] == advisor.email.split("@")[0]


async def test_consultation_event_opens_with_its_transcript(live: Any, make_staff: Any) -> None:
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    visitor = await live.visitor()
    shopper = await live.shopper(visitor["token"])
    consultation = await shopper.ok("queue.join", {"kind": "chat"})
    await console.wait_for("offer.new")
    ref = {"consultation_id": consultation["id"]}
    await console.ok("offer.accept", ref)
    await shopper.ok("chat.send", {**ref, "client_id": "h-000001", "body": "Which serum for dry skin?"})
    await console.ok("chat.send", {**ref, "client_id": "h-000002", "body": "Try the hydrating one."})
    await console.ok("consultation.close", {**ref, "notes": "recommended serum"})

    await login(live.http, advisor)
    page = await (
        await live.http.get(f"/api/v1/shoppers/{visitor['shopper_id']}/timeline?kind=consultation")
    ).json()
    closed = next(e for e in page["events"] if e["summary"].endswith("closed"))
    response = await live.http.get(f"/api/v1/shoppers/{visitor['shopper_id']}/timeline/{closed['id']}")
    assert response.status == 200
    detail = (await response.json())["detail"]
    assert detail["consultation"]["notes"] == "recommended serum"
    assert [(m["sender"], m["body"]) for m in detail["transcript"] if m["kind"] == "text"] == [
        ("shopper", "Which serum for dry skin?"),
        ("staff", "Try the hydrating one."),
    ]


async def test_order_and_recording_events_open_in_full(live: Any, make_staff: Any, db: Database) -> None:
    body = OrderUpsert.model_validate(
        {
            "customer": {"shop_customer_id": "C-77"},
            "ordered_at": datetime(2026, 10, 3, tzinfo=UTC),
            "store_name": "Ginza",
            "channel": "store",
            "lines": [{"sku": "CREAM", "name": "Night cream", "quantity": 2, "unit_price_minor": 5200}],
        }
    )
    recording_id = uuid.uuid4()
    async with db.transaction() as session:
        done = await shop.upsert_order(session, "O-77", body)
        rec = await append_event(
            session,
            done.shopper_id,
            TimelineKind.RECORDING,
            "Recording ready",
            {"recording_id": recording_id},
        )
    # A supervisor: an advisor gets a recording's player address only for their own
    # consultations (tests/integration/test_recording_reach.py).
    await login(live.http, await make_staff(Role.SUPERVISOR))
    async with db.read() as session:
        order_event = await session.scalar(
            select(TimelineEvent.id).where(TimelineEvent.kind == TimelineKind.SHOP_ORDER)
        )
    order = await (await live.http.get(f"/api/v1/shoppers/{done.shopper_id}/timeline/{order_event}")).json()
    assert order["detail"]["order"]["lines"] == [
        {"sku": "CREAM", "name": "Night cream", "quantity": 2, "unit_price_minor": 5200}
    ]
    assert order["detail"]["order"]["store_name"] == "Ginza"
    recording = await (await live.http.get(f"/api/v1/shoppers/{done.shopper_id}/timeline/{rec.id}")).json()
    assert recording["detail"]["recording"]["media_url"] == f"/api/v1/recordings/{recording_id}/media"


async def test_guest_visit_links_to_the_signed_in_customer(live: Any, db: Database) -> None:
    guest = await live.visitor()
    shopper = await live.shopper(guest["token"])
    await shopper.ok("queue.join", {"kind": "chat"})
    signed = await live.visitor(
        shop_customer_id="C-500",
        shop_signature=sign_shop_customer_id(SHOP_SECRET, "C-500"),
        previous_token=guest["token"],
    )
    assert signed["linked"] is True
    assert signed["shopper_id"] != guest["shopper_id"]
    async with db.read() as session:
        record = await session.scalar(select(ShopperMerge))
        audit = await session.scalar(select(AuditEntry).where(AuditEntry.action == "shopper.merge"))
        moved = (
            await session.scalars(
                select(TimelineEvent.kind).where(TimelineEvent.shopper_id == uuid.UUID(signed["shopper_id"]))
            )
        ).all()
    assert record is not None
    assert str(record.merged_id) == guest["shopper_id"]
    assert str(record.survivor_id) == signed["shopper_id"]
    assert audit is not None
    # The guest's consultation is now on the customer's timeline.
    assert TimelineKind.CONSULTATION in moved
    # A token of a known customer is never merged into someone else.
    other = await live.visitor(
        shop_customer_id="C-501",
        shop_signature=sign_shop_customer_id(SHOP_SECRET, "C-501"),
        previous_token=signed["token"],
    )
    async with db.read() as session:
        merges = (await session.scalars(select(ShopperMerge))).all()
    assert len(merges) == 1
    assert other["shopper_id"] != signed["shopper_id"]


async def test_shoppers_cannot_read_staff_history(live: Any) -> None:
    mine = await live.visitor()
    theirs = await live.visitor()
    bearer = {"Authorization": f"Bearer {mine['token']}"}
    for path in (
        f"/api/v1/shoppers/{theirs['shopper_id']}/timeline",
        f"/api/v1/shoppers/{mine['shopper_id']}/timeline",
        f"/api/v1/shoppers/{theirs['shopper_id']}/recommendations",
        f"/api/v1/shoppers/{theirs['shopper_id']}/export",
        "/api/v1/customers/search?q=guest",
    ):
        response = await live.http.get(path, headers=bearer)
        assert response.status == 401, path
