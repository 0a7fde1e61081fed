"""Calls and presence follow real people (issue 19, items 2 and 3).

- Both parties close their browsers: past the grace period the call ends (wrap-up, on the
  timeline), the advisor is offline, and signing in again she is Available, not Busy on a
  dead call. One party staying, or coming back in time, keeps the call.
- An advisor whose last tab closed inside the presence grace, on a process that then stops
  (SIGTERM) or dies (SIGKILL), is offline; nobody is offered to her. The call whose people
  were all on the killed process ends, and the board shows no dead call.
- A missed offer is shown to the advisor who missed it, who is set Away until she is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from livedesk.kit.db import Database
from livedesk.models import (
    AdvisorPresence,
    Consultation,
    ConsultationStatus,
    PresenceStatus,
    Role,
    TimelineEvent,
)
from livedesk.realtime.process import PROCESS
from livedesk.settings import Settings
from tests.conftest import SocketClient, login, wait_until
from tests.integration.test_multiprocess import (
    REDIS_URL,
    Cluster,
    Server,
    shopper_socket,
    staff_socket,
    wait_ready,
)

GONE_GRACE = 2.0


@pytest.fixture
def offer_timeout() -> float:
    """Long enough that a loaded CI machine accepts before the offer moves on; the missed-offer
    test parametrises it short."""
    return 30.0


@pytest.fixture
def settings(settings: Settings, offer_timeout: float) -> Settings:
    return settings.model_copy(
        update={
            "presence_grace_seconds": 0.5,
            "consultation_gone_grace_seconds": GONE_GRACE,
            "offer_timeout_seconds": offer_timeout,
        }
    )


async def _status(db: Database, cid: str) -> ConsultationStatus:
    async with db.read() as session:
        c = await session.get(Consultation, uuid.UUID(cid))
        assert c is not None
        return c.status


async def _presence(db: Database, staff_id: uuid.UUID) -> PresenceStatus | None:
    async with db.read() as session:
        row = await session.get(AdvisorPresence, staff_id)
        return row.status if row else None


async def _steps(db: Database, cid: str) -> list[str]:
    async with db.read() as session:
        rows = await session.scalars(
            select(TimelineEvent.summary)
            .where(TimelineEvent.consultation_id == uuid.UUID(cid))
            .order_by(TimelineEvent.occurred_at)
        )
        return list(rows.all())


async def _marked(db: Database, cid: str) -> bool:
    async with db.read() as session:
        c = await session.get(Consultation, uuid.UUID(cid))
        assert c is not None
        return "unattended" in (c.extra or {})


async def _call(live: Any, console: SocketClient, token: str) -> tuple[SocketClient, str]:
    shopper = await live.shopper(token)
    cid: str = (await shopper.ok("queue.join", {"kind": "video"}))["id"]
    await console.wait_for("offer.new", lambda o: o["id"] == cid)
    await console.ok("offer.accept", {"consultation_id": cid})
    return shopper, cid


# --- browsers closed --------------------------------------------------------------------------


async def test_call_ends_when_both_close_their_browsers(live: Any, make_staff: Any, db: Database) -> None:
    advisor = await make_staff(Role.ADVISOR)
    supervisor = await make_staff(Role.SUPERVISOR)
    board = await live.staff(supervisor)
    console = await live.staff(advisor)
    token = (await live.visitor())["token"]
    shopper, cid = await _call(live, console, token)
    assert await _presence(db, advisor.id) == PresenceStatus.BUSY

    await shopper.close()
    await console.close()
    ended = await board.wait_for(
        "consultation.updated", lambda c: c["id"] == cid and c["status"] == "wrap_up", within=GONE_GRACE + 8
    )
    assert ended["ended_at"] is not None
    assert await _status(db, cid) == ConsultationStatus.WRAP_UP
    assert "ended: both parties left" in await _steps(db, cid)
    assert await _presence(db, advisor.id) == PresenceStatus.OFFLINE
    await login(live.http, supervisor)
    listed = await (await live.http.get("/api/v1/supervision/board")).json()
    assert cid not in [c["id"] for c in listed["consultations"] if c["status"] == "active"]

    # Signing in again: the dead call waits in wrap-up, she is Available and gets offers.
    again = await live.staff(advisor)
    current = await again.ok("consultation.current")
    assert [(c["id"], c["status"]) for c in current] == [(cid, "wrap_up")]
    assert await _presence(db, advisor.id) == PresenceStatus.AVAILABLE
    newcomer = await live.shopper()
    fresh = await newcomer.ok("queue.join", {"kind": "video"})
    assert (await again.wait_for("offer.new", lambda o: o["id"] == fresh["id"]))["status"] == "offered"


async def test_one_party_staying_or_coming_back_keeps_the_call(
    live: Any, make_staff: Any, db: Database
) -> None:
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    token = (await live.visitor())["token"]
    shopper, cid = await _call(live, console, token)

    # The shopper's browser closes; the advisor is still there, so nothing is marked.
    await shopper.close()
    other = await live.staff(advisor)  # a second tab: still marked only when both are gone
    await other.close()
    shopper = await live.shopper(token)
    # Both gone, then the shopper's page comes back inside the grace: the mark is cleared.
    await console.close()
    await shopper.close()
    await wait_until(lambda: _marked(db, cid), within=GONE_GRACE + 3)
    back = await live.shopper(token)

    async def cleared() -> bool:
        return not await _marked(db, cid)

    await wait_until(cleared, within=5)
    assert await _status(db, cid) == ConsultationStatus.ACTIVE
    assert [c["status"] for c in await back.ok("consultation.current")] == ["active"]


async def test_stale_presence_is_healed_from_the_connections(
    live: Any, app: web.Application, make_staff: Any, db: Database
) -> None:
    """A crash between two of the sweep's transactions could leave an advisor shown online
    with no tab behind her: the next sweep derives her presence from the rows again."""
    advisor = await make_staff(Role.ADVISOR)
    async with db.transaction() as session:
        session.add(AdvisorPresence(staff_id=advisor.id, chosen="available", status="available"))
    await app[PROCESS].sweep()
    assert await _presence(db, advisor.id) == PresenceStatus.OFFLINE


# --- missed offers ----------------------------------------------------------------------------


@pytest.mark.parametrize("offer_timeout", [1.5])
async def test_a_missed_offer_is_shown_and_sets_the_advisor_away(
    live: Any, make_staff: Any, db: Database
) -> None:
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    shopper = await live.shopper()
    cid = (await shopper.ok("queue.join", {"kind": "video"}))["id"]
    await console.wait_for("offer.new", lambda o: o["id"] == cid)
    missed = await console.wait_for("offer.missed", within=8)
    assert missed["consultation_id"] == cid
    assert (missed["kind"], missed["set_away"]) == ("video", True)
    away = await console.wait_for("presence.changed", lambda p: p["status"] == "away")
    assert away["chosen"] == "away"
    assert await _presence(db, advisor.id) == PresenceStatus.AWAY
    # The missed shopper waits for someone else; and until she says she is back, nobody new
    # is offered to her either.
    assert await _status(db, cid) == ConsultationStatus.QUEUED
    second = await live.shopper()
    cid2 = (await second.ok("queue.join", {"kind": "video"}))["id"]
    await second.wait_for("queue.position", lambda p: p["consultation_id"] == cid2)
    assert await _status(db, cid2) == ConsultationStatus.QUEUED
    assert [o["id"] for o in console.received("offer.new")] == [cid]
    await console.ok("presence.set", {"status": "available"})
    assert (await console.wait_for("offer.new", lambda o: o["id"] == cid2))["status"] == "offered"


# --- processes stopping and dying -------------------------------------------------------------


async def _close_all(sockets: list[SocketClient]) -> None:
    for sock in sockets:
        with contextlib.suppress(Exception):
            if sock.sio.connected:
                await sock.close()
            else:
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


async def test_sigterm_inside_the_presence_grace_takes_the_advisor_offline(
    cluster: Cluster, make_staff: Any, db: Database
) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    await asyncio.gather(wait_ready(a), wait_ready(b))
    advisor, supervisor = await make_staff(Role.ADVISOR), await make_staff(Role.SUPERVISOR)
    sockets: list[SocketClient] = []
    try:
        board = await staff_socket(b, supervisor)
        sockets.append(board)
        console = await staff_socket(a, advisor)
        sockets.append(console)
        await board.wait_for("presence.changed", lambda p: p["staff_id"] == str(advisor.id), within=10)
        await console.close()  # her last tab: inside the 60 s grace …
        a.proc.send_signal(signal.SIGTERM)  # … a deploy stops her process
        assert await asyncio.to_thread(a.proc.wait, 20) == 0

        async def offline() -> bool:
            return await _presence(db, advisor.id) == PresenceStatus.OFFLINE

        await wait_until(offline, within=5)
        # B, which never held her socket, does not offer her anyone.
        shopper = await shopper_socket(b, await _visitor(b))
        sockets.append(shopper)
        cid = (await shopper.ok("queue.join", {"kind": "chat"}))["id"]
        place = await shopper.wait_for("queue.position", lambda p: p["consultation_id"] == cid)
        assert place["advisors_online"] == 0
        assert await _status(db, cid) == ConsultationStatus.QUEUED
    finally:
        await _close_all(sockets)
        cluster.stop_all()


async def test_sigkill_inside_the_grace_ends_the_call_and_takes_the_advisor_offline(
    cluster: Cluster, make_staff: Any, db: Database
) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    await asyncio.gather(wait_ready(a), wait_ready(b))
    advisor, supervisor = await make_staff(Role.ADVISOR), await make_staff(Role.SUPERVISOR)
    sockets: list[SocketClient] = []
    try:
        board = await staff_socket(b, supervisor)
        sockets.append(board)
        console = await staff_socket(a, advisor)
        sockets.append(console)
        await board.wait_for("presence.changed", lambda p: p["staff_id"] == str(advisor.id), within=10)
        shopper = await shopper_socket(a, await _visitor(a))
        sockets.append(shopper)
        cid = (await shopper.ok("queue.join", {"kind": "video"}))["id"]
        await console.wait_for("offer.new", lambda o: o["id"] == cid, within=10)
        await console.ok("offer.accept", {"consultation_id": cid})
        await board.wait_for("consultation.updated", lambda c: c["id"] == cid and c["status"] == "active")

        await console.close()  # her tab closes (inside the grace) …
        os.kill(a.proc.pid, signal.SIGKILL)  # … and her process dies with the shopper's socket
        assert await asyncio.to_thread(a.proc.wait, 10) == -signal.SIGKILL

        # B notices A's stale heartbeat (20 s), removes its rows, then the call's grace runs.
        ended = await board.wait_for(
            "consultation.updated", lambda c: c["id"] == cid and c["status"] == "wrap_up", within=40
        )
        assert ended["status"] == "wrap_up"
        offline = await board.wait_for(
            "presence.changed", lambda p: p["staff_id"] == str(advisor.id) and p["status"] == "offline"
        )
        assert offline["status"] == "offline"
        assert "ended: both parties left" in await _steps(db, cid)
        # The session cookie is set for 127.0.0.1: an IP address needs the unsafe jar.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            response = await http.post(
                b.url + "/api/v1/auth/login",
                json={"email": supervisor.email, "password": supervisor.password},
            )
            assert response.status == 200
            async with http.get(b.url + "/api/v1/supervision/board") as got:
                snapshot = await got.json()
        assert [c["status"] for c in snapshot["consultations"] if c["id"] == cid] == ["wrap_up"]
        advisors = {row["staff_id"]: row["status"] for row in snapshot["advisors"]}
        assert advisors[str(advisor.id)] == "offline"
    finally:
        await _close_all(sockets)
        cluster.stop_all()


@pytest.fixture
def cluster(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    env.update(
        {
            "LIVEDESK_HOST": "127.0.0.1",
            "LIVEDESK_DATABASE_URL": database_url,
            "LIVEDESK_REDIS_URL": REDIS_URL,
            "LIVEDESK_REDIS_CHANNEL": f"livedesk-truth-{uuid.uuid4().hex}",
            "LIVEDESK_SECRET_KEY": "truth-secret-" + uuid.uuid4().hex,
            "LIVEDESK_LOG_LEVEL": "warning",
            # Long enough that only the process's end can take the advisor offline in time.
            "LIVEDESK_PRESENCE_GRACE_SECONDS": "60",
            "LIVEDESK_CONSULTATION_GONE_GRACE_SECONDS": str(GONE_GRACE),
        }
    )
    group = Cluster(tmp_path, env)
    try:
        yield group
    finally:
        group.stop_all()
