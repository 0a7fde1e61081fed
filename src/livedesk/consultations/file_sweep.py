"""Files uploaded to a chat but never sent in a message are deleted after a while.

An upload comes first and the chat message that refers to it second; a page closed in between
leaves a file nobody can reach from the chat. After ``LIVEDESK_UNSENT_FILE_HOURS`` such files
go, row and bytes. Every process sweeps (deleting is idempotent); the rows are locked while
the sweep decides, and the chat send path reads a file's row FOR SHARE on PostgreSQL, so a
file is either sent before the sweep looks (and kept) or gone before the send (which then says
``file_not_found``) — never a message pointing at deleted bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.consultations.files import FILE_STORE, FileStore
from livedesk.kit.clock import utcnow
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.db import after_commit
from livedesk.kit.logging import get_logger
from livedesk.models import ChatFile, Message, MessageKind

log = get_logger("livedesk.files")
BATCH = 500
SWEEP_EVERY_SECONDS = 3600.0


async def sweep_unsent(session: AsyncSession, store: FileStore, older_than: datetime) -> int:
    """Delete up to one batch of files uploaded before ``older_than`` that no message refers
    to; their bytes go once the transaction has committed. Returns how many."""
    candidates = (
        await session.scalars(
            select(ChatFile)
            .where(ChatFile.created_at < older_than)
            .order_by(ChatFile.created_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not candidates:
        return 0
    consultations = {f.consultation_id for f in candidates}
    data = await session.scalars(
        select(Message.data).where(
            Message.consultation_id.in_(consultations),
            Message.kind.in_((MessageKind.IMAGE, MessageKind.FILE)),
        )
    )
    sent = {str(d.get("file_id")) for d in data}
    unsent = [f for f in candidates if str(f.id) not in sent]
    if not unsent:
        return 0
    ids: list[uuid.UUID] = [f.id for f in unsent]
    keys = [f.storage_key for f in unsent]
    await session.execute(delete(ChatFile).where(ChatFile.id.in_(ids)))

    async def remove_bytes() -> None:
        for key in keys:
            try:
                await store.delete(key)
            except OSError as exc:  # the row is gone; stray bytes are harmless but worth a line
                log.warning("unsent chat file bytes not removed", storage_key=key, error=str(exc))

    after_commit(session, remove_bytes)
    log.info("unsent chat files deleted", count=len(ids))
    return len(ids)


async def _sweep_forever(app: web.Application, hours: int) -> None:
    while True:
        try:
            async with app[DB].transaction() as session:
                await sweep_unsent(session, app[FILE_STORE], utcnow() - timedelta(hours=hours))
        except Exception:  # retried at the next sweep
            log.exception("unsent chat file sweep failed")
        await asyncio.sleep(SWEEP_EVERY_SECONDS)


async def file_sweep_ctx(app: web.Application) -> AsyncIterator[None]:
    hours = app[SETTINGS].unsent_file_hours
    task = asyncio.create_task(_sweep_forever(app, hours), name="unsent-file-sweep") if hours else None
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
