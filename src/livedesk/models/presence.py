"""Advisor presence and the live connections behind it, kept in the database so every
process (and every supervisor) sees the same state, and it survives restarts."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from livedesk.kit.clock import utcnow
from livedesk.models.base import Base, str_enum


class PresenceStatus(enum.StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"
    OFFLINE = "offline"


class AdvisorPresence(Base):
    """``chosen`` is what the advisor picked (available or away); ``status`` is what is true
    now — offline with no open tab, busy during a call — and ``since`` when it began."""

    __tablename__ = "advisor_presence"

    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    chosen: Mapped[PresenceStatus] = mapped_column(
        str_enum(PresenceStatus, 16), default=PresenceStatus.AVAILABLE
    )
    status: Mapped[PresenceStatus] = mapped_column(
        str_enum(PresenceStatus, 16), default=PresenceStatus.OFFLINE
    )
    since: Mapped[datetime] = mapped_column(default=utcnow)
    # When the advisor last became free: routing offers to the longest idle first.
    idle_since: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_advisor_presence_status", "status", "idle_since"),)


class AppProcess(Base):
    """One running livedesk process; its heartbeat tells the others it still owns its sockets."""

    __tablename__ = "app_processes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffConnection(Base):
    """One open staff socket (a browser tab). An advisor is online while any row exists."""

    __tablename__ = "staff_connections"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    process_id: Mapped[str] = mapped_column(String(64))
    connected_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_staff_connections_staff_id", "staff_id"),
        Index("ix_staff_connections_process_id", "process_id"),
    )


class ShopperConnection(Base):
    """One open shopper socket. A shopper waiting in the queue with none left (after a grace
    period for reloads) has gone: their place is given up rather than offered to an advisor."""

    __tablename__ = "shopper_connections"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    shopper_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    process_id: Mapped[str] = mapped_column(String(64))
    connected_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_shopper_connections_shopper_id", "shopper_id"),
        Index("ix_shopper_connections_process_id", "process_id"),
    )
