"""Quiet hours, pure: when a message may go, in the recipient's local time.

- An organisation sets, per channel, the hours when sending is allowed (its *send window*):
  ``08:00-21:00``, ``22:00-07:00`` (crossing midnight) or ``any``. Without its own, SMS goes
  08:00-21:00 and email any time.
- A window may be set for one kind of notification on a channel (``payment_thank_you:sms=any``):
  it overrides the channel's for that kind.
- A message decided outside its window is held, never dropped, until the window next opens in the
  recipient's zone (``release_at``); inside it, it goes now.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from workers.rules.local_time import local_instant, recipient_zone, zone

#: The organisation's windows when it set none (``any``: no quiet hours).
DEFAULT_WINDOWS: Mapping[str, str] = {"sms": "08:00-21:00", "email": "any"}
ANY = "any"
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")


@dataclass(frozen=True)
class Window:
    """Sending is allowed from ``start`` to ``end`` local time (``end`` before ``start``: across
    midnight)."""

    start: time
    end: time

    def __str__(self) -> str:
        end = "24:00" if self.end == time(0) and self.start != time(0) else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"

    def allows(self, wall: time) -> bool:
        """Whether a message may go at local wall-clock time ``wall``."""
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end  # across midnight (or end 24:00 as 00:00)


def parse_window(text: str) -> Window | None:
    """``"08:00-21:00"`` → a window; ``"any"`` → None (any time). ValueError naming what is wrong."""
    if not isinstance(text, str) or len(text) > 20:
        raise ValueError(f"{str(text)[:20]!r}: a window is HH:MM-HH:MM or any")
    value = text.strip().lower()
    if value == ANY:
        return None
    match = _WINDOW.fullmatch(value)
    if match is None:
        raise ValueError(f"{text!r}: a window is HH:MM-HH:MM (00:00-23:59, end up to 24:00) or any")
    start_h, start_m, end_h, end_m = (int(g) for g in match.groups())
    if end_h == 24 and end_m != 0:
        raise ValueError(f"{text!r}: the window's end is at most 24:00")
    start = time(start_h, start_m)
    end = time(0) if end_h == 24 else time(end_h, end_m)
    if start == end:
        raise ValueError(f"{text!r}: an empty window; use any for no quiet hours")
    return Window(start, end)


def parse_default_windows(text: str) -> dict[str, str]:
    """``"sms=08:00-21:00,email=any"`` (``HERALD_DEFAULT_SEND_WINDOWS``) → a mapping for
    ``window_for``; an item that does not parse is left out (the built-in default applies)."""
    windows: dict[str, str] = {}
    for item in text.split(","):
        target, _, value = item.strip().partition("=")
        try:
            parse_window(value)
        except ValueError:
            continue
        windows[target] = value
    return windows


def window_for(channel: str, kind: str, windows: Mapping[str, str]) -> Window | None:
    """The window a ``kind`` notification on ``channel`` keeps: the kind's own
    (``kind:channel``), else the channel's, else the default (None: any time)."""
    text = windows.get(f"{kind}:{channel}") or windows.get(channel) or DEFAULT_WINDOWS.get(channel, ANY)
    return parse_window(text)


def release_at(now: datetime, window: Window | None, tz: ZoneInfo) -> datetime | None:
    """None when a message decided at ``now`` may go now; else the instant (UTC) its window next
    opens in zone ``tz``."""
    if window is None:
        return None
    local = now.astimezone(tz)
    if window.allows(local.time().replace(tzinfo=None)):
        return None
    day: date = local.date()
    for _ in range(3):  # today's opening, or tomorrow's (a DST night never needs more)
        opening = local_instant(day, window.start, tz)
        if opening > now:
            return opening
        day += timedelta(days=1)
    raise AssertionError("no opening within two days")  # pragma: no cover


def hold_until(
    now: datetime,
    *,
    channel: str,
    kind: str,
    windows: Mapping[str, str],
    contact_zone: str | None,
    e164: str | None,
    org_zone: str,
) -> datetime | None:
    """When a notification decided at ``now`` may go (None: now), in its recipient's zone
    (``recipient_zone``), by the window of its kind and channel. A stored window that no longer
    parses counts as the channel's default, never as a reason to drop the message."""
    try:
        window = window_for(channel, kind, windows)
    except ValueError:
        window = window_for(channel, kind, {})
    return release_at(now, window, zone(recipient_zone(contact_zone, e164, org_zone)))


def settle_reason(*, kind: str, channel: str, pending: bool, paid: bool, opted_out: bool) -> str | None:
    """Why a held notification is settled unsent at its release (None: it goes).

    - one that is no longer pending (settled another way meanwhile) is ``not_pending``;
    - a payment reminder whose invoice was paid meanwhile is ``already_paid``;
    - an SMS to a contact who opted out meanwhile is ``opted_out``.
    """
    if not pending:
        return "not_pending"
    if kind.startswith("payment_reminder") and paid:
        return "already_paid"
    if channel == "sms" and opted_out:
        return "opted_out"
    return None
