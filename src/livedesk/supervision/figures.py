"""Figures of one day in the brand's time zone: offered, answered, abandoned, waits, handle
time, conversion to payment, revenue and satisfaction.

The arithmetic (``compute``) is pure, so it is tested on a fixed day with rows made by hand;
``figures_for_day`` reads those rows with one query over the day's consultations.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.clock import utcnow
from livedesk.models import Brand, Consultation, ConsultationStatus, Staff
from livedesk.supervision import sources
from livedesk.supervision.schemas import Figures, HourFigures
from livedesk.supervision.sources import Money

S = ConsultationStatus
STILL_WAITING = (S.REQUESTED, S.QUEUED, S.OFFERED)
# Without a brand row (a bare installation) the day is the UTC day.
FALLBACK_TIMEZONE = "UTC"


@dataclass(frozen=True)
class Row:
    """The columns of one consultation the figures need."""

    status: ConsultationStatus
    requested_at: datetime
    queued_at: datetime | None
    accepted_at: datetime | None
    closed_at: datetime | None
    advisor_id: uuid.UUID | None
    nominated_advisor_id: uuid.UUID | None

    @property
    def joined_at(self) -> datetime:
        return self.queued_at or self.requested_at


@dataclass
class _Hour:
    offered: int = 0
    abandoned: int = 0
    waits: list[float] = field(default_factory=list)


def day_window(day: date, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of the local day, in UTC (23 or 25 hours long on DST days)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _seconds(later: datetime, earlier: datetime) -> float:
    return max(0.0, (later - earlier).total_seconds())


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def in_team(row: Row, members: frozenset[uuid.UUID]) -> bool:
    """A consultation belongs to the team that answered it or, while nobody has, to the team
    of the advisor the shopper nominated. Unnominated unanswered ones belong to no team."""
    if row.advisor_id is not None:
        return row.advisor_id in members
    return row.nominated_advisor_id is not None and row.nominated_advisor_id in members


def compute(
    rows: Iterable[Row],
    *,
    day: date,
    timezone: str,
    now: datetime,
    team_id: uuid.UUID | None = None,
    members: frozenset[uuid.UUID] = frozenset(),
    money: Money | None = None,
) -> Figures:
    """The figures of ``rows`` (the consultations requested on ``day``), as of ``now``.

    Average wait is over answered consultations (time to answer); the longest wait also
    counts those who left or were never answered, and those still waiting. Conversion is
    paid consultations over answered ones; money and satisfaction are brand-wide, so with a
    team filter conversion still divides by every answered consultation of the day."""
    zone = ZoneInfo(timezone)
    money = money or Money()
    all_rows = list(rows)
    answered_all = sum(1 for r in all_rows if r.accepted_at is not None)
    chosen = [r for r in all_rows if in_team(r, members)] if team_id is not None else all_rows
    hours = {h: _Hour() for h in range(24)}
    answered_waits: list[float] = []
    all_waits: list[float] = []
    handles: list[float] = []
    abandoned = missed = waiting = 0
    for r in chosen:
        bucket = hours[r.requested_at.astimezone(zone).hour]
        bucket.offered += 1
        if r.accepted_at is not None:
            wait = _seconds(r.accepted_at, r.joined_at)
            answered_waits.append(wait)
            all_waits.append(wait)
            bucket.waits.append(wait)
            if r.status == S.CLOSED and r.closed_at is not None:
                handles.append(_seconds(r.closed_at, r.accepted_at))
        elif r.status in (S.ABANDONED, S.MISSED):
            if r.status == S.ABANDONED:
                abandoned += 1
                bucket.abandoned += 1
            else:
                missed += 1
            if r.closed_at is not None:
                all_waits.append(_seconds(r.closed_at, r.joined_at))
        elif r.status in STILL_WAITING:
            waiting += 1
            all_waits.append(_seconds(now, r.joined_at))
    paid = money.paid_consultations
    return Figures(
        day=day,
        timezone=timezone,
        team_id=team_id,
        offered=len(chosen),
        answered=len(answered_waits),
        abandoned=abandoned,
        missed=missed,
        waiting=waiting,
        average_wait_seconds=_mean(answered_waits),
        longest_wait_seconds=round(max(all_waits), 1) if all_waits else None,
        average_handle_seconds=_mean(handles),
        conversion=round(paid / answered_all, 4) if answered_all else None,
        paid_consultations=paid,
        revenue=list(money.revenue),
        satisfaction=money.satisfaction,
        hours=[
            HourFigures(
                hour=h,
                offered=b.offered,
                answered=len(b.waits),
                abandoned=b.abandoned,
                average_wait_seconds=_mean(b.waits),
            )
            for h, b in hours.items()
        ],
    )


async def brand_timezone(session: AsyncSession) -> str:
    """The brand's time zone (one brand per installation), which "today" is counted in."""
    name = await session.scalar(select(Brand.timezone).order_by(Brand.created_at).limit(1))
    if not name:
        return FALLBACK_TIMEZONE
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return FALLBACK_TIMEZONE
    return name


def today(timezone: str, now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(ZoneInfo(timezone)).date()


async def team_members(session: AsyncSession, team_id: uuid.UUID) -> frozenset[uuid.UUID]:
    return frozenset((await session.scalars(select(Staff.id).where(Staff.team_id == team_id))).all())


async def figures_for_day(
    session: AsyncSession,
    *,
    day: date | None = None,
    team_id: uuid.UUID | None = None,
    timezone: str | None = None,
    now: datetime | None = None,
) -> Figures:
    """The figures of ``day`` (default: today in the brand's time zone), for one team or all."""
    now = now or utcnow()
    timezone = timezone or await brand_timezone(session)
    day = day or today(timezone, now)
    start, end = day_window(day, timezone)
    result = await session.execute(
        select(
            Consultation.status,
            Consultation.requested_at,
            Consultation.queued_at,
            Consultation.accepted_at,
            Consultation.closed_at,
            Consultation.advisor_id,
            Consultation.nominated_advisor_id,
        ).where(Consultation.requested_at >= start, Consultation.requested_at < end)
    )
    rows = [Row(*row) for row in result.all()]
    members = await team_members(session, team_id) if team_id is not None else frozenset()
    money = await sources.money_between(session, start, end)
    return compute(rows, day=day, timezone=timezone, now=now, team_id=team_id, members=members, money=money)
