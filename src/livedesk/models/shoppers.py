"""Shoppers (customer profiles), the identities that find them, and merges."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from livedesk.kit.clock import utcnow
from livedesk.models.base import Base, IdMixin, JSONType, TimestampMixin, str_enum


class IdentityKind(enum.StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    SHOP_CUSTOMER_ID = "shop_customer_id"


class Shopper(IdMixin, TimestampMixin, Base):
    """One person across every channel. A merged-away profile keeps its row, pointing at the
    profile it was merged into, so old links still resolve."""

    __tablename__ = "shoppers"

    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(8), default="ja")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Tokyo")
    notes: Mapped[str] = mapped_column(Text, default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("shoppers.id", ondelete="SET NULL"))

    __table_args__ = (Index("ix_shoppers_display_name", "display_name"),)


class ShopperIdentity(IdMixin, Base):
    """A normalised e-mail, phone number or shop customer id; unique across all shoppers,
    which is what makes identity resolution a single lookup."""

    __tablename__ = "shopper_identities"

    shopper_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    kind: Mapped[IdentityKind] = mapped_column(str_enum(IdentityKind, 20))
    value: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("kind", "value"),
        Index("ix_shopper_identities_shopper_id", "shopper_id"),
    )


class ShopperMerge(IdMixin, Base):
    """The record that two profiles turned out to be one person."""

    __tablename__ = "shopper_merges"

    survivor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    merged_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    merged_by_staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
