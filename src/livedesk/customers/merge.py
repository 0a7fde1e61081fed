"""Merging two profiles that turned out to be one person."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk import audit
from livedesk.customers import search
from livedesk.customers.repository import ShopperView, identities_of, shopper_references
from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Conflict, NotFound, ValidationFailed
from livedesk.kit.logging import get_logger
from livedesk.models import Shopper, ShopperMerge, TimelineKind
from livedesk.timeline import new_event

log = get_logger("livedesk.customers")


@dataclass(frozen=True)
class MergeResult:
    survivor: ShopperView
    merged_id: uuid.UUID
    record: ShopperMerge
    moved: dict[str, int]


async def merge_shoppers(
    session: AsyncSession,
    survivor_id: uuid.UUID,
    merged_id: uuid.UUID,
    *,
    actor_staff_id: uuid.UUID | None,
    proof: dict[str, str] | None = None,
) -> MergeResult:
    """Two profiles turned out to be one person: move everything of ``merged_id`` to
    ``survivor_id``.

    Identities, timeline events, consultations, shop orders — every row of any table that
    points at the merged profile — are re-pointed to the survivor. The survivor keeps its own
    fields and only fills blanks (e-mail, phone, name, attributes it lacks) from the merged
    profile; notes are appended. The merged row stays, pointing at the survivor, so old ids
    still resolve. A ``shopper_merges`` row, an audit entry (``shopper.merge``) and a
    ``profile.merged`` timeline event on the survivor record it.

    ValidationFailed (422) for merging a profile into itself; NotFound for an unknown id;
    Conflict (409) when either profile was already merged away.

    ``proof`` says how the person proved the two are one (``{"kind": "shop_signature"}`` or
    ``{"kind": "email_verified", ...}``); it is kept on the merge record and the timeline.
    Only a proven merge lets a token issued for the merged profile reach the survivor
    (``proven_merge``): a staff member's judgement joins the histories, not the browsers.
    """
    if survivor_id == merged_id:
        raise ValidationFailed(
            "body field 'merge_id': a shopper cannot be merged into itself",
            details=[{"in": "body", "field": "merge_id", "message": "same as the surviving shopper"}],
        )
    # Both rows locked in id order, so two merges of the same pair in opposite directions
    # queue up instead of deadlocking; the second then finds a merged profile and stops.
    rows = await session.scalars(
        select(Shopper)
        .where(Shopper.id.in_([survivor_id, merged_id]))
        .order_by(Shopper.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    found = {shopper.id: shopper for shopper in rows.all()}
    survivor = found.get(survivor_id)
    merged = found.get(merged_id)
    if survivor is None:
        raise NotFound(f"No shopper {survivor_id}", code="shopper_not_found")
    if merged is None:
        raise NotFound(f"No shopper {merged_id} to merge (merge_id)", code="shopper_not_found")
    if survivor.merged_into_id is not None:
        raise Conflict(
            f"Shopper {survivor_id} was itself merged into {survivor.merged_into_id}; merge into that "
            "profile instead",
            code="shopper_merged",
            details={"shopper_id": str(survivor_id), "merged_into": str(survivor.merged_into_id)},
        )
    if merged.merged_into_id is not None:
        raise Conflict(
            f"Shopper {merged_id} was already merged into {merged.merged_into_id}",
            code="already_merged",
            details={"shopper_id": str(merged_id), "merged_into": str(merged.merged_into_id)},
        )

    moved: dict[str, int] = {}
    for column in shopper_references():
        result = await session.execute(
            update(column.table).where(column == merged_id).values({column.name: survivor_id})
        )
        assert isinstance(result, CursorResult)
        moved[column.table.name] = moved.get(column.table.name, 0) + result.rowcount
    # Profiles merged into the merged one earlier now point straight at the survivor, so
    # resolving an old id is always one hop.
    repointed = await session.execute(
        update(Shopper)
        .where(Shopper.merged_into_id == merged_id)
        .values(merged_into_id=survivor_id)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(repointed, CursorResult)
    moved["shoppers"] = repointed.rowcount

    filled: list[str] = []
    if survivor.email is None and merged.email is not None:
        survivor.email = merged.email
        filled.append("email")
    if survivor.phone is None and merged.phone is not None:
        survivor.phone = merged.phone
        filled.append("phone")
    if not survivor.display_name and merged.display_name:
        survivor.display_name = merged.display_name
        filled.append("display_name")
    attributes = {**merged.attributes, **survivor.attributes}
    if attributes != survivor.attributes:
        survivor.attributes = attributes
        filled.append("attributes")
    if merged.notes.strip() and merged.notes.strip() not in survivor.notes:
        survivor.notes = f"{survivor.notes.rstrip()}\n\n{merged.notes.strip()}".lstrip()
        filled.append("notes")

    now = utcnow()
    survivor.updated_at = now
    merged.merged_into_id = survivor_id
    merged.updated_at = now
    record = ShopperMerge(
        id=uuid.uuid4(),
        survivor_id=survivor_id,
        merged_id=merged_id,
        merged_by_staff_id=actor_staff_id,
        at=now,
        details={
            "moved": moved,
            "filled": filled,
            "proof": proof,
            # What the merged profile looked like, since its own fields are no longer shown.
            "merged_profile": {
                "display_name": merged.display_name,
                "email": merged.email,
                "phone": merged.phone,
                "locale": merged.locale,
                "timezone": merged.timezone,
                "created_at": merged.created_at.isoformat(),
            },
        },
    )
    session.add(record)
    audit.record(
        session,
        actor=actor_staff_id,
        action="shopper.merge",
        target_type="shopper",
        target_id=survivor_id,
        details={
            "merged_id": str(merged_id),
            "shopper_merge_id": str(record.id),
            "moved": moved,
            "proof": proof,
        },
    )
    session.add(
        new_event(
            survivor_id,
            TimelineKind.PROFILE_MERGED,
            f"Merged profile {merged.display_name or merged_id} into this one"
            + (f" (proof: {proof['kind'].replace('_', ' ')})" if proof else ""),
            {"merged_id": merged_id, "moved": moved, "filled": filled, "proof": proof},
            occurred_at=now,
            actor_staff_id=actor_staff_id,
            ref_id=str(record.id),
        )
    )
    await session.flush()
    # The merged profile's terms were re-pointed here with its other rows; rebuild them.
    await search.index_shopper(session, survivor_id)
    log.info("shoppers merged", survivor=str(survivor_id), merged=str(merged_id), moved=moved)
    return MergeResult(
        survivor=ShopperView(survivor, await identities_of(session, survivor_id)),
        merged_id=merged_id,
        record=record,
        moved=moved,
    )
