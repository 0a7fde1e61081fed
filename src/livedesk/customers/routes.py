"""HTTP routes of the customers capability: shopper profiles, identity resolution, merge and
the timeline. Handlers parse, authorise and call the service; the service holds the rules."""

from __future__ import annotations

import uuid
from typing import Annotated

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r201, r401, r403, r404, r409, r422
from pydantic import Field

from livedesk import timeline
from livedesk.customers import merge, service
from livedesk.customers.repository import ShopperView
from livedesk.customers.schemas import (
    IdentityOut,
    MergeOut,
    MergeRequest,
    ResolveCandidate,
    ResolveOut,
    ResolveRequest,
    ShopperCreate,
    ShopperOut,
    ShopperUpdate,
    TimelineEventOut,
    TimelinePageOut,
)
from livedesk.identity import guarded, require_staff
from livedesk.kit.context import DB
from livedesk.kit.errors import NotFound
from livedesk.kit.http import ErrorResponse, model_json
from livedesk.models import Role, ShopperIdentity, TimelineEvent, TimelineKind

# Merging cannot be undone by the people it affects, so it is a supervisor's decision.
MERGE_ROLES = (Role.SUPERVISOR, Role.ADMIN)


def _identity_out(row: ShopperIdentity) -> IdentityOut:
    return IdentityOut(kind=row.kind, value=row.value, created_at=row.created_at)


def shopper_out(view: ShopperView) -> ShopperOut:
    shopper = view.shopper
    return ShopperOut(
        id=shopper.id,
        display_name=shopper.display_name,
        email=shopper.email,
        phone=shopper.phone,
        locale=shopper.locale,
        timezone=shopper.timezone,
        notes=shopper.notes,
        attributes=shopper.attributes,
        identities=[_identity_out(row) for row in view.identities],
        created_at=shopper.created_at,
        updated_at=shopper.updated_at,
        merged_into=view.merged_into,
        requested_id=view.requested_id,
    )


def _event_out(event: TimelineEvent) -> TimelineEventOut:
    return TimelineEventOut(
        id=event.id,
        shopper_id=event.shopper_id,
        kind=event.kind,
        occurred_at=event.occurred_at,
        summary=event.summary,
        data=event.data,
        actor_staff_id=event.actor_staff_id,
        consultation_id=event.consultation_id,
        ref_id=event.ref_id,
        recorded_at=event.recorded_at,
    )


def _created(body: ShopperOut | ResolveOut, shopper_id: uuid.UUID) -> web.Response:
    response = model_json(body, status=201)
    response.headers["Location"] = f"/api/v1/shoppers/{shopper_id}"
    return response


@guarded()
async def create_shopper(
    request: web.Request, body: ShopperCreate
) -> r201[ShopperOut] | r401[ErrorResponse] | r409[ErrorResponse] | r422[ErrorResponse]:
    """Create a shopper profile; 409 when one of its identities already belongs to someone.

    Tags: shoppers
    """
    staff = await require_staff(request)
    async with request.app[DB].transaction() as session:
        view = await service.create_shopper(session, body, actor_staff_id=staff.staff_id)
        out = shopper_out(view)
    return _created(out, out.id)


@guarded()
async def get_shopper(
    request: web.Request, shopper_id: uuid.UUID, /
) -> r200[ShopperOut] | r401[ErrorResponse] | r404[ErrorResponse]:
    """A shopper profile with its identities; a merged-away id answers with the profile it was
    merged into.

    Tags: shoppers
    """
    await require_staff(request)
    async with request.app[DB].read() as session:
        out = shopper_out(await service.get_shopper(session, shopper_id))
    return model_json(out)


@guarded()
async def update_shopper(
    request: web.Request, shopper_id: uuid.UUID, /, body: ShopperUpdate
) -> r200[ShopperOut] | r401[ErrorResponse] | r404[ErrorResponse] | r409[ErrorResponse] | r422[ErrorResponse]:
    """Change the fields sent; e-mail, phone or shop customer id replace that kind of identity.

    Tags: shoppers
    """
    staff = await require_staff(request)
    async with request.app[DB].transaction() as session:
        view = await service.update_shopper(session, shopper_id, body, actor_staff_id=staff.staff_id)
        out = shopper_out(view)
    return model_json(out)


