"""Business days, pure: weekends and public holidays (the ``holidays`` package) of an
organisation's country and subdivision.

- An organisation that counts business days (``herald orgs set --business-days`` with a
  ``--country``) has a reminder that falls on a Saturday, a Sunday or a public holiday moved to
  the next business day, and the move is recorded with its reason.
- An offset in business days (``+3b``) counts only business days from the due date: ``+1b`` is the
  first business day after it, ``-1b`` the last one before it, ``0b`` the due date or, when that
  is not a business day, the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import holidays

from infra.errors import Invalid

#: Longest run of non-business days searched through before giving up (no calendar has one).
_MAX_RUN = 60


class UnknownCountry(Invalid):
    """A country or subdivision the ``holidays`` package does not know."""


@dataclass(frozen=True)
class Moved:
    """A reminder date moved to a business day: from which date, and why."""

    to: date
    from_: date | None = None
    reason: str | None = None  # the holiday's name, "Saturday" or "Sunday"


#: What makes a date not a business day: its reason, or None when it is one.
Closed = Callable[[date], str | None]


def open_every_day(day: date) -> str | None:
    """The calendar of an organisation that does not count business days: every day is one."""
    return None


def check_country(country: str, subdivision: str | None = None) -> tuple[str, str | None]:
    """``(COUNTRY, subdivision)`` as ``holidays`` knows them, or ``UnknownCountry`` naming the part."""
    supported = holidays.list_supported_countries()
    code = country.upper() if isinstance(country, str) else ""
    if code not in supported:
        raise UnknownCountry(f"country {country!r}: not an ISO 3166 code with public holidays (e.g. FI)")
    if subdivision is None:
        return code, None
    subdivisions = {s.upper(): s for s in supported[code]}
    found = subdivisions.get(subdivision.upper()) if isinstance(subdivision, str) else None
    if found is None:
        raise UnknownCountry(
            f"subdivision {subdivision!r}: not one of {code}'s ({', '.join(supported[code][:10])}…)"
        )
    return code, found


@lru_cache(maxsize=256)
def _holidays(country: str, subdivision: str | None, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision, years=year)


def closed_days(country: str, subdivision: str | None = None) -> Closed:
    """The calendar of ``country`` (and ``subdivision``): a date's reason for not being a business
    day (the public holiday's name, else ``Saturday`` or ``Sunday``), or None."""

    def closed(day: date) -> str | None:
        name = _holidays(country, subdivision, day.year).get(day)
        if name:
            return str(name)
        return day.strftime("%A") if day.weekday() >= 5 else None

    return closed


def next_business_day(day: date, closed: Closed) -> Moved:
    """``day`` when it is a business day; else the next one, with the reason ``day`` was not."""
    reason = closed(day)
    if reason is None:
        return Moved(to=day)
    later = day
    for _ in range(_MAX_RUN):
        later += timedelta(days=1)
        if closed(later) is None:
            return Moved(to=later, from_=day, reason=reason)
    return Moved(to=day)  # a calendar closed for months: remind anyway rather than never


def add_business_days(start: date, count: int, closed: Closed) -> date:
    """``count`` business days from ``start`` (negative: before it); 0: ``start`` or the next
    business day."""
    if count == 0:
        return next_business_day(start, closed).to
    step = timedelta(days=1 if count > 0 else -1)
    day, left, searched = start, abs(count), 0
    while left:
        day += step
        searched += 1
        if closed(day) is None:
            left -= 1
            searched = 0
        elif searched > _MAX_RUN:
            break
    return day
