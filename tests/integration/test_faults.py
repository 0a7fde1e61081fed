"""Fault tests: an app process killed mid-call and mid-chat, Redis restarted, the database
unreachable for a few seconds.

- Kill: real ``livedesk serve`` processes share the database and Redis. The shopper's process
  dies (SIGKILL) in the middle of a call: the consultation stays active (the media is
  peer-to-peer, no server in its path), the shopper's page reconnects to the other process
  and signalling resumes there (ICE restart: restart → offer → answer). Then the advisor's
  process dies in the middle of a chat burst: both reconnect to a third process and every
  message is stored exactly once, in order (``chat.sync`` + re-sending the un-acked).
- Redis: two processes on a private ``redis-server`` (never the machine's, which others use)
  that is stopped and started again: chat goes on being stored and acknowledged meanwhile,
  what was missed is caught up with ``chat.sync``, and live fan-out between the processes
  comes back without restarting either process.
- Database: the app reaches PostgreSQL through a small TCP proxy of this test, which is cut
  for a few seconds (on SQLite, another connection holds the write lock instead): clear
  errors (``/readyz`` 503, ``database_unavailable``), never a stack trace, and service comes
  back by itself.

Stripe webhook faults (duplicated, delayed, out of order) belong to the payments tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest
from sqlalchemy import select

from livedesk.kit.db import Database
from livedesk.models import Consultation, ConsultationStatus, Message, Role
from livedesk.settings import Settings
from tests.conftest import SocketClient, StaffAccount
from tests.integration.test_multiprocess import (
    REDIS_URL,
    Cluster,
    Server,
    _free_port,
    shopper_socket,
    staff_socket,
    wait_ready,
    wait_until,
)

# --- helpers ----------------------------------------------------------------------------------


async def _close(sockets: list[SocketClient]) -> None:
    for sock in sockets:
        with contextlib.suppress(Exception):
            if sock.sio.connected:
                await sock.close()
            else:  # dropped with its process: engine.io leaves its HTTP session open then
                if sock.sio.eio.read_loop_task is not None:
                    await asyncio.wait_for(sock.sio.eio.read_loop_task, 5)
                if sock.sio.eio.http is not None:
                    await sock.sio.eio.http.close()
                await sock.http.close()


async def _visitor(server: Server) -> str:
    async with aiohttp.ClientSession() as http:
        response = await http.post(server.url + "/api/v1/visitors", json={})
        assert response.status == 201, await response.text()
        token: str = (await response.json())["token"]
        return token


async def _active(shopper: SocketClient, console: SocketClient, kind: str = "video") -> str:
    cid: str = (await shopper.ok("queue.join", {"kind": kind}))["id"]
    await console.wait_for("offer.new", lambda o: o["id"] == cid, within=10)
    await console.ok("offer.accept", {"consultation_id": cid})
    await shopper.wait_for("consultation.updated", lambda c: c["id"] == cid and c["status"] == "active")
    return cid


async def _kill(server: Server) -> None:
    os.kill(server.proc.pid, signal.SIGKILL)
    assert await asyncio.to_thread(server.proc.wait, 10) == -signal.SIGKILL


async def _dropped(*socks: SocketClient) -> None:
    async def gone() -> bool:
        return not any(s.sio.connected for s in socks)

    await wait_until(gone, "sockets noticing their process died", within=15)


async def _stored(db: Database, cid: str) -> list[tuple[int, str]]:
    async with db.read() as session:
        rows = (
            await session.execute(
                select(Message.seq, Message.client_id)
                .where(Message.consultation_id == uuid.UUID(cid))
                .order_by(Message.seq)
            )
        ).all()
    return [(seq, client_id) for seq, client_id in rows]


def _env(database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    env.update(
        {
            "LIVEDESK_HOST": "127.0.0.1",
            "LIVEDESK_DATABASE_URL": database_url,
            "LIVEDESK_REDIS_URL": redis_url,
            "LIVEDESK_REDIS_CHANNEL": f"livedesk-faults-{uuid.uuid4().hex}",
            "LIVEDESK_SECRET_KEY": "faults-secret-" + uuid.uuid4().hex,
            "LIVEDESK_PRESENCE_GRACE_SECONDS": "0",
            "LIVEDESK_LOG_LEVEL": "warning",
            "LIVEDESK_CHAT_RATE_LIMIT": "1000/10seconds",
        }
    )
    return env


@pytest.fixture
def cluster(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    group = Cluster(tmp_path, _env(database_url, REDIS_URL))
    try:
        yield group
    finally:
        group.stop_all()


# --- a process dies mid-call, then another mid-chat -------------------------------------------


async def test_killed_processes_mid_call_and_mid_chat(
    cluster: Cluster, make_staff: Any, db: Database
) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    await asyncio.gather(wait_ready(a), wait_ready(b))
    advisor = await make_staff(Role.ADVISOR)
    sockets: list[SocketClient] = []
    try:
        console = await staff_socket(b, advisor)
        sockets.append(console)
        await console.wait_for("presence.changed", lambda p: p["status"] == "available")
        token = await _visitor(a)
        shopper = await shopper_socket(a, token)
        sockets.append(shopper)
        cid = await _active(shopper, console)
        ref = {"consultation_id": cid}

        # --- the call is up: offer, answer, candidates across the two processes -------------
        await shopper.ok("call.signal", {**ref, "type": "offer", "data": {"type": "offer", "sdp": "v=0 s1"}})
        await console.wait_for("call.signal", lambda s: s["type"] == "offer")
        await console.ok(
            "call.signal", {**ref, "type": "answer", "data": {"type": "answer", "sdp": "v=0 a1"}}
        )
        await shopper.wait_for("call.signal", lambda s: s["type"] == "answer")
        await shopper.ok("chat.send", {**ref, "client_id": "in-call-0001", "body": "can you see me?"})
        await console.wait_for("chat.message", lambda m: m["client_id"] == "in-call-0001")

        # --- the shopper's process dies ------------------------------------------------------
        await _kill(a)
        await _dropped(shopper)
        # The advisor's side did not notice anything: the consultation is still active (the
        # browsers' media never went through A).
        async with db.read() as session:
            row = await session.get(Consultation, uuid.UUID(cid))
        assert row is not None
        assert row.status == ConsultationStatus.ACTIVE
        assert console.sio.connected

        # --- the shopper's page reconnects to B and signalling resumes ------------------------
        shopper2 = await shopper_socket(b, token)
        sockets.append(shopper2)
        current = await shopper2.ok("consultation.current")
        assert [(c["id"], c["status"]) for c in current] == [(cid, "active")]
        await shopper2.ok("call.signal", {**ref, "type": "restart"})
        await console.wait_for("call.signal", lambda s: s["type"] == "restart" and s["from"] == "shopper")
        # The advisor's engine answers a restart with an ICE-restart offer.
        await console.ok("call.signal", {**ref, "type": "offer", "data": {"type": "offer", "sdp": "v=0 a2"}})
        offer = await shopper2.wait_for("call.signal", lambda s: s["type"] == "offer")
        assert offer["data"]["sdp"] == "v=0 a2"
        await shopper2.ok(
            "call.signal", {**ref, "type": "answer", "data": {"type": "answer", "sdp": "v=0 s2"}}
        )
        answer = await console.wait_for(
            "call.signal", lambda s: s["type"] == "answer" and s["data"]["sdp"] == "v=0 s2"
        )
        assert answer["from"] == "shopper"
        synced = await shopper2.ok("chat.sync", {**ref, "after_seq": 0})
        assert [m["client_id"] for m in synced["messages"]] == ["in-call-0001"]

        # --- then the advisor's process (B) dies in the middle of the advisor's chat burst ----
        c = cluster.start("c")
        await wait_ready(c)
        burst = [f"adv-burst-{i:03d}-{uuid.uuid4().hex[:6]}" for i in range(20)]
        acked: list[str] = []
        cut = asyncio.Event()

        def on_ack(client_id: str) -> Any:
            def record(ack: dict[str, Any]) -> None:
                if not cut.is_set() and ack.get("ok"):
                    acked.append(client_id)
                    if len(acked) == 8:
                        cut.set()

            return record

        for client_id in burst:
            await console.sio.emit(
                "chat.send",
                {**ref, "client_id": client_id, "body": client_id},
                namespace="/staff",
                callback=on_ack(client_id),
            )
        await asyncio.wait_for(cut.wait(), 10)
        await _kill(b)
        await _dropped(console, shopper2)

        console2 = await staff_socket(c, advisor)
        sockets.append(console2)
        shopper3 = await shopper_socket(c, token)
        sockets.append(shopper3)
        seen = await console2.ok("chat.sync", {**ref, "after_seq": 0})
        stored_ids = {m["client_id"] for m in seen["messages"]}
        assert set(acked) <= stored_ids  # everything acknowledged survived the kill
        for client_id in burst:
            if client_id in acked:
                continue
            ack = await console2.ok("chat.send", {**ref, "client_id": client_id, "body": client_id})
            assert ack["duplicate"] is (client_id in stored_ids), client_id
        expected = ["in-call-0001", *burst]
        assert [client_id for _, client_id in await _stored(db, cid)] == expected
        assert [seq for seq, _ in await _stored(db, cid)] == list(range(1, len(expected) + 1))
        everything = await shopper3.ok("chat.sync", {**ref, "after_seq": 0})
        assert [m["client_id"] for m in everything["messages"]] == expected
        # And the call's signalling goes on through C.
        await shopper3.ok("call.signal", {**ref, "type": "restart"})
        await console2.wait_for("call.signal", lambda s: s["type"] == "restart")
    finally:
        await _close(sockets)
        cluster.stop_all()


# --- Redis restarts ---------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of this test's own on a free port, stopped and started by its PID."""

    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed (apt-get install redis-server)"
        self.binary = binary
        self.port = _free_port()
        self.dir = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        return subprocess.Popen(  # noqa: S603 (the redis-server found on PATH, our arguments)
            command,
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def start(self) -> None:
        self.proc = self._spawn()

        async def answers() -> bool:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return True
            return False

        await wait_until(answers, "private redis-server up", within=10)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            await asyncio.to_thread(self.proc.wait, 10)
        self.proc = None


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path)
    await redis.start()
    try:
        yield redis
    finally:
        await redis.stop()


