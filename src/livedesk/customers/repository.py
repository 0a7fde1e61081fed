"""Queries of the customers capability: identities, live (not merged-away) profiles, and the
columns that point at a shopper. Used by the profile service and the merge."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.clock import utcnow
from livedesk.kit.errors import NotFound
from livedesk.models import Base, IdentityKind, Shopper, ShopperIdentity

# Merges re-point merged_into chains to the final survivor, so one hop is the norm; the bound
# only guards against a cycle written by hand into the database.
MAX_MERGE_HOPS = 8
# Tables that hold shopper ids but must not be re-pointed by a merge: the profiles themselves
# (merged_into chains are handled on their own) and the merge records, which name both sides.
NOT_MOVED_BY_MERGE = frozenset({"shoppers", "shopper_merges"})


@dataclass(frozen=True)
class ShopperView:
    """A live profile with its identities. ``requested_id`` is set when the id asked for
    belonged to a profile that was merged into this one."""

    shopper: Shopper
    identities: list[ShopperIdentity]
    requested_id: uuid.UUID | None = None

    @property
    def merged_into(self) -> uuid.UUID | None:
        return self.shopper.id if self.requested_id is not None else None


async def owners_of(
    session: AsyncSession, wanted: Mapping[IdentityKind, str]
) -> dict[IdentityKind, uuid.UUID]:
    """Which live profile each wanted identity already belongs to (one query)."""
    if not wanted:
        return {}
    matches = or_(
        *(
            and_(ShopperIdentity.kind == kind, ShopperIdentity.value == value)
            for kind, value in wanted.items()
        )
    )
    rows = await session.execute(
        select(ShopperIdentity.kind, ShopperIdentity.shopper_id, Shopper.merged_into_id)
        .join(Shopper, Shopper.id == ShopperIdentity.shopper_id)
        .where(matches)
    )
    # Merges move identities to the survivor, so merged_into is only a safety net here.
    return {kind: merged_into or owner for kind, owner, merged_into in rows}


def new_identity(shopper_id: uuid.UUID, kind: IdentityKind, value: str) -> ShopperIdentity:
    return ShopperIdentity(
        id=uuid.uuid4(), shopper_id=shopper_id, kind=kind, value=value, created_at=utcnow()
    )


async def identities_of(session: AsyncSession, shopper_id: uuid.UUID) -> list[ShopperIdentity]:
    rows = await session.scalars(
        select(ShopperIdentity)
        .where(ShopperIdentity.shopper_id == shopper_id)
        .order_by(ShopperIdentity.kind, ShopperIdentity.created_at, ShopperIdentity.value)
    )
    return list(rows.all())


async def load_live(
    session: AsyncSession, shopper_id: uuid.UUID, *, lock: bool
) -> tuple[Shopper, uuid.UUID | None]:
    """The live profile standing for ``shopper_id`` and, when that id was merged away, the
    id asked for. ``lock`` takes the row FOR UPDATE (PostgreSQL) and re-reads it, so a writer
    sees what a concurrent merge left behind."""
    current = shopper_id
    for _ in range(MAX_MERGE_HOPS):
        stmt = select(Shopper).where(Shopper.id == current)
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        shopper = await session.scalar(stmt)
        if shopper is None:
            raise NotFound(f"No shopper {shopper_id}", code="shopper_not_found")
        if shopper.merged_into_id is None:
            return shopper, (shopper_id if current != shopper_id else None)
        current = shopper.merged_into_id
    raise NotFound(f"Shopper {shopper_id} was merged in a loop", code="shopper_not_found")


def shopper_references() -> list[Column[Any]]:
    """Every column, in any capability's table, that points at a shopper. Found from the
    models' foreign keys so a table added later (bookings, payments …) moves with a merge
    without anyone remembering to list it here."""
    columns: list[Column[Any]] = []
    for table in Base.metadata.sorted_tables:
        if table.name in NOT_MOVED_BY_MERGE:
            continue
        for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
            if fk.column.table.name == "shoppers" and fk.column.name == "id":
                columns.append(fk.parent)
    return columns
