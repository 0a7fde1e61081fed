"""The product catalogue the advisor builds payment requests from."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from livedesk.models.base import Base, IdMixin, TimestampMixin


class Product(IdMixin, TimestampMixin, Base):
    __tablename__ = "products"

    # The shop's stock-keeping unit: imports upsert by it, orders and payment lines refer to it.
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    name_ja: Mapped[str] = mapped_column(String(300), default="")
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    image_url: Mapped[str] = mapped_column(String(500), default="")
    # The product's own page in the shop (a product card's link); empty = the shop's URL
    # template (LIVEDESK_PRODUCT_PAGE_URL) with the SKU.
    page_url: Mapped[str] = mapped_column(String(500), default="")
    # Withdrawn products stay (old payment requests and orders name them) but cannot be sold.
    active: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (Index("ix_products_active_name", "active", "name"),)
