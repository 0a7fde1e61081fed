"""Consultations (one contact: chat and/or call) and their chat messages."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from livedesk.kit.clock import utcnow
from livedesk.models.base import Base, IdMixin, JSONType, TimestampMixin, str_enum


class ConsultationKind(enum.StrEnum):
    CHAT = "chat"
    VOICE = "voice"
    VIDEO = "video"


class ConsultationStatus(enum.StrEnum):
    REQUESTED = "requested"
    QUEUED = "queued"
    OFFERED = "offered"
    ACTIVE = "active"
    WRAP_UP = "wrap_up"
    CLOSED = "closed"
    ABANDONED = "abandoned"
    MISSED = "missed"


class Consultation(IdMixin, TimestampMixin, Base):
    __tablename__ = "consultations"

    shopper_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    kind: Mapped[ConsultationKind] = mapped_column(str_enum(ConsultationKind))
    status: Mapped[ConsultationStatus] = mapped_column(str_enum(ConsultationStatus))
    advisor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    nominated_advisor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff.id", ondelete="SET NULL")
    )
    skills: Mapped[list[str]] = mapped_column(JSONType, default=list)
    language: Mapped[str | None] = mapped_column(String(8))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    queued_at: Mapped[datetime | None]
    # The advisor the consultation is offered to right now, and until when.
    offered_to_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    offer_expires_at: Mapped[datetime | None]
    # Advisors who declined or let the offer time out: not offered again.
    passed_over: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # The shopper wants only the nominated advisor, however long that takes.
    wait_for_nominated: Mapped[bool] = mapped_column(default=False)
    accepted_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # Highest chat sequence number handed out; bumped in the same transaction as the insert.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Highest sequence whose message has its line on the shopper's timeline (the SQLite chat
    # store copies messages there just after the send; see consultations/chat_store.py).
    timeline_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Highest sequence each side has read (read receipts).
    shopper_read_seq: Mapped[int] = mapped_column(Integer, default=0)
    advisor_read_seq: Mapped[int] = mapped_column(Integer, default=0)
    notes: Mapped[str] = mapped_column(Text, default="")
    extra: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    __table_args__ = (
        Index("ix_consultations_status", "status", "queued_at"),
        Index("ix_consultations_shopper_id", "shopper_id"),
        Index("ix_consultations_advisor_id", "advisor_id", "status"),
        Index("ix_consultations_offer", "status", "offer_expires_at"),
    )


class SenderKind(enum.StrEnum):
    SHOPPER = "shopper"
    STAFF = "staff"
    SYSTEM = "system"


class MessageKind(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    FILE = "file"
    PRODUCT = "product"
    EVENT = "event"


class Message(IdMixin, Base):
    """A chat message. ``client_id`` makes a send idempotent; ``seq`` orders the consultation's
    messages and is what a reconnecting client replays from."""

    __tablename__ = "messages"

    consultation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consultations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    client_id: Mapped[str] = mapped_column(String(64))
    sender_kind: Mapped[SenderKind] = mapped_column(str_enum(SenderKind))
    sender_staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    kind: Mapped[MessageKind] = mapped_column(str_enum(MessageKind))
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("consultation_id", "seq"),
        UniqueConstraint("consultation_id", "client_id", "sender_kind"),
    )
