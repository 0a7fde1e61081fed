"""The chat stores (consultations/chat_store.py). Sends that meet a held lock wait — on SQLite
queued on the writer thread and written in batches, on PostgreSQL behind the row lock — and are
each stored once, in distinct sequences, a refused one undoing none of the others; what the
SQLite store writes in plain SQL reads back through the ORM."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from livedesk.consultations.chat_store import (
    CHAT_STORE,
    SendCommand,
    SqliteChatStore,
    StoreUnavailable,
)
from livedesk.consultations.chat_store_pg import PgChatStore
from livedesk.identity import ShopperActor
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import (
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    Message,
    MessageKind,
    Role,
    SenderKind,
    TimelineEvent,
    TimelineKind,
)
from livedesk.models import Shopper as Shopper_
from livedesk.settings import Settings
from tests.conftest import wait_until


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Eleven tabs of one shopper (more than the default cap of sockets per shopper), and twelve
    # sends held behind one lock at once: more than the default budget's ten chat-store
    # connections (kit/db.PoolBudget), each waiting send holding one.
    return settings.model_copy(
        update={
            "presence_grace_seconds": 0.0,
            "chat_rate_limit": "1000/10seconds",
            "shopper_sockets_per_token": 20,
            "db_max_connections": 30,
        }
    )


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


async def _all_on_timeline(store: Any) -> bool:
    return getattr(store, "unprojected", 0) == 0


@asynccontextmanager
async def held_lock(
    db_kind: str, db: Database, consultation_id: uuid.UUID
) -> AsyncIterator[Callable[[Any], Awaitable[int]]]:
    """Another writer holds the lock a chat send needs — SQLite's write lock (so nothing is
    stored inline), or the consultation's row on PostgreSQL — until the block ends. Yields
    how many sends wait for it."""
    if db_kind == "sqlite":
        blocker = sqlite3.connect(make_url(db.url).database or "", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")

        async def queued(store: Any) -> int:
            return int(store.queued)

        try:
            yield queued
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        return
    async with db.transaction() as session:
        await session.get(Consultation, consultation_id, with_for_update=True)

        async def blocked(store: Any) -> int:
            async with db.read() as probe:
                count = await probe.scalar(text("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted"))
            return int(count or 0)

        yield blocked


async def test_sends_behind_a_held_lock_are_each_stored_once(
    live: Any, make_staff: Any, client: TestClient[Any, Any], db: Database, db_kind: str
) -> None:
    shopper, console, consultation, token = await _active_chat(live, make_staff)
    store = client.server.app[CHAT_STORE]
    assert isinstance(store, SqliteChatStore if db_kind == "sqlite" else PgChatStore)
    ref = {"consultation_id": consultation["id"]}
    # One socket's events are handled in order, so concurrent sends need several sockets: the
    # shopper's tabs, and a shopper of another consultation. All connect before the lock is
    # taken (connecting writes too).
    tabs = [shopper, *[await live.shopper(token) for _ in range(10)]]
    stranger = await live.shopper((await live.visitor())["token"])

    def send(sock: Any, client_id: str, body: str) -> asyncio.Future[Any]:
        return asyncio.ensure_future(sock.call("chat.send", {**ref, "client_id": client_id, "body": body}))

    async with held_lock(db_kind, db, uuid.UUID(consultation["id"])) as waiting:
        sends = [send(tab, f"batch-{i:04d}", f"m{i}") for i, tab in enumerate(tabs[:10])]
        # The same client id twice in one batch: the second finds the first.
        sends.append(send(tabs[10], "batch-0000", "m0"))
        # A refused send inside the batch (not a party) must not undo the others.
        refused = send(stranger, "intruder-01", "x")

        async def all_waiting() -> bool:
            return await waiting(store) == 12

        await wait_until(all_waiting, within=5)
        assert not any(future.done() for future in [*sends, refused])

    acks = await asyncio.gather(*sends)
    assert all(ack["ok"] for ack in acks), acks
    seqs = [ack["data"]["seq"] for ack in acks[:10]]
    assert sorted(seqs) == list(range(1, 11))
    # The two sends of one client id: whichever got there first stored it, the other found it.
    twins = [acks[0]["data"], acks[10]["data"]]
    assert twins[0]["seq"] == twins[1]["seq"]
    assert twins[0]["id"] == twins[1]["id"]
    assert sorted(t["duplicate"] for t in twins) == [False, True]
    assert (await refused)["error"]["code"] == "not_a_party"

    # Written as the ORM writes: read back through it, messages and their timeline rows (on
    # SQLite copied just after the sends).
    await wait_until(lambda: _all_on_timeline(store))
    async with db.read() as session:
        rows = (
            await session.scalars(
                select(Message)
                .where(Message.consultation_id == uuid.UUID(consultation["id"]))
                .order_by(Message.seq)
            )
        ).all()
        timeline = await session.scalar(
            select(func.count())
            .select_from(TimelineEvent)
            .where(
                TimelineEvent.consultation_id == uuid.UUID(consultation["id"]),
                TimelineEvent.kind == TimelineKind.MESSAGE,
            )
        )
    assert [m.seq for m in rows] == list(range(1, 11))
    by_seq = {ack["data"]["seq"]: ack["data"] for ack in acks[:10]}
    for m in rows:
        assert str(m.id) == by_seq[m.seq]["id"]
        assert m.body == by_seq[m.seq]["message"]["body"]
        assert m.created_at.tzinfo is not None
        assert m.created_at == datetime.fromisoformat(by_seq[m.seq]["created_at"])
    assert timeline == 10

    # The advisor heard every message (the repeated client id again, as the same message).
    async def heard_all() -> bool:
        return {m["seq"] for m in console.received("chat.message")} == set(by_seq)

    await wait_until(heard_all)
    heard = {(m["seq"], m["id"]) for m in console.received("chat.message")}
    assert heard == {(seq, data["id"]) for seq, data in by_seq.items()}


async def test_the_senders_own_socket_gets_its_message_in_the_ack(live: Any, make_staff: Any) -> None:
    shopper, console, consultation, token = await _active_chat(live, make_staff)
    other_tab = await live.shopper(token)
    ack = await shopper.ok(
        "chat.send", {"consultation_id": consultation["id"], "client_id": "own-00001", "body": "hi"}
    )
    assert ack["message"]["body"] == "hi"
    assert ack["message"]["seq"] == ack["seq"]
    await console.wait_for("chat.message", lambda m: m["seq"] == ack["seq"])
    await other_tab.wait_for("chat.message", lambda m: m["seq"] == ack["seq"])
    # The advisor's next message reaches the shopper live; the shopper's own was not echoed.
    sent = await console.ok(
        "chat.send", {"consultation_id": consultation["id"], "client_id": "adv-00001", "body": "yo"}
    )
    await shopper.wait_for("chat.message", lambda m: m["seq"] == sent["seq"])
    assert [m["seq"] for m in shopper.received("chat.message")] == [sent["seq"]]


async def test_a_database_that_cannot_be_opened_answers_a_clear_error(tmp_path: Path) -> None:
    store = SqliteChatStore(str(tmp_path / "no-such-volume" / "livedesk.sqlite3"))
    command = SendCommand(
        actor=ShopperActor(uuid.uuid4(), "v1"),
        consultation_id=uuid.uuid4(),
        client_id="lost-0001",
        kind=MessageKind.TEXT,
        body="hi",
        data={},
    )
    try:
        # Twice: the writer thread survives the failure and answers the next send too.
        for _ in range(2):
            with pytest.raises(StoreUnavailable, match="send it again"):
                await store.send(command)
    finally:
        await store.close()


async def test_each_message_gets_its_timeline_line(
    live: Any, make_staff: Any, client: TestClient[Any, Any], db: Database
) -> None:
    shopper, console, consultation, _ = await _active_chat(live, make_staff)
    ref = {"consultation_id": consultation["id"]}
    sent = [
        await shopper.ok("chat.send", {**ref, "client_id": "line-00001", "body": "about my order"}),
        await console.ok("chat.send", {**ref, "client_id": "line-00002", "body": "x" * 300}),
    ]
    await wait_until(lambda: _all_on_timeline(client.server.app[CHAT_STORE]))
    cid = uuid.UUID(consultation["id"])
    async with db.read() as session:
        lines = (
            await session.scalars(
                select(TimelineEvent)
                .where(TimelineEvent.consultation_id == cid, TimelineEvent.kind == TimelineKind.MESSAGE)
                .order_by(TimelineEvent.occurred_at)
            )
        ).all()
        c = await session.get(Consultation, cid)
    assert c is not None
    assert (c.last_seq, c.timeline_seq) == (2, 2)
    assert [line.ref_id for line in lines] == [ack["id"] for ack in sent]
    assert [line.summary for line in lines] == ["about my order", "x" * 200]
    assert [line.data for line in lines] == [
        {"seq": 1, "sender": "shopper", "kind": "text"},
        {"seq": 2, "sender": "staff", "kind": "text"},
    ]
    assert [line.occurred_at for line in lines] == [datetime.fromisoformat(a["created_at"]) for a in sent]
    assert lines[0].actor_staff_id is None
    assert lines[1].actor_staff_id is not None
    assert {line.shopper_id for line in lines} == {c.shopper_id}


async def test_messages_left_off_the_timeline_are_copied_when_a_writer_starts(
    db: Database, db_kind: str
) -> None:
    """A process that died between storing messages and copying them leaves them beyond the
    consultation's timeline_seq; the next SQLite writer thread copies them, once."""
    shopper = Shopper_(id=uuid.uuid4(), display_name="Left off")
    c = Consultation(
        id=uuid.uuid4(),
        shopper_id=shopper.id,
        kind=ConsultationKind.CHAT,
        status=ConsultationStatus.ACTIVE,
        requested_at=utcnow(),
        passed_over=[],
        skills=[],
        last_seq=3,
        timeline_seq=1,
    )
    async with db.transaction() as session:
        session.add(shopper)
        await session.flush()
        session.add(c)
        await session.flush()
        for seq in (1, 2, 3):
            session.add(
                Message(
                    consultation_id=c.id,
                    seq=seq,
                    client_id=f"left-{seq:05d}",
                    sender_kind=SenderKind.SHOPPER,
                    kind=MessageKind.TEXT,
                    body=f"message {seq}",
                    data={},
                    created_at=utcnow(),
                )
            )

    async def lines() -> list[str]:
        async with db.read() as session:
            rows = await session.scalars(
                select(TimelineEvent.summary)
                .where(TimelineEvent.consultation_id == c.id, TimelineEvent.kind == TimelineKind.MESSAGE)
                .order_by(TimelineEvent.summary)
            )
            return list(rows.all())

    if db_kind != "sqlite":
        # PostgreSQL writes the line in the send's own transaction: nothing is ever left off,
        # and nothing here copies anything.
        assert await lines() == []
        return
    path = make_url(db.url).database or ""
    for _ in range(2):  # a second start finds nothing left to copy
        store = SqliteChatStore(path)
        try:

            async def copied() -> bool:
                return await lines() == ["message 2", "message 3"]

            await wait_until(copied)
        finally:
            await store.close()
    async with db.read() as session:
        again = await session.get(Consultation, c.id, populate_existing=True)
        assert again is not None
        assert again.timeline_seq == 3
    assert await lines() == ["message 2", "message 3"]


