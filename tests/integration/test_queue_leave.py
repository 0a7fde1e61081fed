"""A shopper who closes the page leaves the queue (after a grace period for reloads), so no
advisor is offered someone who is not there."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from livedesk.kit.background import BACKGROUND
from livedesk.kit.db import Database
from livedesk.models import Consultation, ConsultationStatus, Role
from livedesk.settings import Settings
from tests.conftest import wait_until


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"presence_grace_seconds": 0.0, "queue_leave_grace_seconds": 1.0})


async def _status(db: Database, consultation_id: str) -> ConsultationStatus:
    async with db.read() as session:
        c = await session.get(Consultation, uuid.UUID(consultation_id))
        assert c is not None
        return c.status


async def test_closing_the_page_gives_up_the_place(live: Any, make_staff: Any, db: Database) -> None:
    supervisor = await make_staff(Role.SUPERVISOR)
    board = await live.staff(supervisor)
    shopper = await live.shopper()
    joined = await shopper.ok("queue.join", {"kind": "video"})
    await shopper.close()

    async def abandoned() -> bool:
        return await _status(db, joined["id"]) == ConsultationStatus.ABANDONED

    await wait_until(abandoned, within=5)
    update = await board.wait_for("consultation.updated", lambda c: c["status"] == "abandoned")
    assert update["id"] == joined["id"]
    # An advisor coming online now is offered nothing.
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    assert await console.ok("consultation.current") == []


async def test_a_reload_keeps_the_place(live: Any, db: Database) -> None:
    visitor = await live.visitor()
    shopper = await live.shopper(visitor["token"])
    joined = await shopper.ok("queue.join", {"kind": "chat"})
    await shopper.close()
    again = await live.shopper(visitor["token"])
    current = await again.ok("consultation.current")
    assert [c["id"] for c in current] == [joined["id"]]
    assert current[0]["queue"]["position"] == 1

    # Once the grace timer of the closed page has run out, the place is still held.
    background = live.http.server.app[BACKGROUND]

    async def grace_over() -> bool:
        return background.pending("queue-leave-grace") == 0

    await wait_until(grace_over, within=5)
    assert await _status(db, joined["id"]) == ConsultationStatus.QUEUED
