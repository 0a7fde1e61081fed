"""Abuse budgets, each written as the attack first (issue 18, item 6): typing and read floods,
sockets piled on one token or one address, queue floods from one address and network, uploads
by a shopper nobody has taken, past a quota or declaring a huge image, and unsent files kept.

Client addresses come from X-Forwarded-For, believed from the test client (a trusted proxy)."""

from __future__ import annotations

import asyncio
import struct
import uuid
import zlib
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update

from livedesk.consultations import file_sweep
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import ChatFile, Consultation, ConsultationStatus
from livedesk.settings import Settings
from tests.conftest import SocketClient, login, wait_until
from tests.integration.test_chat_files import (
    advisor_console,
    bearer,
    error_of,
    files_url,
    form,
    open_chat,
    png,
    png_of_size,
    stored_files,
)

__all__ = ["anon"]
from tests.integration.test_chat_files import anon

FILE_LIMIT = 2048


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "trusted_proxies": ["127.0.0.1"],
            "upload_max_bytes": FILE_LIMIT,
            "upload_shopper_bytes_per_day": 4096,
            "upload_consultation_bytes": 6144,
        }
    )


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def _token(live: Any, address: str) -> str:
    response = await live.http.post("/api/v1/visitors", json={}, headers=_from(address))
    assert response.status == 201, await response.text()
    return str((await response.json())["token"])


async def _connect(live: Any, token: str, address: str) -> SocketClient | dict[str, Any]:
    """A shopper socket from ``address``, or the connect_error data it was refused with."""
    sock = SocketClient("/shopper")
    try:
        await sock.connect(live.url, auth={"token": token}, headers=_from(address))
    except Exception:
        refused = sock.received("connect_error")
        assert refused, "refused without a connect_error"
        return dict(refused[0]["data"])
    return sock


def _code(ack: dict[str, Any]) -> str:
    return "ok" if ack["ok"] else str(ack["error"]["code"])


# --- typing and read receipts -----------------------------------------------------------------


async def test_a_typing_flood_is_coalesced_and_refused_past_its_budget(live: Any, make_staff: Any) -> None:
    _, console = await advisor_console(live, make_staff)
    chat = await open_chat(live, console)
    ref = {"consultation_id": chat.id}
    started = asyncio.get_running_loop().time()
    acks = await asyncio.gather(
        *(chat.shopper.call("chat.typing", {**ref, "typing": True}, deadline=30) for _ in range(1000))
    )
    elapsed = asyncio.get_running_loop().time() - started
    codes = [_code(ack) for ack in acks]
    assert set(codes) == {"ok", "rate_limited"}
    assert codes.count("ok") <= 20  # LIVEDESK_TYPING_RATE_LIMIT
    refused = next(ack for ack in acks if not ack["ok"])
    assert refused["error"]["details"]["retry_after"] >= 1
    await console.wait_for("chat.typing")
    # One relay per second at most: the first at once, the same state again only later.
    assert len(console.received("chat.typing")) <= 1 + int(elapsed)

    # The advisor types and stops four times in a row: the shopper sees the first state at
    # once and the last one at the end of the window, nothing in between.
    for typing in (True, False, True, False):
        assert (await console.ok("chat.typing", {**ref, "typing": typing})) is not None
    await chat.shopper.wait_for("chat.typing", lambda e: e["typing"] is False)
    assert [e["typing"] for e in chat.shopper.received("chat.typing")] == [True, False]


async def test_repeated_read_receipts_write_nothing_and_are_limited(live: Any, make_staff: Any) -> None:
    _, console = await advisor_console(live, make_staff)
    chat = await open_chat(live, console)
    ref = {"consultation_id": chat.id}
    await console.ok("chat.send", {**ref, "client_id": "adv-budget-0001", "body": "hello"})
    acks = await asyncio.gather(
        *(chat.shopper.call("chat.read", {**ref, "seq": 1}, deadline=30) for _ in range(200))
    )
    codes = [_code(ack) for ack in acks]
    assert set(codes) == {"ok", "rate_limited"}
    assert codes.count("ok") <= 60  # LIVEDESK_READ_RATE_LIMIT
    assert all(ack["data"] == {"seq": 1} for ack in acks if ack["ok"])
    await console.wait_for("chat.read")
    # A later event proves the fan-out has caught up: the repeats told nobody anything.
    await chat.shopper.ok("chat.send", {**ref, "client_id": "shop-budget-01", "body": "thanks"})
    await console.wait_for("chat.message", lambda m: m["body"] == "thanks")
    assert len(console.received("chat.read")) == 1


# --- sockets --------------------------------------------------------------------------------