@pytest.mark.postgres
async def test_on_postgresql_a_send_is_one_round_trip_while_the_parties_stand(
    live: Any, make_staff: Any, client: TestClient[Any, Any], db: Database
) -> None:
    shopper, console, consultation, _ = await _active_chat(live, make_staff)
    store = client.server.app[CHAT_STORE]
    assert isinstance(store, PgChatStore)
    ref = {"consultation_id": consultation["id"]}
    # The first send reads the parties under the row lock (the careful path).
    first = await shopper.ok("chat.send", {**ref, "client_id": "trip-00000", "body": "hello"})
    before = store.round_trips
    sent = [
        await shopper.ok("chat.send", {**ref, "client_id": "trip-00001", "body": "one"}),
        await console.ok("chat.send", {**ref, "client_id": "trip-00002", "body": "two"}),
        # A retry: answered by the same statement, nothing written.
        await shopper.ok("chat.send", {**ref, "client_id": "trip-00001", "body": "one"}),
    ]
    assert store.round_trips - before == 3
    assert [first["seq"], *(ack["seq"] for ack in sent)] == [1, 2, 3, 2]
    assert sent[2]["duplicate"] is True

    # The parties change behind the store's back: the statement writes nothing, the careful
    # path decides with the row as it is now.
    async with db.transaction() as session:
        c = await session.get(Consultation, uuid.UUID(consultation["id"]))
        assert c is not None
        c.status = ConsultationStatus.CLOSED
    refused = await shopper.call("chat.send", {**ref, "client_id": "trip-00003", "body": "late"})
    assert refused["error"]["code"] == "chat_closed"
    # The retry of a message stored before still answers.
    again = await console.ok("chat.send", {**ref, "client_id": "trip-00002", "body": "two"})
    assert (again["seq"], again["duplicate"]) == (3, True)
    async with db.read() as session:
        c = await session.get(Consultation, uuid.UUID(consultation["id"]))
        assert c is not None
        assert (c.last_seq, c.timeline_seq) == (3, 3)
