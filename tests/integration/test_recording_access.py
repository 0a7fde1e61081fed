"""Playback (HTTP Range, only staff who may see the shopper, every access audited), retention
(exactly once across processes) and erasure of recordings, on local and S3-compatible storage."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import func, select

from livedesk.app import create_app
from livedesk.kit.clock import utcnow
from livedesk.kit.context import SETTINGS
from livedesk.kit.db import Database
from livedesk.models import (
    AuditEntry,
    ConsentPolicy,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    Recording,
    RecordingConsent,
    RecordingStatus,
    Role,
    Shopper,
)
from livedesk.recording import service, storage
from livedesk.recording.recorder import sweep_expired
from livedesk.settings import Settings
from tests.conftest import StaffAccount, login

CONTENT = bytes(range(256)) * 1000  # 256,000 bytes, every offset recognisable


async def _recording(
    db: Database, app: web.Application, advisor: StaffAccount, *, expires_in_days: float = 30
) -> Recording:
    """A ready recording of a call the advisor had, with its file in the app's store."""
    now = utcnow()
    shopper = Shopper(id=uuid.uuid4(), display_name="Recorded Shopper")
    consultation = Consultation(
        id=uuid.uuid4(),
        shopper_id=shopper.id,
        kind=ConsultationKind.VIDEO,
        status=ConsultationStatus.CLOSED,
        advisor_id=advisor.id,
    )
    recording = Recording(
        id=uuid.uuid4(),
        consultation_id=consultation.id,
        shopper_id=shopper.id,
        advisor_id=advisor.id,
        status=RecordingStatus.READY,
        policy=ConsentPolicy.ASK,
        with_video=True,
        requested_at=now - timedelta(minutes=5),
        started_at=now - timedelta(minutes=5),
        stopped_at=now,
        ready_at=now,
        expires_at=now + timedelta(days=expires_in_days),
        duration_ms=300_000,
        size_bytes=len(CONTENT),
        storage_key=f"recordings/{uuid.uuid4()}/recording.webm",
    )
    local = app[SETTINGS].data_dir / f"upload-{recording.id}.webm"
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(CONTENT)
    await app[storage.RECORDING_STORE].put_file(recording.storage_key or "", local)
    async with db.transaction() as session:
        session.add(shopper)
        await session.flush()
        session.add(consultation)
        await session.flush()
        session.add(recording)
    return recording


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"recording_retention_check_seconds": 0})


async def _audits(db: Database, recording_id: uuid.UUID, action: str) -> list[AuditEntry]:
    async with db.read() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.target_id == str(recording_id), AuditEntry.action == action)
        )
        return list(rows)


async def test_playback_streams_ranges_to_the_advisor_and_audits_every_access(
    client: TestClient[Any, Any], app: web.Application, db: Database, make_staff: Any
) -> None:
    advisor = await make_staff(Role.ADVISOR)
    recording = await _recording(db, app, advisor)
    await login(client, advisor)
    url = f"/api/v1/recordings/{recording.id}/media"

    whole = await client.get(url)
    assert whole.status == 200
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert await whole.read() == CONTENT

    part = await client.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(CONTENT)}"
    assert await part.read() == CONTENT[1000:2000]

    tail = await client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status == 206
    assert await tail.read() == CONTENT[-10:]

    open_ended = await client.get(url, headers={"Range": "bytes=255990-"})
    assert await open_ended.read() == CONTENT[255990:]

    for bad in ("bytes=999999-", "bytes=5-2", "lines=1-2", "bytes=0-1,5-6"):
        refused = await client.get(url, headers={"Range": bad})
        assert refused.status == 416, bad
        assert refused.headers["Content-Range"] == f"bytes */{len(CONTENT)}"
        assert (await refused.json())["error"]["code"] == "range_not_satisfiable"

    audits = await _audits(db, recording.id, "recording.play")
    assert len(audits) == 8
    assert {a.actor_staff_id for a in audits} == {advisor.id}
    assert sorted(a.details["range"] for a in audits)[:3] == ["", "bytes=-10", "bytes=0-1,5-6"]

    meta = await client.get(f"/api/v1/recordings/{recording.id}")
    assert meta.status == 200
    body = await meta.json()
    assert body["duration_ms"] == 300_000
    assert body["size_bytes"] == len(CONTENT)
    listed = await client.get(f"/api/v1/shoppers/{recording.shopper_id}/recordings")
    assert [r["id"] for r in (await listed.json())["recordings"]] == [str(recording.id)]


