"""``herald orgs set`` with the local-time options, and ``herald orgs reminders set`` with business-day
offsets: good values stored, hostile ones refused naming the option, nothing changed."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from infra.bootstrap import Services
from infra.store.organisations import org_settings
from infra.store.reminders import load_business_offsets, load_offsets
from producers.cli import app


def _run(store: Services, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), obj=store.settings)
    return result.exit_code, result.output


def test_orgs_set_stores_the_zone_hour_calendar_and_windows(store: Services) -> None:
    code, output = _run(
        store,
        "orgs", "set", "acme",
        "--timezone", "Europe/Helsinki",
        "--reminder-hour", "8",
        "--country", "FI",
        "--business-days",
        "--send-window", "sms=08:00-21:00",
        "--send-window", "email=any",
        "--send-window", "payment_thank_you:sms=any",
    )  # fmt: skip
    assert code == 0, output
    shown = json.loads(output)
    assert (shown["timezone"], shown["reminder_hour"], shown["country"], shown["business_days"]) == (
        "Europe/Helsinki",
        8,
        "FI",
        True,
    )
    assert shown["send_windows"] == {"sms": "08:00-21:00", "email": "any", "payment_thank_you:sms": "any"}
    code, output = _run(
        store, "orgs", "set", "acme", "--reset-send-windows", "--send-window", "sms=09:00-17:00"
    )
    assert code == 0, output
    with store.reading() as conn:
        assert org_settings(conn, "acme")["send_windows"] == {"sms": "09:00-17:00"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--timezone", "Mars/Olympus"), "timezone"),
        (("--timezone", "../../etc/passwd"), "timezone"),
        (("--timezone", "Europe/Helsinki\x1b[2J"), "control characters"),
        (("--reminder-hour", "24"), "reminder_hour"),
        (("--reminder-hour", "99999999999999999999"), "reminder_hour"),
        (("--country", "XX"), "country"),
        (("--business-days",), "business_days"),
        (("--send-window", "sms=08:00-25:00"), "send window"),
        (("--send-window", "sms"), "send window"),
        (("--send-window", "fax=any"), "channel"),
        (("--send-window", "sms=" + "9" * 10_000), "send window"),
    ],
)
def test_orgs_set_refuses_hostile_values_naming_them_and_changes_nothing(
    store: Services, args: tuple[str, ...], says: str
) -> None:
    code, output = _run(store, "orgs", "set", "acme", "--locale", "fi", *args)
    assert code == 2, output
    assert says in output, output
    with store.reading() as conn:
        settings = org_settings(conn, "acme")
    assert settings["default_locale"] is None  # the good option beside it was not applied either
    assert settings["timezone"] is None


def test_reminder_offsets_may_count_business_days(store: Services) -> None:
    code, output = _run(store, "orgs", "reminders", "set", "acme", "-3", "+3b", "+10b=final")
    assert code == 0, output
    assert "+3 business days" in output
    with store.reading() as conn:
        assert load_offsets(conn, "acme")["acme"] == {-3: None, 3: None, 10: "final"}
        assert load_business_offsets(conn, "acme") == {"acme": frozenset({3, 10})}
