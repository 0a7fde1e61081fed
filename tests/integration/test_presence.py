"""Advisor presence: available / busy / away / offline with the time it began, several tabs,
busy during a call, offline only after the last tab leaves and the grace period."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from livedesk.kit.db import Database
from livedesk.models import AdvisorPresence, PresenceStatus, Role
from livedesk.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"presence_grace_seconds": 1.5})


async def _stored(db: Database, staff_id: uuid.UUID) -> AdvisorPresence:
    async with db.read() as session:
        row = await session.get(AdvisorPresence, staff_id)
        assert row is not None
        return row


async def test_presence_transitions(live: Any, make_staff: Any, db: Database) -> None:
    advisor = await make_staff(Role.ADVISOR)
    supervisor = await make_staff(Role.SUPERVISOR)
    board = await live.staff(supervisor)
    sid = str(advisor.id)

    tab1 = await live.staff(advisor)
    available = await board.wait_for("presence.changed", lambda p: p["staff_id"] == sid)
    assert available["status"] == "available"
    since_available = datetime.fromisoformat(available["since"])
    assert (await _stored(db, advisor.id)).status == PresenceStatus.AVAILABLE

    # A second tab changes nothing.
    tab2 = await live.staff(advisor)
    away = await tab2.ok("presence.set", {"status": "away"})
    assert away["status"] == "away"
    changed = await board.wait_for(
        "presence.changed", lambda p: p["staff_id"] == sid and p["status"] == "away"
    )
    assert datetime.fromisoformat(changed["since"]) >= since_available
    # Both tabs hear it.
    await tab1.wait_for("presence.changed", lambda p: p["status"] == "away")
    await tab2.ok("presence.set", {"status": "available"})

    # Busy during a call, available again after it.
    shopper = await live.shopper()
    consultation = await shopper.ok("queue.join", {"kind": "video"})
    await tab1.wait_for("offer.new")
    await tab1.ok("offer.accept", {"consultation_id": consultation["id"]})
    await board.wait_for("presence.changed", lambda p: p["staff_id"] == sid and p["status"] == "busy")
    assert (await _stored(db, advisor.id)).status == PresenceStatus.BUSY
    await shopper.ok("consultation.end", {"consultation_id": consultation["id"]})
    await board.wait_for(
        "presence.changed",
        lambda p: p["staff_id"] == sid and p["status"] == "available" and p["since"] != available["since"],
    )

    # Closing one tab keeps them online; closing the last one takes them offline after the grace.
    before = len(board.received("presence.changed"))
    await tab1.close()
    await tab2.ok("presence.list")
    assert (await _stored(db, advisor.id)).status == PresenceStatus.AVAILABLE
    await tab2.close()
    offline = await board.wait_for(
        "presence.changed", lambda p: p["staff_id"] == sid and p["status"] == "offline"
    )
    assert offline["status"] == "offline"
    assert all(p["status"] != "offline" for p in board.received("presence.changed")[:before])
    assert (await _stored(db, advisor.id)).status == PresenceStatus.OFFLINE


async def test_reload_within_grace_does_not_flicker_offline(live: Any, make_staff: Any) -> None:
    advisor = await make_staff(Role.ADVISOR)
    supervisor = await make_staff(Role.SUPERVISOR)
    board = await live.staff(supervisor)
    tab = await live.staff(advisor)
    await board.wait_for("presence.changed", lambda p: p["status"] == "available")
    cookie = await live.staff_cookie(advisor)
    await tab.close()
    again = await live.staff(advisor, cookie=cookie)
    # The reload came back within the grace period: the advisor never went offline.
    listed = await again.ok("presence.list")
    mine = next(p for p in listed if p["staff_id"] == str(advisor.id))
    assert mine["status"] == "available"
    await board.ok("presence.list")
    assert all(p["status"] != "offline" for p in board.received("presence.changed"))


async def test_supervisor_sees_every_advisor(live: Any, make_staff: Any) -> None:
    advisors = [await make_staff(Role.ADVISOR) for _ in range(3)]
    for account in advisors:
        await live.staff(account)
    supervisor = await make_staff(Role.SUPERVISOR)
    board = await live.staff(supervisor)
    listed = {p["staff_id"]: p["status"] for p in await board.ok("presence.list")}
    assert all(listed[str(a.id)] == "available" for a in advisors)
