"""Money as Babel writes it: the compiled formats (``workers.rules.formatting``) against
``babel.numbers.format_currency`` itself, for every locale Babel knows."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from babel.dates import format_date
from babel.localedata import locale_identifiers
from babel.numbers import format_currency, get_currency_precision
from hypothesis import given
from hypothesis import strategies as st

from workers.rules.formatting import UnformattableAmount, _locale, _money_format, day, money

#: Two, zero, three and four minor digits; a symbol before and after; one Babel knows no symbol for.
CURRENCIES = ("EUR", "USD", "JPY", "BHD", "CLF", "INR", "CHF", "SEK", "XXX", "ZZZ")
#: Zero, a negative zero, rounding up into the next group, grouping, more digits than a group.
AMOUNTS = tuple(Decimal(a) for a in ("0", "-0.001", "-1.5", "999.995", "-1234567.891", "12345678901234.56"))


def babel(amount: Decimal, currency: str, locale: str) -> str:
    """What ``money`` wrote when it left every amount to Babel."""
    digits = get_currency_precision(currency)
    rounded = amount.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return format_currency(rounded, currency, locale=_locale(locale)).replace("\uffe5", "\u00a5")


@pytest.mark.parametrize("currency", ["EUR", "JPY", "BHD", "INR", "ZZZ"])
def test_every_locale_formats_money_as_babel_does(currency: str) -> None:
    for locale in locale_identifiers():
        for amount in AMOUNTS:
            assert money(amount, currency, locale) == babel(amount, currency, locale), (locale, amount)


def test_most_locales_are_compiled_rather_than_left_to_babel() -> None:
    compiled = [not _money_format(locale, "EUR").babel_only for locale in locale_identifiers()]
    assert sum(compiled) > 0.9 * len(compiled)


@given(
    amount=st.decimals(min_value=-(10**15), max_value=10**15, allow_nan=False, places=4),
    currency=st.sampled_from(CURRENCIES),
    locale=st.sampled_from(["fi", "en", "en_IN", "de_CH", "ja", "ar_EG", "fr", "sv_FI", "es_CL", "nb-NO"]),
)
def test_any_amount_is_formatted_as_babel_does(amount: Decimal, currency: str, locale: str) -> None:
    assert money(amount, currency, locale) == babel(amount, currency, locale)


def test_an_amount_a_decimal_cannot_hold_is_unformattable() -> None:
    with pytest.raises(UnformattableAmount):
        money(Decimal("1E+400"), "EUR", "fi")


def test_a_due_date_is_written_as_the_locale_writes_it() -> None:
    assert (
        day(date(2026, 12, 1), "fi") == format_date(date(2026, 12, 1), "medium", locale="fi") == "1.12.2026"
    )
    assert day(date(2026, 12, 1), "xx-YY") == "Dec 1, 2026"  # an unknown locale: English
