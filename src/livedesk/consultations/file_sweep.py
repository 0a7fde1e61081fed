"""Files uploaded to a chat but never sent in a message are deleted after a while.

An upload comes first and the chat message that refers to it second; a page closed in between
leaves a file nobody can reach from the chat. After ``LIVEDESK_UNSENT_FILE_MINUTES`` such
files go, row and bytes (minutes, not a day: an upload never sent is also how a client would
fill the disk, and the quotas count these files until they are gone). Every process sweeps
(deleting is idempotent); the rows are locked while the sweep decides, and the chat send path
reads a file's row FOR SHARE on PostgreSQL, so a file is either sent before the sweep looks
(and kept) or gone before the send (which then says ``file_not_found``) — never a message
pointing at deleted bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import ColumnElement, String, cast, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.clock import utcnow
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.db import after_commit
from livedesk.kit.logging import get_logger
from livedesk.kit.periodic import Periodic
from livedesk.models import ChatFile, Message, MessageKind
from livedesk.uploads import FILE_STORE, FileStore

log = get_logger("livedesk.files")
BATCH = 500
# A file goes within this long after its time is up.
SWEEP_EVERY_SECONDS = 60.0


def _unsent(session: AsyncSession) -> ColumnElement[bool]:
    """No image or file message of the file's consultation names it. (Sent files stay for
    good, so without this a batch of the oldest files would soon be all sent ones, and the
    unsent files behind them never reached.)"""
    named = Message.data["file_id"].as_string()
    if session.get_bind().dialect.name == "postgresql":
        same = named == cast(ChatFile.id, String)
    else:  # SQLite keeps a UUID as its 32 hex digits, messages name it with dashes
        same = func.replace(named, "-", "") == ChatFile.id
    return ~exists().where(
        Message.consultation_id == ChatFile.consultation_id,
        Message.kind.in_((MessageKind.IMAGE, MessageKind.FILE)),
        same,
    )


async def sweep_unsent(session: AsyncSession, store: FileStore, older_than: datetime) -> int:
    """Delete up to one batch of files uploaded before ``older_than`` that no message refers
    to; their bytes go once the transaction has committed. Returns how many."""
    candidates = (
        await session.scalars(
            select(ChatFile)
            .where(ChatFile.created_at < older_than, _unsent(session))
            .order_by(ChatFile.created_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not candidates:
        return 0
    # Asked again once the rows are locked: a send that committed while the query above
    # waited is seen by this later statement (PostgreSQL's read committed).
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


async def anything_due(session: AsyncSession, older_than: datetime) -> bool:
    """Whether a sweep would find anything: a read, so the idle minute takes no write lock."""
    found = await session.scalar(
        select(ChatFile.id).where(ChatFile.created_at < older_than, _unsent(session)).limit(1)
    )
    return found is not None


async def sweep_once(app: web.Application, minutes: int) -> int:
    """One pass: delete the files uploaded more than ``minutes`` ago that were never sent."""
    older_than = utcnow() - timedelta(minutes=minutes)
    async with app[DB].read() as session:
        if not await anything_due(session, older_than):
            return 0
    async with app[DB].transaction() as session:
        return await sweep_unsent(session, app[FILE_STORE], older_than)


async def file_sweep_ctx(app: web.Application) -> AsyncIterator[None]:
    minutes = app[SETTINGS].unsent_file_minutes

    async def sweep() -> None:
        await sweep_once(app, minutes)

    # A failed sweep is logged and retried at the next one.
    job = Periodic("unsent-file-sweep", sweep, every=SWEEP_EVERY_SECONDS, first_at_once=True)
    if minutes:
        job.start()
    yield
    await job.stop()
