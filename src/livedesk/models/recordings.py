"""Call recordings: the recording, each participant's consent, and the per-participant parts
the server leg wrote before they were joined into one file."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from livedesk.kit.clock import utcnow
from livedesk.models.base import Base, IdMixin, str_enum


class RecordingStatus(enum.StrEnum):
    AWAITING_CONSENT = "awaiting_consent"  # asked; nothing is recorded yet
    RECORDING = "recording"  # the legs are (or may be) writing
    PROCESSING = "processing"  # stopped; the parts are being joined
    READY = "ready"  # one playable file
    REFUSED = "refused"  # a participant said no: nothing was (or is any longer) kept
    FAILED = "failed"  # stopped, but no media arrived or joining failed
    DELETING = "deleting"  # claimed by the retention job (exactly once across processes)


class ConsentPolicy(enum.StrEnum):
    ASK = "ask"  # every participant is asked and must accept before anything is recorded
    ANNOUNCE = "announce"  # participants are told; recording starts at once; a refusal stops it


class ConsentDecision(enum.StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    ANNOUNCED = "announced"  # told under the announce policy, did not object (yet)


class Recording(IdMixin, Base):
    __tablename__ = "recordings"

    consultation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consultations.id", ondelete="CASCADE"))
    shopper_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    advisor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    status: Mapped[RecordingStatus] = mapped_column(str_enum(RecordingStatus, 20))
    policy: Mapped[ConsentPolicy] = mapped_column(str_enum(ConsentPolicy, 12))
    with_video: Mapped[bool] = mapped_column(default=True)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    stopped_at: Mapped[datetime | None] = mapped_column()
    ready_at: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    storage_key: Mapped[str | None] = mapped_column(String(300))
    error: Mapped[str | None] = mapped_column(String(300))
    # Set by the process that joins the parts (a claim, so only one does; a stale claim of a
    # process that died is taken over).
    joining_since: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_recordings_consultation_id", "consultation_id"),
        Index("ix_recordings_shopper_id", "shopper_id"),
        Index("ix_recordings_status_expires", "status", "expires_at"),
    )


class RecordingConsent(IdMixin, Base):
    __tablename__ = "recording_consents"

    recording_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    participant: Mapped[str] = mapped_column(String(16))  # "shopper" or "advisor"
    staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    decision: Mapped[ConsentDecision] = mapped_column(str_enum(ConsentDecision, 12))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_recording_consents_recording_id", "recording_id"),)


class RecordingPart(IdMixin, Base):
    """One participant's file from one leg (a reload mid-recording makes a second part). The
    row exists from the moment the leg is answered (``stored`` false), so whichever process
    joins the parts knows to wait for a leg that another process still holds."""

    __tablename__ = "recording_parts"

    recording_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    participant: Mapped[str] = mapped_column(String(16))
    storage_key: Mapped[str] = mapped_column(String(300))
    # Wall-clock time of the part's first frame: how the parts line up in the joined file.
    started_at: Mapped[datetime] = mapped_column()
    duration_ms: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    video_frames: Mapped[int] = mapped_column(Integer)
    audio_frames: Mapped[int] = mapped_column(Integer)
    stored: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_recording_parts_recording_id", "recording_id"),)
