"""Request and response models of the catalogue (they also make its OpenAPI part).

Prices travel as integers in the currency's minor unit (``price_minor``: 1200 for ¥1,200,
1234 for $12.34); the CSV import takes the human spelling ("12.34") and converts it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from livedesk.kit import money
from livedesk.kit.http import ApiModel
from livedesk.models import Product

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"
# Site-relative (/demo/products/x.svg) or https: the pages' CSP allows no other images.
IMAGE_PATTERN = r"^(/[^\s]*|https://[^\s]+)?$"


def _currency(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return money.currency_code(value)
    except money.MoneyError as exc:
        raise ValueError(str(exc)) from None


class ProductOut(BaseModel):
    id: uuid.UUID
    sku: str
    name: str
    name_ja: str
    price_minor: int = Field(description="Price in the currency's minor unit (JPY: yen; USD: cents).")
    currency: str
    image_url: str
    page_url: str = Field(description="The product's page in the shop; empty = the shop's URL template.")
    active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: Product) -> ProductOut:
        return cls(
            id=p.id,
            sku=p.sku,
            name=p.name,
            name_ja=p.name_ja,
            price_minor=p.price_minor,
            currency=p.currency,
            image_url=p.image_url,
            page_url=p.page_url,
            active=p.active,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


class ProductCreate(ApiModel):
    sku: str = Field(pattern=SKU_PATTERN, description="Unique stock-keeping unit (letters, digits, . _ -).")
    name: str = Field(min_length=1, max_length=300)
    name_ja: str = Field("", max_length=300, description="Japanese name; empty = the name.")
    price_minor: int = Field(ge=1, le=money.MAX_MINOR, description="Price in the currency's minor unit.")
    currency: str | None = Field(None, description="ISO 4217 code; default LIVEDESK_PAYMENT_CURRENCY.")
    image_url: str = Field("", max_length=500, pattern=IMAGE_PATTERN)
    page_url: str = Field(
        "", max_length=500, pattern=IMAGE_PATTERN, description="The product's page: /path or https:// URL."
    )
    active: bool = True

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, value: str | None) -> str | None:
        return _currency(value)


class ProductUpdate(ApiModel):
    name: str | None = Field(None, min_length=1, max_length=300)
    name_ja: str | None = Field(None, max_length=300)
    price_minor: int | None = Field(None, ge=1, le=money.MAX_MINOR)
    currency: str | None = None
    image_url: str | None = Field(None, max_length=500, pattern=IMAGE_PATTERN)
    page_url: str | None = Field(None, max_length=500, pattern=IMAGE_PATTERN)
    active: bool | None = None

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, value: str | None) -> str | None:
        return _currency(value)


class ImportRowError(BaseModel):
    line: int
    field: str
    message: str


class ImportOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    products: list[ProductOut]
