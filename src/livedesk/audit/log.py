"""Writing and reading audit rows (see the package docstring)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import AuditEntry


def build_entry(
    actor: uuid.UUID | None,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str,
    details: dict[str, Any] | None,
) -> AuditEntry:
    return AuditEntry(
        id=uuid.uuid4(),
        at=utcnow(),
        actor_staff_id=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        details=details or {},
    )


def record(
    session: AsyncSession,
    *,
    actor: uuid.UUID | None,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an audit row to the caller's transaction (``actor`` None: the system or a
    shopper). ``action`` is ``noun.verb`` like the events (``recording.play``)."""
    session.add(build_entry(actor, action, target_type, target_id, details))


async def record_alone(
    db: Database,
    *,
    actor: uuid.UUID | None,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str,
    details: dict[str, Any] | None = None,
) -> None:
    """An audit row in a transaction of its own: for a refusal or a read, which has no
    transaction of its own to ride in and must be kept even when the request then fails."""
    async with db.transaction() as session:
        record(
            session, actor=actor, action=action, target_type=target_type, target_id=target_id, details=details
        )


@dataclass(frozen=True)
class Filter:
    action: str | None = None
    actor: uuid.UUID | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None


def _filtered(query: Select[AuditEntry], f: Filter) -> Select[AuditEntry]:
    if f.action:
        # "recording." lists every recording action; "recording.play" just that one.
        query = (
            query.where(AuditEntry.action.startswith(f.action, autoescape=True))
            if f.action.endswith(".")
            else query.where(AuditEntry.action == f.action)
        )
    if f.actor is not None:
        query = query.where(AuditEntry.actor_staff_id == f.actor)
    if f.target_type:
        query = query.where(AuditEntry.target_type == f.target_type)
    if f.target_id:
        query = query.where(AuditEntry.target_id == f.target_id)
    if f.since is not None:
        query = query.where(AuditEntry.at >= f.since)
    return query


async def page_of(
    session: AsyncSession, f: Filter, *, limit: int, before: tuple[datetime, uuid.UUID] | None = None
) -> tuple[list[AuditEntry], tuple[datetime, uuid.UUID] | None]:
    """Newest first, ``limit`` rows, and the cursor of the next (older) page, if any.
    The cursor is (time, id): rows written in the same instant are neither lost nor repeated."""
    query = _filtered(select(AuditEntry), f)
    if before is not None:
        at, row_id = before
        query = query.where(or_(AuditEntry.at < at, and_(AuditEntry.at == at, AuditEntry.id < row_id)))
    rows = list(
        (
            await session.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit + 1))
        ).all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, ((rows[-1].at, rows[-1].id) if more and rows else None)
