"""The quiet-hour rules (``workers.rules.quiet_hours``), one test per sentence, on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from workers.rules.quiet_hours import Window, parse_window, release_at, window_for

HELSINKI = ZoneInfo("Europe/Helsinki")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_without_its_own_windows_sms_goes_from_8_to_21_and_email_any_time() -> None:
    assert window_for("sms", "payment_reminder", {}) == Window(time(8), time(21))
    assert window_for("email", "payment_reminder", {}) is None


def test_an_organisations_channel_window_replaces_the_default() -> None:
    assert window_for("sms", "invoice", {"sms": "09:30-18:00"}) == Window(time(9, 30), time(18))
    assert window_for("email", "invoice", {"email": "07:00-22:00"}) == Window(time(7), time(22))


def test_a_kinds_own_window_overrides_its_channels() -> None:
    windows = {"sms": "08:00-21:00", "payment_thank_you:sms": "any"}
    assert window_for("sms", "payment_thank_you", windows) is None  # exempt
    assert window_for("sms", "payment_reminder", windows) == Window(time(8), time(21))


def test_inside_the_window_a_message_goes_now() -> None:
    sms = Window(time(8), time(21))
    assert release_at(utc(2026, 12, 1, 6), sms, HELSINKI) is None  # 08:00 local: the window opens
    assert release_at(utc(2026, 12, 1, 18, 59), sms, HELSINKI) is None  # 20:59 local


def test_outside_the_window_a_message_is_held_until_it_next_opens_in_the_recipients_zone() -> None:
    sms = Window(time(8), time(21))
    assert release_at(utc(2026, 12, 1, 19), sms, HELSINKI) == utc(2026, 12, 2, 6)  # 21:00 → 08:00 next day
    assert release_at(utc(2026, 12, 1, 1), sms, HELSINKI) == utc(2026, 12, 1, 6)  # 03:00 → 08:00 same day
    # The same instant is inside New York's window (20:00 there): it goes now.
    assert release_at(utc(2026, 12, 2, 1), sms, NEW_YORK) is None


def test_quiet_hours_crossing_midnight() -> None:
    night_shift = parse_window("22:00-07:00")
    assert night_shift == Window(time(22), time(7))
    assert release_at(utc(2026, 12, 1, 21), night_shift, HELSINKI) is None  # 23:00 local
    assert release_at(utc(2026, 12, 2, 3), night_shift, HELSINKI) is None  # 05:00 local
    assert release_at(utc(2026, 12, 2, 5), night_shift, HELSINKI) == utc(2026, 12, 2, 20)  # 07:00 → 22:00


def test_a_window_ending_at_midnight() -> None:
    evening = parse_window("18:00-24:00")
    assert evening is not None
    assert str(evening) == "18:00-24:00"
    assert release_at(utc(2026, 12, 1, 21, 59), evening, HELSINKI) is None  # 23:59 local
    assert release_at(utc(2026, 12, 1, 22), evening, HELSINKI) == utc(2026, 12, 2, 16)


def test_an_opening_on_a_dst_night_is_the_moment_the_clocks_show_it() -> None:
    # New York, 8 March 2026: a window opening at 02:30 (skipped) opens when the clocks jump.
    early = Window(time(2, 30), time(21))
    assert release_at(utc(2026, 3, 8, 6), early, NEW_YORK) == utc(2026, 3, 8, 7)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "8-21",
        "08:00-25:00",
        "24:00-08:00",
        "08:00-08:00",
        "08:60-09:00",
        "08:00-24:30",
        "x" * 1000,
        "08:00\x00-21:00",
    ],
)
def test_a_bad_window_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(ValueError, match="window"):
        parse_window(bad)
