"""The customer timeline: append one event in the caller's transaction; read it newest first.

Every capability records what happened to a shopper by calling ``append_event`` in the same
transaction as the fact itself, so the timeline can never show something that was rolled back
nor miss something that was committed. Reading is one keyset-paginated query over the index
``ix_timeline_events_shopper_time`` (shopper_id, occurred_at, id).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.clock import utcnow
from livedesk.kit.cursor import decode_cursor, encode_cursor
from livedesk.kit.errors import NotFound, ValidationFailed
from livedesk.models import Shopper, TimelineEvent, TimelineKind

DEFAULT_PAGE = 50
MAX_PAGE = 200
SUMMARY_MAX = 500
REF_ID_MAX = 64
# Merges re-point merged_into chains to the final survivor, so one hop is the norm; the bound
# only guards against a cycle written by hand into the database.
_MAX_MERGE_HOPS = 8


@dataclass(frozen=True)
class TimelinePage:
    events: list[TimelineEvent]
    next_cursor: str | None


def new_event(
    shopper_id: uuid.UUID,
    kind: TimelineKind | str,
    summary: str,
    data: Mapping[str, Any] | None = None,
    *,
    occurred_at: datetime | None = None,
    actor_staff_id: uuid.UUID | None = None,
    consultation_id: uuid.UUID | None = None,
    ref_id: str | None = None,
) -> TimelineEvent:
    """Build (not add) an event for a shopper the caller knows is live (not merged away).

    Most callers want ``append_event``; this is for code that already holds the shopper row,
    such as the profile service itself.
    """
    if occurred_at is not None and occurred_at.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware (UTC is stored)")
    if ref_id is not None and len(ref_id) > REF_ID_MAX:
        raise ValueError(f"ref_id is longer than {REF_ID_MAX} characters")
    try:
        # UUIDs, datetimes and enums in data become their JSON spelling here rather than
        # failing at flush time, far from the caller that put them in.
        payload = to_jsonable_python(dict(data or {}))
    except PydanticSerializationError as exc:
        raise TypeError(f"timeline data must be JSON-serialisable: {exc}") from None
    now = utcnow()
    return TimelineEvent(
        # Ids are given here, not at flush, so the caller can use event.id at once.
        id=uuid.uuid4(),
        shopper_id=shopper_id,
        kind=TimelineKind(kind),
        # The summary is a display line; a long chat message must not make the fact fail.
        summary=summary if len(summary) <= SUMMARY_MAX else summary[: SUMMARY_MAX - 1] + "…",
        data=payload,
        occurred_at=occurred_at or now,
        recorded_at=now,
        actor_staff_id=actor_staff_id,
        consultation_id=consultation_id,
        ref_id=ref_id,
    )


async def live_shopper_id(session: AsyncSession, shopper_id: uuid.UUID, *, lock: bool = True) -> uuid.UUID:
    """The id of the profile that now stands for ``shopper_id`` (itself, or the profile it
    was merged into). NotFound for an unknown id.

    With ``lock`` (for writers), PostgreSQL reads the row FOR SHARE: a merge running at the
    same time holds it FOR UPDATE, so we wait for it and then see where it went, instead of
    writing to a profile that is being merged away (whose rows the merge would then miss).
    """
    current = shopper_id
    for _ in range(_MAX_MERGE_HOPS):
        stmt = select(Shopper.merged_into_id).where(Shopper.id == current)
        merged_into = await session.execute(stmt.with_for_update(read=True) if lock else stmt)
        row = merged_into.one_or_none()
        if row is None:
            raise NotFound(f"No shopper {shopper_id}", code="shopper_not_found")
        if row[0] is None:
            return current
        current = row[0]
    raise NotFound(f"Shopper {shopper_id} was merged in a loop", code="shopper_not_found")


async def append_event(
    session: AsyncSession,
    shopper_id: uuid.UUID,
    kind: TimelineKind | str,
    summary: str,
    data: Mapping[str, Any] | None = None,
    occurred_at: datetime | None = None,
    actor_staff_id: uuid.UUID | None = None,
    consultation_id: uuid.UUID | None = None,
    ref_id: str | None = None,
) -> TimelineEvent:
    """Record that something happened to a shopper, in the caller's transaction.

    Call it in the same transaction as the fact it records (never after the commit), so the
    two stand or fall together. An id of a merged-away profile lands on the profile it was
    merged into. ``occurred_at`` is when it happened (default now, must be timezone-aware);
    ``ref_id`` is the fact's id in its own table, for opening details; ``data`` must be
    JSON-serialisable (UUIDs, datetimes and enums are turned into strings). Nothing is
    committed here.
    """
    target = await live_shopper_id(session, shopper_id)
    event = new_event(
        target,
        kind,
        summary,
        data,
        occurred_at=occurred_at,
        actor_staff_id=actor_staff_id,
        consultation_id=consultation_id,
        ref_id=ref_id,
    )
    session.add(event)
    return event


async def read_timeline(
    session: AsyncSession,
    shopper_id: uuid.UUID,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
    kinds: Sequence[TimelineKind] | None = None,
) -> TimelinePage:
    """One page of a shopper's timeline, newest first (occurred_at DESC, id DESC).

    ``shopper_id`` must already be the live profile's id (see ``live_shopper_id``); this runs
    exactly one query, a range scan of ``ix_timeline_events_shopper_time``. It fetches one
    row more than asked to learn whether an older page exists. ``kinds`` keeps only those
    kinds. ``cursor`` is a page's ``next_cursor``.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed(
            f"query field 'limit': must be between 1 and {MAX_PAGE}",
            details=[{"in": "query", "field": "limit", "message": f"1..{MAX_PAGE}"}],
        )
    stmt = select(TimelineEvent).where(TimelineEvent.shopper_id == shopper_id)
    if kinds:
        stmt = stmt.where(TimelineEvent.kind.in_(list(dict.fromkeys(kinds))))
    if cursor is not None:
        after_time, after_id = decode_cursor(cursor)
        # (occurred_at, id) < (t, i), written so both databases see a range on occurred_at,
        # the index's second column, and check id only within the boundary timestamp.
        stmt = stmt.where(
            TimelineEvent.occurred_at <= after_time,
            or_(TimelineEvent.occurred_at < after_time, TimelineEvent.id < after_id),
        )
    stmt = stmt.order_by(TimelineEvent.occurred_at.desc(), TimelineEvent.id.desc()).limit(limit + 1)
    events = list((await session.scalars(stmt)).all())
    if len(events) <= limit:
        return TimelinePage(events=events, next_cursor=None)
    page = events[:limit]
    last = page[-1]
    return TimelinePage(events=page, next_cursor=encode_cursor(last.occurred_at, last.id))