class TestSocketCaps:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"shopper_sockets_per_address": 15})

    async def test_sockets_per_token_and_per_address_are_capped(self, live: Any) -> None:
        address = "203.0.113.50"
        token = await _token(live, address)
        # 40 at once on one token: the check and its count are one step, so exactly 10 get in.
        results = await asyncio.gather(*(_connect(live, token, address) for _ in range(40)))
        opened = [r for r in results if isinstance(r, SocketClient)]
        refusals = [r for r in results if isinstance(r, dict)]
        try:
            assert len(opened) == 10  # LIVEDESK_SHOPPER_SOCKETS_PER_TOKEN
            assert {r["code"] for r in refusals} == {"too_many_sockets"}
            assert "10" in refusals[0]["message"]
            # Closing one makes room for one.
            await opened.pop().close()
            again = await _connect(live, token, address)
            assert isinstance(again, SocketClient)
            opened.append(again)
            # Other tokens from the same address: 15 sockets in all (the setting here).
            for _ in range(5):
                other = await _connect(live, await _token(live, address), address)
                assert isinstance(other, SocketClient)
                opened.append(other)
            refused = await _connect(live, await _token(live, address), address)
            assert isinstance(refused, dict)
            assert refused["code"] == "too_many_sockets_address"
            # Another address is not affected.
            elsewhere = await _connect(live, await _token(live, "198.51.100.9"), "198.51.100.9")
            assert isinstance(elsewhere, SocketClient)
            opened.append(elsewhere)
        finally:
            for sock in opened:
                await sock.close()


# --- queue ----------------------------------------------------------------------------------


async def _waiting(db: Database) -> int:
    async with db.read() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Consultation)
            .where(Consultation.status.in_((ConsultationStatus.QUEUED, ConsultationStatus.OFFERED)))
        )
    return int(count or 0)


async def test_queue_floods_from_one_address_and_network_do_not_push_a_real_shopper_back(
    live: Any, db: Database
) -> None:
    # 40 fresh visitors (tokens minted elsewhere) join from one address at once.
    tokens = [await _token(live, f"192.0.2.{i}") for i in range(40)]
    flooders = [await _connect(live, token, "203.0.113.7") for token in tokens]
    assert all(isinstance(s, SocketClient) for s in flooders)
    socks: list[SocketClient] = [s for s in flooders if isinstance(s, SocketClient)]
    acks = await asyncio.gather(*(s.call("queue.join", {"kind": "chat"}, deadline=30) for s in socks))
    codes = [_code(ack) for ack in acks]
    assert codes.count("ok") == 5  # LIVEDESK_QUEUE_WAITING_PER_ADDRESS
    assert set(codes) == {"ok", "queue_limit_address", "rate_limited"}
    assert await _waiting(db) == 5

    # Neighbours in the same /24: the network's share is 15 in all.
    neighbours = []
    for i in range(12):
        sock = await _connect(live, await _token(live, f"192.0.2.{100 + i}"), f"203.0.113.{100 + i}")
        assert isinstance(sock, SocketClient)
        socks.append(sock)
        neighbours.append(_code(await sock.call("queue.join", {"kind": "chat"})))
    assert neighbours == ["ok"] * 10 + ["queue_limit_network"] * 2
    assert await _waiting(db) == 15

    # A real shopper elsewhere is 16th, not 53rd.
    real = await _connect(live, await _token(live, "198.51.100.20"), "198.51.100.20")
    assert isinstance(real, SocketClient)
    joined = await real.ok("queue.join", {"kind": "chat"})
    place = await real.wait_for("queue.position", lambda p: p["consultation_id"] == joined["id"])
    assert place["position"] == 16

    # Flooders that drop their sockets stop counting at once (not after the grace period).
    for sock in socks:
        await sock.close()

    async def real_is_first() -> bool:
        (mine,) = await real.ok("consultation.current")
        return bool(mine["queue"]["position"] == 1)

    await wait_until(real_is_first)
    await real.close()


class TestFullQueue:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"queue_max_waiting": 2})

    async def test_a_full_queue_refuses_new_joins(self, live: Any) -> None:
        codes = []
        for i in range(3):
            address = f"100.{64 + i}.0.1"  # a network of its own each
            sock = await _connect(live, await _token(live, address), address)
            assert isinstance(sock, SocketClient)
            try:
                codes.append(_code(await sock.call("queue.join", {"kind": "chat"})))
            finally:
                await sock.close()
        assert codes == ["ok", "ok", "queue_full"]


# --- uploads --------------------------------------------------------------------------------


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


async def test_a_waiting_shopper_cannot_upload(
    live: Any, anon: aiohttp.ClientSession, settings: Settings, db: Database
) -> None:
    token = (await live.visitor())["token"]
    shopper = await live.shopper(token)
    joined = await shopper.ok("queue.join", {"kind": "chat"})
    response = await anon.post(files_url(joined["id"]), data=form(png()), headers=bearer(token))
    assert response.status == 409
    assert (await error_of(response))["code"] == "not_accepted"
    assert stored_files(settings) == []
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(ChatFile)) == 0


