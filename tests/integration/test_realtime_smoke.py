from __future__ import annotations

from typing import Any

from livedesk.models import Role


async def test_talk_now_chat_and_hang_up(live: Any, make_staff: Any) -> None:
    advisor = await make_staff(Role.ADVISOR, skills=["skincare"], languages=["ja"])
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")

    shopper = await live.shopper()
    joined = await shopper.ok("queue.join", {"kind": "video"})
    offer = await console.wait_for("offer.new")
    assert offer["id"] == joined["id"]
    accepted = await console.ok("offer.accept", {"consultation_id": joined["id"]})
    assert accepted["status"] == "active"
    await shopper.wait_for("consultation.updated", lambda c: c["status"] == "active")

    ack = await shopper.ok(
        "chat.send", {"consultation_id": joined["id"], "client_id": "m-0001-abcd", "body": "hello"}
    )
    assert ack["seq"] == 1
    message = await console.wait_for("chat.message")
    assert message["body"] == "hello"
    await console.ok("consultation.end", {"consultation_id": joined["id"]})
    await shopper.wait_for("consultation.updated", lambda c: c["status"] == "wrap_up")
