"""Queue and routing through real sockets: longest idle first, skills and language,
nomination (available, wait, anyone), offer timeout hand-over, decline, capacity, positions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import AdvisorPresence, Consultation, Role
from livedesk.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"presence_grace_seconds": 0.0, "offer_timeout_seconds": 2.0})


async def _online(live: Any, account: Any) -> Any:
    console = await live.staff(account)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    return console


async def _set_idle_since(db: Database, staff_id: uuid.UUID, minutes_ago: int) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(AdvisorPresence)
            .where(AdvisorPresence.staff_id == staff_id)
            .values(idle_since=utcnow() - timedelta(minutes=minutes_ago))
        )


async def test_longest_idle_advisor_is_offered_first(live: Any, make_staff: Any, db: Database) -> None:
    fresh = await make_staff(Role.ADVISOR)
    idle = await make_staff(Role.ADVISOR)
    fresh_console = await _online(live, fresh)
    idle_console = await _online(live, idle)
    await _set_idle_since(db, fresh.id, 1)
    await _set_idle_since(db, idle.id, 30)
    shopper = await live.shopper()
    consultation = await shopper.ok("queue.join", {"kind": "video"})
    offer = await idle_console.wait_for("offer.new")
    assert offer["id"] == consultation["id"]
    assert not fresh_console.received("offer.new")


async def test_skills_and_language_come_before_idleness(live: Any, make_staff: Any, db: Database) -> None:
    generalist = await make_staff(Role.ADVISOR, skills=["styling"], languages=["ja"])
    expert = await make_staff(Role.ADVISOR, skills=["skincare"], languages=["en", "ja"])
    generalist_console = await _online(live, generalist)
    expert_console = await _online(live, expert)
    await _set_idle_since(db, generalist.id, 60)  # idle longer, but the wrong skill
    shopper = await live.shopper()
    await shopper.ok("queue.join", {"kind": "chat", "skills": ["skincare"], "language": "en"})
    await expert_console.wait_for("offer.new")
    assert not generalist_console.received("offer.new")


async def test_unanswered_offer_moves_to_the_next_advisor(live: Any, make_staff: Any, db: Database) -> None:
    first = await make_staff(Role.ADVISOR)
    second = await make_staff(Role.ADVISOR)
    first_console = await _online(live, first)
    second_console = await _online(live, second)
    await _set_idle_since(db, first.id, 10)
    shopper = await live.shopper()
    consultation = await shopper.ok("queue.join", {"kind": "voice"})
    await first_console.wait_for("offer.new")
    # Nobody answers: after the timeout the offer is withdrawn and goes to the other advisor.
    withdrawn = await first_console.wait_for("offer.withdrawn", within=10)
    assert withdrawn == {"consultation_id": consultation["id"], "reason": "timed out"}
    offer = await second_console.wait_for("offer.new", within=10)
    assert offer["id"] == consultation["id"]
    late = await first_console.call("offer.accept", {"consultation_id": consultation["id"]})
    assert late["error"]["code"] in {"offer_gone", "not_a_party"}
    assert (await second_console.ok("offer.accept", {"consultation_id": consultation["id"]}))[
        "status"
    ] == "active"


async def test_declined_offer_goes_to_someone_else(live: Any, make_staff: Any, db: Database) -> None:
    first = await make_staff(Role.ADVISOR)
    second = await make_staff(Role.ADVISOR)
    first_console = await _online(live, first)
    second_console = await _online(live, second)
    await _set_idle_since(db, first.id, 10)
    shopper = await live.shopper()
    consultation = await shopper.ok("queue.join", {"kind": "chat"})
    await first_console.wait_for("offer.new")
    await first_console.ok("offer.decline", {"consultation_id": consultation["id"]})
    assert (await second_console.wait_for("offer.new"))["id"] == consultation["id"]


async def test_nominated_advisor_gets_it_even_if_others_idle_longer(
    live: Any, make_staff: Any, db: Database
) -> None:
    favourite = await make_staff(Role.ADVISOR)
    other = await make_staff(Role.ADVISOR)
    favourite_console = await _online(live, favourite)
    other_console = await _online(live, other)
    await _set_idle_since(db, other.id, 120)
    shopper = await live.shopper()
    await shopper.ok("queue.join", {"kind": "video", "nominated_advisor_id": str(favourite.id)})
    await favourite_console.wait_for("offer.new")
    assert not other_console.received("offer.new")


async def test_nominated_advisor_unavailable_shopper_chooses(live: Any, make_staff: Any) -> None:
    favourite = await make_staff(Role.ADVISOR)
    other = await make_staff(Role.ADVISOR)
    favourite_console = await _online(live, favourite)
    await favourite_console.ok("presence.set", {"status": "away"})
    other_console = await _online(live, other)
    shopper = await live.shopper()
    ask = await shopper.call("queue.join", {"kind": "video", "nominated_advisor_id": str(favourite.id)})
    assert ask["ok"] is False
    assert ask["error"]["code"] == "nominated_unavailable"
    assert ask["error"]["details"]["status"] == "away"

    # Wait for them: nobody else is offered; when they come back, they are.
    waiting = await shopper.ok(
        "queue.join",
        {"kind": "video", "nominated_advisor_id": str(favourite.id), "if_nominated_unavailable": "wait"},
    )
    assert waiting["wait_for_nominated"] is True
    position = await shopper.wait_for("queue.position")
    assert position["position"] == 1
    await favourite_console.ok("presence.set", {"status": "available"})
    assert (await favourite_console.wait_for("offer.new"))["id"] == waiting["id"]
    assert not other_console.received("offer.new")


async def test_nominated_unavailable_take_anyone(live: Any, make_staff: Any) -> None:
    favourite = await make_staff(Role.ADVISOR)
    other = await make_staff(Role.ADVISOR)
    other_console = await _online(live, other)
    shopper = await live.shopper()
    joined = await shopper.ok(
        "queue.join",
        {"kind": "chat", "nominated_advisor_id": str(favourite.id), "if_nominated_unavailable": "anyone"},
    )
    assert (await other_console.wait_for("offer.new"))["id"] == joined["id"]


async def test_unknown_nominee_is_a_clear_error(live: Any) -> None:
    shopper = await live.shopper()
    ack = await shopper.call("queue.join", {"kind": "chat", "nominated_advisor_id": str(uuid.uuid4())})
    assert ack["error"]["code"] == "unknown_advisor"
    assert "nominated_advisor_id" in ack["error"]["message"]


async def test_waiting_shoppers_see_position_and_estimate(live: Any, make_staff: Any) -> None:
    advisor = await make_staff(Role.ADVISOR)
    console = await _online(live, advisor)
    await console.ok("presence.set", {"status": "away"})  # online but not taking anyone
    first = await live.shopper()
    second = await live.shopper()
    one = await first.ok("queue.join", {"kind": "video"})
    two = await second.ok("queue.join", {"kind": "video"})
    p1 = await first.wait_for("queue.position", lambda p: p["consultation_id"] == one["id"])
    p2 = await second.wait_for("queue.position", lambda p: p["consultation_id"] == two["id"])
    assert (p1["position"], p2["position"]) == (1, 2)
    assert 0 < p1["estimated_wait_seconds"] <= p2["estimated_wait_seconds"]
    # The first leaves: the second moves up.
    await first.ok("queue.leave", {"consultation_id": one["id"]})
    moved = await second.wait_for("queue.position", lambda p: p["position"] == 1)
    assert moved["consultation_id"] == two["id"]


async def test_one_call_but_several_chats(live: Any, make_staff: Any, db: Database) -> None:
    advisor = await make_staff(Role.ADVISOR)
    console = await _online(live, advisor)
    chats = []
    for _ in range(3):
        shopper = await live.shopper()
        c = await shopper.ok("queue.join", {"kind": "chat"})
        offer = await console.wait_for("offer.new", lambda o, cid=c["id"]: o["id"] == cid)
        await console.ok("offer.accept", {"consultation_id": offer["id"]})
        chats.append(c)
    # The chat limit (3) is reached: a fourth chat waits.
    fourth = await live.shopper()
    waiting = await fourth.ok("queue.join", {"kind": "chat"})
    await fourth.wait_for("queue.position")
    assert all(o["id"] != waiting["id"] for o in console.received("offer.new"))
    # A chat becomes a call; a second call on another chat is refused.
    assert (await console.ok("call.escalate", {"consultation_id": chats[0]["id"], "kind": "video"}))[
        "kind"
    ] == "video"
    busy = await console.wait_for("presence.changed", lambda p: p["status"] == "busy")
    assert busy["staff_id"] == str(advisor.id)
    refused = await console.call("call.escalate", {"consultation_id": chats[1]["id"], "kind": "voice"})
    assert refused["error"]["code"] == "advisor_in_call"
    async with db.read() as session:
        stored = await session.get(Consultation, uuid.UUID(chats[1]["id"]))
        assert stored is not None
        assert stored.kind.value == "chat"


async def test_queue_joins_are_rate_limited(live: Any) -> None:
    shopper = await live.shopper()
    first = await shopper.ok("queue.join", {"kind": "chat"})
    for _ in range(4):
        # Joining again while waiting returns the same consultation, and still counts.
        assert (await shopper.ok("queue.join", {"kind": "chat"}))["id"] == first["id"]
    limited = await shopper.call("queue.join", {"kind": "chat"})
    assert limited["ok"] is False
    assert limited["error"]["code"] == "rate_limited"
    assert limited["error"]["details"]["retry_after"] > 0


async def test_a_new_consultation_while_the_last_one_is_wrapped_up(live: Any, make_staff: Any) -> None:
    advisor = await make_staff(Role.ADVISOR)
    console = await _online(live, advisor)
    shopper = await live.shopper()
    first = await shopper.ok("queue.join", {"kind": "chat"})
    await console.wait_for("offer.new")
    await console.ok("offer.accept", {"consultation_id": first["id"]})
    assert (await shopper.ok("queue.join", {"kind": "chat"}))["id"] == first["id"]  # still talking
    await shopper.ok("consultation.end", {"consultation_id": first["id"]})
    second = await shopper.ok("queue.join", {"kind": "video"})
    assert second["id"] != first["id"]
    assert second["status"] == "queued"
