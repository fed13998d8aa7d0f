"""Local time, pure: which zone a recipient lives in, and which instant a local wall-clock time is.

- An organisation has an IANA zone (``herald orgs set --timezone``; ``HERALD_DEFAULT_TIMEZONE``
  when it set none).
- A contact's zone is its own when it has one; otherwise the zone its phone number names
  (``phonenumbers``' time-zone data) when the number names exactly one; otherwise the
  organisation's.
- A local wall-clock time is one instant, also on DST nights: a time the spring change skips
  (03:30 in Helsinki on the last Sunday of March) is the moment the clocks jump (04:00 local, the
  first moment of that hour that exists); a time the autumn change repeats is its first
  occurrence. So every local time names exactly one instant: a reminder is never skipped and
  never doubled.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from phonenumbers import timezone as phone_zones

from infra.errors import Invalid

#: The longest IANA zone name we accept (the longest real one is 32 characters).
MAX_ZONE_NAME = 64


class UnknownZone(Invalid):
    """A time-zone name that is not an IANA zone."""


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``Europe/Helsinki``), or ``UnknownZone`` naming it.

    Only names of the zone database are accepted: never a path, never a file outside it.
    """
    if not isinstance(name, str) or not 0 < len(name) <= MAX_ZONE_NAME or name not in _known_zones():
        raise UnknownZone(f"{name!r} is not an IANA time zone (e.g. Europe/Helsinki)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # listed but unreadable: same answer
        raise UnknownZone(f"{name!r} is not an IANA time zone (e.g. Europe/Helsinki)") from exc


#: Numbers whose zone ``zone_of_number`` keeps: a parse costs tens of µs, and route works a batch's
#: zones out before its write lock so that the rule under the lock finds them here.
ZONE_CACHE_SIZE = 4096


@lru_cache(maxsize=ZONE_CACHE_SIZE)
def zone_of_number(e164: str | None) -> str | None:
    """The one IANA zone a phone number's prefix names, or None (no number, several zones, unknown).
    Pure, so remembered for the last ``ZONE_CACHE_SIZE`` numbers."""
    if not e164:
        return None
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    names = [z for z in phone_zones.time_zones_for_number(parsed) if z != "Etc/Unknown"]
    if len(names) != 1 or names[0] not in _known_zones():
        return None
    return names[0]


def recipient_zone(contact_zone: str | None, e164: str | None, org_zone: str) -> str:
    """The zone a contact reads its messages in: its own, else its number's single zone, else the
    organisation's."""
    if contact_zone and contact_zone in _known_zones():
        return contact_zone
    return zone_of_number(e164) or org_zone


def local_instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The UTC instant at which ``tz``'s clocks show ``wall`` on ``day``.

    A skipped wall time (spring) is the moment the clocks jump; a repeated one (autumn) is its
    first occurrence.
    """
    naive = datetime.combine(day, wall.replace(tzinfo=None, fold=0))
    instant = naive.replace(tzinfo=tz).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == naive:
        return instant
    # In the gap: read with the offset before the change, ``instant`` lies as far after the jump
    # as ``wall`` lies into the gap (gaps are at most a few hours): find the jump itself.
    return _change_between(instant - timedelta(hours=3), instant, tz)


def _change_between(lo: datetime, hi: datetime, tz: ZoneInfo) -> datetime:
    """The instant (to the second) in ``(lo, hi]`` where ``tz``'s UTC offset changes."""
    before = lo.astimezone(tz).utcoffset()
    while (hi - lo) > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi.replace(microsecond=0)


def local_now(now: datetime, tz: ZoneInfo) -> datetime:
    """``now`` as ``tz``'s clocks show it."""
    return now.astimezone(tz)
