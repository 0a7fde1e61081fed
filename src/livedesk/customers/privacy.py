"""Privacy requests: export one shopper's data as JSON; erase or anonymise it.

Both find the shopper's rows the way a merge does — every column of any table that points at
a shopper (``repository.shopper_references``) — so a capability's table added later is
exported and erased without anyone listing it here. Every request is audited (the audit entry
holds counts, never the personal data itself).

* **erase**: the profile, the profiles merged into it, and everything pointing at them are
  deleted (foreign keys cascade); recordings through the recording service (files too), chat
  files from storage once the transaction commits.
* **anonymise**: the rows stay for statistics (orders still feed recommendations) but nothing
  in them names the person: profile fields blanked, identities and search terms deleted,
  timeline texts, chat messages and consultation notes emptied, recordings and chat files
  deleted.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import FromClause, delete, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.customers.repository import load_live, shopper_references
from livedesk.kit.clock import utcnow
from livedesk.kit.db import after_commit
from livedesk.kit.logging import get_logger
from livedesk.models import (
    AuditEntry,
    ChatFile,
    Consultation,
    Message,
    Shopper,
    ShopperConnection,
    ShopperIdentity,
    ShopperMerge,
    TimelineEvent,
)
from livedesk.models.integrations import ChannelEvent, ShopperSearchTerm

log = get_logger("livedesk.privacy")

EXPORT_FORMAT = "livedesk.shopper-export/1"
ANONYMOUS_NAME = "Anonymised shopper"
DeleteFile = Callable[[str], Awaitable[None]]


class ErasureMode(enum.StrEnum):
    ERASE = "erase"
    ANONYMISE = "anonymise"


@dataclass(frozen=True)
class ErasureResult:
    shopper_id: uuid.UUID
    mode: ErasureMode
    counts: dict[str, int]


def _row(table: FromClause, row: Any) -> dict[str, Any]:
    data: dict[str, Any] = to_jsonable_python({c.name: getattr(row, c.name) for c in table.columns})
    return data


async def _profile_ids(session: AsyncSession, shopper_id: uuid.UUID) -> tuple[Shopper, list[uuid.UUID]]:
    """The live profile and every id that stands for the same person (merged-away ones)."""
    shopper, _ = await load_live(session, shopper_id, lock=False)
    merged = (await session.scalars(select(Shopper.id).where(Shopper.merged_into_id == shopper.id))).all()
    return shopper, [shopper.id, *merged]


def _audit(
    session: AsyncSession,
    actor: uuid.UUID | None,
    action: str,
    shopper_id: uuid.UUID,
    details: dict[str, Any],
) -> None:
    session.add(
        AuditEntry(
            id=uuid.uuid4(),
            at=utcnow(),
            actor_staff_id=actor,
            action=action,
            target_type="shopper",
            target_id=str(shopper_id),
            details=details,
        )
    )


async def export_shopper(
    session: AsyncSession, shopper_id: uuid.UUID, *, actor_staff_id: uuid.UUID | None
) -> dict[str, Any]:
    """Everything stored about one shopper, as JSON-ready data; audited (``shopper.export``).
    A merged-away id exports the profile it was merged into."""
    shopper, ids = await _profile_ids(session, shopper_id)
    tables: dict[str, list[dict[str, Any]]] = {}
    profiles = (await session.scalars(select(Shopper).where(Shopper.id.in_(ids)))).all()
    tables["shoppers"] = [_row(Shopper.__table__, p) for p in profiles]
    for column in shopper_references():
        if column.table.name in {"shopper_search_terms", "shopper_connections"}:
            continue  # derived data, nothing the shopper gave us
        rows = (await session.execute(select(column.table).where(column.in_(ids)))).all()
        if rows:
            tables.setdefault(column.table.name, []).extend(_row(column.table, r) for r in rows)
    consultation_ids = select(Consultation.id).where(Consultation.shopper_id.in_(ids))
    for model in (Message, ChatFile):
        table = model.__table__
        rows = (
            await session.execute(select(table).where(table.c.consultation_id.in_(consultation_ids)))
        ).all()
        tables[model.__tablename__] = [_row(table, r) for r in rows]
    merges = (
        await session.execute(
            select(ShopperMerge.__table__).where(
                or_(ShopperMerge.survivor_id.in_(ids), ShopperMerge.merged_id.in_(ids))
            )
        )
    ).all()
    tables["shopper_merges"] = [_row(ShopperMerge.__table__, r) for r in merges]
    counts = {name: len(rows) for name, rows in tables.items()}
    _audit(session, actor_staff_id, "shopper.export", shopper.id, {"counts": counts})
    return {
        "format": EXPORT_FORMAT,
        "exported_at": utcnow().isoformat(),
        "shopper_id": str(shopper.id),
        "tables": tables,
    }


async def _erase_recordings(session: AsyncSession, ids: list[uuid.UUID], actor: uuid.UUID | None) -> int:
    # The recording capability owns its files and their storage; it deletes both.
    from livedesk.recording.service import erase_for_shopper

    return sum([await erase_for_shopper(session, sid, actor_staff_id=actor) for sid in ids])


async def _chat_files(
    session: AsyncSession, ids: list[uuid.UUID], delete_file: DeleteFile | None
) -> tuple[int, list[str]]:
    consultation_ids = select(Consultation.id).where(Consultation.shopper_id.in_(ids))
    keys = list(
        (
            await session.scalars(
                select(ChatFile.storage_key).where(ChatFile.consultation_id.in_(consultation_ids))
            )
        ).all()
    )
    await session.execute(
        delete(ChatFile)
        .where(ChatFile.consultation_id.in_(consultation_ids))
        .execution_options(synchronize_session=False)
    )
    if delete_file is not None and keys:
        remove = delete_file

        async def remove_all() -> None:
            for key in keys:
                try:
                    await remove(key)
                except Exception:  # a file left behind must not hide that the rows are gone
                    log.exception("chat file not deleted", storage_key=key)

        after_commit(session, remove_all)
    return len(keys), keys


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


async def erase_shopper(
    session: AsyncSession,
    shopper_id: uuid.UUID,
    mode: ErasureMode,
    *,
    actor_staff_id: uuid.UUID | None,
    delete_file: DeleteFile | None = None,
) -> ErasureResult:
    """Erase or anonymise one shopper (see the module docstring), in the caller's transaction.
    ``delete_file`` removes a chat file from storage (run after the commit). Audited as
    ``shopper.erase`` / ``shopper.anonymise`` with counts only."""
    shopper, ids = await _profile_ids(session, shopper_id)
    live_id = shopper.id
    counts: dict[str, int] = {"profiles": len(ids)}
    counts["recordings"] = await _erase_recordings(session, ids, actor_staff_id)
    counts["chat_files"], _ = await _chat_files(session, ids, delete_file)
    # Earlier audit entries about this person may quote them (a merge's profile snapshot).
    await session.execute(
        update(AuditEntry)
        .where(AuditEntry.target_type == "shopper", AuditEntry.target_id.in_([str(i) for i in ids]))
        .values(details={"scrubbed": True})
        .execution_options(synchronize_session=False)
    )
    if mode is ErasureMode.ERASE:
        for column in shopper_references():
            counts[column.table.name] = counts.get(column.table.name, 0) + _rowcount(
                await session.execute(delete(column.table).where(column.in_(ids)))
            )
        await session.execute(
            delete(ShopperMerge).where(
                or_(ShopperMerge.survivor_id.in_(ids), ShopperMerge.merged_id.in_(ids))
            )
        )
        # Merged-away rows first: they point at the live one.
        await session.execute(delete(Shopper).where(Shopper.id.in_(ids), Shopper.id != live_id))
        await session.execute(delete(Shopper).where(Shopper.id == live_id))
    else:
        now = utcnow()
        for model in (ShopperIdentity, ShopperSearchTerm, ShopperConnection):
            counts[model.__tablename__] = _rowcount(
                await session.execute(delete(model).where(model.shopper_id.in_(ids)))
            )
        counts["timeline_events"] = _rowcount(
            await session.execute(
                update(TimelineEvent)
                .where(TimelineEvent.shopper_id.in_(ids))
                .values(summary="", data={})
                .execution_options(synchronize_session=False)
            )
        )
        consultation_ids = select(Consultation.id).where(Consultation.shopper_id.in_(ids))
        counts["messages"] = _rowcount(
            await session.execute(
                update(Message)
                .where(Message.consultation_id.in_(consultation_ids))
                .values(body="", data={})
                .execution_options(synchronize_session=False)
            )
        )
        await session.execute(
            update(Consultation)
            .where(Consultation.shopper_id.in_(ids))
            .values(notes="")
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(ChannelEvent)
            .where(ChannelEvent.shopper_id.in_(ids))
            .values(description="", data={})
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(ShopperMerge)
            .where(or_(ShopperMerge.survivor_id.in_(ids), ShopperMerge.merged_id.in_(ids)))
            .values(details={})
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(Shopper)
            .where(Shopper.id.in_(ids))
            .values(
                display_name=ANONYMOUS_NAME, email=None, phone=None, notes="", attributes={}, updated_at=now
            )
            .execution_options(synchronize_session=False)
        )
    action = "shopper.erase" if mode is ErasureMode.ERASE else "shopper.anonymise"
    _audit(session, actor_staff_id, action, live_id, {"counts": counts, "ids": [str(i) for i in ids]})
    log.info("shopper erased", mode=mode.value, shopper=str(live_id), counts=counts)
    return ErasureResult(shopper_id=live_id, mode=mode, counts=counts)
