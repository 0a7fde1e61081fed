"""Recordings by relationship, written as the attack: an advisor who served a shopper in one
consultation (say a call they booked or joined for themselves) must not list, read or play the
recording of another consultation of that shopper; the advisor who took that consultation
can, supervisors and admins can — and every read, allowed or refused, is audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from livedesk.kit.clock import utcnow
from livedesk.kit.context import SETTINGS
from livedesk.kit.db import Database
from livedesk.models import (
    AuditEntry,
    ConsentPolicy,
    Recording,
    RecordingStatus,
    Role,
    TimelineKind,
)
from livedesk.recording.storage import RECORDING_STORE
from livedesk.settings import Settings
from livedesk.timeline import append_event
from tests.conftest import StaffAccount, login

CONTENT = bytes(range(256)) * 40  # 10,240 bytes, every offset recognisable


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # An advisor whose console closed is offline at once: offers go where the test says.
    return settings.model_copy(update={"presence_grace_seconds": 0.0, "recording_retention_check_seconds": 0})


@dataclass
class Shared:
    """One shopper, two consultations with two advisors, a recording of each."""

    shopper_id: str
    taker: StaffAccount  # accepted consultation X
    other: StaffAccount  # accepted consultation Y of the same shopper (the attacker)
    x: Recording
    y: Recording
    x_event: uuid.UUID  # the timeline entries of the two recordings
    y_event: uuid.UUID


async def _serve(live: Any, advisor: StaffAccount, token: str) -> str:
    """The shopper asks for a video call with ``advisor`` (as the public pages let anyone
    holding the shopper's visit do), who accepts and closes it. Returns the consultation id."""
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    shopper = await live.shopper(token)
    joined = await shopper.ok(
        "queue.join",
        {"kind": "video", "nominated_advisor_id": str(advisor.id), "if_nominated_unavailable": "wait"},
    )
    ref = {"consultation_id": joined["id"]}
    await console.wait_for("offer.new", lambda o: o["id"] == joined["id"])
    await console.ok("offer.accept", ref)
    await console.ok("consultation.close", {**ref, "notes": "done"})
    await shopper.close()
    await console.close()
    return str(joined["id"])


async def _recording(
    db: Database, app: web.Application, consultation_id: str, shopper_id: str, advisor: StaffAccount, age: int
) -> tuple[Recording, uuid.UUID]:
    """A ready recording of the consultation with its file in the app's store, and its line on
    the shopper's timeline (as the recorder writes them)."""
    now = utcnow() - timedelta(minutes=age)
    recording = Recording(
        id=uuid.uuid4(),
        consultation_id=uuid.UUID(consultation_id),
        shopper_id=uuid.UUID(shopper_id),
        advisor_id=advisor.id,
        status=RecordingStatus.READY,
        policy=ConsentPolicy.ASK,
        with_video=True,
        requested_at=now,
        started_at=now,
        stopped_at=now,
        ready_at=now,
        expires_at=now + timedelta(days=30),
        duration_ms=60_000,
        size_bytes=len(CONTENT),
        storage_key=f"recordings/{uuid.uuid4()}/recording.webm",
    )
    local = app[SETTINGS].data_dir / f"upload-{recording.id}.webm"
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(CONTENT)
    await app[RECORDING_STORE].put_file(recording.storage_key or "", local)
    async with db.transaction() as session:
        session.add(recording)
        await session.flush()
        event = await append_event(
            session,
            recording.shopper_id,
            TimelineKind.RECORDING,
            "recording ready (60 s, 10 KiB)",
            {"recording_id": recording.id, "status": "ready", "duration_ms": 60_000},
            consultation_id=recording.consultation_id,
            ref_id=str(recording.id),
        )
    return recording, event.id


@pytest.fixture
async def shared(live: Any, app: web.Application, db: Database, make_staff: Any) -> Shared:
    taker = await make_staff(Role.ADVISOR)
    other = await make_staff(Role.ADVISOR)
    visit = await live.visitor()
    x_id = await _serve(live, taker, visit["token"])
    # The attacker gets to serve the same shopper in a consultation of their own.
    y_id = await _serve(live, other, visit["token"])
    x, x_event = await _recording(db, app, x_id, visit["shopper_id"], taker, age=10)
    y, y_event = await _recording(db, app, y_id, visit["shopper_id"], other, age=5)
    return Shared(visit["shopper_id"], taker, other, x, y, x_event, y_event)


async def _audits(db: Database, actor: StaffAccount) -> list[tuple[str, str]]:
    """(action, target id) of the actor's recording audit entries, oldest first."""
    async with db.read() as session:
        rows = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.actor_staff_id == actor.id, AuditEntry.action.startswith("recording."))
            .order_by(AuditEntry.at)
        )
        return [(a.action, a.target_id) for a in rows]


async def _list_audit(db: Database, actor: StaffAccount) -> dict[str, Any]:
    async with db.read() as session:
        row = await session.scalar(
            select(AuditEntry).where(
                AuditEntry.actor_staff_id == actor.id, AuditEntry.action == "recording.list"
            )
        )
    assert row is not None
    return dict(row.details)


