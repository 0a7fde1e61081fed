"""Payloads of the recording capability: what clients send and what they are told."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from livedesk.models import ConsentDecision, ConsentPolicy, RecordingStatus
from livedesk.realtime.protocol import EventModel

# An SDP offer from a browser is a few kilobytes; the event size limit (64 KiB) bounds it too.
MAX_SDP = 60_000


class ConsentOut(BaseModel):
    participant: str
    decision: ConsentDecision
    decided_at: datetime


class GapOut(BaseModel):
    """A stretch of the joined file (ms from its start) where the participant is missing."""

    participant: str
    from_ms: int
    to_ms: int


class RecordingOut(BaseModel):
    id: uuid.UUID
    consultation_id: uuid.UUID
    shopper_id: uuid.UUID
    advisor_id: uuid.UUID | None
    status: RecordingStatus
    policy: ConsentPolicy
    with_video: bool
    requested_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    ready_at: datetime | None
    expires_at: datetime | None
    duration_ms: int | None
    size_bytes: int | None
    error: str | None
    # Ready, but a participant is missing for a while (their leg's process died, their
    # connection dropped): the gaps say where.
    incomplete: bool = False
    gaps: list[GapOut] = []
    consents: list[ConsentOut]
    media_url: str | None


class RecordingListOut(BaseModel):
    recordings: list[RecordingOut]


class StartRecording(EventModel):
    consultation_id: uuid.UUID


class RecordingRef(EventModel):
    recording_id: uuid.UUID


class ConsultationRecordingRef(EventModel):
    consultation_id: uuid.UUID


class Consent(EventModel):
    recording_id: uuid.UUID
    accept: bool


class LegOffer(EventModel):
    recording_id: uuid.UUID
    type: Literal["offer"]
    sdp: str = Field(min_length=10, max_length=MAX_SDP)


class LegAnswer(BaseModel):
    type: Literal["answer"]
    sdp: str
    participant: str
    # The process holding the call's legs (opaque): a page that reconnects compares it with
    # ``leg.placement`` and offers its leg again when the call moved (its process died).
    placement: str | None = None
