"""Request and response models of the integrations capability (shop API and admin API)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, JsonValue, field_validator, model_validator

from livedesk.customers.identity import SHOP_CUSTOMER_ID_MAX
from livedesk.customers.schemas import LOCALE_PATTERN
from livedesk.customers.schemas import _IdentityFields as IdentityFields
from livedesk.kit.http import ApiModel
from livedesk.models import OrderChannel
from livedesk.outbox.webhooks import EVENT_TYPES

CURRENCY_PATTERN = r"^[A-Z]{3}$"
MAX_LINES = 200


class ShopCustomer(IdentityFields):
    """Who an order or event belongs to: the shop's customer id, and what else is known.
    E-mail and phone are normalised (and refused with a 422 naming them) while parsing."""

    shop_customer_id: str = Field(min_length=1, max_length=SHOP_CUSTOMER_ID_MAX)
    display_name: str | None = Field(None, max_length=200)
    locale: str | None = Field(None, pattern=LOCALE_PATTERN, max_length=8)


class ShopperUpsert(IdentityFields):
    display_name: str | None = Field(None, min_length=1, max_length=200)
    locale: str | None = Field(None, pattern=LOCALE_PATTERN, max_length=8)

    @field_validator("shop_customer_id")
    @classmethod
    def _no_shop_id(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("the shop customer id is the one in the path")
        return value


class OrderLineIn(ApiModel):
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=300)
    quantity: int = Field(ge=1, le=100_000)
    unit_price_minor: int = Field(ge=0, le=10**12)


class OrderUpsert(ApiModel):
    customer: ShopCustomer
    channel: OrderChannel = OrderChannel.WEB
    ordered_at: AwareDatetime
    currency: str = Field("JPY", pattern=CURRENCY_PATTERN)
    total_minor: int | None = Field(None, ge=0, le=10**13, description="Default: the sum of the lines.")
    store_name: str = Field("", max_length=200)
    lines: list[OrderLineIn] = Field(min_length=1, max_length=MAX_LINES)

    @model_validator(mode="after")
    def _total(self) -> OrderUpsert:
        if self.total_minor is None:
            self.total_minor = sum(line.quantity * line.unit_price_minor for line in self.lines)
        return self


class ChannelEventUpsert(ApiModel):
    customer: ShopCustomer
    kind: str = Field(
        "store.visit",
        pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$",
        max_length=32,
        description="store.visit, or your own dotted name (newsletter.click …).",
    )
    occurred_at: AwareDatetime
    store_name: str = Field("", max_length=200)
    description: str = Field("", max_length=500)
    data: dict[str, JsonValue] = Field(default_factory=dict)


class ShopShopperOut(BaseModel):
    shopper_id: uuid.UUID
    shop_customer_id: str
    created: bool
    changed: bool


class OrderOut(BaseModel):
    id: uuid.UUID
    external_id: str
    shopper_id: uuid.UUID
    created: bool
    changed: bool
    total_minor: int
    lines: int


class ChannelEventOut(BaseModel):
    id: uuid.UUID
    external_id: str
    shopper_id: uuid.UUID
    created: bool
    changed: bool


# --- admin ----------------------------------------------------------------------------------


class IntegrationCreate(ApiModel):
    name: str = Field(min_length=1, max_length=100)


class KeyCreate(ApiModel):
    label: str = Field("", max_length=100)


class KeyOut(BaseModel):
    id: uuid.UUID
    label: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewKeyOut(KeyOut):
    key: str = Field(description="The API key. Shown this once only; store it in the shop's settings.")


class IntegrationOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime
    keys: list[KeyOut]


class EndpointCreate(ApiModel):
    url: str = Field(min_length=8, max_length=500, pattern=r"^https?://")
    description: str = Field("", max_length=200)
    event_types: list[str] = Field(default_factory=list, description="Empty = every event type.")

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event types {unknown}; expected some of {list(EVENT_TYPES)}")
        return list(dict.fromkeys(value))


class EndpointUpdate(ApiModel):
    url: str | None = Field(None, min_length=8, max_length=500, pattern=r"^https?://")
    description: str | None = Field(None, max_length=200)
    event_types: list[str] | None = None
    active: bool | None = None

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else EndpointCreate._types(value)


class EndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    active: bool
    created_at: datetime
    previous_secret_until: datetime | None = Field(
        None, description="While a rotation's overlap lasts, the old secret signs too, until this time."
    )


class NewEndpointOut(EndpointOut):
    secret: str = Field(
        description=(
            "Signing secret (whsec_ + base64) for Livedesk-Signature and the Standard Webhooks "
            "webhook-signature; shown this once only."
        )
    )


class RotateSecret(ApiModel):
    overlap_hours: float | None = Field(
        None,
        ge=0,
        le=24 * 30,
        description=(
            "How long the old secret keeps signing beside the new one; "
            "default LIVEDESK_WEBHOOK_ROTATION_OVERLAP_HOURS; 0 = it stops at once."
        ),
    )


class AttemptOut(BaseModel):
    at: datetime
    status_code: int | None
    error: str
    duration_ms: int


class DeliveryOut(BaseModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


class DeliveryDetailOut(DeliveryOut):
    payload: dict[str, Any]
    log: list[AttemptOut]


class ImportOut(BaseModel):
    id: uuid.UUID
    kind: str
    filename: str
    status: str
    total_rows: int
    processed_rows: int
    ok_rows: int
    error_rows: int
    errors: list[dict[str, Any]]
    message: str
    created_at: datetime
    finished_at: datetime | None
