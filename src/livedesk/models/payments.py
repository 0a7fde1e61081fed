"""Payment requests made in a consultation, their lines, refunds, and the provider webhook
events already handled (exactly-once fulfilment)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from livedesk.kit.clock import utcnow
from livedesk.models.base import Base, IdMixin, JSONType, TimestampMixin, str_enum


class PaymentStatus(enum.StrEnum):
    # Sent to the shopper, not paid yet (a declined card leaves it open for another try).
    OPEN = "open"
    # The provider is still deciding (extra authentication, bank transfer …).
    PROCESSING = "processing"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CANCELED = "canceled"


class PaymentProviderName(enum.StrEnum):
    SANDBOX = "sandbox"
    STRIPE = "stripe"


class LineSource(enum.StrEnum):
    CATALOGUE = "catalogue"
    HISTORY = "history"


class RefundStatus(enum.StrEnum):
    """A refund's state as the provider reports it (Stripe's names and spelling). Only
    ``succeeded`` counts as money given back; ``pending`` holds the amount so nobody refunds it
    twice meanwhile; ``failed`` and ``canceled`` give nothing back."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class PaymentRequest(IdMixin, TimestampMixin, Base):
    __tablename__ = "payment_requests"

    consultation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consultations.id", ondelete="CASCADE"))
    shopper_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    advisor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    # The advisor's page makes one key per "send": a double click or a retry finds this row.
    client_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[PaymentStatus] = mapped_column(str_enum(PaymentStatus))
    provider: Mapped[PaymentProviderName] = mapped_column(str_enum(PaymentProviderName, 16))
    # The provider's object (Stripe PaymentIntent id, sandbox id) and what the shopper's page
    # needs to pay it (the PaymentIntent's client secret); never card data.
    provider_ref: Mapped[str | None] = mapped_column(String(128), unique=True)
    client_secret: Mapped[str | None] = mapped_column(String(256))
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_at: Mapped[datetime | None]
    # The last decline or authentication failure, for both parties to read.
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(500))
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("shop_orders.id", ondelete="SET NULL"))

    lines: Mapped[list[PaymentRequestLine]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="PaymentRequestLine.position"
    )

    __table_args__ = (
        UniqueConstraint("consultation_id", "client_key"),
        Index("ix_payment_requests_consultation", "consultation_id", "created_at"),
        Index("ix_payment_requests_paid_at", "paid_at"),
    )


class PaymentRequestLine(IdMixin, Base):
    __tablename__ = "payment_request_lines"

    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_requests.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    # The Japanese name when the catalogue has one, for a shopper reading Japanese.
    name_ja: Mapped[str] = mapped_column(String(300), default="")
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[LineSource] = mapped_column(str_enum(LineSource, 16))

    __table_args__ = (Index("ix_payment_request_lines_request_id", "request_id"),)


class PaymentRefund(IdMixin, Base):
    """One refund, as its own record with its own lifecycle (pending → succeeded, pending →
    failed or canceled, and rarely succeeded → failed). Made by staff here or at the provider
    (the Stripe dashboard); the provider's events and objects move its status."""

    __tablename__ = "payment_refunds"

    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_requests.id", ondelete="CASCADE"))
    # One key per refund the supervisor submits: resubmitting finds this row. Refunds made at
    # the provider get "provider-<refund id>".
    client_key: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[RefundStatus] = mapped_column(str_enum(RefundStatus, 16))
    # The provider's refund (Stripe ``re_…``): one row per provider refund, whoever made it.
    provider_ref: Mapped[str | None] = mapped_column(String(128), unique=True)
    reason: Mapped[str] = mapped_column(String(500), default="")
    # Stripe's failure_reason when a refund failed (expired_or_canceled_card, lost_or_stolen_card …).
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When we learnt the current status (None: still the status it was made with).
    status_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("request_id", "client_key"),
        Index("ix_payment_refunds_request_id", "request_id"),
    )


class PaymentWebhookEvent(IdMixin, Base):
    """A provider event already acted on. Inserted in the same transaction as its effect, so a
    redelivery finds it and does nothing."""

    __tablename__ = "payment_webhook_events"

    provider: Mapped[PaymentProviderName] = mapped_column(str_enum(PaymentProviderName, 16))
    event_id: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("payment_requests.id", ondelete="SET NULL")
    )
    # What the event changed ("paid", "ignored: already paid" …), for support.
    outcome: Mapped[str] = mapped_column(String(200), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("provider", "event_id"),)


class BookingPaymentStatus(enum.StrEnum):
    # Waiting for the shopper to pay (a declined card leaves it open for another try).
    OPEN = "open"
    # Authorised, not captured (a "hold" type): the money is reserved on the card.
    HELD = "held"
    PAID = "paid"
    # What happened after: a hold given back, a payment refunded, or the booking lapsed first.
    RELEASED = "released"
    REFUNDED = "refunded"
    CANCELED = "canceled"


class BookingPayment(IdMixin, TimestampMixin, Base):
    """The deposit or price of one booking, taken (or held) when the booking is made. The
    booking is confirmed once it is paid or held; what happens to the money when the booking
    is cancelled, missed or attended follows the type's capture mode (see payments/deposits.py)."""

    __tablename__ = "booking_payments"

    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"), unique=True)
    shopper_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    # "deposit" or "price": which of the type's amounts this is.
    purpose: Mapped[str] = mapped_column(String(10))
    # "charge" or "hold" (the type's payment_capture when the booking was made).
    capture: Mapped[str] = mapped_column(String(10))
    status: Mapped[BookingPaymentStatus] = mapped_column(str_enum(BookingPaymentStatus, 16))
    provider: Mapped[PaymentProviderName] = mapped_column(str_enum(PaymentProviderName, 16))
    provider_ref: Mapped[str | None] = mapped_column(String(128), unique=True)
    client_secret: Mapped[str | None] = mapped_column(String(256))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    # What was finally kept (captured or not refunded), once settled.
    kept_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_at: Mapped[datetime | None]
    settled_at: Mapped[datetime | None]
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(500))
