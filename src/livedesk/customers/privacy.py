"""Privacy requests: export one shopper's data as JSON; erase or anonymise it.

Which rows are the shopper's is worked out from the models, not listed: a row is theirs when
its table points at a shopper (any column, ``repository.shopper_references``) and the id is
one of theirs, or when it belongs (``ON DELETE CASCADE``) to a row that is theirs — a
booking's mails, a consultation's messages, files and survey invitation. So a capability's
table added later is exported, erased and scrubbed from the audit log without anyone listing
it here. Every request is audited (the entry holds counts, never the personal data itself).

* **erase**: the profile, the profiles merged into it, and every row that is theirs are
  deleted; recordings through the recording service (files too), chat files from storage once
  the transaction commits; audit entries about any of those rows lose their details, and
  outgoing webhooks that name the shopper keep only ids.
* **anonymise**: the rows that feed statistics (``KEPT_ON_ANONYMISE``) stay but nothing in
  them names the person — each capability's ``forget_shoppers`` blanks its own texts
  (booking contacts and queued mails, typed survey answers and comments, chat texts and
  notes); the profile is blanked; every other row of theirs is deleted, which is what a table
  added later gets until someone decides it is worth keeping.

The other capabilities take part as ``Participant``s the composition root lists
(``wiring/privacy.py``, on the app under ``PRIVACY_PARTICIPANTS``): customers imports none of
them, and a capability that keeps files or texts of its own is added there.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic_core import to_jsonable_python
from sqlalchemy import ColumnElement, ForeignKey, FromClause, Table, delete, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk import audit
from livedesk.customers.repository import load_live
from livedesk.kit.clock import utcnow
from livedesk.kit.logging import get_logger
from livedesk.models import AuditEntry, Base, Shopper, ShopperMerge, TimelineEvent
from livedesk.models.integrations import ChannelEvent
from livedesk.uploads import DeleteFile

log = get_logger("livedesk.privacy")

EXPORT_FORMAT = "livedesk.shopper-export/1"
ANONYMOUS_NAME = "Anonymised shopper"
# Derived from the profile, nothing the shopper gave us: not exported.
NOT_EXPORTED = frozenset({"shopper_search_terms", "shopper_connections"})
# Rows an anonymisation keeps (statistics: orders feed recommendations, consultations and
# bookings the figures), each blanked by its capability. Every other table's rows of the
# shopper are deleted.
KEPT_ON_ANONYMISE = frozenset(
    {
        "consultations",
        "messages",
        "timeline_events",
        "channel_events",
        "shop_orders",
        "shop_order_lines",
        "bookings",
        "booking_mails",
        "survey_responses",
        "satisfaction_responses",
        "payment_requests",
        "payment_request_lines",
        "payment_refunds",
        "booking_payments",
        "shopper_merges",
    }
)
# Ids per statement when scrubbing the audit log (bound parameters stay well under limits).
AUDIT_CHUNK = 500

__all__ = [
    "ANONYMOUS_NAME",
    "PRIVACY_PARTICIPANTS",
    "DeleteFile",
    "ErasureMode",
    "ErasureResult",
    "ErasureScope",
    "Participant",
    "erase_shopper",
    "export_shopper",
    "owned_tables",
]


class ErasureMode(enum.StrEnum):
    ERASE = "erase"
    ANONYMISE = "anonymise"


@dataclass(frozen=True)
class ErasureResult:
    shopper_id: uuid.UUID
    mode: ErasureMode
    counts: dict[str, int]


@dataclass(frozen=True)
class ErasureScope:
    """What a participant is told of one erase or anonymise request."""

    actor_staff_id: uuid.UUID | None
    # Removes a stored file by key (run after the commit), when storage is configured.
    delete_file: DeleteFile | None


# Each returns counts by what it removed or blanked, for the request's audit entry.
Remove = Callable[[AsyncSession, list[uuid.UUID], ErasureScope], Awaitable[dict[str, int]]]
Forget = Callable[[AsyncSession, list[uuid.UUID]], Awaitable[dict[str, int]]]


@dataclass(frozen=True)
class Participant:
    """A capability's part in a privacy request. ``remove`` runs in both modes, before any
    row is deleted (what the capability must clean up itself: files, outbox payloads);
    ``forget`` runs when anonymising, to blank the texts of the rows it keeps."""

    name: str
    remove: Remove | None = None
    forget: Forget | None = None


PRIVACY_PARTICIPANTS = web.AppKey("privacy_participants", tuple[Participant, ...])


def owned_tables() -> dict[str, tuple[Table, list[ForeignKey]]]:
    """Every table that can hold a shopper's rows (parents before children), with the foreign
    keys that make a row theirs: the columns pointing at a shopper when the table has any,
    else its ``ON DELETE CASCADE`` keys into tables already found."""
    owned: dict[str, tuple[Table, list[ForeignKey]]] = {}
    for table in Base.metadata.sorted_tables:
        if table.name == "shoppers":
            continue  # the profiles themselves (merged_into) are handled on their own
        keys = sorted(table.foreign_keys, key=lambda k: k.parent.name)
        direct = [k for k in keys if k.column.table.name == "shoppers"]
        via = [k for k in keys if k.ondelete == "CASCADE" and k.column.table.name in owned]
        if direct or via:
            owned[table.name] = (table, direct or via)
    return owned


def _theirs(name: str, ids: Sequence[uuid.UUID], owned: dict[str, tuple[Table, list[ForeignKey]]]) -> Any:
    """The condition that a row of table ``name`` is one of the shopper's."""
    _, keys = owned[name]
    clauses: list[ColumnElement[bool]] = []
    for key in keys:
        parent = key.column.table.name
        if parent == "shoppers":
            clauses.append(key.parent.in_(ids))
        else:
            clauses.append(key.parent.in_(select(key.column).where(_theirs(parent, ids, owned))))
    return or_(*clauses)


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
    audit.record(
        session, actor=actor, action=action, target_type="shopper", target_id=shopper_id, details=details
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
    owned = owned_tables()
    for name, (table, _) in owned.items():
        if name in NOT_EXPORTED:
            continue
        rows = (await session.execute(select(table).where(_theirs(name, ids, owned)))).all()
        tables[name] = [_row(table, r) for r in rows]
    counts = {name: len(rows) for name, rows in tables.items() if rows}
    _audit(session, actor_staff_id, "shopper.export", shopper.id, {"counts": counts})
    return {
        "format": EXPORT_FORMAT,
        "exported_at": utcnow().isoformat(),
        "shopper_id": str(shopper.id),
        "tables": {name: rows for name, rows in tables.items() if rows},
    }


async def _scrub_audit(session: AsyncSession, ids: list[uuid.UUID], owned: dict[str, Any]) -> int:
    """Audit entries about the shopper or any row of theirs (a chat file read names the file,
    a merge snapshots the profile) keep who did what and when, not the details."""
    targets = {str(i) for i in ids}
    for name, (table, _) in owned.items():
        key = list(table.primary_key.columns)
        if len(key) == 1:
            rows = await session.scalars(select(key[0]).where(_theirs(name, ids, owned)))
            targets.update(str(v) for v in rows)
    scrubbed = 0
    ordered = sorted(targets)
    for start in range(0, len(ordered), AUDIT_CHUNK):
        scrubbed += _rowcount(
            await session.execute(
                update(AuditEntry)
                .where(AuditEntry.target_id.in_(ordered[start : start + AUDIT_CHUNK]))
                .values(details={"scrubbed": True})
                .execution_options(synchronize_session=False)
            )
        )
    return scrubbed


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


async def _delete_theirs(
    session: AsyncSession, ids: list[uuid.UUID], owned: dict[str, Any], keep: frozenset[str]
) -> dict[str, int]:
    """Delete the shopper's rows of every owned table not in ``keep``, children first (a
    child's condition reads its parent's rows)."""
    counts: dict[str, int] = {}
    for name in reversed(list(owned)):
        if name in keep:
            continue
        table, _ = owned[name]
        deleted = _rowcount(await session.execute(delete(table).where(_theirs(name, ids, owned))))
        if deleted:
            counts[name] = deleted
    return counts


async def _blank_own_rows(session: AsyncSession, ids: list[uuid.UUID]) -> dict[str, int]:
    """The customers capability's own kept rows: timeline texts, channel events, merge records
    and the profiles."""
    counts = {
        "timeline_events": _rowcount(
            await session.execute(
                update(TimelineEvent)
                .where(TimelineEvent.shopper_id.in_(ids))
                .values(summary="", data={})
                .execution_options(synchronize_session=False)
            )
        ),
        "channel_events": _rowcount(
            await session.execute(
                update(ChannelEvent)
                .where(ChannelEvent.shopper_id.in_(ids))
                .values(description="", data={})
                .execution_options(synchronize_session=False)
            )
        ),
    }
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
            display_name=ANONYMOUS_NAME, email=None, phone=None, notes="", attributes={}, updated_at=utcnow()
        )
        .execution_options(synchronize_session=False)
    )
    return counts


