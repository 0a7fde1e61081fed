"""The public face of the advisors: what a shopper sees when picking who to talk to —
nomination profile and live status, nothing else (no e-mail, no team, no role)."""

from __future__ import annotations

import uuid

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.context import DB
from livedesk.kit.http import endpoint, model_json
from livedesk.models import AdvisorPresence, PresenceStatus, Role, Staff


class AdvisorCard(BaseModel):
    id: uuid.UUID
    display_name: str
    display_name_en: str
    photo_url: str
    bio: str
    bio_en: str
    skills: list[str]
    languages: list[str]
    status: PresenceStatus


class AdvisorList(BaseModel):
    advisors: list[AdvisorCard]


async def nominable_advisors(session: AsyncSession) -> list[AdvisorCard]:
    rows = (
        await session.execute(
            select(Staff, AdvisorPresence.status)
            .outerjoin(AdvisorPresence, AdvisorPresence.staff_id == Staff.id)
            .where(Staff.role == Role.ADVISOR, Staff.active.is_(True), Staff.nominable.is_(True))
            .order_by(Staff.display_name)
        )
    ).all()
    return [
        AdvisorCard(
            id=staff.id,
            display_name=staff.display_name,
            # The name in Latin letters for English pages, when the profile has one.
            display_name_en=str(staff.extra.get("display_name_en", "")) or staff.display_name,
            photo_url=staff.photo_url,
            bio=staff.bio,
            bio_en=str(staff.extra.get("bio_en", "")),
            skills=list(staff.skills),
            languages=list(staff.languages),
            status=status or PresenceStatus.OFFLINE,
        )
        for staff, status in rows
    ]


@endpoint
async def list_advisors(request: web.Request) -> r200[AdvisorList]:
    """Advisors a shopper may nominate, with photo, bio, skills, languages and live status.
    Public: the widget shows it before any visit starts."""
    async with request.app[DB].read() as session:
        cards = await nominable_advisors(session)
    return model_json(AdvisorList(advisors=cards))


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/advisors", list_advisors)