async def test_redis_restart(
    private_redis: PrivateRedis, database_url: str, tmp_path: Path, make_staff: Any, db: Database
) -> None:
    cluster = Cluster(tmp_path, _env(database_url, private_redis.url))
    sockets: list[SocketClient] = []
    try:
        a, b = cluster.start("a"), cluster.start("b")
        await asyncio.gather(wait_ready(a), wait_ready(b))
        advisor: StaffAccount = await make_staff(Role.ADVISOR)
        console = await staff_socket(b, advisor)
        sockets.append(console)
        await console.wait_for("presence.changed", lambda p: p["status"] == "available")
        shopper = await shopper_socket(a, await _visitor(a))
        sockets.append(shopper)
        cid = await _active(shopper, console, kind="chat")
        ref = {"consultation_id": cid}
        await shopper.ok("chat.send", {**ref, "client_id": "before-0001", "body": "before"})
        await console.wait_for("chat.message", lambda m: m["client_id"] == "before-0001")

        await private_redis.stop()
        # Without Redis, messages are still stored and acknowledged (fan-out is what waits).
        during = [f"during-{i:04d}" for i in range(3)]
        for client_id in during:
            ack = await shopper.call(
                "chat.send", {**ref, "client_id": client_id, "body": client_id}, deadline=15
            )
            assert ack["ok"] is True, ack

        await private_redis.start()
        # Live fan-out between the processes comes back by itself.
        n = 0

        async def live_again() -> bool:
            nonlocal n
            n += 1
            client_id = f"after-{n:04d}"
            await shopper.ok("chat.send", {**ref, "client_id": client_id, "body": client_id})
            with contextlib.suppress(AssertionError):
                await console.wait_for("chat.message", lambda m: m["client_id"] == client_id, within=1)
                return True
            return False

        await wait_until(live_again, "fan-out through the restarted Redis", within=30, every=0.1)
        # The advisor catches up on what the outage kept from them.
        synced = await console.ok("chat.sync", {**ref, "after_seq": 0})
        ids = [m["client_id"] for m in synced["messages"]]
        assert ids[: 1 + len(during)] == ["before-0001", *during]
        assert [m["seq"] for m in synced["messages"]] == list(range(1, len(ids) + 1))
        assert [client_id for _, client_id in await _stored(db, cid)] == ids
        # Both processes stayed up throughout.
        assert a.proc.poll() is None
        assert b.proc.poll() is None
    finally:
        await _close(sockets)
        cluster.stop_all()


