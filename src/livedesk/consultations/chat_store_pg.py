"""The PostgreSQL chat store: plain SQL over asyncpg, one round trip per send.

Through the ORM a send cost a ``SELECT … FOR UPDATE``, a lookup, two INSERTs, an UPDATE and a
COMMIT — six round trips and the ORM's unit of work, 2.5 ms of CPU per message (issue 22).
Here the usual send is **one statement in autocommit** (a data-modifying CTE is one
transaction): it looks up the client id, bumps the consultation's ``last_seq`` (the UPDATE's
row lock hands out sequences one at a time, so they stay gap-free: a statement that fails
undoes its bump), inserts the message and its timeline line, and moves ``timeline_seq`` with
``last_seq`` — the line is written with the message, so nothing is ever left off the timeline.

Who may send is decided in Python by the rules of ``parties.py``, which need the consultation's
parties and status. The store keeps the last ones it saw per consultation and checks the rules
against them before the statement; the statement's UPDATE only matches while the row still has
exactly those values (so the rules would answer the same). If anything changed — the advisor,
the status, an offer — or the store has not seen the consultation yet, the statement writes
nothing and the send takes the *careful path*: a transaction that locks the row, reads it,
applies the rules and writes (also the path for files, which need the file row ``FOR SHARE``,
and for a spent rate limit). Two sends of one client id racing each other: the second's INSERT
meets the unique key once the first commits, and the careful path then answers with the first.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from livedesk.consultations.chat_store import (
    RateLimitSpent,
    SendCommand,
    StoredMessage,
    StoreUnavailable,
    _file_id,
    _no_such_file,
    file_reference,
    summary_of,
)
from livedesk.consultations.parties import authorise_chat_send
from livedesk.identity import Parties, authorise_party
from livedesk.kit.clock import utcnow
from livedesk.kit.db import DB_WAIT_SECONDS, PoolBudget
from livedesk.kit.errors import AppError, NotFound
from livedesk.kit.http import DATABASE_UNAVAILABLE
from livedesk.kit.logging import get_logger
from livedesk.models import ConsultationStatus, MessageKind, SenderKind, TimelineKind

log = get_logger("livedesk.chat")

# The pool's size is the chat store's share of the process's connection budget
# (kit/db.PoolBudget, LIVEDESK_DB_MAX_CONNECTIONS): each send holds a connection only for its
# statement; they are closed again after a minute unused.
# Consultations whose parties and status the store remembers (about 150 bytes each).
KNOWN_MAX = 20_000

# What says "the database cannot take this send now": the client sends it again.
_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.LockNotAvailableError,
    asyncpg.QueryCanceledError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
)


@dataclass(frozen=True, slots=True)
class _Parties:
    """What the party rules read of a consultation."""

    shopper_id: uuid.UUID
    advisor_id: uuid.UUID | None
    offered_to_id: uuid.UUID | None
    status: ConsultationStatus

    def of(self, consultation_id: uuid.UUID) -> Parties:
        """For the one party rule (``identity.authorise_party``)."""
        return Parties(consultation_id, self.shopper_id, self.advisor_id, self.offered_to_id)


# The write shared by both paths ($1–$11); the fast path guards it with the parties it checked
# ($12–$15).
_WRITE = """
c AS (
    UPDATE consultations SET last_seq = last_seq + 1, timeline_seq = last_seq + 1, updated_at = $9
    WHERE id = $1 AND {guard}
    RETURNING shopper_id, last_seq
), m AS (
    INSERT INTO messages (id, consultation_id, seq, client_id, sender_kind, sender_staff_id, kind,
                          body, data, created_at)
    SELECT $4, $1, c.last_seq, $2, $3, $5, $6, $7, $8::jsonb, $9 FROM c
), t AS (
    INSERT INTO timeline_events (id, shopper_id, occurred_at, kind, summary, data, actor_staff_id,
                                 consultation_id, ref_id, recorded_at)
    SELECT gen_random_uuid(), c.shopper_id, $9, $10, $11,
           jsonb_build_object('seq', c.last_seq, 'sender', $3::text, 'kind', $6::text),
           $5, $1, $4::text, $9
    FROM c
)"""

_FAST_EXISTING = """
WITH existing AS (
    SELECT id, seq, sender_staff_id, kind, body, data::text AS data, created_at FROM messages
    WHERE consultation_id = $1 AND client_id = $2 AND sender_kind = $3
),"""
_FAST_GUARD = (
    "NOT EXISTS (SELECT 1 FROM existing) AND shopper_id = $12 AND advisor_id IS NOT DISTINCT FROM $13 "
    "AND offered_to_id IS NOT DISTINCT FROM $14 AND status = $15"
)
_FAST_ANSWER = """
SELECT (SELECT last_seq FROM c) AS new_seq, cur.shopper_id, cur.advisor_id, cur.offered_to_id,
       cur.status, e.id, e.seq, e.sender_staff_id, e.kind, e.body, e.data, e.created_at