async def test_an_advisor_who_served_the_shopper_elsewhere_gets_nothing_of_another_consultation(
    live: Any, db: Database, shared: Shared
) -> None:
    await login(live.http, shared.other)
    x = str(shared.x.id)

    listed = await live.http.get(f"/api/v1/shoppers/{shared.shopper_id}/recordings")
    assert listed.status == 200
    assert [r["id"] for r in (await listed.json())["recordings"]] == [str(shared.y.id)]

    meta = await live.http.get(f"/api/v1/recordings/{x}")
    assert meta.status == 403
    assert (await meta.json())["error"]["code"] == "forbidden"
    for headers in ({}, {"Range": "bytes=0-99"}):
        media = await live.http.get(f"/api/v1/recordings/{x}/media", headers=headers)
        assert media.status == 403
        body = await media.json()
        assert body["error"]["code"] == "forbidden"
        assert media.headers["Content-Type"].startswith("application/json")

    # The history hands out no player for X; the advisor's own recording plays.
    opened = await live.http.get(f"/api/v1/shoppers/{shared.shopper_id}/timeline/{shared.x_event}")
    assert opened.status == 200
    assert "recording" not in (await opened.json())["detail"]
    own = await live.http.get(f"/api/v1/shoppers/{shared.shopper_id}/timeline/{shared.y_event}")
    assert (await own.json())["detail"]["recording"]["media_url"] == f"/api/v1/recordings/{shared.y.id}/media"
    played = await live.http.get(f"/api/v1/recordings/{shared.y.id}/media")
    assert played.status == 200
    assert await played.read() == CONTENT

    audits = await _audits(db, shared.other)
    # Nothing about X is recorded as a successful access; every refusal is.
    assert [a for a in audits if a[1] == x] == [
        ("recording.view_denied", x),
        ("recording.play_denied", x),
        ("recording.play_denied", x),
    ]
    assert ("recording.play", str(shared.y.id)) in audits
    assert (await _list_audit(db, shared.other))["recording_ids"] == [str(shared.y.id)]


async def test_the_advisor_who_took_the_consultation_lists_reads_and_plays_it_audited(
    live: Any, db: Database, shared: Shared
) -> None:
    await login(live.http, shared.taker)
    x = str(shared.x.id)
    listed = await live.http.get(f"/api/v1/shoppers/{shared.shopper_id}/recordings")
    assert [r["id"] for r in (await listed.json())["recordings"]] == [x]
    meta = await live.http.get(f"/api/v1/recordings/{x}")
    assert meta.status == 200
    assert (await meta.json())["media_url"] == f"/api/v1/recordings/{x}/media"
    part = await live.http.get(f"/api/v1/recordings/{x}/media", headers={"Range": "bytes=100-199"})
    assert part.status == 206
    assert await part.read() == CONTENT[100:200]
    # The attacker's recording is as closed to the taker as X is to the attacker.
    assert (await live.http.get(f"/api/v1/recordings/{shared.y.id}/media")).status == 403

    audits = await _audits(db, shared.taker)
    assert ("recording.view", x) in audits
    assert ("recording.play", x) in audits
    assert ("recording.play_denied", str(shared.y.id)) in audits
    assert ("recording.play", str(shared.y.id)) not in audits
    listing = await _list_audit(db, shared.taker)
    assert (listing["recording_ids"], listing["scope"]) == ([x], "own")


@pytest.mark.parametrize("role", [Role.SUPERVISOR, Role.ADMIN])
async def test_supervisors_and_admins_reach_every_recording_and_are_audited(
    live: Any, db: Database, make_staff: Any, shared: Shared, role: Role
) -> None:
    reader = await make_staff(role)
    await login(live.http, reader)
    listed = await live.http.get(f"/api/v1/shoppers/{shared.shopper_id}/recordings")
    assert [r["id"] for r in (await listed.json())["recordings"]] == [str(shared.y.id), str(shared.x.id)]
    for recording in (shared.x, shared.y):
        part = await live.http.get(f"/api/v1/recordings/{recording.id}/media", headers={"Range": "bytes=-16"})
        assert part.status == 206
        assert await part.read() == CONTENT[-16:]
    opened = await live.http.get(f"/api/v1/shoppers/{shared.shopper_id}/timeline/{shared.x_event}")
    assert (await opened.json())["detail"]["recording"][
        "media_url"
    ] == f"/api/v1/recordings/{shared.x.id}/media"

    audits = await _audits(db, reader)
    assert audits == [
        ("recording.list", shared.shopper_id),
        ("recording.play", str(shared.x.id)),
        ("recording.play", str(shared.y.id)),
    ]
    listing = await _list_audit(db, reader)
    assert listing["scope"] == "all"
    assert listing["role"] == role.value


async def test_staff_who_never_served_the_shopper_are_refused_the_list_and_it_is_audited(
    live: Any, db: Database, make_staff: Any, shared: Shared
) -> None:
    stranger = await make_staff(Role.ADVISOR)
    await login(live.http, stranger)
    listed = await live.http.get(f"/api/v1/shoppers/{shared.shopper_id}/recordings")
    assert listed.status == 403
    assert (await listed.json())["error"]["code"] == "forbidden"
    assert (await live.http.get(f"/api/v1/recordings/{shared.x.id}/media")).status == 403
    assert await _audits(db, stranger) == [
        ("recording.list_denied", shared.shopper_id),
        ("recording.play_denied", str(shared.x.id)),
    ]