async def test_upload_quotas_per_shopper_and_per_consultation(
    live: Any, make_staff: Any, client: Any, anon: aiohttp.ClientSession, settings: Settings
) -> None:
    advisor, console = await advisor_console(live, make_staff)
    chat = await open_chat(live, console)
    image = png_of_size(2000)
    for _ in range(2):
        ok = await anon.post(files_url(chat.id), data=form(image), headers=bearer(chat.token))
        assert ok.status == 201, await ok.text()
    # The shopper's 4096 bytes a day are spent (96 left): refused before the body is stored.
    over = await anon.post(files_url(chat.id), data=form(image), headers=bearer(chat.token))
    assert over.status == 413
    error = await error_of(over)
    assert error["code"] == "upload_quota_exceeded"
    assert error["details"] == {"quota_left": 96}
    # The advisor is held by the consultation's 6144 bytes only.
    csrf = await login(client, advisor)
    advisor_ok = await client.post(files_url(chat.id), data=form(image), headers=csrf)
    assert advisor_ok.status == 201, await advisor_ok.text()
    advisor_over = await client.post(files_url(chat.id), data=form(image), headers=csrf)
    assert advisor_over.status == 413
    assert (await error_of(advisor_over))["code"] == "upload_quota_exceeded"
    assert len(stored_files(settings)) == 3


async def test_an_image_declaring_huge_dimensions_is_refused(
    live: Any, make_staff: Any, anon: aiohttp.ClientSession, settings: Settings
) -> None:
    _, console = await advisor_console(live, make_staff)
    chat = await open_chat(live, console)
    bomb = _png_declaring(16000, 16000)
    assert len(bomb) < 200
    response = await anon.post(files_url(chat.id), data=form(bomb), headers=bearer(chat.token))
    assert response.status == 422
    error = await error_of(response)
    assert error["code"] == "image_too_large"
    assert error["details"] == {"width": 16000, "height": 16000, "max_pixels": 40_000_000}
    # A header cut short says nothing of its size: refused too.
    cut = await anon.post(files_url(chat.id), data=form(bomb[:20]), headers=bearer(chat.token))
    assert cut.status == 422
    assert (await error_of(cut))["code"] == "image_unreadable"
    # An ordinary image still goes through.
    fine = await anon.post(
        files_url(chat.id), data=form(_png_declaring(4000, 3000)), headers=bearer(chat.token)
    )
    assert fine.status == 201, await fine.text()
    assert len(stored_files(settings)) == 1


class TestDiskHighWater:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        # Any disk in use is past 1 %.
        return settings.model_copy(update={"upload_disk_high_water_percent": 1})

    async def test_uploads_stop_when_the_disk_is_nearly_full(
        self, live: Any, make_staff: Any, anon: aiohttp.ClientSession, settings: Settings
    ) -> None:
        _, console = await advisor_console(live, make_staff)
        chat = await open_chat(live, console)
        response = await anon.post(files_url(chat.id), data=form(png()), headers=bearer(chat.token))
        assert response.status == 507
        assert (await error_of(response))["code"] == "storage_full"
        assert stored_files(settings) == []


async def test_unsent_uploads_go_within_minutes_even_behind_many_sent_ones(
    live: Any,
    make_staff: Any,
    anon: aiohttp.ClientSession,
    db: Database,
    client: TestClient[Any, Any],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, console = await advisor_console(live, make_staff)
    chat = await open_chat(live, console)

    async def upload() -> str:
        response = await anon.post(files_url(chat.id), data=form(png()), headers=bearer(chat.token))
        assert response.status == 201, await response.text()
        return str((await response.json())["id"])

    sent = [await upload() for _ in range(3)]
    unsent, recent = await upload(), await upload()
    for i, file_id in enumerate(sent):
        await chat.shopper.ok(
            "chat.send",
            {
                "consultation_id": chat.id,
                "client_id": f"img-budget-{i}",
                "kind": "image",
                "data": {"file_id": file_id},
            },
        )
    minutes = settings.unsent_file_minutes
    assert minutes <= 10
    # The sent files are older still: a batch of the oldest files would hold only them.
    for offset, file_id in [(60, f) for f in sent] + [(minutes + 1, unsent)]:
        async with db.transaction() as session:
            await session.execute(
                update(ChatFile)
                .where(ChatFile.id == uuid.UUID(file_id))
                .values(created_at=utcnow() - timedelta(minutes=offset))
            )
    monkeypatch.setattr(file_sweep, "BATCH", 2)

    assert await file_sweep.sweep_once(client.server.app, minutes) == 1
    async with db.read() as session:
        left = {str(i) for i in await session.scalars(select(ChatFile.id))}
    assert left == {*sent, recent}
    assert {p.name for p in stored_files(settings)} == {*sent, recent}
    # Nothing more is due: the next minute's pass is a read, and deletes nothing.
    async with db.read() as session:
        assert not await file_sweep.anything_due(session, utcnow() - timedelta(minutes=minutes))
    assert await file_sweep.sweep_once(client.server.app, minutes) == 0
