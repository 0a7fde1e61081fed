"""HTTP routes of the unified customer history: search, recommendations, notes, one
timeline event in full, and privacy requests (export, erase). Staff only; exporting is for
supervisors and admins, erasing for admins."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r201, r401, r403, r404, r422
from pydantic import Field

from livedesk.customers import history, privacy, recommendations, search, service
from livedesk.customers.history_schemas import (
    BoughtTogetherOut,
    EraseOut,
    EraseRequest,
    EventDetailOut,
    NoteCreate,
    NoteOut,
    RecommendationsOut,
    ReminderOut,
    SearchHitOut,
    SearchOut,
)
from livedesk.identity import guarded, require_staff
from livedesk.kit.context import DB
from livedesk.kit.errors import ValidationFailed
from livedesk.kit.http import ErrorResponse, model_json
from livedesk.models import Role
from livedesk.uploads import FILE_STORE

EXPORT_ROLES = (Role.SUPERVISOR, Role.ADMIN)
ERASE_ROLES = (Role.ADMIN,)


@guarded()
async def search_customers(
    request: web.Request,
    q: Annotated[str, Field(min_length=1, max_length=search.MAX_QUERY)],
    limit: Annotated[int, Field(ge=1, le=search.MAX_LIMIT)] = search.DEFAULT_LIMIT,
) -> r200[SearchOut] | r401[ErrorResponse] | r422[ErrorResponse]:
    """Find shoppers by the start of a name (any word), e-mail, phone number or shop id.
    Queries shorter than two characters find nothing.

    Tags: shoppers
    """
    await require_staff(request)
    async with request.app[DB].read() as session:
        hits = await search.search(session, q, limit)
        out = SearchOut(
            query=q,
            hits=[
                SearchHitOut(
                    id=h.shopper.id,
                    display_name=h.shopper.display_name,
                    email=h.shopper.email,
                    phone=h.shopper.phone,
                    matched=h.matched,
                )
                for h in hits
            ],
        )
    return model_json(out)


@guarded()
async def shopper_recommendations(
    request: web.Request, shopper_id: uuid.UUID, /
) -> r200[RecommendationsOut] | r401[ErrorResponse] | r404[ErrorResponse]:
    """Items often bought with this shopper's purchases, and consumables due for repurchase.

    Tags: shoppers
    """
    await require_staff(request)
    async with request.app[DB].read() as session:
        shopper = await service.live_shopper(session, shopper_id)
        found = await recommendations.recommend(session, shopper.id)
        out = RecommendationsOut(
            bought_together=[
                BoughtTogetherOut.model_validate(x, from_attributes=True) for x in found.bought_together
            ],
            reminders=[ReminderOut.model_validate(x, from_attributes=True) for x in found.reminders],
        )
    return model_json(out)


@guarded()
async def add_note(
    request: web.Request, shopper_id: uuid.UUID, /, body: NoteCreate
) -> r201[NoteOut] | r401[ErrorResponse] | r404[ErrorResponse] | r422[ErrorResponse]:
    """Add a note to the shopper's timeline.

    Tags: shoppers
    """
    staff = await require_staff(request)
    async with request.app[DB].transaction() as session:
        event = await history.add_note(session, shopper_id, body.text, staff_id=staff.staff_id)
        out = NoteOut(id=event.id, occurred_at=event.occurred_at, summary=event.summary)
    return model_json(out, status=201)


@guarded()
async def timeline_event(
    request: web.Request, shopper_id: uuid.UUID, event_id: uuid.UUID, /
) -> r200[EventDetailOut] | r401[ErrorResponse] | r404[ErrorResponse]:
    """One event of the shopper's timeline in full: a consultation's transcript, an order's
    lines, a recording's player address, a visit's details.

    Tags: shoppers
    """
    staff = await require_staff(request)
    async with request.app[DB].read() as session:
        shopper = await service.live_shopper(session, shopper_id)
        detail = await history.event_detail(session, shopper.id, event_id, staff)
        event = await history.load_event(session, event_id)
        out = EventDetailOut(
            id=event.id,
            kind=event.kind.value,
            occurred_at=event.occurred_at,
            summary=event.summary,
            data=event.data,
            detail=detail,
        )
    return model_json(out)


@guarded(*EXPORT_ROLES)
async def export_shopper(
    request: web.Request, shopper_id: uuid.UUID, /
) -> r200[dict[str, object]] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse]:
    """Everything stored about the shopper, as one JSON document (a download). Audited.

    Tags: privacy
    """
    staff = await require_staff(request, *EXPORT_ROLES)
    async with request.app[DB].transaction() as session:
        data = await privacy.export_shopper(session, shopper_id, actor_staff_id=staff.staff_id)
    response = web.Response(
        text=json.dumps(data, ensure_ascii=False, indent=1), content_type="application/json"
    )
    response.headers["Content-Disposition"] = f'attachment; filename="shopper-{data["shopper_id"]}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


@guarded(*ERASE_ROLES)
async def erase_shopper(
    request: web.Request, shopper_id: uuid.UUID, /, body: EraseRequest
) -> r200[EraseOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse] | r422[ErrorResponse]:
    """Erase the shopper (everything deleted) or anonymise them (rows kept without the
    person), recordings and chat files included. Audited. Cannot be undone.

    Tags: privacy
    """
    staff = await require_staff(request, *ERASE_ROLES)
    if body.confirm_shopper_id != shopper_id:
        raise ValidationFailed(
            "body field 'confirm_shopper_id': must repeat the id of the shopper being erased",
            details=[{"in": "body", "field": "confirm_shopper_id", "message": "does not match"}],
        )
    store = request.app.get(FILE_STORE)
    async with request.app[DB].transaction() as session:
        result = await privacy.erase_shopper(
            session,
            shopper_id,
            body.mode,
            actor_staff_id=staff.staff_id,
            participants=request.app[privacy.PRIVACY_PARTICIPANTS],
            delete_file=store.delete if store is not None else None,
        )
    # What the erase overwrote must not live on in SQLite's write-ahead log.
    await request.app[DB].purge_freed()
    return model_json(EraseOut(shopper_id=result.shopper_id, mode=result.mode, counts=result.counts))


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/customers/search", search_customers)
    app.router.add_get("/api/v1/shoppers/{shopper_id}/recommendations", shopper_recommendations)
    app.router.add_post("/api/v1/shoppers/{shopper_id}/notes", add_note)
    app.router.add_get("/api/v1/shoppers/{shopper_id}/timeline/{event_id}", timeline_event)
    app.router.add_get("/api/v1/shoppers/{shopper_id}/export", export_shopper)
    app.router.add_post("/api/v1/shoppers/{shopper_id}/erase", erase_shopper)
