"""Fan-out between processes reaches only the processes whose sockets need it (issue 22, item 3).

Two real apps (``create_app``, each on its own HTTP server in this test's loop, so the test can
read each one's fan-out counters) share the database and a real Redis, and real Socket.IO
clients connect to them. ``realtime/redis_fanout.py`` publishes on a channel per room:

- a process with no socket in a room reads none of its messages from Redis (with one shared
  channel, it decoded every one of them);
- chat and the other events still cross between the processes, each delivered once, even to
  a socket in two of an emit's rooms;
- after Redis restarts, each process subscribes every room of its sockets again and live
  fan-out comes back by itself (chat sent while Redis is away is redelivered from the
  database: test_delivery_survives.py, with real processes).

The real-process versions of the last two are in test_multiprocess.py, test_faults.py and
test_delivery_survives.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis import asyncio as aioredis

from livedesk.app import create_app
from livedesk.models import Role
from livedesk.realtime import rooms
from livedesk.realtime.emit import SIO
from livedesk.realtime.redis_fanout import RedisFanout
from livedesk.settings import Settings
from tests.conftest import SocketClient, wait_until
from tests.integration.test_delivery_survives import WITHIN
from tests.integration.test_faults import (
    PrivateRedis,
    _active,
    _close,
    _visitor,
    private_redis,  # noqa: F401 (a fixture)
)
from tests.integration.test_multiprocess import REDIS_URL, shopper_socket, staff_socket

CHATTER = 10


@dataclass
class Replica:
    """One running app: what test_multiprocess's helpers need (``url``), plus its fan-out."""

    name: str
    app: web.Application
    server: TestServer

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def fanout(self) -> RedisFanout:
        manager = self.app[SIO].manager
        assert isinstance(manager, RedisFanout)
        return manager


StartReplicas = Callable[[str], Awaitable[tuple[Replica, Replica]]]


@pytest.fixture
async def replicas(settings: Settings, tmp_path: Path) -> AsyncIterator[StartReplicas]:
    started: list[TestServer] = []

    async def start(redis_url: str) -> tuple[Replica, Replica]:
        channel = f"livedesk-rooms-{uuid.uuid4().hex}"
        pair = []
        for name in ("a", "b"):
            app = create_app(
                settings.model_copy(
                    update={
                        "redis_url": redis_url,
                        "redis_channel": channel,
                        "data_dir": tmp_path / f"data-{name}",
                        "presence_grace_seconds": 0.0,
                        "chat_rate_limit": "1000/10seconds",
                    }
                )
            )
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            started.append(server)
            pair.append(Replica(name, app, server))
        return pair[0], pair[1]

    yield start
    for server in reversed(started):
        await server.close()


def _seqs(sock: SocketClient, cid: str) -> list[int]:
    return [m["seq"] for m in sock.received("chat.message") if m["consultation_id"] == cid]


