"""An organisation's local-time settings, checked the same way for the CLI and the API: its time
zone, local reminder hour, holiday calendar (country, subdivision, business days) and send windows.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from infra.errors import Invalid
from schemas.notifications import Channel, Kind
from workers.rules.business_days import UnknownCountry, check_country
from workers.rules.dunning import MAX_GRACE_DAYS
from workers.rules.local_time import UnknownZone, zone
from workers.rules.quiet_hours import parse_window

#: The settings this module owns (names as stored and as the API takes them).
FIELDS = (
    "timezone",
    "reminder_hour",
    "country",
    "subdivision",
    "business_days",
    "send_windows",
    "collection_grace_days",
)
_CHANNELS = tuple(str(c) for c in Channel)
_KINDS = tuple(str(k) for k in Kind)


def _text(name: str, value: Any, limit: int) -> str:
    """A short printable string, or ``Invalid`` naming ``name``."""
    if not isinstance(value, str):
        raise Invalid(f"{name}: expected a string, got {type(value).__name__}")
    if len(value) > limit:
        raise Invalid(f"{name}: at most {limit} characters")
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        raise Invalid(f"{name}: control characters are not allowed")
    return value.strip()


def parse_send_windows(items: Sequence[str]) -> dict[str, str]:
    """``["sms=08:00-21:00", "payment_thank_you:sms=any"]`` → ``{"sms": "08:00-21:00", ...}``;
    ``Invalid`` naming the bad item."""
    if len(items) > 2 * len(_CHANNELS) * (len(_KINDS) + 1):
        raise Invalid("send windows: too many")
    windows: dict[str, str] = {}
    for item in items:
        text = _text("send window", item, 80)
        target, sep, value = text.partition("=")
        if not sep:
            raise Invalid(f"send window {text!r}: expected CHANNEL=HH:MM-HH:MM, KIND:CHANNEL=… or …=any")
        windows.update(check_send_windows({target.strip(): value.strip()}))
    return windows


def check_send_windows(windows: Any) -> dict[str, str]:
    """A mapping of ``channel`` or ``kind:channel`` to a window, checked (windows normalised)."""
    if not isinstance(windows, Mapping):
        raise Invalid(f"send_windows: expected an object, got {type(windows).__name__}")
    checked: dict[str, str] = {}
    for raw_target, raw_value in windows.items():
        target = _text("send window target", raw_target, 60)
        kind, _, channel = target.rpartition(":")
        if channel not in _CHANNELS:
            raise Invalid(f"send window {target[:60]!r}: channel must be one of {', '.join(_CHANNELS)}")
        if kind and kind not in _KINDS:
            raise Invalid(f"send window {target[:60]!r}: kind must be one of {', '.join(_KINDS)}")
        value = _text(f"send window {target}", raw_value, 20)
        try:
            window = parse_window(value)
        except ValueError as exc:
            raise Invalid(f"send window {target}: {exc}") from None
        checked[target] = "any" if window is None else str(window)
    return checked


def local_time_changes(
    current: Mapping[str, Any],
    *,
    timezone: Any = None,
    reminder_hour: Any = None,
    country: Any = None,
    subdivision: Any = None,
    business_days: Any = None,
    send_windows: Mapping[str, Any] | None = None,
    clear_windows: bool = False,
    collection_grace_days: Any = None,
) -> dict[str, Any]:
    """The changes to store for the given settings (None: keep), checked against each other and
    the organisation's ``current`` settings; ``Invalid`` naming the first bad one.

    An empty ``country`` string clears the holiday calendar (and the subdivision with it).
    ``send_windows`` are merged into the current ones (``clear_windows``: replace them).
    """
    changes: dict[str, Any] = {}
    if timezone is not None:
        name = _text("timezone", timezone, 64)
        try:
            zone(name)
        except UnknownZone as exc:
            raise Invalid(f"timezone: {exc}") from None
        changes["timezone"] = name
    if reminder_hour is not None:
        if (
            isinstance(reminder_hour, bool)
            or not isinstance(reminder_hour, int)
            or not 0 <= reminder_hour <= 23
        ):
            raise Invalid(f"reminder_hour: a whole hour 0-23, got {str(reminder_hour)[:20]!r}")
        changes["reminder_hour"] = reminder_hour
    if collection_grace_days is not None:
        days = collection_grace_days
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_GRACE_DAYS:
            raise Invalid(f"collection_grace_days: whole days 0-{MAX_GRACE_DAYS}, got {str(days)[:20]!r}")
        changes["collection_grace_days"] = days
    if country is not None:
        changes["country"] = _text("country", country, 2).upper() or None
        if changes["country"] is None:
            changes["subdivision"] = None
    if subdivision is not None:
        changes["subdivision"] = _text("subdivision", subdivision, 10) or None
    if business_days is not None:
        if not isinstance(business_days, bool):
            raise Invalid(f"business_days: true or false, got {type(business_days).__name__}")
        changes["business_days"] = business_days
    merged = {**current, **changes}
    if merged.get("country"):
        try:
            changes["country"], subdiv = check_country(merged["country"], merged.get("subdivision"))
        except UnknownCountry as exc:
            raise Invalid(str(exc)) from None
        if "subdivision" in changes or subdiv != merged.get("subdivision"):
            changes["subdivision"] = subdiv
    elif merged.get("subdivision"):
        raise Invalid("subdivision: set a country first (--country FI)")
    if merged.get("business_days") and not merged.get("country"):
        raise Invalid("business_days: needs a country for its public holidays (--country FI)")
    if send_windows is not None or clear_windows:
        base = {} if clear_windows else dict(current.get("send_windows") or {})
        changes["send_windows"] = {**base, **check_send_windows(send_windows or {})} or None
    return changes


def local_time_view(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The local-time part of an organisation's stored settings."""
    return {name: settings.get(name) for name in FIELDS}