async def test_staff_who_may_not_see_the_shopper_are_refused_and_audited(
    client: TestClient[Any, Any], app: web.Application, db: Database, make_staff: Any
) -> None:
    advisor = await make_staff(Role.ADVISOR)
    recording = await _recording(db, app, advisor)
    url = f"/api/v1/recordings/{recording.id}/media"

    anonymous = await client.get(url)
    assert anonymous.status == 401

    stranger = await make_staff(Role.ADVISOR)
    await login(client, stranger)
    refused = await client.get(url)
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "forbidden"
    assert (await client.get(f"/api/v1/recordings/{recording.id}")).status == 403
    assert (await client.get(f"/api/v1/shoppers/{recording.shopper_id}/recordings")).status == 403
    denied = await _audits(db, recording.id, "recording.play_denied")
    assert [a.actor_staff_id for a in denied] == [stranger.id]

    missing = await client.get(f"/api/v1/recordings/{uuid.uuid4()}/media")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "recording_not_found"

    supervisor = await make_staff(Role.SUPERVISOR)
    await login(client, supervisor)
    allowed = await client.get(url, headers={"Range": "bytes=0-9"})
    assert allowed.status == 206
    assert await allowed.read() == CONTENT[:10]
    assert [a.actor_staff_id for a in await _audits(db, recording.id, "recording.play")] == [supervisor.id]


async def test_expired_recordings_are_deleted_once_across_processes(
    app: web.Application, db: Database, make_staff: Any, settings: Settings, client: TestClient[Any, Any]
) -> None:
    advisor = await make_staff(Role.ADVISOR)
    expired = [await _recording(db, app, advisor, expires_in_days=-1) for _ in range(3)]
    kept = await _recording(db, app, advisor, expires_in_days=1)
    # A second process on the same database and storage.
    other = create_app(settings)
    async with TestClient(TestServer(other)):
        results = await asyncio.gather(sweep_expired(app), sweep_expired(other), sweep_expired(app))
    assert sum(results) == 3
    async with db.read() as session:
        left = list(await session.scalars(select(Recording.id)))
        audit_count = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "recording.expired")
        )
    assert left == [kept.id]
    assert audit_count == 3
    store = app[storage.RECORDING_STORE]
    for gone in expired:
        with pytest.raises(FileNotFoundError):
            await store.size(gone.storage_key or "")
    assert await store.size(kept.storage_key or "") == len(CONTENT)


async def test_erasing_a_shopper_deletes_their_recordings_files_and_rows(
    app: web.Application, db: Database, make_staff: Any, client: TestClient[Any, Any]
) -> None:
    advisor = await make_staff(Role.ADVISOR)
    recording = await _recording(db, app, advisor)
    other = await _recording(db, app, advisor)
    async with db.transaction() as session:
        session.add(
            RecordingConsent(
                id=uuid.uuid4(),
                recording_id=recording.id,
                participant="shopper",
                decision="accepted",
                decided_at=utcnow(),
            )
        )
    async with db.transaction() as session:
        assert await service.erase_for_shopper(session, recording.shopper_id, actor_staff_id=advisor.id) == 1
    async with db.read() as session:
        assert await session.get(Recording, recording.id) is None
        assert await session.get(Recording, other.id) is not None
        consents = await session.scalar(select(func.count()).select_from(RecordingConsent))
    assert consents == 0
    erased = await _audits(db, recording.id, "recording.erased")
    assert [a.actor_staff_id for a in erased] == [advisor.id]
    with pytest.raises(FileNotFoundError):
        await app[storage.RECORDING_STORE].size(recording.storage_key or "")
    # Nothing to erase is not an error.
    async with db.transaction() as session:
        assert await service.erase_for_shopper(session, uuid.uuid4()) == 0


