"""What the supervisor board reads: the snapshot, the figures of a day, alerts."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, WithJsonSchema

from livedesk.kit.http import openapi_nullable
from livedesk.models import ConsultationKind, ConsultationStatus, PresenceStatus
from livedesk.realtime.protocol import EventModel


class _Out(BaseModel):
    """Answers: ``X | None`` written the OpenAPI 3.0 way (see ``openapi_nullable``)."""

    model_config = ConfigDict(json_schema_extra=openapi_nullable)


# Query parameters of the REST route, nullable the OpenAPI 3.0 way.
DayQuery = Annotated[date | None, WithJsonSchema({"type": "string", "format": "date", "nullable": True})]
TeamQuery = Annotated[
    uuid.UUID | None, WithJsonSchema({"type": "string", "format": "uuid", "nullable": True})
]


class BoardQuery(EventModel):
    """``board.snapshot``: the whole board (the team filter is applied by the page)."""


class FiguresQuery(EventModel):
    """``board.figures``: one day's figures (today in the brand's time zone by default),
    optionally for one team."""

    team_id: uuid.UUID | None = None
    day: date | None = None
    # The server's time of the last change the page heard of: figures that may predate it are
    # not shared with this page (see supervision/cache.py).
    fresh_after: datetime | None = None


class BoardTeam(_Out):
    id: uuid.UUID
    name: str


class BoardConsultation(_Out):
    """An open consultation as the board shows it: no shopper's name or chat, only what a
    wall screen may show."""

    id: uuid.UUID
    kind: ConsultationKind
    status: ConsultationStatus
    advisor_id: uuid.UUID | None
    offered_to_id: uuid.UUID | None
    nominated_advisor_id: uuid.UUID | None
    wait_for_nominated: bool
    skills: list[str]
    language: str | None
    requested_at: datetime
    queued_at: datetime | None
    accepted_at: datetime | None
    ended_at: datetime | None


class BoardAdvisor(_Out):
    staff_id: uuid.UUID
    display_name: str
    # The name on English pages (the nomination profile's), else display_name.
    display_name_en: str
    team_id: uuid.UUID | None
    status: PresenceStatus
    # When the current state began; None for an advisor who has never signed in.
    since: datetime | None


class Alert(_Out):
    kind: Literal["long_wait", "long_call"]
    consultation_id: uuid.UUID
    advisor_id: uuid.UUID | None
    # When the wait or the call began, and how long it has lasted at ``generated_at``.
    started_at: datetime
    seconds: int


class Thresholds(_Out):
    long_wait_seconds: int
    long_call_seconds: int


class RevenueLine(_Out):
    currency: str
    amount_minor: int
    paid_consultations: int


class Satisfaction(_Out):
    responses: int
    average_csat: float | None
    average_nps: float | None


class HourFigures(_Out):
    """One hour of the day (local time): how many were offered, answered, abandoned."""

    hour: int
    offered: int
    answered: int
    abandoned: int
    average_wait_seconds: float | None


class Figures(_Out):
    """One day's figures. Waits run from joining the queue to being answered (or leaving);
    handle time from being answered to being closed (talk and wrap-up)."""

    day: date
    timezone: str
    team_id: uuid.UUID | None
    offered: int
    answered: int
    abandoned: int
    missed: int
    waiting: int
    average_wait_seconds: float | None
    longest_wait_seconds: float | None
    average_handle_seconds: float | None
    # paid consultations / answered consultations, 0..1; None when nothing was answered.
    conversion: float | None
    paid_consultations: int
    revenue: list[RevenueLine]
    satisfaction: Satisfaction | None
    hours: list[HourFigures]


class BoardSnapshot(_Out):
    generated_at: datetime
    timezone: str
    # The brand's currency: revenue is shown in it when nothing was paid yet.
    currency: str
    thresholds: Thresholds
    teams: list[BoardTeam]
    advisors: list[BoardAdvisor]
    # Open consultations: waiting (queued, offered) and in progress (active, wrap-up).
    consultations: list[BoardConsultation]
    alerts: list[Alert]
    figures: Figures
