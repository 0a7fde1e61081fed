"""Privacy: export one shopper's data as JSON (everything, merged profiles included, nobody
else's), erase (all gone, recordings too) or anonymise (rows kept, nothing names the person),
audited; only supervisors/admins export and only admins erase."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from livedesk.customers import history, merge, search, service
from livedesk.customers.schemas import ShopperCreate
from livedesk.integrations import shop
from livedesk.integrations.schemas import ChannelEventUpsert, OrderUpsert
from livedesk.kit.db import Database
from livedesk.models import (
    AuditEntry,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    Message,
    MessageKind,
    Role,
    SenderKind,
    ShopOrder,
    Shopper,
    ShopperIdentity,
    TimelineEvent,
)
from livedesk.models.integrations import ChannelEvent
from tests.conftest import login

Client = TestClient[web.Request, web.Application]
WHEN = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)


async def rich_shopper(db: Database, tag: str, staff_id: uuid.UUID) -> uuid.UUID:
    """A shopper with identities, an order, a store visit, a chat, a note and a merged twin."""
    order = OrderUpsert.model_validate(
        {
            "customer": {
                "shop_customer_id": f"S-{tag}",
                "email": f"{tag}@example.com",
                "display_name": f"Name {tag}",
            },
            "ordered_at": WHEN,
            "lines": [{"sku": "SERUM", "name": "Serum", "quantity": 1, "unit_price_minor": 4800}],
        }
    )
    visit = ChannelEventUpsert.model_validate(
        {
            "customer": {"shop_customer_id": f"S-{tag}"},
            "occurred_at": WHEN,
            "store_name": "Ginza",
            "description": "x",
        }
    )
    async with db.transaction() as session:
        done = await shop.upsert_order(session, f"O-{tag}", order)
        await shop.record_event(session, f"V-{tag}", visit, integration_id=None)
        c = Consultation(
            id=uuid.uuid4(),
            shopper_id=done.shopper_id,
            kind=ConsultationKind.CHAT,
            status=ConsultationStatus.CLOSED,
            notes=f"likes {tag}",
        )
        session.add(c)
        await session.flush()
        session.add(
            Message(
                id=uuid.uuid4(),
                consultation_id=c.id,
                seq=1,
                client_id="m1",
                sender_kind=SenderKind.SHOPPER,
                kind=MessageKind.TEXT,
                body=f"my skin is dry, {tag}",
            )
        )
        await history.add_note(session, done.shopper_id, f"called back {tag}", staff_id=staff_id)
        twin = await service.create_shopper(
            session, ShopperCreate(display_name=f"Twin {tag}", phone="090-1111-2222" if tag == "a" else None)
        )
        await merge.merge_shoppers(session, done.shopper_id, twin.shopper.id, actor_staff_id=staff_id)
    return done.shopper_id


async def test_export_holds_everything_of_one_shopper(client: Client, make_staff: Any, db: Database) -> None:
    supervisor = await make_staff(Role.SUPERVISOR)
    mine = await rich_shopper(db, "a", supervisor.id)
    await rich_shopper(db, "b", supervisor.id)
    await login(client, supervisor)
    response = await client.get(f"/api/v1/shoppers/{mine}/export")
    assert response.status == 200
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(await response.text())
    tables = data["tables"]
    assert data["shopper_id"] == str(mine)
    assert {s["display_name"] for s in tables["shoppers"]} == {"Name a", "Twin a"}
    assert [o["external_id"] for o in tables["shop_orders"]] == ["O-a"]
    assert [m["body"] for m in tables["messages"]] == ["my skin is dry, a"]
    assert {i["value"] for i in tables["shopper_identities"]} == {"S-a", "a@example.com", "+819011112222"}
    assert len(tables["channel_events"]) == 1
    assert len(tables["shopper_merges"]) == 1
    # Nothing of the other shopper.
    assert "b@example.com" not in json.dumps(data)
    async with db.read() as session:
        audited = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "shopper.export")
        )
    assert audited == 1


async def test_privacy_roles(client: Client, make_staff: Any, db: Database) -> None:
    staff = await make_staff(Role.SUPERVISOR)
    mine = await rich_shopper(db, "a", staff.id)
    assert (await client.get(f"/api/v1/shoppers/{mine}/export")).status == 401
    headers = await login(client, await make_staff(Role.ADVISOR))
    assert (await client.get(f"/api/v1/shoppers/{mine}/export")).status == 403
    body = {"mode": "erase", "confirm_shopper_id": str(mine)}
    assert (await client.post(f"/api/v1/shoppers/{mine}/erase", json=body, headers=headers)).status == 403
    client.session.cookie_jar.clear()
    headers = await login(client, await make_staff(Role.SUPERVISOR))
    assert (await client.post(f"/api/v1/shoppers/{mine}/erase", json=body, headers=headers)).status == 403


async def test_erase_removes_everything_and_is_audited(client: Client, make_staff: Any, db: Database) -> None:
    admin = await make_staff(Role.ADMIN)
    mine = await rich_shopper(db, "a", admin.id)
    other = await rich_shopper(db, "b", admin.id)
    headers = await login(client, admin)
    wrong = await client.post(
        f"/api/v1/shoppers/{mine}/erase",
        json={"mode": "erase", "confirm_shopper_id": str(other)},
        headers=headers,
    )
    assert wrong.status == 422
    response = await client.post(
        f"/api/v1/shoppers/{mine}/erase",
        json={"mode": "erase", "confirm_shopper_id": str(mine)},
        headers=headers,
    )
    assert response.status == 200, await response.text()
    counts = (await response.json())["counts"]
    assert counts["profiles"] == 2
    assert counts["shop_orders"] == 1
    assert counts["recordings"] == 0
    async with db.read() as session:
        profiles = (await session.scalars(select(Shopper.display_name))).all()
        orders = (await session.scalars(select(ShopOrder.external_id))).all()
        messages = (await session.scalars(select(Message.body))).all()
        visits = await session.scalar(select(func.count()).select_from(ChannelEvent))
        audit = await session.scalar(select(AuditEntry).where(AuditEntry.action == "shopper.erase"))
    assert sorted(profiles) == ["Name b", "Twin b"]
    assert orders == ["O-b"]
    assert messages == ["my skin is dry, b"]
    assert visits == 1
    assert audit is not None
    assert audit.target_id == str(mine)
    assert "a@example.com" not in json.dumps(audit.details)
    assert (await client.get(f"/api/v1/shoppers/{mine}")).status == 404


async def test_anonymise_keeps_rows_without_the_person(db: Database, make_staff: Any) -> None:
    from livedesk.customers.privacy import ANONYMOUS_NAME, ErasureMode, erase_shopper
    from livedesk.wiring.privacy import privacy_participants

    admin = await make_staff(Role.ADMIN)
    mine = await rich_shopper(db, "a", admin.id)
    async with db.transaction() as session:
        result = await erase_shopper(
            session, mine, ErasureMode.ANONYMISE, actor_staff_id=admin.id, participants=privacy_participants()
        )
    assert result.counts["shopper_identities"] == 3
    async with db.read() as session:
        shopper = await session.get(Shopper, mine)
        identities = await session.scalar(select(func.count()).select_from(ShopperIdentity))
        summaries = set((await session.scalars(select(TimelineEvent.summary))).all())
        bodies = (await session.scalars(select(Message.body))).all()
        notes = (await session.scalars(select(Consultation.notes))).all()
        orders = await session.scalar(select(func.count()).select_from(ShopOrder))
        hits = await search.search(session, "name")
    assert shopper is not None
    assert shopper.display_name == ANONYMOUS_NAME
    assert shopper.email is None
    assert identities == 0
    assert summaries == {""}
    assert bodies == [""]
    assert notes == [""]
    assert orders == 1  # still feeds recommendations, without the person
    assert hits == []


async def test_events_of_another_shopper_do_not_open(client: Client, make_staff: Any, db: Database) -> None:
    advisor = await make_staff(Role.ADVISOR)
    mine = await rich_shopper(db, "a", advisor.id)
    other = await rich_shopper(db, "b", advisor.id)
    async with db.read() as session:
        their_event = await session.scalar(
            select(TimelineEvent.id).where(TimelineEvent.shopper_id == other).limit(1)
        )
    await login(client, advisor)
    response = await client.get(f"/api/v1/shoppers/{mine}/timeline/{their_event}")
    assert response.status == 404
    assert (await client.get(f"/api/v1/shoppers/{other}/timeline/{their_event}")).status == 200


async def test_erasing_deletes_recordings_through_the_recording_service(
    db: Database, make_staff: Any
) -> None:
    from livedesk.customers.privacy import ErasureMode, erase_shopper
    from livedesk.models import Recording
    from livedesk.models.recordings import ConsentPolicy, RecordingStatus
    from livedesk.wiring.privacy import privacy_participants

    admin = await make_staff(Role.ADMIN)
    for mode in (ErasureMode.ANONYMISE, ErasureMode.ERASE):
        mine = await rich_shopper(db, f"r{mode.value}", admin.id)
        async with db.transaction() as session:
            consultation_id = await session.scalar(
                select(Consultation.id).where(Consultation.shopper_id == mine)
            )
            recording = Recording(
                id=uuid.uuid4(),
                consultation_id=consultation_id,
                shopper_id=mine,
                status=RecordingStatus.READY,
                policy=ConsentPolicy.ASK,
            )
            session.add(recording)
        async with db.transaction() as session:
            result = await erase_shopper(
                session, mine, mode, actor_staff_id=admin.id, participants=privacy_participants()
            )
        assert result.counts["recordings"] == 1
        async with db.read() as session:
            assert await session.get(Recording, recording.id) is None
            erased = await session.scalar(
                select(AuditEntry).where(
                    AuditEntry.action == "recording.erased", AuditEntry.target_id == str(recording.id)
                )
            )
        assert erased is not None
