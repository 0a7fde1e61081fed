"""Where chat messages are stored: the product's hottest write path.

A chat send must be stored (committed) before it is acknowledged, and a repeated client id must
answer with the same sequence number. Two stores keep the same rules (``parties.py``):

* ``SqliteChatStore`` — the embedded default. Through SQLAlchemy and aiosqlite, one send cost
  about forty hops between the event loop and aiosqlite's thread (cursor, execute, fetch, close
  for each statement), which made a chat ack 25–30× slower than a bare Socket.IO echo. Here the
  whole transaction is a handful of plain-SQL statements on a connection of our own, run one of
  two ways:

  - *inline*, on the event loop, when the write lock is free at that instant: ``BEGIN
    IMMEDIATE`` on a connection whose busy timeout is zero either gets the lock at once or
    fails at once, so the loop never waits on a lock — it only does the ~0.1 ms of work, which
    is less than a hop to a thread and back costs on a busy machine. That connection never
    checkpoints the WAL (the app's other connections do), so a commit stays short.
  - *on the writer thread* otherwise (another writer holds the lock, or sends are already
    queued): one thread with its own connection waits for the lock and writes a whole batch in
    one transaction. While a batch is written the next one gathers, so under load many sends
    share one commit (group commit).
  A message's line on the shopper's timeline is not part of that transaction: it is a copy of
  the message (``timeline_events`` has three B-trees of its own, which made it nearly half the
  cost of a send). The writer thread copies new messages to the timeline in batches a few
  milliseconds later, and ``consultations.timeline_seq`` records how far each consultation's
  messages have been copied, in the same transaction as the copies; messages beyond it (a
  process that died in between) are copied when a writer thread starts and once a minute.
* ``PgChatStore`` (``chat_store_pg.py``) — PostgreSQL: plain SQL over asyncpg, one statement
  per send, the timeline line in the send's own transaction.
* ``OrmChatStore`` (``chat_store_orm.py``) — any other database (an in-memory SQLite one,
  which the writer thread cannot share), through the ORM session.

The SQLite store writes exactly what the ORM would (UUIDs as 32 hex digits, timestamps as
naive-UTC text, JSON text, enum values), so the ORM reads these rows back unchanged; the chat
tests read every message written here through the ORM.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from queue import Empty, SimpleQueue
from typing import Any, Protocol

from aiohttp import web

from livedesk.consultations.parties import authorise_chat_send
from livedesk.identity import Actor, Parties, ShopperActor, authorise_party, staff_of
from livedesk.kit.clock import utcnow
from livedesk.kit.db import DB_WAIT_SECONDS
from livedesk.kit.errors import AppError, Conflict, NotFound
from livedesk.kit.logging import get_logger
from livedesk.models import (
    ConsultationStatus,
    MessageKind,
    SenderKind,
    TimelineKind,
)

log = get_logger("livedesk.chat")
SUMMARY_CHARS = 200


class RateLimitSpent(AppError):
    """A new message from a party whose chat budget is spent (a re-send still answers)."""

    code = "rate_limited"


@dataclass(frozen=True)
class SendCommand:
    actor: Actor
    consultation_id: uuid.UUID
    client_id: str
    kind: MessageKind
    body: str
    data: dict[str, Any]
    # False once the sender's rate limit is spent: a re-send of a stored message still
    # answers (it is not a new message), a new one is refused.
    allow_new: bool = True

    @property
    def sender(self) -> SenderKind:
        return SenderKind.SHOPPER if isinstance(self.actor, ShopperActor) else SenderKind.STAFF

    @property
    def staff_id(self) -> uuid.UUID | None:
        return staff_of(self.actor)


@dataclass(frozen=True)
class StoredMessage:
    id: uuid.UUID
    consultation_id: uuid.UUID
    seq: int
    client_id: str
    sender: SenderKind
    sender_staff_id: uuid.UUID | None
    kind: MessageKind
    body: str
    data: dict[str, Any]
    created_at: datetime
    # False when the client id was stored before (a retry): nothing new was written.
    created: bool
    # Who receives it: the consultation's shopper and assigned advisor.
    shopper_id: uuid.UUID
    advisor_id: uuid.UUID | None


class ChatStore(Protocol):
    async def send(self, command: SendCommand) -> StoredMessage: ...

    async def close(self) -> None: ...


def summary_of(kind: MessageKind, body: str) -> str:
    """The timeline line for a message."""
    return body[:SUMMARY_CHARS] if kind == MessageKind.TEXT else f"[{kind.value}]"


def line_data(seq: int, sender: str, kind: str) -> dict[str, Any]:
    """What a message's timeline line carries (both stores write the same)."""
    return {"seq": seq, "sender": sender, "kind": kind}


