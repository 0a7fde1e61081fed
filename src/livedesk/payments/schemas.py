"""Request and response models of payments (they also make its OpenAPI part).

Amounts are integers in the currency's minor unit (JPY: yen, USD: cents); ``total_text`` is
the same amount spelled for reading ("¥12,000", "$12.34").
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from livedesk.kit import money
from livedesk.kit.http import ApiModel
from livedesk.models import (
    LineSource,
    PaymentProviderName,
    PaymentRefund,
    PaymentRequest,
    PaymentRequestLine,
    PaymentStatus,
    RefundStatus,
)

KEY_PATTERN = r"^[A-Za-z0-9_\-]{8,64}$"
MAX_LINES = 50
MAX_QUANTITY = 99


class LineIn(ApiModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(1, ge=1, le=MAX_QUANTITY)
    source: LineSource = Field(
        LineSource.CATALOGUE,
        description="catalogue: priced from the catalogue; history: from the shopper's past purchase of it.",
    )


class PaymentRequestCreate(ApiModel):
    client_key: str = Field(
        pattern=KEY_PATTERN,
        description="Made once per 'send' by the advisor's page: sending it again returns the same request.",
    )
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)


class RefundCreate(ApiModel):
    client_key: str = Field(pattern=KEY_PATTERN, description="One per refund: resubmitting it refunds once.")
    amount_minor: int | None = Field(
        None, ge=1, le=money.MAX_MINOR, description="Minor units; empty = everything not yet refunded."
    )
    reason: str = Field("", max_length=500)


class SandboxAction(ApiModel):
    action: Literal["pay", "decline", "require_authentication", "authenticate", "fail_authentication"] = (
        Field(
            description="What the test-mode card does: pay, be declined, or ask for extra authentication "
            "(then authenticate or fail_authentication)."
        )
    )


class LineOut(BaseModel):
    sku: str
    name: str
    name_ja: str
    quantity: int
    unit_price_minor: int
    amount_minor: int
    source: LineSource

    @classmethod
    def of(cls, line: PaymentRequestLine) -> LineOut:
        return cls(
            sku=line.sku,
            name=line.name,
            name_ja=line.name_ja,
            quantity=line.quantity,
            unit_price_minor=line.unit_price_minor,
            amount_minor=line.unit_price_minor * line.quantity,
            source=line.source,
        )


class RefundOut(BaseModel):
    """One refund and where it is: pending (the provider is deciding; its amount is held),
    succeeded (given back), failed or canceled (nothing given back)."""

    id: uuid.UUID
    amount_minor: int
    status: RefundStatus
    reason: str
    failure_reason: str | None = Field(None, description="The provider's reason when it failed.")
    provider_ref: str | None = Field(None, description="The provider's refund (Stripe re_…).")
    staff_id: uuid.UUID | None = Field(description="Who refunded here (None: made at the provider).")
    created_at: datetime
    status_at: datetime | None = Field(None, description="When the current status was learnt.")

    @classmethod
    def of(cls, refund: PaymentRefund) -> RefundOut:
        return cls(
            id=refund.id,
            amount_minor=refund.amount_minor,
            status=refund.status,
            reason=refund.reason,
            failure_reason=refund.failure_reason,
            provider_ref=refund.provider_ref,
            staff_id=refund.staff_id,
            created_at=refund.created_at,
            status_at=refund.status_at,
        )


class PaymentRequestOut(BaseModel):
    id: uuid.UUID
    consultation_id: uuid.UUID
    shopper_id: uuid.UUID
    advisor_id: uuid.UUID | None
    status: PaymentStatus
    provider: PaymentProviderName
    test_mode: bool
    currency: str
    total_minor: int
    total_text: str
    refunded_minor: int
    lines: list[LineOut]
    refunds: list[RefundOut] = Field(default_factory=list)
    failure_code: str | None
    failure_message: str | None
    order_id: uuid.UUID | None
    order_number: str | None = Field(
        None, description="The order a paid request became, as the shopper's receipt shows it."
    )
    paid_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(
        cls,
        r: PaymentRequest,
        *,
        test_mode: bool,
        refunds: list[PaymentRefund] | None = None,
        order_number: str | None = None,
    ) -> PaymentRequestOut:
        return cls(
            id=r.id,
            consultation_id=r.consultation_id,
            shopper_id=r.shopper_id,
            advisor_id=r.advisor_id,
            status=r.status,
            provider=r.provider,
            test_mode=test_mode or r.provider == PaymentProviderName.SANDBOX,
            currency=r.currency,
            total_minor=r.total_minor,
            total_text=money.format_money(r.total_minor, r.currency),
            refunded_minor=r.refunded_minor,
            lines=[LineOut.of(line) for line in r.lines],
            refunds=[RefundOut.of(x) for x in refunds or []],
            failure_code=r.failure_code,
            failure_message=r.failure_message,
            order_id=r.order_id,
            order_number=order_number,
            paid_at=r.paid_at,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )


class PaymentOverviewOut(PaymentRequestOut):
    """A payment request as the payments and refunds page lists it: who paid and who sold."""

    shopper_name: str = Field(description="The shopper's display name (may be empty).")
    shopper_email: str | None
    advisor_name: str | None


class CheckoutOut(BaseModel):
    """What the shopper's payment sheet needs: never card data, only the provider's handle."""

    request: PaymentRequestOut
    provider: PaymentProviderName
    test_mode: bool
    publishable_key: str = Field(description="Stripe publishable key (empty for the sandbox).")
    client_secret: str | None = Field(description="The PaymentIntent's client secret for confirmPayment.")


class PurchasableItem(BaseModel):
    sku: str
    name: str
    name_ja: str
    unit_price_minor: int
    currency: str
    image_url: str
    source: LineSource
    last_bought_at: datetime | None = None
    times_bought: int = 0


class PurchasablesOut(BaseModel):
    """What the advisor can put in a payment request for this consultation."""

    catalogue: list[PurchasableItem]
    history: list[PurchasableItem]
    provider: PaymentProviderName = Field(description="Who takes the payment: stripe, or the sandbox.")
    test_mode: bool = Field(description="True when no real money moves (the sandbox, or Stripe test keys).")


class RevenueOut(BaseModel):
    currency: str
    amount_minor: int
    paid_consultations: int


class WebhookAnswer(BaseModel):
    received: bool
    duplicate: bool = False
    outcome: str = ""