async def test_a_process_reads_only_the_rooms_of_its_own_sockets(
    replicas: StartReplicas, make_staff: Any
) -> None:
    a, b = await replicas(REDIS_URL)
    sockets: list[SocketClient] = []
    try:
        # A consultation wholly on A; B holds one shopper's tab that has nothing to do with it.
        console = await staff_socket(a, await make_staff(Role.ADVISOR))  # type: ignore[arg-type]
        sockets.append(console)
        await console.wait_for("presence.changed", lambda p: p["status"] == "available")
        shopper = await shopper_socket(a, await _visitor(a))  # type: ignore[arg-type]
        sockets.append(shopper)
        bystander = await shopper_socket(b, await _visitor(b))  # type: ignore[arg-type]
        sockets.append(bystander)
        cid = await _active(shopper, console, kind="chat")
        ref = {"consultation_id": cid}

        received, decoded = b.fanout.received, b.fanout.decoded
        for i in range(CHATTER):
            sender = shopper if i % 2 == 0 else console
            await sender.ok("chat.send", {**ref, "client_id": f"local-{i:04d}", "body": f"m{i}"})
        await console.wait_for("chat.message", lambda m: m["client_id"] == f"local-{CHATTER - 2:04d}")
        await shopper.wait_for("chat.message", lambda m: m["client_id"] == f"local-{CHATTER - 1:04d}")
        # What went to Redis meanwhile (A's own publishes come back to A, and only to A).
        assert a.fanout.received >= CHATTER
        assert (b.fanout.received, b.fanout.decoded) == (received, decoded)
        assert bystander.received("chat.message") == []

        # --- across the processes: the advisor moves to B, the shopper stays on A -------------
        await console.close()
        sockets.remove(console)
        advisor = await make_staff(Role.ADVISOR)
        console_b = await staff_socket(b, advisor)  # type: ignore[arg-type]
        sockets.append(console_b)
        await console_b.wait_for("presence.changed", lambda p: p["status"] == "available")
        shopper2 = await shopper_socket(a, await _visitor(a))  # type: ignore[arg-type]
        sockets.append(shopper2)
        cid2 = await _active(shopper2, console_b, kind="chat")
        ref2 = {"consultation_id": cid2}
        decoded = b.fanout.decoded
        for i in range(CHATTER):
            sender = shopper2 if i % 2 == 0 else console_b
            await sender.ok("chat.send", {**ref2, "client_id": f"cross-{i:04d}", "body": f"x{i}"})
        await console_b.wait_for("chat.message", lambda m: m["client_id"] == f"cross-{CHATTER - 2:04d}")
        await shopper2.wait_for("chat.message", lambda m: m["client_id"] == f"cross-{CHATTER - 1:04d}")
        # Each party got every message of the other exactly once (its own come in its acks).
        assert _seqs(console_b, cid2) == list(range(1, CHATTER + 1, 2))
        assert _seqs(shopper2, cid2) == list(range(2, CHATTER + 1, 2))
        # B decoded the shopper's half (to its advisor's room) and nothing of the first chat.
        assert b.fanout.decoded - decoded >= CHATTER // 2
        assert _seqs(bystander, cid) == []
        assert _seqs(bystander, cid2) == []

        # --- an emit to two rooms a socket of B is in arrives once, decoded once --------------
        bystander_sid = next(iter(b.app[SIO].manager.rooms[rooms.SHOPPER_NS][None]))
        extra = f"test-room-{uuid.uuid4().hex}"
        await b.app[SIO].enter_room(bystander_sid, extra, namespace=rooms.SHOPPER_NS)
        shopper_rooms = [
            r for r in b.fanout.get_rooms(bystander_sid, rooms.SHOPPER_NS) if r.startswith("shopper:")
        ]
        received, decoded = b.fanout.received, b.fanout.decoded
        await a.app[SIO].emit(
            "test.probe", {"probe": 1}, room=[shopper_rooms[0], extra], namespace=rooms.SHOPPER_NS
        )
        await bystander.wait_for("test.probe", lambda p: p.get("probe") == 1)

        async def both_copies_read() -> bool:
            return b.fanout.received - received >= 2

        await wait_until(both_copies_read, within=5)
        assert b.fanout.decoded - decoded == 1
        assert len([p for p in bystander.received("test.probe") if p.get("probe") == 1]) == 1
    finally:
        await _close(sockets)


async def _numsub(url: str, channel: str) -> int:
    client = aioredis.Redis.from_url(url)
    try:
        rows = await client.pubsub_numsub(channel)
        return int(rows[0][1]) if rows else 0
    finally:
        await client.aclose()


async def test_redis_restart_resubscribes_every_room_and_chat_still_arrives(
    private_redis: PrivateRedis,  # noqa: F811 (the fixture)
    replicas: StartReplicas,
    make_staff: Any,
) -> None:
    a, b = await replicas(private_redis.url)
    sockets: list[SocketClient] = []
    try:
        advisor = await make_staff(Role.ADVISOR)
        console = await staff_socket(b, advisor)  # type: ignore[arg-type]
        sockets.append(console)
        await console.wait_for("presence.changed", lambda p: p["status"] == "available")
        shopper = await shopper_socket(a, await _visitor(a))  # type: ignore[arg-type]
        sockets.append(shopper)
        cid = await _active(shopper, console, kind="chat")
        ref = {"consultation_id": cid}
        await shopper.ok("chat.send", {**ref, "client_id": "before-0001", "body": "before"})
        await console.wait_for("chat.message", lambda m: m["client_id"] == "before-0001")
        staff_room = b.fanout.room_channel(rooms.STAFF_NS, rooms.staff(advisor.id))
        assert staff_room in b.fanout.confirmed

        await private_redis.stop()

        async def listener_lost_redis() -> bool:
            return b.fanout.pubsub is None and a.fanout.pubsub is None

        await wait_until(listener_lost_redis, within=15)
        await private_redis.start()

        async def resubscribed() -> bool:
            return staff_room in b.fanout.confirmed and await _numsub(private_redis.url, staff_room) == 1

        await wait_until(resubscribed, within=15)
        assert b.fanout.reconnects >= 1
        # Live again, both ways, without the redelivery's second: straight through Redis.
        decoded = b.fanout.decoded
        sent = await shopper.call(
            "chat.send", {**ref, "client_id": "after-0001", "body": "after"}, deadline=15
        )
        assert sent["ok"] is True, sent
        await console.wait_for("chat.message", lambda m: m["client_id"] == "after-0001", within=WITHIN)
        assert b.fanout.decoded > decoded
        sent = await console.call(
            "chat.send", {**ref, "client_id": "after-0002", "body": "reply"}, deadline=15
        )
        assert sent["ok"] is True, sent
        await shopper.wait_for("chat.message", lambda m: m["client_id"] == "after-0002", within=WITHIN)
        assert _seqs(console, cid) == [1, 2]
        assert _seqs(shopper, cid) == [3]
    finally:
        await _close(sockets)
