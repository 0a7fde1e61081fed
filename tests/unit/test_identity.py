"""Identity normalisation: two spellings of one identity must give one string, and a value
that is not an identity must be refused with a message saying why."""

from __future__ import annotations

import pytest

from livedesk.customers.identity import (
    IdentityError,
    normalize_email,
    normalize_identity,
    normalize_phone,
    normalize_region,
    normalize_shop_customer_id,
    validate_timezone,
)
from livedesk.models import IdentityKind


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hana@example.com", "hana@example.com"),
        ("  Hana@Example.COM \n", "hana@example.com"),
        ("HANA.SATO+shop@Mail.Example.jp", "hana.sato+shop@mail.example.jp"),
        # Internationalised domains come back in their Unicode form, lower-cased.
        ("user@Bücher.example", "user@bücher.example"),
    ],
)
def test_email_is_trimmed_and_lower_cased(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("hana", "not a valid e-mail"),
        ("hana@", "not a valid e-mail"),
        ("hana@@example.com", "not a valid e-mail"),
        ("hana@localhost", "not a valid e-mail"),
        ("Hana <hana@example.com>", "not a valid e-mail"),
        ("a" * 250 + "@example.com", "not a valid e-mail"),
    ],
)
def test_bad_email_is_refused(raw: str, reason: str) -> None:
    with pytest.raises(IdentityError, match=reason):
        normalize_email(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "090-1234-5678",
        "09012345678",
        "+81 90 1234 5678",
        "+81-90-1234-5678",
        "(090) 1234 5678",
        " 090 1234 5678 ",
    ],
)
def test_one_japanese_mobile_number_in_many_notations(raw: str) -> None:
    assert normalize_phone(raw) == "+819012345678"


def test_landline_and_other_region() -> None:
    assert normalize_phone("03-1234-5678") == "+81312345678"
    # Written with its country code, a number is read the same whatever the default region.
    assert normalize_phone("+1 650-253-0000", "JP") == "+16502530000"
    # Without one, the region decides; it can be given in lower case.
    assert normalize_phone("(650) 253-0000", "us") == "+16502530000"
    assert normalize_phone("020 7946 0958", "GB") == "+442079460958"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("abc", "not a phone number"),
        ("12345", "not a valid phone number"),
        ("090-1234-567", "not a valid phone number"),
        ("+81 12", "not a valid phone number"),
    ],
)
def test_bad_phone_is_refused(raw: str, reason: str) -> None:
    with pytest.raises(IdentityError, match=reason):
        normalize_phone(raw)


def test_unknown_region_is_refused() -> None:
    with pytest.raises(IdentityError, match="unknown phone region"):
        normalize_phone("090-1234-5678", "XX")
    with pytest.raises(IdentityError, match="unknown phone region"):
        normalize_region("Japan")
    assert normalize_region(" jp ") == "JP"


def test_shop_customer_id_is_trimmed_and_keeps_case() -> None:
    assert normalize_shop_customer_id("  CUST-0042\t") == "CUST-0042"
    assert normalize_shop_customer_id("abc") != normalize_shop_customer_id("ABC")
    assert normalize_shop_customer_id("x" * 128) == "x" * 128


@pytest.mark.parametrize(("raw", "reason"), [("", "empty"), ("   ", "empty"), ("x" * 129, "longer than 128")])
def test_bad_shop_customer_id_is_refused(raw: str, reason: str) -> None:
    with pytest.raises(IdentityError, match=reason):
        normalize_shop_customer_id(raw)


def test_normalize_identity_dispatches_on_kind() -> None:
    assert normalize_identity(IdentityKind.EMAIL, "A@B.example") == "a@b.example"
    assert normalize_identity(IdentityKind.PHONE, "090-1234-5678") == "+819012345678"
    assert normalize_identity(IdentityKind.PHONE, "(650) 253-0000", region="US") == "+16502530000"
    assert normalize_identity(IdentityKind.SHOP_CUSTOMER_ID, " 42 ") == "42"


def test_identity_errors_are_value_errors() -> None:
    # pydantic reports a ValueError raised in a validator against the field it came from.
    assert issubclass(IdentityError, ValueError)


@pytest.mark.parametrize("name", ["Asia/Tokyo", "UTC", "Europe/Paris", "America/New_York"])
def test_known_timezones(name: str) -> None:
    assert validate_timezone(name) == name


@pytest.mark.parametrize("name", ["", "Mars/Base", "asia/tokyo", "../etc/passwd", "/etc/localtime", "Asia"])
def test_unknown_timezones(name: str) -> None:
    with pytest.raises(IdentityError, match="unknown time zone"):
        validate_timezone(name)
