"""The board across processes: two livedesk apps share one database and the machine's Redis;
a supervisor watching on one hears of changes made on the other (presence, queue, call),
and a snapshot taken on either shows the same floor."""

from __future__ import annotations

import asyncio
import os
import statistics
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from livedesk.app import create_app
from livedesk.models import Role
from livedesk.settings import Settings
from tests.conftest import SocketClient, StaffAccount

REDIS_URL = os.environ.get("LIVEDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHANGE_BUDGET_SECONDS = 0.25


@pytest.fixture
async def two_processes(settings: Settings) -> AsyncIterator[tuple[str, str]]:
    shared = settings.model_copy(
        update={"redis_url": REDIS_URL, "redis_channel": f"test-board-{uuid.uuid4().hex}"}
    )
    servers = [TestServer(create_app(shared), host="127.0.0.1") for _ in range(2)]
    for server in servers:
        await server.start_server()
    try:
        yield str(servers[0].make_url("")).rstrip("/"), str(servers[1].make_url("")).rstrip("/")
    finally:
        for server in servers:
            await server.close()


async def _staff(url: str, account: StaffAccount, opened: list[SocketClient]) -> SocketClient:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        body = {"email": account.email, "password": account.password}
        async with http.post(url + "/api/v1/auth/login", json=body) as response:
            assert response.status == 200, await response.text()
            cookie = response.cookies["livedesk_session"].value
    sock = SocketClient("/staff")
    await sock.connect(url, headers={"Cookie": f"livedesk_session={cookie}"})
    opened.append(sock)
    return sock


async def _shopper(url: str, opened: list[SocketClient]) -> SocketClient:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.post(url + "/api/v1/visitors", json={}) as response:
        assert response.status == 201, await response.text()
        token = (await response.json())["token"]
    sock = SocketClient("/shopper")
    await sock.connect(url, auth={"token": token})
    opened.append(sock)
    return sock


async def _within_budget(
    latencies: list[float], sock: SocketClient, event: str, predicate: Any, stamp: str, action: Any
) -> Any:
    """Run ``action``; ``sock`` must have the matching event within the budget of the change
    (the server's time of it, ``stamp`` in the payload)."""
    waiting = asyncio.create_task(sock.wait_for(event, predicate, within=5))
    result = await action
    data = await waiting
    latency = (datetime.now(UTC) - datetime.fromisoformat(data[stamp])).total_seconds()
    latencies.append(latency)
    return result


async def test_changes_on_one_process_reach_the_board_on_the_other(
    two_processes: tuple[str, str], make_staff: Any
) -> None:
    floor_url, board_url = two_processes
    advisor = await make_staff(Role.ADVISOR)
    supervisor = await make_staff(Role.SUPERVISOR)
    opened: list[SocketClient] = []
    latencies: list[float] = []
    try:
        board = await _staff(board_url, supervisor, opened)
        advisor_socket = await _staff(floor_url, advisor, opened)
        await board.wait_for("presence.changed", lambda p: p["staff_id"] == str(advisor.id))

        last = ""
        for status in ("away", "available", "away", "available"):
            view = await _within_budget(
                latencies,
                board,
                "presence.changed",
                lambda p, s=status, after=last: (
                    p["staff_id"] == str(advisor.id) and p["status"] == s and p["since"] > after
                ),
                "since",
                advisor_socket.ok("presence.set", {"status": status}),
            )
            last = view["since"]

        shopper = await _shopper(floor_url, opened)
        joined = await _within_budget(
            latencies,
            board,
            "consultation.updated",
            lambda c: c["status"] in ("queued", "offered"),
            "queued_at",
            shopper.ok("queue.join", {"kind": "voice"}),
        )
        await advisor_socket.wait_for("offer.new")
        await _within_budget(
            latencies,
            board,
            "consultation.updated",
            lambda c: c["id"] == joined["id"] and c["status"] == "active",
            "accepted_at",
            advisor_socket.ok("offer.accept", {"consultation_id": joined["id"]}),
        )

        # Every change arrived (within the 5 s wait), the typical one within 250 ms: shared
        # machines have noisy moments; bench/monitoring.py --redis measures the percentiles.
        assert len(latencies) == 6
        assert statistics.median(latencies) < CHANGE_BUDGET_SECONDS, latencies

        # Both processes derive the same board from the database.
        other_board = await _staff(floor_url, supervisor, opened)
        for sock in (board, other_board):
            snapshot = await sock.ok("board.snapshot")
            [call] = snapshot["consultations"]
            assert call["id"] == joined["id"]
            assert call["status"] == "active"
            assert {a["staff_id"]: a["status"] for a in snapshot["advisors"]}[str(advisor.id)] == "busy"
            assert snapshot["figures"]["answered"] == 1
    finally:
        for sock in opened:
            await sock.close()
