"""Routing one change at a time (consultations/dispatch.py, routing_runner.py): decisions
taken side by side by two processes' connection pools never offer a consultation twice nor
an advisor more than one offer; what a lost change missed is picked up by the slow sweep;
queue places go only to the shoppers whose place or estimate moved."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from livedesk.consultations import dispatch
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database, Outgoing
from livedesk.models import (
    AdvisorPresence,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    PresenceStatus,
    Role,
    Shopper,
)
from livedesk.settings import Settings
from tests.conftest import wait_until

S = ConsultationStatus


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A fast sweep, so the test of what it picks up is quick (the others never need it).
    return settings.model_copy(update={"presence_grace_seconds": 0.0, "routing_sweep_seconds": 0.3})


async def _available(db: Database, staff_id: uuid.UUID, idle_minutes: int = 1) -> None:
    async with db.transaction() as session:
        session.add(
            AdvisorPresence(
                staff_id=staff_id,
                chosen=PresenceStatus.AVAILABLE,
                status=PresenceStatus.AVAILABLE,
                idle_since=utcnow() - timedelta(minutes=idle_minutes),
            )
        )


async def _queued(db: Database, count: int, **fields: Any) -> list[uuid.UUID]:
    ids = []
    async with db.transaction() as session:
        for n in range(count):
            shopper = Shopper(display_name=f"shopper {n}")
            session.add(shopper)
            await session.flush()
            at = utcnow() - timedelta(seconds=count - n)
            c = Consultation(
                shopper_id=shopper.id,
                kind=fields.get("kind", ConsultationKind.VIDEO),
                status=fields.get("status", S.QUEUED),
                requested_at=at,
                queued_at=at,
                skills=[],
                passed_over=[],
                offered_to_id=fields.get("offered_to_id"),
                offer_expires_at=fields.get("offer_expires_at"),
            )
            session.add(c)
            await session.flush()
            ids.append(c.id)
    return ids


async def _discard(_outgoing: Outgoing) -> None:
    return None


async def test_two_processes_deciding_at_once_never_double_offer(
    database_url: str, db: Database, make_staff: Any, settings: Settings
) -> None:
    advisors = [await make_staff(Role.ADVISOR) for _ in range(8)]
    for n, advisor in enumerate(advisors):
        await _available(db, advisor.id, idle_minutes=n + 1)
    waiting = await _queued(db, 24)
    # Two pools on one database: two processes, as far as the database can tell.
    first, second = Database(database_url), Database(database_url)
    first.event_sink = second.event_sink = _discard
    made: list[dispatch.Offer] = []
    # A few connections each (the database server is shared): still decisions side by side.
    slots = {id(first): asyncio.Semaphore(4), id(second): asyncio.Semaphore(4)}

    async def decide(pool: Database, **hint: Any) -> None:
        async with slots[id(pool)], pool.transaction() as session:
            made.extend(await dispatch.decide(session, settings, **hint))

    try:
        jobs = [decide((first, second)[n % 2], consultation_id=c) for n, c in enumerate(waiting)]
        jobs += [decide((second, first)[n % 2]) for n in range(8)]
        jobs += [decide((first, second)[n % 2], advisor_id=a.id) for n, a in enumerate(advisors)]
        await asyncio.gather(*jobs)
    finally:
        await first.dispose()
        await second.dispose()

    consultations = [o.consultation_id for o in made]
    assert len(consultations) == len(set(consultations)), "a consultation was offered twice"
    chosen = [o.advisor_id for o in made]
    assert len(chosen) == len(set(chosen)), "an advisor was given two offers at once"
    async with db.read() as session:
        held = (
            await session.execute(
                select(Consultation.offered_to_id, func.count())
                .where(Consultation.status == S.OFFERED)
                .group_by(Consultation.offered_to_id)
            )
        ).all()
    assert held
    assert all(count == 1 for _, count in held)
    assert {a for a, _ in held} == set(chosen)
    # Every advisor was free and 24 waited: each of the eight ends up with exactly one.
    assert len(made) == len(advisors)
    assert set(consultations) <= set(waiting)


async def _console(live: Any, account: Any) -> Any:
    sock = await live.staff(account)
    await sock.wait_for("presence.changed", lambda p: p["status"] == "available")
    return sock


async def test_the_sweep_picks_up_what_a_lost_kick_missed(live: Any, db: Database, make_staff: Any) -> None:
    advisor = await make_staff(Role.ADVISOR)
    other = await make_staff(Role.ADVISOR)
    first = await _console(live, advisor)
    # Written straight to the database: no kick, as if the process that took the join died
    # before it could decide. Only the sweep can find it.
    [lost] = await _queued(db, 1, kind=ConsultationKind.CHAT)
    offer = await first.wait_for("offer.new", lambda o: o["id"] == str(lost), within=15)
    assert offer["status"] == "offered"
    # An offer whose deadline timer died with its process: the sweep expires it (on the
    # deadline index) and offers it on.
    second = await _console(live, other)
    [orphan] = await _queued(
        db,
        1,
        kind=ConsultationKind.CHAT,
        status=S.OFFERED,
        offered_to_id=other.id,
        offer_expires_at=utcnow() - timedelta(seconds=1),
    )
    withdrawn = await second.wait_for(
        "offer.withdrawn", lambda w: w["consultation_id"] == str(orphan), within=15
    )
    assert withdrawn["reason"] == "timed out"
    # ``other`` passed on it (and is set away); ``advisor`` holds an offer until she answers.
    await first.ok("offer.accept", {"consultation_id": str(lost)})
    moved = await first.wait_for("offer.new", lambda o: o["id"] == str(orphan), within=15)
    assert moved["status"] == "offered"


async def test_queue_places_go_only_to_those_whose_place_moved(live: Any) -> None:
    # Nobody online: each place's estimate is its position times a typical handle time, so
    # a join at the back moves nobody ahead, and a leave moves up exactly those behind.
    shoppers, joined = [], []
    for _ in range(4):
        shopper = await live.shopper()
        c = await shopper.ok("queue.join", {"kind": "chat"})
        await shopper.wait_for("queue.position", lambda p, cid=c["id"]: p["consultation_id"] == cid)
        shoppers.append(shopper)
        joined.append(c["id"])
    first, second, third, fourth = shoppers
    assert [len(s.received("queue.position")) for s in shoppers] == [1, 1, 1, 1]

    await second.ok("queue.leave", {"consultation_id": joined[1]})
    assert (await third.wait_for("queue.position", lambda p: p["position"] == 2))[
        "consultation_id"
    ] == joined[2]
    await fourth.wait_for("queue.position", lambda p: p["position"] == 3)
    # A fifth joins at the back: only she hears; her event comes after any the leave caused.
    fifth = await live.shopper()
    c5 = await fifth.ok("queue.join", {"kind": "chat"})
    place = await fifth.wait_for("queue.position", lambda p: p["consultation_id"] == c5["id"])
    assert place["position"] == 4
    await wait_until(lambda: _settled(live))
    assert len(first.received("queue.position")) == 1  # ahead of the one who left: unmoved
    assert len(second.received("queue.position")) == 1  # gone: told nothing more
    assert len(third.received("queue.position")) == 2
    assert len(fourth.received("queue.position")) == 2
    assert len(fifth.received("queue.position")) == 1
    # A page that comes back reads the place it was last told (no recompute of the queue).
    [mine] = await third.ok("consultation.current")
    assert mine["queue"]["position"] == 2


async def _settled(live: Any) -> bool:
    from livedesk.consultations.routing_runner import RUNNER

    runner = live.http.server.app[RUNNER]
    return not runner.busy
