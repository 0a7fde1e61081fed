"""Database engine and the one-transaction-per-request session scope.

Services never commit: the handler opens ``async with db.transaction() as session`` and the
scope commits once at the end (or rolls back on an error). Callbacks queued with
``after_commit`` run only once the commit succeeded.

The scope also carries the way out for events: a service queues an ``Outgoing`` event on its
session (``queue_event``, through ``realtime/emit.emit``) and the database's event sink sends
it after the commit, in order with the other callbacks; a rollback drops it. Services never
hold the Socket.IO server: the composition root hands the database its sink.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

AfterCommit = Callable[[], Awaitable[None]]
DB_WAIT_SECONDS = 8.0
_AFTER_COMMIT_KEY = "livedesk_after_commit"
_SINK_KEY = "livedesk_event_sink"


@dataclass(frozen=True)
class Outgoing:
    """One event for the clients: its name, its JSON-ready data, and who receives it (a room
    or several, in one Socket.IO namespace; ``skip_sid`` is a socket that has it already)."""

    event: str
    data: Any
    room: str | list[str]
    namespace: str
    skip_sid: str | None = None


EventSink = Callable[[Outgoing], Awaitable[None]]


@dataclass(frozen=True)
class PoolBudget:
    """How many PostgreSQL connections one process may hold, and how long a request waits
    for one. The budget is hard: ``replicas × max_connections`` plus what migrations and
    admins need must stay below the server's ``max_connections`` (README, "Connection
    budget"). Half goes to the chat store's own pool (``consultations/chat_store_pg.py``:
    one short statement per send), the rest to the engine behind every other transaction.
    A wait that runs out is ``is_unavailable`` (a JSON 503 / ``database_unavailable`` ack),
    never a hang: the default wait ends well before a socket's ping timeout."""

    max_connections: int = 20
    timeout_seconds: float = DB_WAIT_SECONDS

    @property
    def chat(self) -> int:
        return max(1, self.max_connections // 2)

    @property
    def engine(self) -> int:
        return max(1, self.max_connections - self.chat)


# Commands (migrations, imports, staff add) need few connections: they leave the rest to the
# replicas (README, "Connection budget").
COMMAND_BUDGET = PoolBudget(max_connections=4)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached or is too busy right now (a
    connection refused or dropped, a lock or pool wait that ran out), as opposed to a bug:
    callers answer "try again shortly" (503) instead of an internal error."""
    if isinstance(exc, ConnectionError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        # A dropped connection, or SQLite's writer lock held past the busy timeout. (A file
        # that cannot be opened at all is a configuration error, not an outage.)
        return (
            exc.connection_invalidated
            or "database is locked" in str(exc.orig)
            or getattr(exc.orig, "sqlstate", None) in _BUSY_SQLSTATES
        )
    # The chat store's own asyncpg pool raises asyncpg's errors unwrapped.
    return getattr(exc, "sqlstate", None) in _BUSY_SQLSTATES


# PostgreSQL refusing a new connection because it is full (53300 too_many_connections; seen
# when replicas together outgrow max_connections) or still starting / shutting down (57P03
# cannot_connect_now): an outage to wait out, not a bug.
_BUSY_SQLSTATES = frozenset({"53300", "57P03"})


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(
    url: str, *, echo: bool = False, immediate: bool = True, budget: PoolBudget = PoolBudget()
) -> AsyncEngine:
    if is_sqlite(url):
        # One file, many readers and one writer: WAL lets reads go on during a write, and the
        # busy timeout makes writers queue instead of failing at once.
        # A socket's events are handled in order and the client is dropped if it cannot answer
        # a ping for ~20 s: waits on the database must end well before that.
        # Every session ends its own transaction (commit, or rollback on close), so the pool's
        # extra rollback on check-in is one more thread hop per transaction for nothing.
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": DB_WAIT_SECONDS}, pool_reset_on_return=None
        )
        _configure_sqlite(engine.sync_engine, immediate=immediate)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        # The budget is a ceiling, so no overflow; connections open as they are needed.
        pool_size=budget.engine,
        max_overflow=0,
        pool_timeout=budget.timeout_seconds,
        pool_pre_ping=True,
        connect_args={
            "server_settings": {
                # Seen in pg_stat_activity: whose connections these are (and which process's).
                "application_name": f"livedesk/{os.getpid()}",
                "lock_timeout": str(int(DB_WAIT_SECONDS * 1000)),
                "statement_timeout": str(int(DB_WAIT_SECONDS * 2000)),
            }
        },
    )


def _configure_sqlite(engine: Engine, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # aiosqlite's own transaction handling would start transactions lazily and break
        # BEGIN IMMEDIATE; we issue BEGIN ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(DB_WAIT_SECONDS * 1000)}")
        # Deleted and blanked rows are overwritten, not left in free pages of the file: an
        # erased shopper must not be readable from the database file (``purge_freed``).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock at BEGIN: two transactions that read then write cannot
        # interleave (this is what makes overlap checks safe on SQLite). Readers don't, so
        # they never wait for a writer under WAL.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """Owns the engine and hands out transaction scopes."""

    async def purge_freed(self) -> bool:
        """On SQLite, copy the write-ahead log into the database file and empty it, so the
        page images of erased rows it still holds are gone (the file itself overwrites them:
        ``secure_delete``). Best effort: True when the log could be emptied now (a reader in
        the middle of an old snapshot keeps it until the next checkpoint). A no-op elsewhere:
        PostgreSQL reclaims dead rows with VACUUM."""
        if not is_sqlite(self.url):
            return True
        # On the driver's connection: a checkpoint cannot run inside the transaction that
        # SQLAlchemy would begin (BEGIN IMMEDIATE, above).
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            cursor = await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            row = await cursor.fetchone()
            await cursor.close()
        return row is not None and int(row[0]) == 0

    def __init__(self, url: str, *, echo: bool = False, budget: PoolBudget = PoolBudget()) -> None:
        self.url = url
        self.budget = budget
        self.engine = make_engine(url, echo=echo, budget=budget)
        # On SQLite reads get their own engine whose transactions don't take the write lock;
        # PostgreSQL needs no such split.
        self.read_engine = make_engine(url, echo=echo, immediate=False) if is_sqlite(url) else self.engine
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        # Where committed events go (the Socket.IO server's emit), set by the realtime setup.
        self.event_sink: EventSink | None = None

    def sink(self) -> EventSink:
        """The event sink, for what is sent outside a transaction scope (a message its store
        committed on its own)."""
        if self.event_sink is None:
            raise RuntimeError("no event sink: the realtime server is not set up")
        return self.event_sink

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            if self.event_sink is not None:
                session.info[_SINK_KEY] = self.event_sink
            async with session.begin():
                yield session
            callbacks: list[AfterCommit] = session.info.pop(_AFTER_COMMIT_KEY, [])
        for callback in callbacks:
            await callback()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only scope: never commits, never blocks writers."""
        # Closing the session rolls back whatever it read; nothing is ever committed here.
        async with self._read_sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run ``callback`` once the session's transaction has committed (never on rollback)."""
    session.info.setdefault(_AFTER_COMMIT_KEY, []).append(callback)


def queue_event(session: AsyncSession, outgoing: Outgoing) -> None:
    """Send ``outgoing`` through the scope's event sink once the transaction has committed
    (never on rollback)."""
    sink: EventSink | None = session.info.get(_SINK_KEY)
    if sink is None:
        # A session not opened by ``Database.transaction`` of a running app: an event queued
        # here would be lost without a word.
        raise RuntimeError(
            f"no event sink for {outgoing.event}: open the session with Database.transaction()"
        )
    after_commit(session, functools.partial(sink, outgoing))