FROM consultations cur LEFT JOIN existing e ON true WHERE cur.id = $1
"""
# Constant text (S608): every value is a bind parameter.
_FAST = _FAST_EXISTING + _WRITE.format(guard=_FAST_GUARD) + _FAST_ANSWER
_CAREFUL_WRITE = "WITH " + _WRITE.format(guard="true") + " SELECT last_seq FROM c"  # noqa: S608

_LOCK = "SELECT shopper_id, advisor_id, offered_to_id, status FROM consultations WHERE id = $1 FOR UPDATE"

_EXISTING = (
    "SELECT id, seq, sender_staff_id, kind, body, data::text, created_at FROM messages "
    "WHERE consultation_id = $1 AND client_id = $2 AND sender_kind = $3"
)

# FOR SHARE: the unsent-file sweep (file_sweep.py) holds the row FOR UPDATE while it decides,
# so the file is either kept for this message or already gone.
_FILE = "SELECT filename, content_type, size FROM chat_files WHERE id = $1 AND consultation_id = $2 FOR SHARE"


def asyncpg_dsn(url: str) -> str:
    """The libpq form of a SQLAlchemy ``postgresql+asyncpg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgChatStore:
    """See the module docstring."""

    def __init__(self, pool: asyncpg.Pool, acquire_seconds: float = DB_WAIT_SECONDS) -> None:
        self._pool = pool
        self._acquire_seconds = acquire_seconds
        self._known: dict[uuid.UUID, _Parties] = {}
        # Round trips to the database so far (for tests: the hot path's cost is one).
        self.round_trips = 0

    @classmethod
    async def open(cls, url: str, budget: PoolBudget) -> PgChatStore:
        pool = await asyncpg.create_pool(
            asyncpg_dsn(url),
            # None opened up front: a database that is down at startup fails sends (which the
            # clients retry), not the server's start.
            min_size=0,
            max_size=budget.chat,
            timeout=DB_WAIT_SECONDS,
            max_inactive_connection_lifetime=60.0,
            # The same waits as the app's engine (kit/db.py): a send never hangs on a lock.
            server_settings={
                "application_name": f"livedesk-chat/{os.getpid()}",
                "lock_timeout": str(int(DB_WAIT_SECONDS * 1000)),
                "statement_timeout": str(int(DB_WAIT_SECONDS * 2000)),
            },
        )
        return cls(pool, budget.timeout_seconds)

    async def close(self) -> None:
        await self._pool.close()

    async def send(self, command: SendCommand) -> StoredMessage:
        try:
            async with self._pool.acquire(timeout=self._acquire_seconds) as conn:
                known = self._known.get(command.consultation_id)
                if known is not None and self._fast_path_fits(command, known):
                    stored = await self._send_fast(conn, command, known)
                    if stored is not None:
                        return stored
                return await self._send_careful(conn, command)
        except _UNAVAILABLE as exc:
            # A TimeoutError here is the pool's wait: every connection of the budget was busy.
            log.warning("chat message not stored", error=repr(exc), pool_size=self._pool.get_size())
            # The answer every other path gives while the database is away (the client retries).
            code, message = DATABASE_UNAVAILABLE
            raise StoreUnavailable(message, code=code) from None

    @staticmethod
    def _fast_path_fits(command: SendCommand, known: _Parties) -> bool:
        if not command.allow_new or command.kind in (MessageKind.IMAGE, MessageKind.FILE):
            return False
        try:
            authorise_party(command.actor, known.of(command.consultation_id), write=True)
            authorise_chat_send(command.actor, known.status, known.advisor_id)
        except AppError:
            return False  # perhaps only what the store remembers is stale: the careful path decides
        return True

    def _remember(self, consultation_id: uuid.UUID, parties: _Parties) -> None:
        if consultation_id not in self._known and len(self._known) >= KNOWN_MAX:
            # Forget the oldest half (dicts keep insertion order): cheap, and a forgotten
            # consultation only costs its next send the careful path.
            for key in list(self._known)[: KNOWN_MAX // 2]:
                del self._known[key]
        self._known[consultation_id] = parties

    async def _send_fast(
        self, conn: asyncpg.Connection, command: SendCommand, known: _Parties
    ) -> StoredMessage | None:
        """One statement; None when it wrote nothing and the careful path is to decide."""
        message_id, now = uuid.uuid4(), utcnow()
        self.round_trips += 1
        try:
            row = await conn.fetchrow(
                _FAST,
                *self._write_args(command, message_id, now, command.data),
                known.shopper_id,
                known.advisor_id,
                known.offered_to_id,
                known.status.value,
            )
        except asyncpg.UniqueViolationError:
            return None  # the same client id committed meanwhile: the careful path finds it
        if row is None:
            self._known.pop(command.consultation_id, None)
            raise NotFound("No such consultation", code="consultation_not_found")
        current = _Parties(row[1], row[2], row[3], ConsultationStatus(row[4]))
        if current != known:
            self._remember(command.consultation_id, current)
        if row[0] is not None:
            return self._stored_new(command, message_id, row[0], now, command.data, current)
        if row[5] is not None:
            # A retry: the rules are checked against the row as it is now.
            authorise_party(command.actor, current.of(command.consultation_id), write=True)
            return self._stored_existing(command, row[5:], current)
        return None

    async def _send_careful(self, conn: asyncpg.Connection, command: SendCommand) -> StoredMessage:
        cid = command.consultation_id
        self.round_trips += 4  # BEGIN, the lock, the client id, COMMIT (or ROLLBACK)
        async with conn.transaction():
            # Lock the consultation first: a retry racing its original then waits and finds it.
            row = await conn.fetchrow(_LOCK, cid)
            if row is None:
                raise NotFound("No such consultation", code="consultation_not_found")
            parties = _Parties(row[0], row[1], row[2], ConsultationStatus(row[3]))
            self._remember(cid, parties)
            authorise_party(command.actor, parties.of(cid), write=True)
            existing = await conn.fetchrow(_EXISTING, cid, command.client_id, command.sender.value)
            if existing is not None:
                return self._stored_existing(command, tuple(existing), parties)
            authorise_chat_send(command.actor, parties.status, parties.advisor_id)
            if not command.allow_new:
                raise RateLimitSpent("Sending too fast; slow down")
            data = command.data
            if command.kind in (MessageKind.IMAGE, MessageKind.FILE):
                file_id = _file_id(data)
                self.round_trips += 1
                found = await conn.fetchrow(_FILE, file_id, cid)
                if found is None:
                    raise _no_such_file()
                data = file_reference(file_id, found[0], found[1], found[2])
            message_id, now = uuid.uuid4(), utcnow()
            self.round_trips += 1
            seq = await conn.fetchval(
                _CAREFUL_WRITE,
                *self._write_args(command, message_id, now, data),
                column=0,
            )
        return self._stored_new(command, message_id, seq, now, data, parties)

    @staticmethod
    def _write_args(
        command: SendCommand, message_id: uuid.UUID, now: datetime, data: dict[str, Any]
    ) -> list[Any]:
        # $1–$11 of _WRITE.
        return [
            command.consultation_id,
            command.client_id,
            command.sender.value,
            message_id,
            command.staff_id,
            command.kind.value,
            command.body,
            json.dumps(data),
            now,
            TimelineKind.MESSAGE.value,
            summary_of(command.kind, command.body),
        ]

    @staticmethod
    def _stored_new(
        command: SendCommand,
        message_id: uuid.UUID,
        seq: int,
        now: datetime,
        data: dict[str, Any],
        parties: _Parties,
    ) -> StoredMessage:
        return StoredMessage(
            id=message_id,
            consultation_id=command.consultation_id,
            seq=seq,
            client_id=command.client_id,
            sender=command.sender,
            sender_staff_id=command.staff_id,
            kind=command.kind,
            body=command.body,
            data=data,
            created_at=now,
            created=True,
            shopper_id=parties.shopper_id,
            advisor_id=parties.advisor_id,
        )

    @staticmethod
    def _stored_existing(command: SendCommand, row: tuple[Any, ...], parties: _Parties) -> StoredMessage:
        message_id, seq, staff_id, kind, body, data, created_at = row
        return StoredMessage(
            id=uuid.UUID(str(message_id)),
            consultation_id=command.consultation_id,
            seq=seq,
            client_id=command.client_id,
            sender=SenderKind(command.sender),
            sender_staff_id=uuid.UUID(str(staff_id)) if staff_id is not None else None,
            kind=MessageKind(kind),
            body=body,
            data=json.loads(data),
            created_at=created_at,
            created=False,
            shopper_id=parties.shopper_id,
            advisor_id=parties.advisor_id,
        )
