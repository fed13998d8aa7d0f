"""The organisation's local-time settings as the CLI and the API check them
(``producers.operations.local_time``): good values stored normalised, hostile ones refused naming
what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from infra.errors import Invalid
from infra.store.organisations import DEFAULTS
from producers.cli.reminders_cmd import parse_schedule
from producers.operations.local_time import local_time_changes, parse_send_windows


def changes(**kwargs: Any) -> dict[str, Any]:
    return local_time_changes(dict(DEFAULTS), **kwargs)


def test_good_settings_are_stored_normalised() -> None:
    assert changes(timezone="Europe/Helsinki", reminder_hour=8) == {
        "timezone": "Europe/Helsinki",
        "reminder_hour": 8,
    }
    assert changes(country="fi", business_days=True) == {"country": "FI", "business_days": True}
    assert changes(country="US", subdivision="ny") == {"country": "US", "subdivision": "NY"}
    assert parse_send_windows(["sms=08:00-21:00", "email=ANY", "payment_thank_you:sms=any"]) == {
        "sms": "08:00-21:00",
        "email": "any",
        "payment_thank_you:sms": "any",
    }


def test_send_windows_merge_into_the_current_ones_unless_replaced() -> None:
    current = {**DEFAULTS, "send_windows": {"sms": "09:00-20:00", "email": "08:00-22:00"}}
    merged = local_time_changes(current, send_windows={"sms": "08:00-21:00"})
    assert merged == {"send_windows": {"sms": "08:00-21:00", "email": "08:00-22:00"}}
    assert local_time_changes(current, send_windows={}, clear_windows=True) == {"send_windows": None}


def test_an_empty_country_clears_the_calendar() -> None:
    current = {**DEFAULTS, "country": "US", "subdivision": "NY"}
    assert local_time_changes(current, country="") == {"country": None, "subdivision": None}


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../../etc/passwd"}, "timezone"),
        ({"timezone": "Europe/Helsinki\n"}, "timezone"),
        ({"timezone": "Europe/Hel\x00sinki"}, "timezone"),
        ({"timezone": "E" * 100_000}, "timezone"),
        ({"timezone": 3}, "timezone"),
        ({"timezone": b"Europe/Helsinki"}, "timezone"),
        ({"reminder_hour": 24}, "reminder_hour"),
        ({"reminder_hour": -1}, "reminder_hour"),
        ({"reminder_hour": 10**100}, "reminder_hour"),
        ({"reminder_hour": True}, "reminder_hour"),
        ({"reminder_hour": "9"}, "reminder_hour"),
        ({"collection_grace_days": 61}, "collection_grace_days"),
        ({"collection_grace_days": -1}, "collection_grace_days"),
        ({"collection_grace_days": 2.5}, "collection_grace_days"),
        ({"country": "XX"}, "country"),
        ({"country": "FIN"}, "country"),
        ({"country": "F\x07"}, "country"),
        ({"country": "US", "subdivision": "ZZ"}, "subdivision"),
        ({"subdivision": "NY"}, "subdivision"),
        ({"business_days": True}, "business_days"),
        ({"business_days": "yes"}, "business_days"),
        ({"send_windows": {"sms": "08:00-25:00"}}, "send window sms"),
        ({"send_windows": {"fax": "any"}}, "channel"),
        ({"send_windows": {"refund:sms": "any"}}, "kind"),
        ({"send_windows": {"sms": "any\x1b[31m"}}, "control"),
        ({"send_windows": {"sms": ["08:00-21:00"]}}, "string"),
        ({"send_windows": ["sms=any"]}, "send_windows"),
        ({"send_windows": {"sms": "0" * 100_000}}, "send window sms"),
    ],
)
def test_hostile_settings_are_refused_naming_what_is_wrong(kwargs: dict[str, Any], names: str) -> None:
    with pytest.raises(Invalid, match=names):
        changes(**kwargs)


@pytest.mark.parametrize("bad", ["sms", "sms:08:00-21:00", "=any", "sms=\x00", "s" * 1000])
def test_a_bad_send_window_option_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(Invalid, match="send window"):
        parse_send_windows([bad])


def test_offsets_may_be_given_in_business_days() -> None:
    assert parse_schedule(["-3", "+3b", "+10b=final"], None) == ({-3: None, 3: None, 10: "final"}, {3, 10})


def test_a_contact_may_carry_its_own_time_zone_in_the_directory_import() -> None:
    from pydantic import ValidationError

    from schemas.directory import Contact

    assert Contact(contact_id="P1", timezone="Asia/Tokyo").timezone == "Asia/Tokyo"
    assert Contact(contact_id="P1").timezone is None
    for bad in ("Mars/Olympus", "../etc/passwd", "Asia/Tokyo\x00", "x" * 1000, "Asia/\u202eTokyo"):
        with pytest.raises(ValidationError, match="timezone"):
            Contact(contact_id="P1", timezone=bad)
