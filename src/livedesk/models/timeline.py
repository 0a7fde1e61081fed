"""The append-only customer timeline: one row per thing that happened to a shopper."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from livedesk.kit.clock import utcnow
from livedesk.models.base import Base, IdMixin, JSONType, str_enum


class TimelineKind(enum.StrEnum):
    PROFILE_CREATED = "profile.created"
    PROFILE_MERGED = "profile.merged"
    # A guest proved an e-mail address (it became the profile's identity).
    PROFILE_VERIFIED = "profile.verified"
    CONSULTATION = "consultation"
    MESSAGE = "message"
    CALL = "call"
    RECORDING = "recording"
    SURVEY = "survey"
    BOOKING = "booking"
    PAYMENT = "payment"
    SHOP_ORDER = "shop.order"
    STORE_VISIT = "store.visit"
    # Other channels a shop reports (newsletter click, web visit …).
    CHANNEL_EVENT = "channel.event"
    NOTE = "note"


class TimelineEvent(IdMixin, Base):
    """Written in the same transaction as the fact it records; never updated in place (a
    merge re-points rows to the surviving profile, nothing else changes them)."""

    __tablename__ = "timeline_events"

    shopper_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[TimelineKind] = mapped_column(str_enum(TimelineKind, 32))
    # What a reader needs to show the row without another query.
    summary: Mapped[str] = mapped_column(String(500), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    actor_staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    consultation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("consultations.id", ondelete="SET NULL")
    )
    # The id of the fact in its own table (order id, booking id …), for opening details.
    ref_id: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # Newest-first page of one shopper = one range scan of this index.
        Index("ix_timeline_events_shopper_time", "shopper_id", "occurred_at", "id"),
    )
