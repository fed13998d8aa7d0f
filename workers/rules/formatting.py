"""Money and dates for a locale (Babel): ``1 234,50 €`` in Finnish, ``¥1,235`` in Japanese.

Babel looks a locale's number pattern, symbols and currency data up again on every call (and
works out the currency's plural name whether the pattern shows it or not), which costs more than
the rest of rendering a notification. So each (locale, currency) is compiled once into what
formatting an amount needs (``_MoneyFormat``), in a bounded cache; a pattern with anything that
compilation does not cover is left to Babel (``babel_only``), so the text is Babel's either way
(``tests/unit/test_formatting.py`` holds the two to each other for every locale Babel knows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, DecimalException
from functools import lru_cache

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import (
    format_currency,
    get_currency_precision,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
)

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


@dataclass(frozen=True)
class _MoneyFormat:
    """A locale's standard currency pattern for one currency, with its symbols filled in.

    ``prefix`` and ``suffix`` are (positive, negative) with the currency sign already replaced;
    ``grouping`` is (first group, further groups) as the pattern says (``#,##,##0`` in India).
    """

    babel_only: bool  # the pattern has what this does not do: Babel formats every amount
    digits: int = 2
    prefix: tuple[str, str] = ("", "-")
    suffix: tuple[str, str] = ("", "")
    min_int: int = 1
    grouping: tuple[int, int] = (3, 3)
    group: str = ","
    decimal: str = "."

    def format(self, rounded: Decimal) -> str:
        """``rounded`` (already quantized to the currency's digits) as Babel's
        ``NumberPattern.apply`` writes it: sign from the pattern, digits grouped, the currency's
        digits after the decimal sign."""
        negative = int(rounded.is_signed())
        whole, _, fraction = f"{abs(rounded):f}".partition(".")
        whole = whole.rjust(self.min_int, "0")
        size, others = self.grouping
        groups: list[str] = []
        while len(whole) > size:
            groups.append(whole[-size:])
            whole = whole[:-size]
            size = others
        groups.append(whole)
        number = self.group.join(reversed(groups))
        if self.digits:
            number += self.decimal + fraction.ljust(self.digits, "0")[: self.digits]
        return self.prefix[negative] + number + self.suffix[negative]


@lru_cache(maxsize=1024)
def _money_format(locale: str, currency: str) -> _MoneyFormat:
    """``locale``'s currency pattern for ``currency``, compiled once (bounded: a locale and a
    currency are a handful of strings each)."""
    babel = _locale(locale)
    pattern = babel.currency_formats["standard"]
    symbol = get_currency_symbol(currency, babel)
    group = get_group_symbol(babel, numbering_system="latn")
    decimal = get_decimal_symbol(babel, numbering_system="latn")

    def filled(text: str) -> str:
        return text.replace("¤¤", currency.upper()).replace("¤", symbol)

    prefix = (filled(pattern.prefix[0]), filled(pattern.prefix[1]))
    suffix = (filled(pattern.suffix[0]), filled(pattern.suffix[1]))
    # Babel replaces the signs and strips quoted text over the whole string; where none of that
    # could reach past the prefix or the suffix, doing it on them alone comes to the same.
    raw = "".join(pattern.prefix + pattern.suffix)
    unusual = (
        pattern.scale != 0
        or pattern.exp_prec
        or "@" in pattern.pattern
        or not pattern.number_pattern
        or "¤¤¤" in raw
        or any("'" in text or "¤" in text for text in (*prefix, *suffix, group, decimal, symbol, currency))
    )
    if unusual:
        return _MoneyFormat(babel_only=True)
    return _MoneyFormat(
        babel_only=False,
        digits=get_currency_precision(currency),
        prefix=prefix,
        suffix=suffix,
        min_int=pattern.int_prec[0],
        grouping=pattern.grouping,
        group=group,
        decimal=decimal,
    )


def money(amount: Decimal, currency: str, locale: str) -> str:
    """The amount in the currency's minor units, rounded half up as people expect on a bill;
    ``UnformattableAmount`` when it cannot be (a decimal's 28 digits do not hold it)."""
    digits = get_currency_precision(currency)
    try:
        rounded = amount.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
        compiled = _money_format(locale, currency)
        if compiled.babel_only:
            text = format_currency(rounded, currency, locale=_locale(locale))
        else:
            text = compiled.format(rounded)
    except (DecimalException, OverflowError, ValueError) as exc:
        shown = str(amount) if len(str(amount)) <= 40 else f"{str(amount)[:40]}…"
        raise UnformattableAmount(
            f"{shown} cannot be formatted in {currency} ({type(exc).__name__})"
        ) from None
    # CLDR's Japanese yen is the full-width sign; the half-width one is what bills and SMS show.
    return text.replace("\uffe5", "\u00a5")


def day(value: date, locale: str) -> str:
    """A due date as the locale writes it (``1.12.2026``, ``2026/12/01``, ``Dec 1, 2026``)."""
    return _day(value, locale)


@lru_cache(maxsize=4096)
def _day(value: date, locale: str) -> str:
    # Remembered: a run's invoices fall due on a few days, and Babel builds the pattern each time.
    return format_date(value, format="medium", locale=_locale(locale))