def file_reference(found_id: uuid.UUID, filename: str, content_type: str, size: int) -> dict[str, Any]:
    return {
        "file_id": str(found_id),
        "filename": filename,
        "content_type": content_type,
        "size": size,
        "url": f"/api/v1/files/{found_id}",
    }


def _file_id(data: dict[str, Any]) -> uuid.UUID:
    try:
        return uuid.UUID(str(data.get("file_id")))
    except ValueError:
        raise NotFound("field 'data.file_id': no such file", code="file_not_found") from None


def _no_such_file() -> NotFound:
    return NotFound("field 'data.file_id': no such file in this consultation", code="file_not_found")


# ----------------------------------------------------------------------------- SQLite


def _text_time(value: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME text, naive UTC (models/base.py UTCDateTime).
    # isoformat, not strftime: the same text in a third of the time.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _read_time(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _read_uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(hex=value) if value else None


def _hex(value: uuid.UUID | None) -> str | None:
    return value.hex if value is not None else None


class StoreUnavailable(AppError):
    code = "store_unavailable"


@dataclass
class _Pending:
    command: SendCommand
    future: asyncio.Future[StoredMessage]


@dataclass
class _Batch:
    items: list[_Pending] = field(default_factory=list)


@dataclass(frozen=True)
class _Projection:
    """Consultations whose new messages are to be copied to the timeline."""

    consultation_ids: list[uuid.UUID]


# Not a queue item of anyone's: the writer thread's own turn to look for messages never copied.
_RECOVER = _Projection([])

# The timeline copy waits this long so a burst of messages is copied in one transaction.
PROJECT_AFTER_SECONDS = 0.02
# How often the writer thread looks for messages that were never copied (a dead process).
RECOVER_EVERY_SECONDS = 60.0


class SqliteChatStore:
    """One writer thread with its own sqlite3 connection; see the module docstring."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._loop = asyncio.get_running_loop()
        self._queue: SimpleQueue[_Batch | _Projection | None] = SimpleQueue()
        self._gathering = _Batch()
        self._in_flight = False
        self._in_flight_size = 0
        self._closed = False
        # Consultations with messages not yet on the timeline: gathering here, then handed to
        # the writer thread (counted until it reports back).
        self._unprojected: set[uuid.UUID] = set()
        self._projecting = 0
        self._projection_due: asyncio.TimerHandle | None = None
        self._inline: sqlite3.Connection | None = None
        self._thread = threading.Thread(target=self._run, name="livedesk-chat-writer", daemon=True)
        self._thread.start()

    async def send(self, command: SendCommand) -> StoredMessage:
        if self._closed:
            raise StoreUnavailable("The server is shutting down; send the message again")
        if not self._in_flight and not self._gathering.items:
            inline = self._inline_connection()
            if inline is not None and self._begin_inline(inline):
                (result,) = self._write_in_transaction(inline, [command])
                if isinstance(result, AppError):
                    raise result
                if result.created:
                    self._to_timeline(result.consultation_id)
                return result
        future: asyncio.Future[StoredMessage] = self._loop.create_future()
        self._gathering.items.append(_Pending(command, future))
        self._kick()
        return await future

    @property
    def queued(self) -> int:
        """Sends waiting for the writer thread, gathering or being written (for tests)."""
        return len(self._gathering.items) + self._in_flight_size

    @property
    def unprojected(self) -> int:
        """Consultations with stored messages not yet copied to the timeline (for tests)."""
        return len(self._unprojected) + self._projecting

    def _to_timeline(self, consultation_id: uuid.UUID, after: float = PROJECT_AFTER_SECONDS) -> None:
        self._unprojected.add(consultation_id)
        if self._projection_due is None and not self._closed:
            self._projection_due = self._loop.call_later(after, self._hand_over_projection)

    def _hand_over_projection(self) -> None:
        self._projection_due = None
        if not self._unprojected:
            return
        ids, self._unprojected = sorted(self._unprojected), set()
        self._projecting += len(ids)
        self._queue.put(_Projection(ids))

    def _projected(self, projection: _Projection, done: bool) -> None:
        self._projecting -= len(projection.consultation_ids)
        if not done:
            # The database refused (gone, full, locked too long): try again later; the next
            # message in the same consultation, or the periodic recovery, also copies it.
            for consultation_id in projection.consultation_ids:
                self._to_timeline(consultation_id, after=1.0)

    def _kick(self) -> None:
        # One batch at a time: while it is written, the next one gathers.
        if self._in_flight or not self._gathering.items:
            return
        batch, self._gathering = self._gathering, _Batch()
        self._in_flight = True
        self._in_flight_size = len(batch.items)
        self._queue.put(batch)

    def _resolve(self, batch: _Batch, results: Sequence[StoredMessage | AppError]) -> None:
        self._in_flight = False
        self._in_flight_size = 0
        for pending, result in zip(batch.items, results, strict=True):
            if pending.future.done():  # the sender went away (cancelled)
                continue
            if isinstance(result, AppError):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)
        for result in results:
            if isinstance(result, StoredMessage) and result.created:
                self._to_timeline(result.consultation_id)
        self._kick()

    @staticmethod
    def _begin_inline(conn: sqlite3.Connection) -> bool:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False  # another writer holds the lock: queue behind it on the writer thread
        return True

    def _inline_connection(self) -> sqlite3.Connection | None:
        """The event loop's own connection; None while the database cannot be opened (the
        writer thread then answers, with an error the client retries on)."""
        if self._inline is None:
            try:
                conn = self._connect()
                # Never wait for the lock on the event loop, and leave checkpoints to the
                # app's other connections so an inline commit never copies the WAL back.
                conn.execute("PRAGMA busy_timeout=0")
                conn.execute("PRAGMA wal_autocheckpoint=0")
            except sqlite3.Error:
                return None
            self._inline = conn
        return self._inline

    async def close(self) -> None:
        self._closed = True
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if self._projection_due is not None:
            self._projection_due.cancel()
        # What is still to be copied goes before the stop, so a clean shutdown leaves nothing
        # for the recovery.
        self._hand_over_projection()
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        for pending in self._gathering.items:
            if not pending.future.done():
                pending.future.set_exception(StoreUnavailable("The server is shutting down"))

    # --------------------------------------------------------------- the writer thread

    def _connect(self) -> sqlite3.Connection:
        # Same settings as the SQLAlchemy engine (kit/db.py): WAL, foreign keys, and a busy
        # timeout so this writer queues behind the app's other writers instead of failing.
        conn = sqlite3.connect(
            self._path, timeout=DB_WAIT_SECONDS, isolation_level=None, check_same_thread=True
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={int(DB_WAIT_SECONDS * 1000)}")
        return conn

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        recover_at = time.monotonic()  # at once: a previous process may have died mid-copy
        try:
            while True:
                # The recovery's turn comes even while sends keep the queue busy.
                item: _Batch | _Projection | None = _RECOVER
                if time.monotonic() < recover_at:
                    try:
                        item = self._queue.get(timeout=recover_at - time.monotonic())
                    except Empty:
                        continue
                if item is None:
                    return
                error: sqlite3.Error | None = None
                try:
                    # Opened on first use, and again after a failure: a database that cannot
                    # be opened now (a missing volume) may come back.
                    conn = conn or self._connect()
                except sqlite3.Error as exc:
                    conn, error = None, exc
                if isinstance(item, _Batch):
                    commands = [p.command for p in item.items]
                    results = self._failed(error, commands) if conn is None else self._write(conn, commands)
                    self._loop.call_soon_threadsafe(self._resolve, item, results)
                elif item is _RECOVER:
                    if conn is not None and self._recover(conn):
                        recover_at = time.monotonic() + RECOVER_EVERY_SECONDS
                    else:
                        recover_at = time.monotonic() + 5.0
                else:
                    done = conn is not None and self._project(conn, item.consultation_ids)
                    self._loop.call_soon_threadsafe(self._projected, item, done)
        finally:
            if conn is not None:
                conn.close()

    def _recover(self, conn: sqlite3.Connection) -> bool:
        """Copy to the timeline whatever messages were stored but never copied."""
        try:
            rows = conn.execute("SELECT id FROM consultations WHERE last_seq > timeline_seq").fetchall()
        except sqlite3.Error as exc:
            log.error("timeline recovery failed", error=repr(exc))
            return False
        if rows:
            log.info("copying messages left off the timeline", consultations=len(rows))
        return self._project(conn, [uuid.UUID(hex=row[0]) for row in rows])

    @staticmethod
    def _project(conn: sqlite3.Connection, consultation_ids: Sequence[uuid.UUID]) -> bool:
        """Copy each consultation's messages beyond its ``timeline_seq`` to the timeline, and
        move the mark, in one transaction. The shopper is read now, so a profile merged in
        the meantime gets the lines."""
        if not consultation_ids:
            return True
        try:
            conn.execute("BEGIN IMMEDIATE")
            for consultation_id in consultation_ids:
                cid = consultation_id.hex
                rows = conn.execute(
                    "SELECT m.id, m.seq, m.sender_kind, m.sender_staff_id, m.kind, m.body, m.created_at, "
                    "c.shopper_id FROM consultations c JOIN messages m ON m.consultation_id = c.id "
                    "WHERE c.id = ? AND m.seq > c.timeline_seq ORDER BY m.seq",
                    (cid,),
                ).fetchall()
                if not rows:
                    continue
                conn.executemany(
                    "INSERT INTO timeline_events (id, shopper_id, occurred_at, kind, summary, data, "
                    "actor_staff_id, consultation_id, ref_id, recorded_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            uuid.uuid4().hex,
                            shopper_id,
                            created_at,
                            TimelineKind.MESSAGE.value,
                            summary_of(MessageKind(kind), body),
                            json.dumps(line_data(seq, sender, kind)),
                            staff_id,
                            cid,
                            str(uuid.UUID(hex=message_id)),
                            created_at,
                        )
                        for message_id, seq, sender, staff_id, kind, body, created_at, shopper_id in rows
                    ],
                )
                conn.execute("UPDATE consultations SET timeline_seq = ? WHERE id = ?", (rows[-1][1], cid))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.error(
                "messages not copied to the timeline", error=repr(exc), consultations=len(consultation_ids)
            )
            return False
        return True

    def _write(self, conn: sqlite3.Connection, commands: list[SendCommand]) -> list[StoredMessage | AppError]:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            return self._failed(exc, commands)
        return self._write_in_transaction(conn, commands)

    @staticmethod
    def _failed(exc: sqlite3.Error | None, commands: list[SendCommand]) -> list[StoredMessage | AppError]:
        log.error("chat batch not stored", error=repr(exc), size=len(commands))
        # Nothing of the batch was stored: every sender gets an error ack and its client
        # sends again (same client id, so a later success is still stored once).
        failed = StoreUnavailable("The message could not be stored; send it again")
        return [failed] * len(commands)

    def _write_in_transaction(
        self, conn: sqlite3.Connection, commands: list[SendCommand]
    ) -> list[StoredMessage | AppError]:
        """Store each command (a transaction is open), then commit."""
        # A refused send must not undo the others in its batch: savepoints. A batch of one
        # (every inline send) needs none; its refusal rolls the transaction back.
        alone = len(commands) == 1
        results: list[StoredMessage | AppError] = []
        try:
            for command in commands:
                if not alone:
                    conn.execute("SAVEPOINT chat_send")
                try:
                    results.append(self._store_one(conn, command))
                except (AppError, sqlite3.IntegrityError) as exc:
                    conn.execute("ROLLBACK" if alone else "ROLLBACK TO chat_send")
                    results.append(exc if isinstance(exc, AppError) else Conflict(str(exc), code="conflict"))
                if not alone:
                    conn.execute("RELEASE chat_send")
            if conn.in_transaction:
                conn.execute("COMMIT")
            return results
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return self._failed(exc, commands)

    def _store_one(self, conn: sqlite3.Connection, command: SendCommand) -> StoredMessage:
        cid = command.consultation_id.hex
        row = conn.execute(
            "SELECT shopper_id, advisor_id, offered_to_id, status, last_seq FROM consultations WHERE id = ?",
            (cid,),
        ).fetchone()
        if row is None:
            raise NotFound("No such consultation", code="consultation_not_found")
        shopper_id = uuid.UUID(hex=row[0])
        advisor_id = _read_uuid(row[1])
        parties = Parties(command.consultation_id, shopper_id, advisor_id, _read_uuid(row[2]))
        authorise_party(command.actor, parties, write=True)
        sender = command.sender
        existing = conn.execute(
            "SELECT id, seq, sender_staff_id, kind, body, data, created_at FROM messages "
            "WHERE consultation_id = ? AND client_id = ? AND sender_kind = ?",
            (cid, command.client_id, sender.value),
        ).fetchone()
        if existing is not None:
            return StoredMessage(
                id=uuid.UUID(hex=existing[0]),
                consultation_id=command.consultation_id,
                seq=existing[1],
                client_id=command.client_id,
                sender=sender,
                sender_staff_id=_read_uuid(existing[2]),
                kind=MessageKind(existing[3]),
                body=existing[4],
                data=json.loads(existing[5]),
                created_at=_read_time(existing[6]),
                created=False,
                shopper_id=shopper_id,
                advisor_id=advisor_id,
            )
        authorise_chat_send(command.actor, ConsultationStatus(row[3]), advisor_id)
        if not command.allow_new:
            raise RateLimitSpent("Sending too fast; slow down")
        data = command.data
        if command.kind in (MessageKind.IMAGE, MessageKind.FILE):
            file_id = _file_id(data)
            found = conn.execute(
                "SELECT filename, content_type, size FROM chat_files WHERE id = ? AND consultation_id = ?",
                (file_id.hex, cid),
            ).fetchone()
            if found is None:
                raise _no_such_file()
            data = file_reference(file_id, found[0], found[1], found[2])
        seq = row[4] + 1
        now = utcnow()
        at = _text_time(now)
        message_id = uuid.uuid4()
        conn.execute("UPDATE consultations SET last_seq = ?, updated_at = ? WHERE id = ?", (seq, at, cid))
        conn.execute(
            "INSERT INTO messages (id, consultation_id, seq, client_id, sender_kind, sender_staff_id, "
            "kind, body, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message_id.hex,
                cid,
                seq,
                command.client_id,
                sender.value,
                _hex(command.staff_id),
                command.kind.value,
                command.body,
                json.dumps(data),
                at,
            ),
        )
        return StoredMessage(
            id=message_id,
            consultation_id=command.consultation_id,
            seq=seq,
            client_id=command.client_id,
            sender=sender,
            sender_staff_id=command.staff_id,
            kind=command.kind,
            body=command.body,
            data=data,
            created_at=now,
            created=True,
            shopper_id=shopper_id,
            advisor_id=advisor_id,
        )


# ----------------------------------------------------------------------------- wiring

CHAT_STORE = web.AppKey("chat_store", ChatStore)