# --- the database goes away for a few seconds -------------------------------------------------


class TcpCut:
    """A TCP proxy of this test's own between the app and PostgreSQL, that can be cut (every
    connection dropped, new ones refused) and restored."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = _free_port()
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.links.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.links.difference_update({writer, up_writer})

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        self.server = None
        for link in list(self.links):
            link.transport.abort()
        self.links.clear()

    async def stop(self) -> None:
        if self.server is not None:
            await self.cut()


@pytest.fixture
async def outage(db_kind: str, database_url: str) -> AsyncIterator[Any]:
    """(url the app uses, cut(), restore()) for this database kind."""
    if db_kind == "postgresql":
        parts = urlsplit(database_url)
        proxy = TcpCut(parts.hostname or "127.0.0.1", parts.port or 5432)
        await proxy.start()
        netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
        url = urlunsplit(parts._replace(netloc=netloc))
        yield url, proxy.cut, proxy.start
        await proxy.stop()
    else:
        # SQLite has no connection to cut: another process' connection holds the write lock.
        path = database_url.removeprefix("sqlite+aiosqlite:///")
        holder: dict[str, sqlite3.Connection] = {}

        async def lock() -> None:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("BEGIN EXCLUSIVE")
            holder["conn"] = conn

        async def unlock() -> None:
            conn = holder.pop("conn")
            conn.execute("ROLLBACK")
            conn.close()

        yield database_url, lock, unlock
        if "conn" in holder:
            await unlock()


@pytest.fixture
def settings(settings: Settings, outage: Any) -> Settings:
    url, _, _ = outage
    return settings.model_copy(update={"database_url": url, "presence_grace_seconds": 0.0})


async def test_database_unavailable_for_a_few_seconds(
    live: Any, outage: Any, db_kind: str, make_staff: Any
) -> None:
    _, cut, restore = outage
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    shopper = await live.shopper()
    cid = await _active(shopper, console, kind="chat")
    ref = {"consultation_id": cid}
    await shopper.ok("chat.send", {**ref, "client_id": "before-0001", "body": "before"})

    await cut()
    if db_kind == "postgresql":
        # Clear errors while it is gone: readiness says so, requests and events get a
        # database_unavailable answer, never a stack trace.
        ready = await live.http.get("/readyz")
        assert ready.status == 503
        assert (await ready.json())["error"]["code"] == "database_unavailable"
        visit = await live.http.post("/api/v1/visitors", json={})
        assert visit.status == 503, await visit.text()
        assert (await visit.json())["error"]["code"] == "database_unavailable"
        ack = await shopper.call(
            "chat.send", {**ref, "client_id": "during-0001", "body": "during"}, deadline=20
        )
        assert ack["ok"] is False
        assert ack["error"]["code"] == "database_unavailable", ack
        await restore()
    else:
        # Writers queue behind the lock (busy timeout) and go through once it is released.
        pending = asyncio.ensure_future(
            shopper.call("chat.send", {**ref, "client_id": "during-0001", "body": "during"}, deadline=20)
        )
        # The write is held while the lock is (a deadline on something that must not happen).
        done, _ = await asyncio.wait([pending], timeout=1.0)
        assert not done, pending.result()
        await restore()
        ack = await pending
        assert ack["ok"] is True, ack

    # Back by itself: no restart.
    async def ready() -> bool:
        return (await live.http.get("/readyz")).status == 200

    await wait_until(ready, "readiness after the outage", within=20)
    await shopper.ok("chat.send", {**ref, "client_id": "after-0001", "body": "after"})
    synced = await console.ok("chat.sync", {**ref, "after_seq": 0})
    ids = [m["client_id"] for m in synced["messages"]]
    expected = (
        ["before-0001", "after-0001"]
        if db_kind == "postgresql"
        else ["before-0001", "during-0001", "after-0001"]
    )
    assert ids == expected
    visit = await live.http.post("/api/v1/visitors", json={})
    assert visit.status == 201
