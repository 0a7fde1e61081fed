"""Shop orders (web shop and physical store) with their line items."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from livedesk.models.base import Base, IdMixin, TimestampMixin, str_enum


class OrderChannel(enum.StrEnum):
    WEB = "web"
    STORE = "store"
    CALL = "call"


class ShopOrder(IdMixin, TimestampMixin, Base):
    __tablename__ = "shop_orders"

    shopper_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    # The shop's own order id: upserts by it are idempotent.
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[OrderChannel] = mapped_column(str_enum(OrderChannel, 16))
    ordered_at: Mapped[datetime]
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    store_name: Mapped[str] = mapped_column(String(200), default="")

    lines: Mapped[list[ShopOrderLine]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="ShopOrderLine.position"
    )

    __table_args__ = (Index("ix_shop_orders_shopper_time", "shopper_id", "ordered_at"),)


class ShopOrderLine(IdMixin, Base):
    __tablename__ = "shop_order_lines"

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shop_orders.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_shop_order_lines_order_id", "order_id"),
        Index("ix_shop_order_lines_sku", "sku"),
    )
