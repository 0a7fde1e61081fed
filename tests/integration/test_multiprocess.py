"""Two real ``livedesk serve`` processes sharing one database and the machine's Redis.

A shopper on process A and an advisor on process B go through queue, offer, chat and
presence; then A is killed (SIGKILL) in the middle of a burst of chat messages, the shopper
reconnects to B, catches up with ``chat.sync``, re-sends what was never acknowledged, and
every message ends up stored exactly once, in order, with sequence numbers 1..n.

Fan-out between the processes goes through python-socketio's ``AsyncRedisManager`` on a
channel unique to this test (LIVEDESK_REDIS_CHANNEL), so parallel runs don't hear each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis import asyncio as aioredis
from sqlalchemy import func, select

from livedesk.kit.db import Database
from livedesk.models import Consultation, Message, Role
from tests.conftest import SocketClient, StaffAccount

REDIS_URL = os.environ.get("LIVEDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
STARTUP_SECONDS = 60.0
BURST = 20
KILL_AFTER_ACKS = 10
# Messages A must have stored (but the shopper never saw acknowledged) before it is killed.
STORED_NOT_ACKED = 2


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class Cluster:
    """Processes started by this test; stopped (by their Popen) whatever happens."""

    tmp: Path
    env: dict[str, str]
    servers: list[Server] = field(default_factory=list)

    def start(self, name: str) -> Server:
        port = _free_port()
        env = {**self.env, "LIVEDESK_PORT": str(port), "LIVEDESK_DATA_DIR": str(self.tmp / f"data-{name}")}
        log = self.tmp / f"server-{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "livedesk", "serve"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Server(name, proc, f"http://127.0.0.1:{port}", log)
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            if server.proc.poll() is None:
                server.proc.terminate()
        for server in self.servers:
            try:
                server.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait(timeout=5)


async def wait_ready(server: Server, within: float = STARTUP_SECONDS) -> None:
    """Poll GET /readyz until it answers 200, the process dies, or the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with aiohttp.ClientSession() as http:
        while True:
            if server.proc.poll() is not None:
                raise AssertionError(f"{server.name} exited early:\n{server.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(server.url + "/readyz") as response:
                    if response.status == 200:
                        return
            if loop.time() > deadline:
                raise AssertionError(f"{server.name} not ready within {within}s:\n{server.log_tail()}")
            await asyncio.sleep(0.05)


async def wait_until(check: Any, what: str, within: float = 5.0, every: float = 0.02) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {within}s")
        await asyncio.sleep(every)


async def staff_socket(server: Server, account: StaffAccount) -> SocketClient:
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            server.url + "/api/v1/auth/login", json={"email": account.email, "password": account.password}
        )
        assert response.status == 200, await response.text()
        cookie = response.cookies["livedesk_session"].value
    sock = SocketClient("/staff")
    await sock.connect(server.url, headers={"Cookie": f"livedesk_session={cookie}"})
    return sock


async def shopper_socket(server: Server, token: str) -> SocketClient:
    sock = SocketClient("/shopper")
    await sock.connect(server.url, auth={"token": token})
    return sock


