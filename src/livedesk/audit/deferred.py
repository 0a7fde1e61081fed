"""Audit rows that must not wait for the database: a refused sign-in answers 401 at once,
even while another connection holds SQLite's write lock, and its row follows.

Rows wait in a bounded queue and one writer per process stores them in batches, retrying
while the database is unavailable. The queue is bounded so that a flood costs a fixed amount of
memory: past the bound rows are dropped and counted (and each refusal is still in the log).
At shutdown what is queued is written once more before the database closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from livedesk.audit.log import build_entry
from livedesk.kit.context import DB
from livedesk.kit.db import Database, is_unavailable
from livedesk.kit.logging import get_logger
from livedesk.models import AuditEntry

log = get_logger("livedesk.audit")

MAX_QUEUED = 10_000
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)


class DeferredAudit:
    def __init__(self, db: Database, *, max_queued: int = MAX_QUEUED) -> None:
        self._db = db
        self._max = max_queued
        self._rows: list[AuditEntry] = []
        self._wake = asyncio.Event()
        self.dropped = 0
        self.written = 0

    def record(
        self,
        *,
        actor: Any,
        action: str,
        target_type: str,
        target_id: Any,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Queue a row; never waits. The row's time is now, not when it is stored."""
        if len(self._rows) >= self._max:
            self.dropped += 1
            if self.dropped in (1, 100) or self.dropped % 10_000 == 0:
                log.warning("audit queue full: rows dropped", dropped=self.dropped, action=action)
            return
        self._rows.append(build_entry(actor, action, target_type, target_id, details))
        self._wake.set()

    async def flush(self) -> None:
        """Store what is queued now, in one transaction."""
        rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            async with self._db.transaction() as session:
                session.add_all(rows)
        except BaseException:
            self._rows[:0] = rows  # kept, in order, for the next try
            raise
        self.written += len(rows)

    async def run(self) -> None:
        tries = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
                tries = 0
            except Exception as exc:
                if not is_unavailable(exc):
                    log.exception("audit rows not stored; retrying")
                await asyncio.sleep(RETRY_SECONDS[min(tries, len(RETRY_SECONDS) - 1)])
                tries += 1
                self._wake.set()


DEFERRED_AUDIT = web.AppKey("deferred_audit", DeferredAudit)


async def deferred_audit_ctx(app: web.Application) -> AsyncIterator[None]:
    writer = DeferredAudit(app[DB])
    app[DEFERRED_AUDIT] = writer
    task = asyncio.create_task(writer.run(), name="audit-writer")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    try:
        await writer.flush()
    except Exception as exc:  # the database may be gone at shutdown; the log has each refusal
        log.warning("audit rows lost at shutdown", rows=len(writer._rows), error=str(exc))
