"""The supervisor board: a snapshot derived from the database (advisors and their presence,
open consultations, today's figures, alerts).

Changes after the snapshot reach the board as the events the real-time core already sends
to the supervisors room after each commit — ``presence.changed`` and
``consultation.updated`` — through Redis when several processes run. The board therefore
adds no work to the hot path: a change costs one emit to one more room, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.clock import utcnow
from livedesk.models import (
    AdvisorPresence,
    Brand,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    PresenceStatus,
    Role,
    Staff,
    Team,
)
from livedesk.settings import Settings
from livedesk.supervision import figures
from livedesk.supervision.schemas import (
    Alert,
    BoardAdvisor,
    BoardConsultation,
    BoardSnapshot,
    BoardTeam,
    Figures,
    Thresholds,
)

S = ConsultationStatus
ON_BOARD = (S.REQUESTED, S.QUEUED, S.OFFERED, S.ACTIVE, S.WRAP_UP)
WAITING = (S.REQUESTED, S.QUEUED, S.OFFERED)
CALL_KINDS = (ConsultationKind.VOICE, ConsultationKind.VIDEO)
# Without a brand row (a bare installation): the model's default.
FALLBACK_CURRENCY = "JPY"


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        long_wait_seconds=settings.alert_long_wait_seconds,
        long_call_seconds=settings.alert_long_call_seconds,
    )


def alerts(consultations: Iterable[BoardConsultation], limits: Thresholds, now: datetime) -> list[Alert]:
    """Long waits (in the queue longer than the limit) and long calls (a voice or video call
    active longer than the limit), longest first. The page applies the same rule every second
    with the thresholds from the snapshot, so alerts appear without a server round trip."""
    found: list[Alert] = []
    for c in consultations:
        if c.status in WAITING:
            started = c.queued_at or c.requested_at
            limit, kind = limits.long_wait_seconds, "long_wait"
        elif c.status == S.ACTIVE and c.kind in CALL_KINDS and c.accepted_at is not None:
            started, limit, kind = c.accepted_at, limits.long_call_seconds, "long_call"
        else:
            continue
        seconds = int((now - started).total_seconds())
        if seconds >= limit:
            found.append(
                Alert(
                    kind=kind,
                    consultation_id=c.id,
                    advisor_id=c.advisor_id,
                    started_at=started,
                    seconds=seconds,
                )
            )
    return sorted(found, key=lambda a: a.seconds, reverse=True)


def board_consultation(c: Consultation) -> BoardConsultation:
    return BoardConsultation(
        id=c.id,
        kind=c.kind,
        status=c.status,
        advisor_id=c.advisor_id,
        offered_to_id=c.offered_to_id,
        nominated_advisor_id=c.nominated_advisor_id,
        wait_for_nominated=c.wait_for_nominated,
        skills=list(c.skills),
        language=c.language,
        requested_at=c.requested_at,
        queued_at=c.queued_at,
        accepted_at=c.accepted_at,
        ended_at=c.ended_at,
    )


async def advisors(session: AsyncSession) -> list[BoardAdvisor]:
    """Every active advisor with their presence (offline, with no time, if never seen)."""
    rows = (
        await session.execute(
            select(
                Staff.id,
                Staff.display_name,
                Staff.extra,
                Staff.team_id,
                AdvisorPresence.status,
                AdvisorPresence.since,
            )
            .outerjoin(AdvisorPresence, AdvisorPresence.staff_id == Staff.id)
            .where(Staff.role == Role.ADVISOR, Staff.active.is_(True))
            .order_by(Staff.display_name)
        )
    ).all()
    return [
        BoardAdvisor(
            staff_id=staff_id,
            display_name=name,
            display_name_en=str((extra or {}).get("display_name_en", "")) or name,
            team_id=team_id,
            status=status or PresenceStatus.OFFLINE,
            since=since,
        )
        for staff_id, name, extra, team_id, status, since in rows
    ]


async def open_consultations(session: AsyncSession) -> list[BoardConsultation]:
    rows = await session.scalars(
        select(Consultation).where(Consultation.status.in_(ON_BOARD)).order_by(Consultation.requested_at)
    )
    return [board_consultation(c) for c in rows.all()]


async def snapshot(session: AsyncSession, settings: Settings, today: Figures) -> BoardSnapshot:
    """The whole board as of now, with today's figures. The page applies ``presence.changed``
    and ``consultation.updated`` to it, and asks for fresh figures when consultations end."""
    now = utcnow()
    timezone = await figures.brand_timezone(session)
    currency = await session.scalar(select(Brand.currency).order_by(Brand.created_at).limit(1))
    teams = (await session.execute(select(Team.id, Team.name).order_by(Team.name))).all()
    consultations = await open_consultations(session)
    limits = thresholds(settings)
    return BoardSnapshot(
        generated_at=now,
        timezone=timezone,
        currency=currency or FALLBACK_CURRENCY,
        thresholds=limits,
        teams=[BoardTeam(id=team_id, name=name) for team_id, name in teams],
        advisors=await advisors(session),
        consultations=consultations,
        alerts=alerts(consultations, limits, now),
        figures=today,
    )