@pytest.fixture
def cluster(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    env.update(
        {
            "LIVEDESK_HOST": "127.0.0.1",
            "LIVEDESK_DATABASE_URL": database_url,
            "LIVEDESK_REDIS_URL": REDIS_URL,
            "LIVEDESK_REDIS_CHANNEL": f"livedesk-test-{uuid.uuid4().hex}",
            "LIVEDESK_SECRET_KEY": "mp-test-secret-" + uuid.uuid4().hex,
            "LIVEDESK_PRESENCE_GRACE_SECONDS": "0",
            "LIVEDESK_LOG_LEVEL": "warning",
            # The burst plus its re-sends would trip the default chat limit (30 per 10 s).
            "LIVEDESK_CHAT_RATE_LIMIT": "1000/10seconds",
        }
    )
    group = Cluster(tmp_path, env)
    try:
        yield group
    finally:
        group.stop_all()


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # the multi-process path needs the machine's Redis
        await client.aclose()
        pytest.fail(f"Redis at {REDIS_URL} is not reachable: {exc}")
    yield client
    await client.aclose()


async def subscribers(redis: aioredis.Redis, channel: str) -> int:
    rows = await redis.pubsub_numsub(channel)
    return int(rows[0][1]) if rows else 0


async def test_two_processes_share_queue_chat_presence_and_survive_a_kill(
    cluster: Cluster, redis: aioredis.Redis, make_staff: Any, db: Database
) -> None:
    channel = cluster.env["LIVEDESK_REDIS_CHANNEL"]
    a = cluster.start("a")
    b = cluster.start("b")
    await asyncio.gather(wait_ready(a), wait_ready(b))

    advisor = await make_staff(Role.ADVISOR)
    supervisor = await make_staff(Role.SUPERVISOR)
    sockets: list[SocketClient] = []
    try:
        # --- presence across processes ------------------------------------------------------
        board = await staff_socket(a, supervisor)  # supervisor on A
        sockets.append(board)
        # A process subscribes to the fan-out channel when its first client connects.
        await wait_until(lambda: _at_least(redis, channel, 1), "process A subscribed to Redis")
        console = await staff_socket(b, advisor)  # advisor on B
        sockets.append(console)
        await wait_until(lambda: _at_least(redis, channel, 2), "process B subscribed to Redis")

        mine = str(advisor.id)
        await console.wait_for("presence.changed", lambda p: p["staff_id"] == mine)
        seen = await board.wait_for(
            "presence.changed", lambda p: p["staff_id"] == mine and p["status"] == "available"
        )
        assert seen["status"] == "available"
        listed = {p["staff_id"]: p["status"] for p in await board.ok("presence.list")}
        assert listed[mine] == "available"
        # A change made on B reaches the supervisor on A as it happens.
        await console.ok("presence.set", {"status": "away"})
        await board.wait_for("presence.changed", lambda p: p["staff_id"] == mine and p["status"] == "away")
        await console.ok("presence.set", {"status": "available"})
        await board.wait_for(
            "presence.changed",
            lambda p: p["staff_id"] == mine and p["status"] == "available" and p["chosen"] == "available",
        )
        assert {p["staff_id"]: p["status"] for p in await board.ok("presence.list")}[mine] == "available"

        # --- queue and offer: shopper on A, advisor on B ------------------------------------------
        async with aiohttp.ClientSession() as http:
            response = await http.post(a.url + "/api/v1/visitors", json={})
            assert response.status == 201, await response.text()
            token = (await response.json())["token"]
        shopper = await shopper_socket(a, token)
        sockets.append(shopper)
        joined = await shopper.ok("queue.join", {"kind": "chat"})
        cid = joined["id"]
        offer = await console.wait_for("offer.new", lambda o: o["id"] == cid)
        assert offer["status"] == "offered"
        accepted = await console.ok("offer.accept", {"consultation_id": cid})
        assert accepted["status"] == "active"
        await shopper.wait_for("consultation.updated", lambda c: c["id"] == cid and c["status"] == "active")

        # --- chat both ways across the processes ------------------------------------------------
        first = await console.ok(
            "chat.send", {"consultation_id": cid, "client_id": "adv-hello-0001", "body": "hello from B"}
        )
        got = await shopper.wait_for("chat.message", lambda m: m["client_id"] == "adv-hello-0001")
        assert (got["seq"], got["body"], got["sender"]) == (first["seq"], "hello from B", "staff")
        second = await shopper.ok(
            "chat.send", {"consultation_id": cid, "client_id": "shp-hello-0001", "body": "hi from A"}
        )
        got = await console.wait_for("chat.message", lambda m: m["client_id"] == "shp-hello-0001")
        assert (got["seq"], got["body"], got["sender"]) == (second["seq"], "hi from A", "shopper")
        assert (first["seq"], second["seq"]) == (1, 2)

        # --- a burst from the shopper, and A dies in the middle of it -------------------------
        # The burst is sent without waiting for each ack (a fast typist). The shopper's link
        # to A breaks right after the 10th ack: whatever A answers later never arrives. A goes
        # on storing what was already on the wire and is killed (SIGKILL) once it has stored
        # messages the shopper never heard back about; the rest of the burst dies with it.
        burst = [(f"burst-{i:04d}-{uuid.uuid4().hex[:8]}", f"message {i}") for i in range(BURST)]
        acks: dict[str, dict[str, Any]] = {}
        refused: list[tuple[str, Any]] = []
        seen_at_cut: list[int] = []
        cut = asyncio.Event()

        def on_ack(client_id: str) -> Any:
            def record(ack: dict[str, Any]) -> None:
                if cut.is_set():
                    return  # lost with the connection
                if not ack.get("ok"):
                    refused.append((client_id, ack))
                    return
                acks[client_id] = ack["data"]
                if len(acks) == KILL_AFTER_ACKS:
                    seen_at_cut.extend(m["seq"] for m in shopper.received("chat.message"))
                    cut.set()

            return record

        for client_id, body in burst:
            await shopper.sio.emit(
                "chat.send",
                {"consultation_id": cid, "client_id": client_id, "body": body},
                namespace="/shopper",
                callback=on_ack(client_id),
            )
        await asyncio.wait_for(cut.wait(), 10)
        assert not refused, refused
        stored_target = 2 + KILL_AFTER_ACKS + STORED_NOT_ACKED

        async def a_stored_more() -> bool:
            async with db.read() as session:
                newest = await session.scalar(
                    select(func.max(Message.seq)).where(Message.consultation_id == uuid.UUID(cid))
                )
            return (newest or 0) >= stored_target

        await wait_until(a_stored_more, "A storing the messages after the cut", every=0)
        os.kill(a.proc.pid, signal.SIGKILL)
        assert await asyncio.to_thread(a.proc.wait, 10) == -signal.SIGKILL

        async def shopper_dropped() -> bool:
            return not shopper.sio.connected

        await wait_until(shopper_dropped, "the shopper's socket noticing A died")
        unacked = [(client_id, body) for client_id, body in burst if client_id not in acks]
        assert len(unacked) == BURST - KILL_AFTER_ACKS
        ack_seqs = [acks[client_id]["seq"] for client_id, _ in burst if client_id in acks]
        assert ack_seqs == list(range(3, 3 + KILL_AFTER_ACKS)), ack_seqs
        last_seen = max(seen_at_cut + ack_seqs)

        # --- the shopper reconnects to B with the same token ------------------------------------
        shopper2 = await shopper_socket(b, token)
        sockets.append(shopper2)
        current = await shopper2.ok("consultation.current")
        assert [c["id"] for c in current] == [cid]
        assert current[0]["status"] == "active"
        missed = await shopper2.ok("chat.sync", {"consultation_id": cid, "after_seq": last_seen})
        assert missed["complete"] is True
        stored_unacked = {m["client_id"]: m["seq"] for m in missed["messages"]}
        assert [m["seq"] for m in missed["messages"]] == list(range(last_seen + 1, missed["last_seq"] + 1))
        # Whatever A stored but never acknowledged is the head of the un-acked list, in order.
        assert list(stored_unacked) == [client_id for client_id, _ in unacked[: len(stored_unacked)]]
        assert len(stored_unacked) >= STORED_NOT_ACKED

        resent: list[int] = []
        stored_by_b: list[int] = []
        for client_id, body in unacked:
            ack = await shopper2.ok(
                "chat.send", {"consultation_id": cid, "client_id": client_id, "body": body}
            )
            if client_id in stored_unacked:
                assert ack["duplicate"] is True, (client_id, ack)
                assert ack["seq"] == stored_unacked[client_id]
            else:
                assert ack["duplicate"] is False, (client_id, ack)
                stored_by_b.append(ack["seq"])
            resent.append(ack["seq"])
        assert resent == sorted(resent)

        # --- every message exactly once, in order, seq 1..n -------------------------------------
        n = 2 + BURST
        everything = await shopper2.ok("chat.sync", {"consultation_id": cid, "after_seq": 0})
        assert everything["last_seq"] == n
        assert everything["complete"] is True
        seqs = [m["seq"] for m in everything["messages"]]
        assert seqs == list(range(1, n + 1))
        expected_ids = ["adv-hello-0001", "shp-hello-0001", *(client_id for client_id, _ in burst)]
        assert [m["client_id"] for m in everything["messages"]] == expected_ids
        assert [m["body"] for m in everything["messages"][2:]] == [body for _, body in burst]

        async with db.read() as session:
            rows = (
                await session.execute(
                    select(Message.seq, Message.client_id)
                    .where(Message.consultation_id == uuid.UUID(cid))
                    .order_by(Message.seq)
                )
            ).all()
            consultation = await session.get(Consultation, uuid.UUID(cid))
        assert [(seq, client_id) for seq, client_id in rows] == list(
            zip(range(1, n + 1), expected_ids, strict=True)
        )
        assert consultation is not None
        assert consultation.last_seq == n

        # --- the advisor on B has every message: live events, then its own chat.sync for gaps ---
        # What B stored reaches the advisor live; what A stored just before dying may not have
        # left A (it dies between commit and emit), which is what the advisor's sync is for.
        if stored_by_b:
            await console.wait_for("chat.message", lambda m: m["seq"] == stored_by_b[-1])
        live: dict[int, str] = {}
        for m in console.received("chat.message"):
            if m["consultation_id"] != cid:
                continue
            assert live.setdefault(m["seq"], m["client_id"]) == m["client_id"], m
        contiguous = 0
        while contiguous + 1 in live:
            contiguous += 1
        caught_up = await console.ok("chat.sync", {"consultation_id": cid, "after_seq": contiguous})
        for m in caught_up["messages"]:
            assert live.setdefault(m["seq"], m["client_id"]) == m["client_id"], m
        assert sorted(live) == list(range(1, n + 1))
        assert [live[s] for s in range(1, n + 1)] == expected_ids

        # The advisor is still present (its process never stopped) and B still sees it.
        assert {p["staff_id"]: p["status"] for p in await console.ok("presence.list")}[mine] == "available"
    finally:
        for sock in sockets:
            with contextlib.suppress(Exception):
                if sock.sio.connected:
                    await sock.close()
                else:  # dropped with A: engine.io leaves its HTTP session open then
                    if sock.sio.eio.read_loop_task is not None:
                        await asyncio.wait_for(sock.sio.eio.read_loop_task, 5)
                    if sock.sio.eio.http is not None:
                        await sock.sio.eio.http.close()
        cluster.stop_all()


async def _at_least(redis: aioredis.Redis, channel: str, count: int) -> bool:
    return await subscribers(redis, channel) >= count
