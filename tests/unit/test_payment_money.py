"""Money in minor units: zero-decimal (JPY) and two-decimal (USD, EUR) currencies, both ways,
and what Stripe is sent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livedesk.kit import money
from livedesk.payments.csp import with_stripe


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("1200", "JPY", 1200),
        ("1,200", "jpy", 1200),
        ("12.34", "USD", 1234),
        ("12.3", "EUR", 1230),
        ("0.01", "USD", 1),
        ("12", "USD", 1200),
        (Decimal("9.50"), "GBP", 950),
    ],
)
def test_major_text_becomes_minor_units(text: str | Decimal, currency: str, minor: int) -> None:
    assert money.to_minor(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "fragment"),
    [
        ("100.5", "JPY", "0 decimal places"),
        ("12.345", "USD", "2 decimal places"),
        ("-1", "USD", "positive"),
        ("abc", "USD", "not an amount"),
        ("NaN", "USD", "not an amount"),
        ("100000000", "JPY", "larger"),
        ("1", "XXX", "unsupported currency"),
        ("1", "ISK", "unsupported currency"),
    ],
)
def test_money_that_is_not_money_here_is_refused(text: str, currency: str, fragment: str) -> None:
    with pytest.raises(money.MoneyError, match=fragment):
        money.to_minor(text, currency)


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (12000, "JPY", "¥12,000"),
        (0, "JPY", "¥0"),
        (1234, "USD", "$12.34"),
        (5, "USD", "$0.05"),
        (123456789 // 100, "EUR", "€12,345.67"),
        (1234, "CHF", "CHF 12.34"),
        (500, "KRW", "₩500"),
    ],
)
def test_display(minor: int, currency: str, shown: str) -> None:
    assert money.format_money(minor, currency) == shown


def test_stripe_gets_the_smallest_unit_in_lower_case() -> None:
    assert money.stripe_amount(1200, "JPY") == 1200
    assert money.stripe_amount(1234, "USD") == 1234
    assert money.stripe_currency("JPY") == "jpy"
    with pytest.raises(money.MoneyError):
        money.stripe_amount(0, "USD")
    assert money.exponent("jpy") == 0
    assert money.exponent("EUR") == 2


@given(
    minor=st.integers(min_value=0, max_value=money.MAX_MINOR),
    currency=st.sampled_from(sorted(money.SUPPORTED)),
)
def test_minor_to_text_and_back_is_exact(minor: int, currency: str) -> None:
    assert money.to_minor(money.major_text(minor, currency), currency) == minor


def test_stripe_csp_adds_only_stripe_origins() -> None:
    policy = "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:"
    widened = with_stripe(policy)
    assert "script-src 'self' https://js.stripe.com" in widened
    assert "connect-src 'self' https://api.stripe.com" in widened
    assert "frame-src 'self' https://js.stripe.com https://hooks.stripe.com" in widened
    assert widened.startswith("default-src 'self';")
