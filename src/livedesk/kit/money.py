"""Money: an integer amount in the currency's minor unit plus an ISO 4217 code.

JPY and KRW have no minor unit (¥1,200 is 1200), USD and EUR have cents ($12.34 is 1234). Every
conversion between what people type or read and what is stored goes through here, so a price
is never off by a factor of 100. Stripe takes amounts in the same "smallest unit", so
``stripe_amount`` is the identity for the currencies we accept; it exists so that a currency
with a Stripe quirk (ISK, HUF …) cannot slip in without someone reading this module.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from livedesk.currencies import EXPONENTS

SUPPORTED = frozenset(EXPONENTS)
# Largest amount accepted anywhere (Stripe's own limit is 99,999,999 in the smallest unit).
MAX_MINOR = 99_999_999

_SYMBOLS = {"JPY": "¥", "KRW": "₩", "USD": "$", "EUR": "€", "GBP": "£"}


class MoneyError(ValueError):
    """A currency or amount that cannot be money here; the message says why."""


def currency_code(value: str) -> str:
    """The upper-case code of a supported currency; MoneyError otherwise."""
    code = value.strip().upper()
    if code not in EXPONENTS:
        raise MoneyError(f"unsupported currency {value!r} (supported: {', '.join(sorted(SUPPORTED))})")
    return code


def exponent(currency: str) -> int:
    """Digits after the decimal point: 0 for JPY, 2 for USD/EUR."""
    return EXPONENTS[currency_code(currency)]


def to_minor(amount: str | int | Decimal, currency: str) -> int:
    """A major-unit amount ("12.34", 1200, Decimal("9.5")) in minor units. Refuses an amount
    with more decimals than the currency has ("12.345" USD, "100.5" JPY), negative amounts and
    amounts over MAX_MINOR, rather than rounding money silently."""
    exp = exponent(currency)
    try:
        value = Decimal(str(amount).strip().replace(",", "")) if not isinstance(amount, Decimal) else amount
    except InvalidOperation:
        raise MoneyError(f"{amount!r} is not an amount") from None
    if not value.is_finite():
        raise MoneyError(f"{amount!r} is not an amount")
    scaled = value.scaleb(exp)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{currency_code(currency)} amounts have {exp} decimal places at most: {amount}")
    minor = int(scaled)
    check_minor(minor)
    return minor


def check_minor(minor: int, *, allow_zero: bool = True) -> int:
    if minor < 0 or (minor == 0 and not allow_zero):
        raise MoneyError("amount must be positive")
    if minor > MAX_MINOR:
        raise MoneyError(f"amount is larger than {MAX_MINOR} minor units")
    return minor


def to_major(minor: int, currency: str) -> Decimal:
    """Minor units as a Decimal in major units with the currency's decimals (1234 USD → 12.34)."""
    exp = exponent(currency)
    return (Decimal(minor).scaleb(-exp)).quantize(Decimal(1).scaleb(-exp), rounding=ROUND_HALF_UP)


def major_text(minor: int, currency: str) -> str:
    """The plain major-unit text, as in a CSV file: "12.34", "1200"."""
    return str(to_major(minor, currency))


def format_money(minor: int, currency: str) -> str:
    """A display string for logs, mails and timeline summaries: "¥12,000", "$12.34",
    "CHF 12.34". Browser pages format with Intl.NumberFormat in the reader's language."""
    code = currency_code(currency)
    exp = EXPONENTS[code]
    major = to_major(minor, code)
    text = f"{major:,.{exp}f}"
    symbol = _SYMBOLS.get(code)
    return f"{symbol}{text}" if symbol else f"{code} {text}"


def stripe_amount(minor: int, currency: str) -> int:
    """The ``amount`` Stripe expects: the smallest currency unit, which for every supported
    currency is our minor unit (JPY 1200 → 1200, USD 12.34 → 1234)."""
    currency_code(currency)
    return check_minor(minor, allow_zero=False)


def stripe_currency(currency: str) -> str:
    """Stripe spells currencies in lower case."""
    return currency_code(currency).lower()