@guarded()
async def resolve_shopper(
    request: web.Request, body: ResolveRequest
) -> r200[ResolveOut] | r201[ResolveOut] | r401[ErrorResponse] | r404[ErrorResponse] | r422[ErrorResponse]:
    """Find the shopper these identities belong to (attaching the ones they lack), or create one.

    Answers 201 when a profile was created, 404 when none matched and create is false.
    When the identities point at different profiles, the shop customer id wins, then e-mail,
    then phone; conflict is true and candidates lists them (nothing is merged).

    Tags: shoppers
    """
    staff = await require_staff(request)
    async with request.app[DB].transaction() as session:
        found = await service.resolve_shopper(
            session,
            email=body.email,
            phone=body.phone,
            shop_customer_id=body.shop_customer_id,
            display_name=body.display_name,
            create=body.create,
            phone_region=body.phone_region,
            locale=body.locale,
            timezone=body.timezone,
            actor_staff_id=staff.staff_id,
        )
        if found.view is None:
            raise NotFound("No shopper has any of these identities", code="shopper_not_found")
        out = ResolveOut(
            shopper=shopper_out(found.view),
            created=found.created,
            matched_by=list(found.matched_by),
            attached=[_identity_out(row) for row in found.attached],
            conflict=found.conflict,
            candidates=[
                ResolveCandidate(shopper_id=c.shopper_id, matched_by=list(c.matched_by))
                for c in found.candidates
            ],
        )
    if found.created:
        return _created(out, out.shopper.id)
    return model_json(out)


@guarded(*MERGE_ROLES)
async def merge_shopper(
    request: web.Request, shopper_id: uuid.UUID, /, body: MergeRequest
) -> (
    r200[MergeOut]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
):
    """Merge the profile merge_id into this one (supervisors and admins).

    Its identities, timeline, consultations and orders move here; its id keeps resolving
    to this profile. Recorded in the merge history and the audit log.

    Tags: shoppers
    """
    staff = await require_staff(request, *MERGE_ROLES)
    async with request.app[DB].transaction() as session:
        result = await merge.merge_shoppers(session, shopper_id, body.merge_id, actor_staff_id=staff.staff_id)
        out = MergeOut(
            survivor=shopper_out(result.survivor),
            merged_id=result.merged_id,
            merge_record_id=result.record.id,
            moved=result.moved,
        )
    return model_json(out)


@guarded()
async def shopper_timeline(
    request: web.Request,
    shopper_id: uuid.UUID,
    /,
    limit: Annotated[int, Field(ge=1, le=timeline.MAX_PAGE)] = timeline.DEFAULT_PAGE,
    cursor: str | None = None,
    # aiohttp-pydantic turns this default into the pydantic field, so the factory makes a
    # fresh list per request: the shared-mutable-default hazard B008 warns of does not exist.
    kind: list[TimelineKind] = Field(default_factory=list),  # noqa: B008
) -> r200[TimelinePageOut] | r401[ErrorResponse] | r404[ErrorResponse] | r422[ErrorResponse]:
    """A shopper's timeline, newest first, one page at a time.

    Pass next_cursor back as cursor for the next (older) page; repeat kind to keep only those
    kinds. A merged-away id reads the timeline of the profile it was merged into.

    Tags: shoppers
    """
    await require_staff(request)
    async with request.app[DB].read() as session:
        shopper = await service.live_shopper(session, shopper_id)
        page = await timeline.read_timeline(session, shopper.id, limit=limit, cursor=cursor, kinds=kind)
        out = TimelinePageOut(events=[_event_out(e) for e in page.events], next_cursor=page.next_cursor)
    return model_json(out)


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/shoppers", create_shopper)
    app.router.add_post("/api/v1/shoppers/resolve", resolve_shopper)
    app.router.add_get("/api/v1/shoppers/{shopper_id}", get_shopper)
    app.router.add_patch("/api/v1/shoppers/{shopper_id}", update_shopper)
    app.router.add_post("/api/v1/shoppers/{shopper_id}/merge", merge_shopper)
    app.router.add_get("/api/v1/shoppers/{shopper_id}/timeline", shopper_timeline)
