"""A chat message that was stored and acknowledged reaches the other party live even when its
fan-out was lost (issue 18 item 8, issue 20 item 4): ``consultations/chat_redelivery.py``.

Real ``livedesk serve`` processes on both databases, real Socket.IO clients:

- The shopper's process A stores and acks a message, then dies before fanning it out (the
  window is made certain with ``LIVEDESK_TEST_DROP_CHAT_FANOUT``: A never fans out chat, and
  is killed after the ack). The advisor on process B gets it live within a few seconds,
  without any later message exposing the gap.
- Redis is down while the shopper sends (python-socketio gives the publish up): the advisor on
  B and the shopper's second tab on A (with Redis, even A's own sockets get only what comes
  back from Redis) get it within a few seconds — before Redis returns, and after it returns
  live fan-out goes on as before.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from livedesk.consultations.chat_redelivery import EVERY_SECONDS
from livedesk.models import Role
from tests.conftest import SocketClient
from tests.integration.test_faults import (
    PrivateRedis,
    _active,
    _close,
    _env,
    _kill,
    _visitor,
    private_redis,  # noqa: F401 (a fixture)
)
from tests.integration.test_multiprocess import REDIS_URL, Cluster, shopper_socket, staff_socket, wait_ready

# Two ticks (the first only notes the sequence, so a fan-out under way is never doubled), a
# read and the emit, with room for a loaded CI machine.
WITHIN = 2 * EVERY_SECONDS + 3.0


def _named(client_id: str) -> Any:
    return lambda message: message["client_id"] == client_id


async def test_acked_message_reaches_the_other_party_after_its_process_dies(
    database_url: str, tmp_path: Path, make_staff: Any
) -> None:
    cluster = Cluster(tmp_path, _env(database_url, REDIS_URL))
    sockets: list[SocketClient] = []
    try:
        advisor_process = cluster.start("advisor")
        cluster.env = {**cluster.env, "LIVEDESK_TEST_DROP_CHAT_FANOUT": "1"}
        shopper_process = cluster.start("shopper")
        await asyncio.gather(wait_ready(advisor_process), wait_ready(shopper_process))
        console = await staff_socket(advisor_process, await make_staff(Role.ADVISOR))
        sockets.append(console)
        await console.wait_for("presence.changed", lambda p: p["status"] == "available", within=10)
        shopper = await shopper_socket(shopper_process, await _visitor(shopper_process))
        sockets.append(shopper)
        cid = await _active(shopper, console, kind="chat")
        ref = {"consultation_id": cid}

        ack = await shopper.ok("chat.send", {**ref, "client_id": "lost-fanout-01", "body": "hello?"})
        sent_at = time.monotonic()
        await _kill(shopper_process)
        got = await console.wait_for("chat.message", _named("lost-fanout-01"), within=WITHIN)
        assert time.monotonic() - sent_at < WITHIN
        assert (got["seq"], got["body"], got["sender"]) == (ack["seq"], "hello?", "shopper")
        assert ack["seq"] == 1
        assert advisor_process.proc.poll() is None
    finally:
        await _close(sockets)
        cluster.stop_all()


async def test_message_published_while_redis_is_down_reaches_both_processes(
    private_redis: PrivateRedis,  # noqa: F811 (the fixture)
    database_url: str,
    tmp_path: Path,
    make_staff: Any,
) -> None:
    cluster = Cluster(tmp_path, _env(database_url, private_redis.url))
    sockets: list[SocketClient] = []
    try:
        a, b = cluster.start("a"), cluster.start("b")
        await asyncio.gather(wait_ready(a), wait_ready(b))
        console = await staff_socket(b, await make_staff(Role.ADVISOR))
        sockets.append(console)
        await console.wait_for("presence.changed", lambda p: p["status"] == "available", within=10)
        token = await _visitor(a)
        shopper = await shopper_socket(a, token)
        other_tab = await shopper_socket(a, token)
        sockets += [shopper, other_tab]
        cid = await _active(shopper, console, kind="chat")
        ref = {"consultation_id": cid}
        await shopper.ok("chat.send", {**ref, "client_id": "before-redis-0", "body": "before"})
        await console.wait_for("chat.message", _named("before-redis-0"))

        await private_redis.stop()
        ack = await shopper.call(
            "chat.send", {**ref, "client_id": "redis-down-01", "body": "down"}, deadline=15
        )
        assert ack["ok"] is True, ack
        got = await console.wait_for("chat.message", _named("redis-down-01"), within=WITHIN)
        assert got["seq"] == ack["data"]["seq"] == 2
        mine = await other_tab.wait_for("chat.message", _named("redis-down-01"), within=WITHIN)
        assert mine["seq"] == 2
        # The advisor's answer goes the same way, to both of the shopper's tabs on A.
        reply = await console.call(
            "chat.send", {**ref, "client_id": "redis-down-02", "body": "yes"}, deadline=15
        )
        assert reply["ok"] is True, reply
        for tab in (shopper, other_tab):
            answer = await tab.wait_for("chat.message", _named("redis-down-02"), within=WITHIN)
            assert answer["seq"] == 3

        await private_redis.start()
        # Redis back: messages keep arriving live (through Redis or the check, whichever is first).
        await shopper.ok("chat.send", {**ref, "client_id": "redis-back-01", "body": "back"})
        back = await console.wait_for("chat.message", _named("redis-back-01"), within=WITHIN)
        assert back["seq"] == 4
        assert a.proc.poll() is None
        assert b.proc.poll() is None
    finally:
        await _close(sockets)
        cluster.stop_all()
