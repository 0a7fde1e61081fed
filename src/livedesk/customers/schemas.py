"""Request and response models of the customers capability (they also make its OpenAPI part).

Identity fields are normalised while the body is validated, so a bad phone number or e-mail
is a 422 naming that field before any handler code runs.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, JsonValue, ValidationInfo, field_validator

from livedesk.customers.identity import (
    DEFAULT_PHONE_REGION,
    SHOP_CUSTOMER_ID_MAX,
    normalize_email,
    normalize_phone,
    normalize_region,
    normalize_shop_customer_id,
    validate_timezone,
)
from livedesk.kit.http import ApiModel
from livedesk.models import IdentityKind, TimelineKind

DEFAULT_LOCALE = "ja"
DEFAULT_TIMEZONE = "Asia/Tokyo"
# BCP 47 language tag, short form (ja, en, en-US, zh-Hant): what the UI's i18n tables key on.
LOCALE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,4})?$"
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_KEY = 64

_IDENTITY_DOC = {
    "email": "E-mail address; stored trimmed and lower-cased.",
    "phone": "Phone number in any common notation; stored as E.164.",
    "phone_region": "Country assumed for phone numbers written without +country code (ISO 3166 alpha-2).",
    "shop_customer_id": "The web shop's own customer id (1-128 characters).",
}


def _check_attributes(value: dict[str, JsonValue] | None) -> dict[str, JsonValue] | None:
    if value is None:
        return None
    if len(value) > MAX_ATTRIBUTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
    for key in value:
        if not 1 <= len(key) <= MAX_ATTRIBUTE_KEY:
            raise ValueError(f"attribute names must be 1-{MAX_ATTRIBUTE_KEY} characters")
    return value


class _IdentityFields(ApiModel):
    """Identity fields shared by create, update and resolve. ``phone_region`` is declared
    before ``phone`` so the phone validator can read it."""

    email: str | None = Field(None, max_length=320, description=_IDENTITY_DOC["email"])
    phone_region: str = Field(DEFAULT_PHONE_REGION, description=_IDENTITY_DOC["phone_region"])
    phone: str | None = Field(None, max_length=64, description=_IDENTITY_DOC["phone"])
    shop_customer_id: str | None = Field(
        None, max_length=SHOP_CUSTOMER_ID_MAX, description=_IDENTITY_DOC["shop_customer_id"]
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else normalize_email(value)

    @field_validator("phone_region")
    @classmethod
    def _region(cls, value: str) -> str:
        return normalize_region(value)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        region = info.data.get("phone_region")
        if region is None:
            # phone_region itself was refused and is reported on its own; judging the number
            # against a guessed region would only add a misleading second error.
            return value
        return normalize_phone(value, region)

    @field_validator("shop_customer_id")
    @classmethod
    def _shop_id(cls, value: str | None) -> str | None:
        return None if value is None else normalize_shop_customer_id(value)


class ShopperCreate(_IdentityFields):
    display_name: str = Field(min_length=1, max_length=200)
    locale: str = Field(DEFAULT_LOCALE, pattern=LOCALE_PATTERN, max_length=8)
    timezone: str = Field(DEFAULT_TIMEZONE, max_length=64, description="IANA time zone, e.g. Asia/Tokyo.")
    notes: str = Field("", max_length=10_000)
    attributes: dict[str, JsonValue] = Field(
        default_factory=dict, description="Free-form profile attributes (JSON values)."
    )

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return validate_timezone(value)

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        checked = _check_attributes(value)
        assert checked is not None
        return checked


class ShopperUpdate(_IdentityFields):
    """PATCH: only the fields sent change. ``email``, ``phone`` or ``shop_customer_id`` sent
    as null remove that identity; ``attributes`` is merged key by key (a key sent as null is
    removed)."""

    display_name: str | None = Field(None, min_length=1, max_length=200)
    locale: str | None = Field(None, pattern=LOCALE_PATTERN, max_length=8)
    timezone: str | None = Field(None, max_length=64)
    notes: str | None = Field(None, max_length=10_000)
    attributes: dict[str, JsonValue] | None = None

    # Validators do not run on defaults, so this only sees a null that was actually sent.
    @field_validator("display_name", "locale", "timezone", "notes", "attributes")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return validate_timezone(value)

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue] | None:
        return _check_attributes(value)


class ResolveRequest(_IdentityFields):
    display_name: str | None = Field(None, max_length=200, description="Used when a profile is created.")
    locale: str | None = Field(None, pattern=LOCALE_PATTERN, max_length=8)
    timezone: str | None = Field(None, max_length=64)
    create: bool = Field(True, description="Create a profile when no identity matches (else 404).")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return None if value is None else validate_timezone(value)


class MergeRequest(ApiModel):
    merge_id: uuid.UUID = Field(description="The profile to merge into this one; it stops being used.")


class IdentityOut(BaseModel):
    kind: IdentityKind
    value: str
    created_at: datetime


class ShopperOut(BaseModel):
    id: uuid.UUID
    display_name: str
    email: str | None
    phone: str | None
    locale: str
    timezone: str
    notes: str
    attributes: dict[str, Any]
    identities: list[IdentityOut]
    created_at: datetime
    updated_at: datetime
    merged_into: uuid.UUID | None = Field(
        None,
        description=(
            "Set when the id asked for belongs to a profile that was merged away: the profile "
            "returned (this id) is the one it was merged into."
        ),
    )
    requested_id: uuid.UUID | None = Field(
        None, description="The merged-away id that was asked for, when merged_into is set."
    )


class ResolveCandidate(BaseModel):
    shopper_id: uuid.UUID
    matched_by: list[IdentityKind]


class ResolveOut(BaseModel):
    shopper: ShopperOut
    created: bool
    matched_by: list[IdentityKind] = Field(description="Which of the given identities found this shopper.")
    attached: list[IdentityOut] = Field(description="Identities newly added to the shopper.")
    conflict: bool = Field(
        description="The identities point at different profiles; nothing was merged (see candidates)."
    )
    candidates: list[ResolveCandidate]


class MergeOut(BaseModel):
    survivor: ShopperOut
    merged_id: uuid.UUID
    merge_record_id: uuid.UUID
    moved: dict[str, int] = Field(description="Rows re-pointed to the survivor, per table.")


class TimelineEventOut(BaseModel):
    id: uuid.UUID
    shopper_id: uuid.UUID
    kind: TimelineKind
    occurred_at: datetime
    summary: str
    data: dict[str, Any]
    actor_staff_id: uuid.UUID | None
    consultation_id: uuid.UUID | None
    ref_id: str | None
    recorded_at: datetime


class TimelinePageOut(BaseModel):
    events: list[TimelineEventOut]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next (older) page; null at the end."
    )