# --- S3-compatible storage ------------------------------------------------------------------


class FakeS3:
    """A small S3-compatible server (PUT, GET with Range, HEAD, DELETE of objects): the edge
    the S3 store talks to, standing in for MinIO."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{bucket}/{key:.+}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["bucket"] + "/" + request.match_info["key"]
        self.requests.append((request.method, key))
        assert request.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=test-key/")
        if request.method == "PUT":
            self.objects[key] = await request.read()
            return web.Response(status=200, headers={"ETag": '"x"'})
        if request.method == "DELETE":
            self.objects.pop(key, None)
            return web.Response(status=204)
        data = self.objects.get(key)
        if data is None:
            missing = "<Error><Code>NoSuchKey</Code><Message>missing</Message></Error>"
            return web.Response(status=404, text=missing, content_type="application/xml")
        if request.method == "HEAD":
            return web.Response(status=200, headers={"Content-Length": str(len(data))})
        byte_range = request.headers.get("Range")
        if byte_range:
            first, last = byte_range.removeprefix("bytes=").split("-")
            start, end = int(first), min(int(last), len(data) - 1)
            return web.Response(
                status=206,
                body=data[start : end + 1],
                headers={"Content-Range": f"bytes {start}-{end}/{len(data)}"},
            )
        return web.Response(status=200, body=data)


@pytest.fixture
async def fake_s3() -> AsyncIterator[tuple[FakeS3, str]]:
    s3 = FakeS3()
    server = TestServer(s3.app())
    await server.start_server()
    yield s3, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_s3_store_puts_reads_ranges_and_deletes(fake_s3: tuple[FakeS3, str], tmp_path: Path) -> None:
    s3, endpoint = fake_s3
    settings = Settings(
        data_dir=tmp_path,
        recording_storage="s3",
        recording_object_endpoint=endpoint,
        recording_object_bucket="recs",
        recording_object_access_key="test-key",
        recording_object_secret_key=SecretStr("test-secret"),
    )
    store = storage.make_store(settings)
    assert isinstance(store, storage.S3Store)
    local = tmp_path / "up.webm"
    local.write_bytes(CONTENT)
    assert await store.put_file("recordings/a/recording.webm", local) == len(CONTENT)
    assert not local.exists()
    assert s3.objects["recs/recordings/a/recording.webm"] == CONTENT
    assert await store.size("recordings/a/recording.webm") == len(CONTENT)
    chunks = [c async for c in store.read("recordings/a/recording.webm", 100, 299)]
    assert b"".join(chunks) == CONTENT[100:300]
    back = tmp_path / "back.webm"
    await store.fetch("recordings/a/recording.webm", back)
    assert back.read_bytes() == CONTENT
    await store.delete("recordings/a/recording.webm")
    assert not s3.objects
    with pytest.raises(FileNotFoundError):
        await store.size("recordings/a/recording.webm")
    with pytest.raises(FileNotFoundError):
        await store.fetch("recordings/a/recording.webm", back)


async def test_the_app_plays_back_from_s3(
    fake_s3: tuple[FakeS3, str], settings: Settings, db: Database, make_staff: Any
) -> None:
    s3, endpoint = fake_s3
    s3_settings = settings.model_copy(
        update={
            "recording_storage": "s3",
            "recording_object_endpoint": endpoint,
            "recording_object_bucket": "recs",
            "recording_object_access_key": "test-key",
            "recording_object_secret_key": SecretStr("test-secret"),
        }
    )
    app = create_app(s3_settings)
    async with TestClient(TestServer(app)) as client:
        advisor = await make_staff(Role.ADVISOR)
        recording = await _recording(db, app, advisor)
        assert f"recs/{recording.storage_key}" in s3.objects
        await login(client, advisor)
        part = await client.get(f"/api/v1/recordings/{recording.id}/media", headers={"Range": "bytes=10-19"})
        assert part.status == 206
        assert await part.read() == CONTENT[10:20]
