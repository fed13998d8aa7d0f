"""The quiet-hour rules (``workers.rules.quiet_hours``), one test per sentence, on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from workers.rules.quiet_hours import Window, hold_until, parse_window, release_at, settle_reason, window_for

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


# --- Holding and releasing ------------------------------------------------------------------------


def test_a_notification_decided_inside_its_window_goes_now() -> None:
    at_noon = utc(2026, 12, 1, 10)  # 12:00 in Helsinki
    assert (
        hold_until(
            at_noon,
            channel="sms",
            kind="invoice",
            windows={},
            contact_zone=None,
            e164=None,
            org_zone="Europe/Helsinki",
        )
        is None
    )


def test_a_notification_decided_in_quiet_hours_is_held_until_the_opening_in_the_recipients_zone() -> None:
    late = utc(2026, 12, 1, 20, 30)  # 22:30 in Helsinki, 05:30 in Tokyo
    held = hold_until(
        late,
        channel="sms",
        kind="invoice",
        windows={},
        contact_zone=None,
        e164="+358401234567",
        org_zone="Europe/Helsinki",
    )
    assert held == utc(2026, 12, 2, 6)  # 08:00 in Helsinki
    tokyo = hold_until(
        late,
        channel="sms",
        kind="invoice",
        windows={},
        contact_zone=None,
        e164="+819012345678",
        org_zone="Europe/Helsinki",
    )
    assert tokyo == utc(2026, 12, 1, 23)  # 08:00 in Tokyo


def test_a_stored_window_that_no_longer_parses_falls_back_to_the_default_never_drops() -> None:
    late = utc(2026, 12, 1, 20, 30)
    held = hold_until(
        late,
        channel="sms",
        kind="invoice",
        windows={"sms": "garbage"},
        contact_zone=None,
        e164=None,
        org_zone="Europe/Helsinki",
    )
    assert held == utc(2026, 12, 2, 6)


def test_at_release_a_held_reminder_whose_invoice_was_paid_is_settled_already_paid() -> None:
    assert (
        settle_reason(kind="payment_reminder", channel="sms", pending=True, paid=True, opted_out=False)
        == "already_paid"
    )
    assert (
        settle_reason(
            kind="payment_reminder.final", channel="email", pending=True, paid=True, opted_out=False
        )
        == "already_paid"
    )


def test_at_release_a_held_sms_to_a_contact_who_opted_out_is_settled_opted_out() -> None:
    assert (
        settle_reason(kind="invoice", channel="sms", pending=True, paid=False, opted_out=True) == "opted_out"
    )
    assert settle_reason(kind="invoice", channel="email", pending=True, paid=False, opted_out=True) is None


def test_at_release_a_held_notification_settled_otherwise_meanwhile_is_left_alone() -> None:
    assert (
        settle_reason(kind="invoice", channel="sms", pending=False, paid=False, opted_out=False)
        == "not_pending"
    )


def test_at_release_a_held_notification_whose_reason_stands_goes() -> None:
    assert (
        settle_reason(kind="payment_reminder", channel="sms", pending=True, paid=False, opted_out=False)
        is None
    )
    # A thank-you for a paid invoice is not a reminder: paid is no reason to hold it back.
    assert (
        settle_reason(kind="payment_thank_you", channel="sms", pending=True, paid=True, opted_out=False)
        is None
    )
