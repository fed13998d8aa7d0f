"""Money and dates for a locale (Babel): ``1 234,50 €`` in Finnish, ``¥1,235`` in Japanese."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal, DecimalException
from functools import lru_cache

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, get_currency_precision

from infra.errors import PermanentError

FALLBACK = "en"


class UnformattableAmount(PermanentError, ValueError):
    """An amount that cannot be shown in its currency (``1E+400``, more digits than a decimal
    holds). Permanent: the same amount fails the same way on every try."""

    reason = "unformattable_amount"


def babel_locale(locale: str) -> str:
    """A locale Babel knows (``fi-FI`` → ``fi_FI``), or English."""
    return str(_locale(locale))


@lru_cache(maxsize=512)
def _locale(locale: str) -> Locale:
    """Babel's ``Locale`` for ``locale`` (or English), parsed once: Babel parses a locale given by
    name again on every call, which costs more than formatting the amount."""
    try:
        return Locale.parse(locale.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return Locale.parse(FALLBACK)


def money(amount: Decimal, currency: str, locale: str) -> str:
    """The amount in the currency's minor units, rounded half up as people expect on a bill;
    ``UnformattableAmount`` when it cannot be (a decimal's 28 digits do not hold it)."""
    digits = get_currency_precision(currency)
    try:
        rounded = amount.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
        text = format_currency(rounded, currency, locale=_locale(locale))
    except (DecimalException, OverflowError, ValueError) as exc:
        shown = str(amount) if len(str(amount)) <= 40 else f"{str(amount)[:40]}…"
        raise UnformattableAmount(
            f"{shown} cannot be formatted in {currency} ({type(exc).__name__})"
        ) from None
    # CLDR's Japanese yen is the full-width sign; the half-width one is what bills and SMS show.
    return text.replace("\uffe5", "\u00a5")


def day(value: date, locale: str) -> str:
    """A due date as the locale writes it (``1.12.2026``, ``2026/12/01``, ``Dec 1, 2026``)."""
    return format_date(value, format="medium", locale=_locale(locale))
