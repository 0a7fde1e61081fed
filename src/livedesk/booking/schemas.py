"""Request and response bodies of the booking API (they also write its OpenAPI document)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from livedesk.customers.identity import normalize_region
from livedesk.kit.http import ApiModel as _BaseApiModel
from livedesk.kit.http import openapi_nullable


class ApiModel(_BaseApiModel):
    """Request bodies: ``X | None`` written the OpenAPI 3.0 way (see ``openapi_nullable``)."""

    model_config = ConfigDict(json_schema_extra=openapi_nullable)


class OutModel(BaseModel):
    """Responses: the same OpenAPI 3.0 nullables."""

    model_config = ConfigDict(json_schema_extra=openapi_nullable)


_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
MAX_SEARCH_DAYS = 62


def minutes_of(text: str) -> int:
    """ "09:30" → 570; "24:00" (end of day) → 1440."""
    if not _HHMM.match(text):
        raise ValueError(f"{text!r} is not a time of day HH:MM (00:00–24:00)")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# ---------------------------------------------------------------- consultation types


def check_skills(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    for skill in value:
        if not re.match(r"^[a-z0-9][a-z0-9_-]{0,39}$", skill):
            raise ValueError(f"{skill!r} is not a skill name (lower-case letters, digits, - and _)")
    return sorted(set(value))


def check_languages(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    for lang in value:
        if not re.match(r"^[a-z]{2}$", lang):
            raise ValueError(f"{lang!r} is not a two-letter language code")
    return sorted(set(value))


class _TypeFields(ApiModel):
    @model_validator(mode="after")
    def _money(self) -> _TypeFields:
        price = getattr(self, "price_amount", None)
        deposit = getattr(self, "deposit_amount", None)
        if price is not None and deposit is not None and deposit > price:
            raise ValueError("the deposit cannot be more than the price")
        return self


class ConsultationTypeCreate(_TypeFields):
    name: str = Field(min_length=1, max_length=120)
    name_en: str = Field("", max_length=120)
    description: str = Field("", max_length=2000)
    description_en: str = Field("", max_length=2000)
    kind: Literal["video", "voice"] = "video"
    duration_minutes: int = Field(ge=5, le=480)
    buffer_before_minutes: int = Field(0, ge=0, le=240)
    buffer_after_minutes: int = Field(0, ge=0, le=240)
    required_skills: list[str] = Field(default_factory=list, max_length=10)
    languages: list[str] = Field(default_factory=list, max_length=10)
    min_notice_minutes: int = Field(120, ge=0, le=60 * 24 * 30)
    horizon_days: int = Field(60, ge=1, le=365)
    price_amount: int | None = Field(None, ge=0, le=100_000_000)
    deposit_amount: int | None = Field(None, ge=0, le=100_000_000)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    payment_capture: Literal["charge", "hold"] = Field(
        "charge",
        description="How the deposit (else the price) is taken at booking: charge = at once (refunded on "
        "cancel); hold = authorised only (released on cancel, captured on a no-show).",
    )
    active: bool = True
    position: int = Field(0, ge=0, le=10_000)

    _skills = field_validator("required_skills")(check_skills)
    _languages = field_validator("languages")(check_languages)


class ConsultationTypeUpdate(_TypeFields):
    name: str | None = Field(None, min_length=1, max_length=120)
    name_en: str | None = Field(None, max_length=120)
    description: str | None = Field(None, max_length=2000)
    description_en: str | None = Field(None, max_length=2000)
    kind: Literal["video", "voice"] | None = None
    duration_minutes: int | None = Field(None, ge=5, le=480)
    buffer_before_minutes: int | None = Field(None, ge=0, le=240)
    buffer_after_minutes: int | None = Field(None, ge=0, le=240)
    required_skills: list[str] | None = Field(None, max_length=10)
    languages: list[str] | None = Field(None, max_length=10)
    min_notice_minutes: int | None = Field(None, ge=0, le=60 * 24 * 30)
    horizon_days: int | None = Field(None, ge=1, le=365)
    price_amount: int | None = Field(None, ge=0, le=100_000_000)
    deposit_amount: int | None = Field(None, ge=0, le=100_000_000)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    payment_capture: Literal["charge", "hold"] | None = None
    active: bool | None = None
    position: int | None = Field(None, ge=0, le=10_000)

    _skills = field_validator("required_skills")(check_skills)
    _languages = field_validator("languages")(check_languages)


class ConsultationTypeOut(OutModel):
    id: uuid.UUID
    name: str
    name_en: str
    description: str
    description_en: str
    kind: str
    duration_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    required_skills: list[str]
    languages: list[str]
    min_notice_minutes: int
    horizon_days: int
    price_amount: int | None
    deposit_amount: int | None
    currency: str | None
    payment_capture: str
    active: bool
    position: int

    model_config = ConfigDict(from_attributes=True, json_schema_extra=openapi_nullable)


class ConsultationTypeList(OutModel):
    types: list[ConsultationTypeOut]


class BookingAdvisor(OutModel):
    id: uuid.UUID
    display_name: str
    display_name_en: str
    photo_url: str
    bio: str
    bio_en: str
    languages: list[str]


class BookingAdvisorList(OutModel):
    advisors: list[BookingAdvisor]


class TypeRef(ApiModel):
    type_id: uuid.UUID


# ---------------------------------------------------------------- availability


class WeeklySpanIn(ApiModel):
    weekday: int = Field(ge=0, le=6, description="0 = Monday … 6 = Sunday")
    start: str = Field(description="HH:MM, advisor's local time")
    end: str = Field(description="HH:MM (24:00 = midnight), after start")

    @model_validator(mode="after")
    def _order(self) -> WeeklySpanIn:
        if minutes_of(self.end) <= minutes_of(self.start):
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self


class ExceptionIn(ApiModel):
    day: date
    kind: Literal["off", "extra"]
    start: str | None = None
    end: str | None = None

    @model_validator(mode="after")
    def _times(self) -> ExceptionIn:
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end, or neither (a whole day off)")
        if self.start is None:
            if self.kind == "extra":
                raise ValueError("extra hours need a start and an end")
            return self
        assert self.end is not None
        if minutes_of(self.end) <= minutes_of(self.start):
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self


class AvailabilityIn(ApiModel):
    timezone: str = Field(min_length=1, max_length=64)
    weekly: list[WeeklySpanIn] = Field(default_factory=list, max_length=100)
    exceptions: list[ExceptionIn] = Field(default_factory=list, max_length=400)


class WeeklySpanOut(OutModel):
    weekday: int
    start: str
    end: str


class ExceptionOut(OutModel):
    day: date
    kind: str
    start: str | None
    end: str | None


class AvailabilityOut(OutModel):
    staff_id: uuid.UUID
    timezone: str
    weekly: list[WeeklySpanOut]
    exceptions: list[ExceptionOut]


# ---------------------------------------------------------------- slots


class SlotQuery(ApiModel):
    type_id: uuid.UUID
    advisor: str = Field("any", description='an advisor id, or "any"')
    start: date = Field(description="first day, in the shopper's time zone")
    end: date = Field(description="last day (inclusive), in the shopper's time zone")
    timezone: str = Field(min_length=1, max_length=64, description="the shopper's IANA time zone")


class Slot(OutModel):
    start: datetime
    end: datetime
    date: date
    time: str


class SlotList(OutModel):
    type_id: uuid.UUID
    advisor: str
    timezone: str
    step_minutes: int
    slots: list[Slot]


# ---------------------------------------------------------------- bookings


# A contact name goes into mails to the address typed beside it: a name that carries a link or
# extra lines would turn the booking form into a way to mail strangers any text.
_LINKISH = re.compile(r"(https?:|www\.|://|[a-z0-9-]+\.(com|net|org|jp|io|info|xyz|ru|cn|top|biz)\b)", re.I)


class Contact(ApiModel):
    name: str = Field("", max_length=100)
    email: str = Field(min_length=3, max_length=254)
    phone: str | None = Field(None, max_length=32)
    # The country a number typed without "+country code" belongs to ("07911 123456" is a UK
    # mobile, but not a Japanese number): the booking page sends the shopper's region. Unset
    # means Japan, the shop's home market.
    phone_region: str | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="ISO 3166 alpha-2 region for phone numbers without +code",
    )

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        return None if value is None else normalize_region(value)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n\t\u2028\u2029\x0b\x0c\x85"):
            raise ValueError("a name is one line")
        if _LINKISH.search(value) or "<" in value or ">" in value:
            raise ValueError("a name cannot contain a web address or markup")
        return value.strip()


class SurveyAnswers(ApiModel):
    survey_id: uuid.UUID
    version: int = Field(ge=1)
    answers: dict[str, Any] = Field(default_factory=dict)


class BookingCreate(ApiModel):
    type_id: uuid.UUID
    advisor_id: uuid.UUID | None = Field(None, description="the nominated advisor; null = any advisor")
    start: datetime = Field(description="the slot's start, with its UTC offset")
    timezone: str = Field(min_length=1, max_length=64)
    locale: Literal["ja", "en"] = "ja"
    contact: Contact
    survey: SurveyAnswers | None = None
    shop_customer_id: str | None = Field(
        None, min_length=1, max_length=128, description="the shop's signed customer id (with shop_signature)"
    )
    shop_signature: str | None = Field(None, min_length=3, max_length=200)


class BookingAction(ApiModel):
    """A booking link's token, in the body of a state-changing request (never in its path,
    where proxies and access logs would keep it)."""

    token: str = Field(min_length=10, max_length=400)


class Reschedule(BookingAction):
    start: datetime
    timezone: str | None = Field(None, min_length=1, max_length=64)


class Cancel(ApiModel):
    reason: str = Field("", max_length=500)


class CancelByLink(BookingAction):
    reason: str = Field("", max_length=500)


class Confirm(ApiModel):
    """The token of a "confirm your booking" mail link."""

    token: str = Field(min_length=10, max_length=400)


class BookingLinks(OutModel):
    manage: str
    join: str
    calendar: str


class BookingPaymentView(OutModel):
    """The deposit or price taken at booking, and where it is (open: not paid yet; held:
    authorised on the card; paid; released / refunded / canceled: given back or never taken)."""

    status: str
    purpose: str = Field(description="deposit or price")
    capture: str = Field(description="charge (taken at once) or hold (authorised, taken later)")
    amount_minor: int
    currency: str
    kept_minor: int = Field(description="What was finally kept, once the booking is settled.")
    test_mode: bool
    failure_code: str | None = None


class BookingOut(OutModel):
    id: uuid.UUID
    status: str
    type_id: uuid.UUID
    type_name: str
    type_name_en: str
    kind: str
    duration_minutes: int
    advisor_id: uuid.UUID
    advisor_name: str
    advisor_name_en: str
    advisor_photo_url: str
    nominated: bool
    starts_at: datetime
    ends_at: datetime
    timezone: str
    local_start: str
    contact_name: str
    contact_email: str
    contact_phone: str | None
    locale: str
    sequence: int
    join_opens_at: datetime
    changeable: bool
    links: BookingLinks | None = None
    # A pending booking holds its slot until then (null once confirmed).
    pending_until: datetime | None = None
    # The type takes a deposit or price and it is not paid or held yet.
    awaiting_payment: bool = False
    payment: BookingPaymentView | None = None


class BookingCreated(OutModel):
    booking: BookingOut
    token: str
    # When the booking waits for the link in its mail: until when it holds the slot.
    pending_until: datetime | None = None


class BookingConfirmed(OutModel):
    booking: BookingOut
    # The booking's links from now on; links handed out before the confirmation stop working.
    token: str


class JoinOut(OutModel):
    status: Literal["early", "open"]
    starts_at: datetime
    join_opens_at: datetime
    seconds_to_open: int
    consultation_id: uuid.UUID | None = None
    visitor_token: str | None = None
    shopper_id: uuid.UUID | None = None
    expires_in: int | None = None


class CalendarQuery(ApiModel):
    start: date
    end: date
    advisor_id: uuid.UUID | None = None


class CalendarEntry(OutModel):
    id: uuid.UUID
    status: str
    type_name: str
    type_name_en: str
    kind: str
    starts_at: datetime
    ends_at: datetime
    block_start: datetime
    block_end: datetime
    shopper_id: uuid.UUID
    contact_name: str
    contact_email: str
    nominated: bool
    consultation_id: uuid.UUID | None


class CalendarOut(OutModel):
    advisor_id: uuid.UUID
    timezone: str
    bookings: list[CalendarEntry]
