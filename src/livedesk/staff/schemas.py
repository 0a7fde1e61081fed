"""Request and response models of the staff capability (they also make its OpenAPI part).

Request models validate and normalise on their own (lower-cased e-mail, canonical language
tags, known time zones), so a ``StaffCreate`` that exists is one the service may store.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from functools import cache
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from livedesk.kit.http import ApiModel, openapi_nullable
from livedesk.models import Role

# ---------------------------------------------------------------- OpenAPI 3.0 nullables


class _Model(BaseModel):
    model_config = ConfigDict(json_schema_extra=openapi_nullable)


class _Request(ApiModel):
    model_config = ConfigDict(json_schema_extra=openapi_nullable)


# Query parameters get their schema from a model aiohttp-pydantic builds itself, so the
# nullable form is given directly.
RoleFilter = Annotated[
    Role | None, WithJsonSchema({"type": "string", "enum": [r.value for r in Role], "nullable": True})
]
IdFilter = Annotated[uuid.UUID | None, WithJsonSchema({"type": "string", "format": "uuid", "nullable": True})]


# ---------------------------------------------------------------- field types

_SKILL = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})*")


def _email(value: str) -> str:
    # Deliverability is not checked (no DNS from here) and special-use domains such as
    # ``.test`` or ``.internal`` are allowed: a self-hosted desk may live on an intranet.
    try:
        checked = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from None
    # Addresses are unique case-insensitively; storing them lower-cased makes the unique
    # constraint and the login lookup agree.
    return checked.normalized.lower()


def _skills(values: list[str]) -> list[str]:
    cleaned: list[str] = []
    for value in values:
        skill = value.strip().lower()
        if not 1 <= len(skill) <= 40:
            raise ValueError(f"skill {value!r} must be 1 to 40 characters")
        if not _SKILL.fullmatch(skill):
            raise ValueError(
                f"skill {value!r} must be lower-case letters, digits, '-' or '_' (like 'kimono')"
            )
        if skill not in cleaned:
            cleaned.append(skill)
    return cleaned


def _canonical_language(tag: str) -> str:
    """BCP 47 case conventions: language lower, script title case, region upper."""
    parts = tag.split("-")
    out = [parts[0]]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif len(part) == 2 and part.isalpha():
            out.append(part.upper())
        else:
            out.append(part)
    return "-".join(out)


def _languages(values: list[str]) -> list[str]:
    cleaned: list[str] = []
    for value in values:
        tag = value.strip().replace("_", "-").lower()
        if len(tag) > 35 or not _LANGUAGE.fullmatch(tag):
            raise ValueError(f"language {value!r} is not a language tag like 'ja', 'en' or 'pt-BR'")
        canonical = _canonical_language(tag)
        if canonical not in cleaned:
            cleaned.append(canonical)
    return cleaned


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _timezone(value: str) -> str:
    if value not in _timezones():
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Asia/Tokyo' or 'UTC'")
    return value


def _photo_url(value: str) -> str:
    if value == "":
        return value
    if any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise ValueError("must not contain spaces or control characters")
    # "//host/x" starts with "/" but points at another site; only same-site paths count.
    if value.startswith("/") and not value.startswith("//"):
        return value
    parts = urlsplit(value)
    if parts.scheme in {"http", "https"} and parts.netloc:
        return value
    raise ValueError("must be an http(s) URL or a path starting with '/'")


Email = Annotated[str, Field(min_length=3, max_length=254), AfterValidator(_email)]
# ApiModel strips surrounding whitespace from every string, passwords included, both when a
# password is set and at sign-in, so the two always agree.
Password = Annotated[str, Field(min_length=10, max_length=1024)]
DisplayName = Annotated[str, Field(min_length=1, max_length=120)]
Bio = Annotated[str, Field(max_length=4000)]
PhotoUrl = Annotated[str, Field(max_length=500), AfterValidator(_photo_url)]
Skills = Annotated[list[str], Field(max_length=50), AfterValidator(_skills)]
Languages = Annotated[list[str], Field(max_length=20), AfterValidator(_languages)]
TimeZone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_timezone)]
TeamName = Annotated[str, Field(min_length=1, max_length=120)]
TeamDescription = Annotated[str, Field(max_length=2000)]


class _PartialUpdate(_Request):
    """PATCH semantics: an absent field is left alone; ``null`` is only accepted for the
    fields listed in ``nullable`` (it clears them)."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Any:
        for name in sorted(self.model_fields_set - self.nullable):
            if getattr(self, name) is None:
                raise ValueError(f"'{name}' cannot be null; leave it out to keep the current value")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


# ---------------------------------------------------------------- sign-in


class LoginRequest(_Request):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class Me(_Model):
    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    team_id: uuid.UUID | None
    csrf_token: str


class PasswordChange(_Request):
    """Change one's own password; the current one proves it is really the account holder."""

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: Password


# ---------------------------------------------------------------- staff accounts


class StaffCreate(_Request):
    email: Email
    password: Annotated[Password, Field(description="At least 10 characters.")]
    role: Role
    display_name: DisplayName
    bio: Bio = ""
    photo_url: PhotoUrl = Field("", description="An http(s) URL, or a path on this server starting with '/'.")
    skills: Skills = Field(default_factory=list, description="Lower-case slugs, e.g. 'kimono', 'gift-wrap'.")
    languages: Languages = Field(default_factory=list, description="Language tags, e.g. 'ja', 'en'.")
    timezone: TimeZone = Field("UTC", description="IANA time zone name, e.g. 'Asia/Tokyo'.")
    team_id: uuid.UUID | None = None
    nominable: bool = Field(True, description="Shoppers may pick this person by name.")


class StaffUpdate(_PartialUpdate):
    """Every field optional. Changing ``password`` or ``role``, or setting ``active`` to
    false, ends all of that account's login sessions."""

    nullable: ClassVar[frozenset[str]] = frozenset({"team_id"})

    email: Email | None = None
    password: Password | None = None
    role: Role | None = None
    active: bool | None = None
    display_name: DisplayName | None = None
    bio: Bio | None = None
    photo_url: PhotoUrl | None = None
    skills: Skills | None = None
    languages: Languages | None = None
    timezone: TimeZone | None = None
    team_id: uuid.UUID | None = Field(None, description="null removes the account from its team.")
    nominable: bool | None = None


class StaffOut(_Model):
    """A staff account as the admin sees it (never the password hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    role: Role
    active: bool
    team_id: uuid.UUID | None
    display_name: str
    bio: str
    photo_url: str
    skills: list[str]
    languages: list[str]
    timezone: str
    nominable: bool
    created_at: datetime
    updated_at: datetime


# ---------------------------------------------------------------- teams


class TeamCreate(_Request):
    name: TeamName
    description: TeamDescription = ""


class TeamUpdate(_PartialUpdate):
    name: TeamName | None = None
    description: TeamDescription | None = None


class TeamOut(_Model):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str
    member_count: int = Field(description="Staff accounts in this team, active or not.")
    created_at: datetime
    updated_at: datetime
