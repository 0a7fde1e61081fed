"""The audit log for admins: who did what to which record, newest first, filtered and paged.

Reading the log is itself not audited (it would log its own reading for ever); it is open to
admins only, since it names every shopper record staff opened.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r401, r403, r422
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import select

from livedesk import audit
from livedesk.identity import guarded
from livedesk.kit.context import DB
from livedesk.kit.cursor import decode_cursor, encode_cursor
from livedesk.kit.http import ErrorResponse, model_json
from livedesk.models import Role, Staff

MAX_LIMIT = 200


class AuditActorOut(BaseModel):
    id: uuid.UUID
    display_name: str
    email: str


class AuditEntryOut(BaseModel):
    id: uuid.UUID
    at: datetime
    # None: the system, a shopper, or a staff account since deleted.
    actor: AuditActorOut | None
    action: str
    target_type: str
    target_id: str
    details: dict[str, Any]


class AuditPageOut(BaseModel):
    entries: list[AuditEntryOut]
    # Pass as ``before`` for the next (older) page; None when this was the last.
    next: str | None


@guarded(Role.ADMIN)
async def audit_log(
    request: web.Request,
    action: Annotated[str | None, Field(max_length=64, pattern=r"^[a-z_.]+$")] = None,
    actor: uuid.UUID | None = None,
    target_type: Annotated[str | None, Field(max_length=32, pattern=r"^[a-z_]+$")] = None,
    target_id: Annotated[str | None, Field(max_length=64)] = None,
    since: AwareDatetime | None = None,
    before: Annotated[str | None, Field(max_length=120)] = None,
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 50,
) -> r200[AuditPageOut] | r401[ErrorResponse] | r403[ErrorResponse] | r422[ErrorResponse]:
    """The audit log, newest first (admins). ``action`` ending in a dot lists a family
    (``recording.``); ``before`` is the ``next`` of the previous page.

    Tags: system
    """
    cursor = (
        decode_cursor(before, field="before", hint="pass this log's next back unchanged") if before else None
    )
    wanted = audit.Filter(
        action=action, actor=actor, target_type=target_type, target_id=target_id, since=since
    )
    async with request.app[DB].read() as session:
        rows, more = await audit.page_of(session, wanted, limit=limit, before=cursor)
        ids = {r.actor_staff_id for r in rows if r.actor_staff_id is not None}
        people = (
            {s.id: s for s in (await session.scalars(select(Staff).where(Staff.id.in_(ids)))).all()}
            if ids
            else {}
        )
    entries = []
    for row in rows:
        who = people.get(row.actor_staff_id) if row.actor_staff_id else None
        entries.append(
            AuditEntryOut(
                id=row.id,
                at=row.at,
                actor=AuditActorOut(id=who.id, display_name=who.display_name, email=who.email)
                if who
                else None,
                action=row.action,
                target_type=row.target_type,
                target_id=row.target_id,
                details=row.details or {},
            )
        )
    return model_json(AuditPageOut(entries=entries, next=encode_cursor(*more) if more else None))


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/audit", audit_log)
