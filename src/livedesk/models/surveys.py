"""Surveys: admin-defined intake forms (versioned), what shoppers answered, which survey is
shown where, and the post-call satisfaction survey with its mail invitations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from livedesk.kit.clock import utcnow
from livedesk.models.base import Base, IdMixin, JSONType, TimestampMixin


class Survey(IdMixin, TimestampMixin, Base):
    """A survey's identity. Its content lives in versions: an edit writes a new version, so
    answers always point at the exact questions they answered."""

    __tablename__ = "surveys"

    name: Mapped[str] = mapped_column(String(120))
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    archived: Mapped[bool] = mapped_column(default=False)


class SurveyVersion(IdMixin, Base):
    """One immutable edition of a survey: titles and questions in Japanese and English."""

    __tablename__ = "survey_versions"

    survey_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    description: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("survey_id", "version"),)


class SurveyAssignment(Base):
    """Which survey is shown before what: ``target`` is "instant" (talk now) or a
    consultation type id. Stored without a foreign key so booking's table stays theirs."""

    __tablename__ = "survey_assignments"

    target: Mapped[str] = mapped_column(String(64), primary_key=True)
    survey_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SurveyResponse(IdMixin, Base):
    """A shopper's answers to one survey version. The answers never change after submission;
    only the link to the consultation it led to is filled in once."""

    __tablename__ = "survey_responses"

    survey_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    survey_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("survey_versions.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    shopper_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    consultation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("consultations.id", ondelete="SET NULL")
    )
    booking_id: Mapped[uuid.UUID | None]
    answers: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    routing: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_survey_responses_shopper_id", "shopper_id"),
        Index("ix_survey_responses_consultation_id", "consultation_id"),
        Index("ix_survey_responses_booking_id", "booking_id"),
    )


class SatisfactionResponse(IdMixin, Base):
    """The post-call survey: one per consultation (the unique key is what makes it once)."""

    __tablename__ = "satisfaction_responses"

    consultation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consultations.id", ondelete="CASCADE"))
    shopper_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    advisor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    csat: Mapped[int] = mapped_column(SmallInteger)
    nps: Mapped[int | None] = mapped_column(SmallInteger)
    comment: Mapped[str] = mapped_column(Text, default="")
    # "call" (the page after hang-up) or "mail" (the link sent after a booked consultation).
    source: Mapped[str] = mapped_column(String(16))
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("consultation_id"),
        Index("ix_satisfaction_responses_submitted_at", "submitted_at"),
    )


class SatisfactionInvitation(Base):
    """The post-call survey mail of a booked consultation: one row per consultation, written
    with the close, sent by a background job that claims it, so it goes out exactly once."""

    __tablename__ = "satisfaction_invitations"

    consultation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("consultations.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(8), default="ja")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when a sender claims it; cleared again if the delivery fails (retried later).
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
