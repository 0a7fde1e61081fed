"""Chat that never loses a message: idempotent sends, sequence numbers, replay after a
reconnect, typing and read state, product cards, rate limits, and the timeline."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from livedesk.consultations.chat_store import CHAT_STORE
from livedesk.kit.db import Database
from livedesk.models import Message, Product, Role, TimelineEvent, TimelineKind
from livedesk.settings import Settings
from tests.conftest import wait_until


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"presence_grace_seconds": 0.0, "chat_rate_limit": "40/10seconds"})


async def _active_chat(live: Any, make_staff: Any) -> tuple[Any, Any, dict[str, Any], str]:
    advisor = await make_staff(Role.ADVISOR)
    console = await live.staff(advisor)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")
    visitor = await live.visitor()
    shopper = await live.shopper(visitor["token"])
    consultation = await shopper.ok("queue.join", {"kind": "chat"})
    await console.wait_for("offer.new")
    await console.ok("offer.accept", {"consultation_id": consultation["id"]})
    return shopper, console, consultation, visitor["token"]


async def test_duplicate_sends_are_stored_once(live: Any, make_staff: Any, db: Database) -> None:
    shopper, console, consultation, _ = await _active_chat(live, make_staff)
    msg = {"consultation_id": consultation["id"], "client_id": "dup-000001", "body": "only once"}
    first = await shopper.ok("chat.send", msg)
    # A retry after a lost ack, and a concurrent double send, all answer with the same seq.
    again, racing = await asyncio.gather(shopper.ok("chat.send", msg), shopper.ok("chat.send", msg))
    assert first["duplicate"] is False
    assert again["duplicate"] is True
    assert racing["duplicate"] is True
    assert first["seq"] == again["seq"] == racing["seq"] == 1
    assert first["id"] == again["id"]
    async with db.read() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.consultation_id == uuid.UUID(consultation["id"]))
        )
    assert count == 1
    await console.wait_for("chat.message")
    await shopper.ok("chat.sync", {"consultation_id": consultation["id"], "after_seq": 0})
    # A repeat may be delivered again (its first fan-out could have died with a process),
    # but it is the same message: same id, same sequence.
    assert {(m["id"], m["seq"]) for m in console.received("chat.message")} == {(first["id"], 1)}
    # The advisor's message with the same client id is a different message.
    other = await console.ok("chat.send", {**msg, "body": "mine"})
    assert other["seq"] == 2


async def test_replay_after_disconnect(live: Any, make_staff: Any) -> None:
    shopper, console, consultation, token = await _active_chat(live, make_staff)
    ref = {"consultation_id": consultation["id"]}
    await console.ok("chat.send", {**ref, "client_id": "adv-000001", "body": "one"})
    seen = await shopper.wait_for("chat.message")
    last_seen = seen["seq"]
    await shopper.close()
    # Messages sent while the shopper is away...
    for i in range(2, 6):
        await console.ok("chat.send", {**ref, "client_id": f"adv-00000{i}", "body": f"m{i}"})
    # ...are replayed after reconnecting with the last sequence seen.
    back = await live.shopper(token)
    missed = await back.ok("chat.sync", {**ref, "after_seq": last_seen})
    assert [m["body"] for m in missed["messages"]] == ["m2", "m3", "m4", "m5"]
    assert [m["seq"] for m in missed["messages"]] == [2, 3, 4, 5]
    assert missed["last_seq"] == 5
    assert missed["complete"] is True
    # Re-sending what was never acked stores it once, after the others.
    resent = await back.ok("chat.send", {**ref, "client_id": "shop-unacked1", "body": "did you get this?"})
    resent_again = await back.ok(
        "chat.send", {**ref, "client_id": "shop-unacked1", "body": "did you get this?"}
    )
    assert resent["seq"] == resent_again["seq"] == 6
    everything = await console.ok("chat.sync", {**ref, "after_seq": 0})
    assert [m["seq"] for m in everything["messages"]] == [1, 2, 3, 4, 5, 6]


async def test_typing_and_read_state(live: Any, make_staff: Any) -> None:
    shopper, console, consultation, _ = await _active_chat(live, make_staff)
    ref = {"consultation_id": consultation["id"]}
    await shopper.ok("chat.typing", {**ref, "typing": True})
    typing = await console.wait_for("chat.typing")
    assert typing == {**ref, "who": "shopper", "typing": True}
    assert not shopper.received("chat.typing")
    for i in range(3):
        await console.ok("chat.send", {**ref, "client_id": f"adv-read-{i:04d}", "body": f"r{i}"})
    assert (await shopper.ok("chat.read", {**ref, "seq": 2}))["seq"] == 2
    read = await console.wait_for("chat.read")
    assert read == {**ref, "reader": "shopper", "seq": 2}
    # Read state never moves back, and cannot pass the last message.
    await shopper.ok("chat.read", {**ref, "seq": 1})
    assert (await shopper.ok("chat.read", {**ref, "seq": 99}))["seq"] == 3


async def test_product_cards_are_validated(live: Any, make_staff: Any, db: Database) -> None:
    async with db.transaction() as session:
        session.add(
            Product(sku="HB-001", name="Hydra serum", price_minor=4400, currency="JPY", image_url="/x.png")
        )
    shopper, console, consultation, _ = await _active_chat(live, make_staff)
    ref = {"consultation_id": consultation["id"]}
    # The card is the catalogue's: the SKU is all the sender's data that counts (more in
    # test_product_cards.py).
    card = {"sku": "HB-001", "price_minor": 1}
    sent = await console.ok("chat.send", {**ref, "client_id": "card-00001", "kind": "product", "data": card})
    message = await shopper.wait_for("chat.message", lambda m: m["seq"] == sent["seq"])
    assert message["kind"] == "product"
    assert message["data"]["price_minor"] == 4400
    bad = await console.call(
        "chat.send",
        {**ref, "client_id": "card-00002", "kind": "product", "data": {**card, "sku": "no spaces"}},
    )
    assert bad["error"]["code"] == "validation_failed"
    empty = await shopper.call("chat.send", {**ref, "client_id": "empty-0001", "body": ""})
    assert empty["error"]["code"] == "validation_failed"


async def test_chat_rate_limit(live: Any, make_staff: Any) -> None:
    shopper, _console, consultation, _ = await _active_chat(live, make_staff)
    ref = {"consultation_id": consultation["id"]}
    acks = [
        await shopper.call("chat.send", {**ref, "client_id": f"flood-{i:05d}", "body": "x"})
        for i in range(45)
    ]
    assert all(a["ok"] for a in acks[:40])
    limited = [a for a in acks if not a["ok"]]
    assert limited
    assert all(a["error"]["code"] == "rate_limited" for a in limited)
    assert "retry_after" in limited[0]["error"]["details"]


async def test_messages_land_on_the_timeline_and_chat_closes(
    live: Any, make_staff: Any, db: Database, client: TestClient[Any, Any]
) -> None:
    shopper, console, consultation, _ = await _active_chat(live, make_staff)
    ref = {"consultation_id": consultation["id"]}
    await shopper.ok("chat.send", {**ref, "client_id": "tl-000001", "body": "about my order"})
    await console.ok("consultation.close", {**ref, "notes": "sent size guide"})
    closed = await shopper.call("chat.send", {**ref, "client_id": "tl-000002", "body": "one more"})
    assert closed["error"]["code"] == "chat_closed"

    async def copied() -> bool:
        # On SQLite a message's timeline line is copied just after the send.
        return getattr(client.server.app[CHAT_STORE], "unprojected", 0) == 0

    await wait_until(copied)
    async with db.read() as session:
        kinds = (
            await session.scalars(
                select(TimelineEvent.kind).where(
                    TimelineEvent.consultation_id == uuid.UUID(consultation["id"])
                )
            )
        ).all()
    assert TimelineKind.MESSAGE in kinds
    assert kinds.count(TimelineKind.CONSULTATION) >= 5  # requested, queued, offered, accepted, closed


async def test_resending_does_not_count_against_the_rate_limit(live: Any, make_staff: Any) -> None:
    shopper, _console, consultation, _ = await _active_chat(live, make_staff)
    ref = {"consultation_id": consultation["id"]}
    for i in range(40):
        await shopper.ok("chat.send", {**ref, "client_id": f"burst-{i:05d}", "body": "x"})
    # The budget is spent, yet re-sending what was already stored is still answered.
    again = await shopper.ok("chat.send", {**ref, "client_id": "burst-00039", "body": "x"})
    assert again["duplicate"] is True
    assert again["seq"] == 40
    limited = await shopper.call("chat.send", {**ref, "client_id": "burst-new01", "body": "x"})
    assert limited["error"]["code"] == "rate_limited"
