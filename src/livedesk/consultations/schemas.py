"""Payloads of the consultation events and the consultation as parties see it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from livedesk.models import Consultation, ConsultationKind, ConsultationStatus
from livedesk.realtime.protocol import EventModel
from livedesk.surveys.schemas import RoutingHints

Skill = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")


class QueueJoin(EventModel):
    kind: ConsultationKind = ConsultationKind.VIDEO
    nominated_advisor_id: uuid.UUID | None = None
    # What to do when the nominated advisor cannot take the call now: "ask" answers with
    # the error code nominated_unavailable so the page can ask the shopper.
    if_nominated_unavailable: Literal["ask", "wait", "anyone"] = "ask"
    skills: list[str] = Field(default_factory=list, max_length=10)
    language: str | None = Field(None, pattern=r"^[a-z]{2}$")
    # The shopper's answers to the pre-call survey (POST /api/v1/intake-responses): they add
    # skills, teams and language to routing, and the advisor sees them in the offer.
    survey_response_id: uuid.UUID | None = None

    def with_hints(self, hints: RoutingHints) -> QueueJoin:
        """The queue request with what the intake answers ask of routing: their skills added,
        and their language (an answer is more specific than the page's language)."""
        skills = list(dict.fromkeys([*self.skills, *hints.skills]))[:10]
        return self.model_copy(update={"skills": skills, "language": hints.language or self.language})


class ConsultationRef(EventModel):
    consultation_id: uuid.UUID


class QueueUpdate(EventModel):
    consultation_id: uuid.UUID
    wait_for_nominated: bool


class CloseConsultation(EventModel):
    consultation_id: uuid.UUID
    notes: str = Field("", max_length=10_000)


class Escalate(EventModel):
    consultation_id: uuid.UUID
    kind: Literal["voice", "video"]


class ConsultationOut(BaseModel):
    id: uuid.UUID
    shopper_id: uuid.UUID
    kind: ConsultationKind
    status: ConsultationStatus
    advisor_id: uuid.UUID | None
    nominated_advisor_id: uuid.UUID | None
    wait_for_nominated: bool
    skills: list[str]
    language: str | None
    requested_at: datetime
    queued_at: datetime | None
    offer_expires_at: datetime | None
    accepted_at: datetime | None
    ended_at: datetime | None
    closed_at: datetime | None
    last_seq: int
    shopper_read_seq: int
    advisor_read_seq: int
    # Set when the consultation is a booked call (see booking/joining.py).
    booking_id: uuid.UUID | None = None
    # The pre-call survey answers, readable (surveys.schemas.IntakeShown), when there are some.
    intake: dict[str, Any] | None = None

    @classmethod
    def of(cls, c: Consultation) -> ConsultationOut:
        return cls(
            id=c.id,
            shopper_id=c.shopper_id,
            kind=c.kind,
            status=c.status,
            advisor_id=c.advisor_id,
            nominated_advisor_id=c.nominated_advisor_id,
            wait_for_nominated=c.wait_for_nominated,
            skills=list(c.skills),
            language=c.language,
            requested_at=c.requested_at,
            queued_at=c.queued_at,
            offer_expires_at=c.offer_expires_at,
            accepted_at=c.accepted_at,
            ended_at=c.ended_at,
            closed_at=c.closed_at,
            last_seq=c.last_seq,
            shopper_read_seq=c.shopper_read_seq,
            advisor_read_seq=c.advisor_read_seq,
            booking_id=c.extra.get("booking_id") if c.extra else None,
            intake=c.extra.get("intake"),
        )


class QueuePosition(BaseModel):
    consultation_id: uuid.UUID
    position: int
    estimated_wait_seconds: int
    advisors_online: int
