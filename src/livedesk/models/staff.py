"""Staff accounts (advisors, supervisors, admins), teams and login sessions."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from livedesk.kit.clock import utcnow
from livedesk.models.base import Base, IdMixin, JSONType, TimestampMixin, str_enum


class Role(enum.StrEnum):
    ADVISOR = "advisor"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Team(IdMixin, TimestampMixin, Base):
    __tablename__ = "teams"

    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")


class Staff(IdMixin, TimestampMixin, Base):
    """A staff account. The nomination profile (display name, photo, bio, skills, languages)
    is what shoppers see when they pick an advisor."""

    __tablename__ = "staff"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(str_enum(Role, 20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    display_name: Mapped[str] = mapped_column(String(120))
    bio: Mapped[str] = mapped_column(Text, default="")
    photo_url: Mapped[str] = mapped_column(String(500), default="")
    skills: Mapped[list[str]] = mapped_column(JSONType, default=list)
    languages: Mapped[list[str]] = mapped_column(JSONType, default=list)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    nominable: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    team: Mapped[Team | None] = relationship(lazy="raise")


class StaffSession(Base):
    """A server-side login session. Only a hash of the cookie value is stored, so a leaked
    database row cannot be replayed as a cookie."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    client_ip: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (Index("ix_staff_sessions_staff_id", "staff_id"),)
