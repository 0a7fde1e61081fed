"""Shop integrations: API keys, outgoing webhooks (outbox + delivery log), channel events
such as store visits, bulk imports, and the search terms that find a shopper."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from livedesk.kit.clock import utcnow
from livedesk.models.base import Base, IdMixin, JSONType, str_enum


class Integration(IdMixin, Base):
    """One connected system (the web shop, the store POS …); its keys are scoped to it."""

    __tablename__ = "integrations"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))


class IntegrationKey(IdMixin, Base):
    """An API key: only its SHA-256 is stored; the key itself is shown once at creation.
    ``prefix`` (the first characters) lets an admin tell keys apart."""

    __tablename__ = "integration_keys"

    integration_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(100), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_integration_keys_integration_id", "integration_id"),)


class WebhookEndpoint(IdMixin, Base):
    """A URL that receives signed events of the types it subscribed to."""

    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(String(200), default="")
    # Signs every delivery (HMAC-SHA256); the receiver holds the same value, so it is kept
    # as is rather than hashed.
    secret: Mapped[str] = mapped_column(String(100))
    # A rotation keeps the old secret signing too until ``previous_secret_until`` (the overlap
    # window), so receivers can switch without refusing a delivery.
    previous_secret: Mapped[str] = mapped_column(String(100), default="", server_default="")
    previous_secret_until: Mapped[datetime | None]
    event_types: Mapped[list[str]] = mapped_column(JSONType, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookDelivery(IdMixin, Base):
    """The outbox: one row per event and subscribed endpoint, written in the transaction of
    the fact. The delivery job claims due rows (a lease in ``locked_until``), posts them and
    records each attempt."""

    __tablename__ = "webhook_deliveries"

    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    # Shared by the rows of one event across endpoints; receivers de-duplicate on it.
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus, 16), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
    )


class WebhookAttempt(IdMixin, Base):
    """One try at delivering: the delivery log admins read."""

    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    error: Mapped[str] = mapped_column(String(500), default="")
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_webhook_attempts_delivery_id", "delivery_id", "at"),)


class ChannelEvent(IdMixin, Base):
    """Something that happened to a shopper in another channel (a store visit, a newsletter
    click …), stored once per the shop's own event id."""

    __tablename__ = "channel_events"

    shopper_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    integration_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="SET NULL")
    )
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    store_name: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(String(500), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    __table_args__ = (Index("ix_channel_events_shopper_time", "shopper_id", "occurred_at"),)


class ImportStatus(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportJob(IdMixin, Base):
    """A CSV bulk load. ``next_line`` is committed with each batch, so an interrupted import
    resumes where it stopped; ``errors`` lists refused rows by line."""

    __tablename__ = "import_jobs"

    kind: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(300), default="")
    content_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[ImportStatus] = mapped_column(str_enum(ImportStatus, 16), default=ImportStatus.RUNNING)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    next_line: Mapped[int] = mapped_column(Integer, default=2)
    ok_rows: Mapped[int] = mapped_column(Integer, default=0)
    error_rows: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    message: Mapped[str] = mapped_column(Text, default="")
    created_by_staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (Index("ix_import_jobs_sha", "content_sha256", "kind"),)


class ShopperSearchTerm(IdMixin, Base):
    """Normalised words that find a shopper (name parts, e-mail, phone digits, shop ids);
    a prefix search is a range scan of ``ix_shopper_search_terms_term`` on any database."""

    __tablename__ = "shopper_search_terms"

    shopper_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    term: Mapped[str] = mapped_column(String(254))

    __table_args__ = (
        Index("ix_shopper_search_terms_term", "term", "shopper_id"),
        Index("ix_shopper_search_terms_shopper_id", "shopper_id"),
    )
