"""Normalising the identities that find a shopper: e-mail, phone number, shop customer id.

Pure functions without I/O. Two spellings of one identity must normalise to the same string,
because the ``(kind, value)`` unique constraint of ``shopper_identities`` is what makes
"is this the same person?" a single lookup.
"""

from __future__ import annotations

import functools
import zoneinfo

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from livedesk.models import IdentityKind

DEFAULT_PHONE_REGION = "JP"
SHOP_CUSTOMER_ID_MAX = 128
# The column holding identity values (and shoppers.email) is this wide.
EMAIL_MAX = 254


class IdentityError(ValueError):
    """An identity (or other profile value) that cannot be normalised. A ``ValueError``, so
    pydantic validators let it through and report it against the field it came from."""


def normalize_email(value: str) -> str:
    """Trimmed, lower-cased and syntactically valid (no DNS lookup).

    The whole address is lower-cased, local part included: RFC 5321 allows case-sensitive
    local parts, but no mail provider a shop's customers use treats them so, and two profiles
    for ``Hana@…`` and ``hana@…`` would be the worse mistake.
    """
    text = value.strip()
    if not text:
        raise IdentityError("e-mail address is empty")
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise IdentityError(f"not a valid e-mail address: {exc}") from None
    normalized = checked.normalized.lower()
    if len(normalized) > EMAIL_MAX:
        raise IdentityError(f"e-mail address is longer than {EMAIL_MAX} characters")
    return normalized


def normalize_region(region: str) -> str:
    """An ISO 3166 alpha-2 region that ``phonenumbers`` knows (``jp`` → ``JP``)."""
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise IdentityError(f"unknown phone region {region!r} (expected a country code such as JP or US)")
    return code


def normalize_phone(value: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """E.164 (``+819012345678``). ``region`` is the country assumed for numbers written
    without a ``+`` country code; a number that is not valid there is refused rather than
    stored half-right, since a wrong number would match nobody — or the wrong person."""
    text = value.strip()
    if not text:
        raise IdentityError("phone number is empty")
    code = normalize_region(region)
    try:
        number = phonenumbers.parse(text, code)
    except phonenumbers.NumberParseException:
        raise IdentityError(f"not a phone number: {text!r}") from None
    if not phonenumbers.is_valid_number(number):
        raise IdentityError(
            f"not a valid phone number: {text!r} (numbers without +country code are read as {code})"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_shop_customer_id(value: str) -> str:
    """The shop's own customer id, trimmed; case is kept because shops' ids may be
    case-sensitive."""
    text = value.strip()
    if not text:
        raise IdentityError("shop customer id is empty")
    if len(text) > SHOP_CUSTOMER_ID_MAX:
        raise IdentityError(f"shop customer id is longer than {SHOP_CUSTOMER_ID_MAX} characters")
    return text


def normalize_identity(kind: IdentityKind, value: str, *, region: str = DEFAULT_PHONE_REGION) -> str:
    """Normalise ``value`` as an identity of ``kind``."""
    if kind is IdentityKind.EMAIL:
        return normalize_email(value)
    if kind is IdentityKind.PHONE:
        return normalize_phone(value, region)
    return normalize_shop_customer_id(value)


@functools.cache
def _known_timezones() -> frozenset[str]:
    # Listing the tz database reads the disk; the answer does not change while we run.
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(name: str) -> str:
    """An IANA time-zone name (``Asia/Tokyo``), exactly as the tz database spells it."""
    text = name.strip()
    if text not in _known_timezones():
        raise IdentityError(f"unknown time zone {name!r} (expected an IANA name such as Asia/Tokyo)")
    return text
