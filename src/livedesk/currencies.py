"""The currencies livedesk accepts: a plain table, below both the settings (which check
``LIVEDESK_PAYMENT_CURRENCY`` at start) and ``kit.money`` (which does the arithmetic)."""

from __future__ import annotations

# The currencies livedesk accepts, with their ISO 4217 minor-unit exponent. Deliberately a
# short list: each is one whose Stripe amount equals its ISO minor unit.
EXPONENTS: dict[str, int] = {
    "JPY": 0,
    "KRW": 0,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "AUD": 2,
    "CAD": 2,
    "CHF": 2,
    "CNY": 2,
    "HKD": 2,
    "SGD": 2,
    "NZD": 2,
    "SEK": 2,
    "DKK": 2,
    "NOK": 2,
    "TWD": 2,
}
