"""Reconnect storms (issue 22, item 5): many sockets leaving and coming back at once lose
nothing (queue places, chat, presence), and a process whose own heartbeat ran late under the
burst never sweeps away its own open sockets."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import delete, func, select, update

from livedesk.consultations.connections import SHOPPER_CONNECTIONS
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import (
    AdvisorPresence,
    AppProcess,
    Consultation,
    ConsultationStatus,
    PresenceStatus,
    Role,
    Shopper,
    ShopperConnection,
    StaffConnection,
)
from livedesk.realtime.process import PROCESS
from livedesk.settings import Settings
from tests.conftest import wait_until

N = 24  # shoppers in the storm; half of them waiting in the queue


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Every test client comes from one address: its budgets are not what is tested here.
    return settings.model_copy(
        update={
            "presence_grace_seconds": 0.0,
            "queue_leave_grace_seconds": 1.0,
            "queue_waiting_per_address": 0,
            "queue_waiting_per_network": 0,
            "queue_address_rate_limit": "100000/minute",
            "queue_network_rate_limit": "100000/minute",
            "shopper_sockets_per_address": 0,
            "shopper_connect_rate_limit": "100000/minute",
        }
    )


async def _rows(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(ShopperConnection)) or 0)


async def _statuses(db: Database, ids: list[str]) -> list[ConsultationStatus]:
    async with db.read() as session:
        rows = await session.scalars(
            select(Consultation.status).where(Consultation.id.in_([uuid.UUID(i) for i in ids]))
        )
        return list(rows.all())


async def test_a_storm_of_reconnects_loses_no_place_and_no_message(
    live: Any, make_staff: Any, db: Database
) -> None:
    """Every shopper's page drops at once and comes back at once (what a restarted replica's
    sockets do): each one's row is written, no queue place is given up after the grace, and
    chat.sync returns what was said while they were away."""
    advisor = await make_staff(Role.ADVISOR)
    tokens = [(await live.visitor())["token"] for _ in range(N)]
    shoppers = await asyncio.gather(*(live.shopper(t) for t in tokens))
    waiting = [(await s.ok("queue.join", {"kind": "video"}))["id"] for s in shoppers[: N // 2]]
    console = await live.staff(advisor)
    assert await _rows(db) == N

    await asyncio.gather(*(s.close() for s in shoppers))
    await wait_until(lambda: _rows_are(db, 0), within=10)
    back = await asyncio.gather(*(live.shopper(t) for t in tokens))
    assert await _rows(db) == N  # each connect returned after its row was committed

    # The closed pages' grace runs out: nobody is judged gone, every place is still held.
    await wait_until(lambda: _graces_done(), within=10)
    held = {ConsultationStatus.QUEUED, ConsultationStatus.OFFERED}
    assert set(await _statuses(db, waiting)) <= held
    current = await asyncio.gather(*(s.ok("consultation.current") for s in back[: N // 2]))
    assert sorted(c[0]["id"] for c in current) == sorted(waiting)

    # The advisor takes the first one; the shopper drops, a message is sent meanwhile, and
    # the shopper's chat.sync on return has it.
    offer = await console.wait_for("offer.new", within=10)
    await console.ok("offer.accept", {"consultation_id": offer["id"]})
    index = waiting.index(offer["id"])
    await back[index].close()
    sent = await console.ok(
        "chat.send", {"consultation_id": offer["id"], "client_id": "storm-away-1", "body": "still there?"}
    )
    again = await live.shopper(tokens[index])
    synced = await again.ok("chat.sync", {"consultation_id": offer["id"], "after_seq": 0})
    assert [m["seq"] for m in synced["messages"]] == [sent["seq"]]
    assert synced["complete"] is True


async def _rows_are(db: Database, count: int) -> bool:
    return await _rows(db) == count


async def _graces_done() -> bool:
    return not [t for t in asyncio.all_tasks() if t.get_name() == "queue-leave-grace"]


async def test_connection_rows_open_and_close_in_order_within_one_batch(
    live: Any, app: web.Application, db: Database
) -> None:
    """A socket that opens and closes while a batch is being written leaves no row behind;
    one that closes later has its row deleted."""
    shopper_id = uuid.uuid4()
    async with db.transaction() as session:
        session.add(Shopper(id=shopper_id, display_name="Batch"))
    rows = app[SHOPPER_CONNECTIONS]
    await asyncio.gather(
        rows.opened("sid-a", shopper_id, "p1"),
        rows.opened("sid-b", shopper_id, "p1"),
        rows.closed("sid-a"),
    )
    async with db.read() as session:
        assert set((await session.scalars(select(ShopperConnection.sid))).all()) == {"sid-b"}
    await rows.closed("sid-b")
    assert await _rows(db) == 0


async def test_a_late_heartbeat_never_sweeps_the_process_own_sockets(
    live: Any, app: web.Application, make_staff: Any, db: Database
) -> None:
    """Under a burst the heartbeat can wait on the pool past the cutoff; the process's own
    sweep then must not take its own sockets for a dead process's."""
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    await console.ok("presence.set", {"status": "away"})
    shopper = await live.shopper()
    joined = await shopper.ok("queue.join", {"kind": "video"})
    process = app[PROCESS]
    async with db.transaction() as session:
        await session.execute(
            update(AppProcess)
            .where(AppProcess.id == process.id)
            .values(heartbeat_at=utcnow() - timedelta(hours=1))
        )
    await process.sweep()
    assert await _rows(db) == 1
    assert await _statuses(db, [joined["id"]]) == [ConsultationStatus.QUEUED]
    async with db.read() as session:
        presence = await session.get(AdvisorPresence, advisor.id)
        assert presence is not None
        assert presence.status == PresenceStatus.AWAY
        assert await session.get(AppProcess, process.id) is not None


async def test_a_process_swept_by_a_peer_writes_its_open_sockets_back(
    live: Any, app: web.Application, make_staff: Any, db: Database
) -> None:
    """Another process took this one for dead (its heartbeat ran late under a burst) and
    removed its rows while its sockets stayed open: the next beat writes them back, so the
    advisor is online again and the waiting shopper keeps the place."""
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    await console.ok("presence.set", {"status": "away"})
    shopper = await live.shopper()
    joined = await shopper.ok("queue.join", {"kind": "video"})
    process = app[PROCESS]
    async with db.transaction() as session:  # what the peer's sweep does
        await session.execute(delete(StaffConnection))
        await session.execute(delete(ShopperConnection))
        await session.execute(delete(AppProcess).where(AppProcess.id == process.id))
        await session.execute(update(AdvisorPresence).values(status=PresenceStatus.OFFLINE))
    await process.beat()
    assert await _rows(db) == 1
    async with db.read() as session:
        assert (await session.scalars(select(StaffConnection.staff_id))).all() == [advisor.id]
        presence = await session.get(AdvisorPresence, advisor.id)
        assert presence is not None
        assert presence.status == PresenceStatus.AWAY
    await console.wait_for("presence.changed", lambda p: p["status"] == "away")
    # The shopper is still there: the grace-free judgement finds the page.
    await app[PROCESS].sweep()
    assert await _statuses(db, [joined["id"]]) == [ConsultationStatus.QUEUED]
