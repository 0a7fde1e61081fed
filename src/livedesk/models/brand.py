"""The brand this livedesk serves (one per installation)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from livedesk.models.base import Base, IdMixin, TimestampMixin


class Brand(IdMixin, TimestampMixin, Base):
    __tablename__ = "brands"

    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="JPY")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Tokyo")
    default_locale: Mapped[str] = mapped_column(String(8), default="ja")