async def erase_shopper(
    session: AsyncSession,
    shopper_id: uuid.UUID,
    mode: ErasureMode,
    *,
    actor_staff_id: uuid.UUID | None,
    participants: tuple[Participant, ...],
    delete_file: DeleteFile | None = None,
) -> ErasureResult:
    """Erase or anonymise one shopper (see the module docstring), in the caller's transaction,
    with the other capabilities' ``participants``. ``delete_file`` removes a stored file (run
    after the commit). Audited as ``shopper.erase`` / ``shopper.anonymise`` with counts only."""
    shopper, ids = await _profile_ids(session, shopper_id)
    live_id = shopper.id
    owned = owned_tables()
    counts: dict[str, int] = {"profiles": len(ids)}
    # First, while every row is still there to be found (and before the recording service
    # writes its own entries about this request, which stay).
    counts["audit_log"] = await _scrub_audit(session, ids, owned)
    scope = ErasureScope(actor_staff_id=actor_staff_id, delete_file=delete_file)
    for participant in participants:
        if participant.remove is not None:
            counts.update(await participant.remove(session, ids, scope))
    if mode is ErasureMode.ERASE:
        counts.update(await _delete_theirs(session, ids, owned, frozenset()))
        # Merged-away rows first: they point at the live one.
        await session.execute(delete(Shopper).where(Shopper.id.in_(ids), Shopper.id != live_id))
        await session.execute(delete(Shopper).where(Shopper.id == live_id))
    else:
        for participant in participants:
            if participant.forget is not None:
                counts.update(await participant.forget(session, ids))
        counts.update(await _blank_own_rows(session, ids))
        counts.update(await _delete_theirs(session, ids, owned, KEPT_ON_ANONYMISE))
    action = "shopper.erase" if mode is ErasureMode.ERASE else "shopper.anonymise"
    _audit(session, actor_staff_id, action, live_id, {"counts": counts, "ids": [str(i) for i in ids]})
    log.info("shopper erased", mode=mode.value, shopper=str(live_id), counts=counts)
    return ErasureResult(shopper_id=live_id, mode=mode, counts=counts)
