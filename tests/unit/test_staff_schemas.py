"""Staff request models validate and normalise by themselves."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from livedesk.models import Role
from livedesk.staff.schemas import StaffCreate, StaffUpdate, TeamUpdate, openapi_nullable

BASE: dict[str, Any] = {
    "email": "a@example.com",
    "password": "long enough secret",
    "role": "advisor",
    "display_name": "A",
}


def make(**fields: Any) -> StaffCreate:
    return StaffCreate.model_validate({**BASE, **fields})


def error_fields(exc: ValidationError) -> list[str]:
    return [".".join(str(p) for p in err["loc"]) for err in exc.errors()]


def test_defaults() -> None:
    staff = make()
    assert (staff.role, staff.timezone, staff.skills, staff.languages, staff.team_id) == (
        Role.ADVISOR,
        "UTC",
        [],
        [],
        None,
    )
    assert staff.nominable is True
    assert (staff.bio, staff.photo_url) == ("", "")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Hanako@Example.COM", "hanako@example.com"),
        ("  staff@shop.test ", "staff@shop.test"),  # intranet/test domains are fine
        ("ops@desk.internal", "ops@desk.internal"),
    ],
)
def test_email_is_normalised(given: str, stored: str) -> None:
    assert make(email=given).email == stored


@pytest.mark.parametrize("email", ["plain", "a@", "@example.com", "a b@example.com", "a@@example.com"])
def test_bad_email(email: str) -> None:
    with pytest.raises(ValidationError) as raised:
        make(email=email)
    assert error_fields(raised.value) == ["email"]


def test_skills_and_languages_are_canonical() -> None:
    staff = make(
        skills=["Kimono", "gift-wrap", "kimono", "size_fit"], languages=["JA", "en", "pt_br", "zh-hant-tw"]
    )
    assert staff.skills == ["kimono", "gift-wrap", "size_fit"]
    assert staff.languages == ["ja", "en", "pt-BR", "zh-Hant-TW"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("skills", ["gift wrap"]),
        ("skills", [""]),
        ("skills", ["x" * 41]),
        ("skills", ["着物"]),
        ("languages", ["Japanese"]),
        ("languages", ["e"]),
        ("timezone", "Asia/Nowhere"),
        ("timezone", "../../etc/passwd"),
        ("photo_url", "javascript:alert(1)"),
        ("photo_url", "//evil.example/p.png"),
        ("photo_url", "ftp://example.com/p.png"),
        ("photo_url", "/a b.png"),
        ("password", "123456789"),
        ("display_name", ""),
        ("display_name", "x" * 121),
        ("role", "owner"),
    ],
)
def test_rejected_values_name_their_field(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        make(**{field: value})
    assert error_fields(raised.value) == [field]


@pytest.mark.parametrize("url", ["", "/media/a.jpg", "https://cdn.example.com/a.jpg", "http://x.test/a"])
def test_accepted_photo_urls(url: str) -> None:
    assert make(photo_url=url).photo_url == url


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        make(password_hash="x")
    assert raised.value.errors()[0]["type"] == "extra_forbidden"


def test_update_keeps_only_what_was_sent() -> None:
    team = uuid.uuid4()
    assert StaffUpdate.model_validate({}).changes() == {}
    assert StaffUpdate.model_validate({"team_id": None}).changes() == {"team_id": None}
    assert StaffUpdate.model_validate({"team_id": str(team), "role": "admin"}).changes() == {
        "team_id": team,
        "role": Role.ADMIN,
    }


@pytest.mark.parametrize("field", ["display_name", "role", "active", "password", "skills"])
def test_update_refuses_null_for_required_fields(field: str) -> None:
    with pytest.raises(ValidationError, match=f"'{field}' cannot be null"):
        StaffUpdate.model_validate({field: None})
    with pytest.raises(ValidationError, match="'name' cannot be null"):
        TeamUpdate.model_validate({"name": None})


def test_nullable_fields_are_written_for_openapi_3_0() -> None:
    schema = StaffUpdate.model_json_schema(ref_template="#/components/schemas/{model}")
    role = schema["properties"]["role"]
    assert role["allOf"] == [{"$ref": "#/components/schemas/Role"}]
    assert role["nullable"] is True
    assert "anyOf" not in role
    team = schema["properties"]["team_id"]
    assert (team["type"], team["format"], team["nullable"]) == ("string", "uuid", True)

    untouched = {
        "properties": {"a": {"type": "string"}, "b": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}
    }
    before = repr(untouched)
    openapi_nullable(untouched)
    assert repr(untouched) == before
