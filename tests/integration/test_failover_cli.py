"""``herald orgs set --sms-providers`` (each provider with its own sender and rate) and the
breakers in ``herald status``: good values stored, hostile ones refused naming the option,
nothing changed."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from infra.bootstrap import Services
from infra.store.organisations import load_org, org_settings
from producers.cli import app
from schemas.providers import SmsProvider
from workers.breakers import record_signals
from workers.rules.breaker import Policy, Signal


def _run(store: Services, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), obj=store.settings)
    return result.exit_code, result.output


def _providers(store: Services) -> object:
    with store.reading() as conn:
        return org_settings(conn, "acme")["sms_providers"]


def test_an_organisation_that_never_chose_sends_through_twilio_alone(store: Services) -> None:
    with store.reading() as conn:
        assert load_org(conn, "acme", "FI").sms_providers == ()
    assert _providers(store) is None


def test_the_ordered_list_with_a_sender_and_a_rate_per_provider_is_stored(store: Services) -> None:
    code, output = _run(store, "orgs", "set", "acme", "--sms-providers", "twilio,vonage")
    assert code == 0, output
    assert json.loads(output)["sms_providers"] == [
        {"name": "twilio", "sender": None, "rate": None},
        {"name": "vonage", "sender": None, "rate": None},
    ]
    code, output = _run(
        store, "orgs", "set", "acme",
        "--provider-sender", "vonage=ACME",
        "--provider-rate", "vonage=10",
        "--provider-sender", "twilio=+358401234567",
    )  # fmt: skip
    assert code == 0, output
    # A new order keeps each provider's own sender and rate.
    code, output = _run(store, "orgs", "set", "acme", "--sms-providers", "vonage,twilio")
    assert code == 0, output
    with store.reading() as conn:
        assert load_org(conn, "acme", "FI").sms_providers == (
            SmsProvider("vonage", "ACME", 10.0),
            SmsProvider("twilio", "+358401234567", None),
        )
    code, output = _run(store, "orgs", "set", "acme", "--provider-sender", "vonage=")
    assert code == 0, output
    assert json.loads(output)["sms_providers"][0] == {"name": "vonage", "sender": None, "rate": 10.0}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--sms-providers", "twilio,sinch"), "'sinch': expected one of twilio, vonage"),
        (("--sms-providers", "twilio,twilio"), "listed twice"),
        (("--sms-providers", ""), "sms provider ''"),
        (("--sms-providers", "twilio,,vonage"), "sms provider ''"),
        (("--sms-providers", "TWILIO"), "a lower-case name"),
        (("--sms-providers", "twilio\x1b[2J"), "a lower-case name"),
        (("--sms-providers", "x" * 100_000), "a lower-case name"),
        (("--sms-providers", "../../etc/passwd"), "a lower-case name"),
        (("--provider-sender", "vonage=ACME"), "'vonage' is not in the list"),
        (("--provider-sender", "twilio"), "expected PROVIDER=VALUE"),
        (("--provider-sender", "twilio=not a sender!"), "an E.164 number"),
        (("--provider-sender", "twilio=ACME\x00"), "an E.164 number"),
        (("--provider-sender", "twilio=+0123"), "an E.164 number"),
        (("--provider-rate", "twilio=fast"), "a number of segments per second"),
        (("--provider-rate", "twilio=-1"), "between 0 and"),
        (("--provider-rate", "twilio=nan"), "a number of segments per second"),
        (("--provider-rate", "twilio=inf"), "a number of segments per second"),
        (("--provider-rate", "twilio=1e308"), "between 0 and"),
    ],
)
def test_hostile_provider_settings_are_refused_naming_what_is_wrong(
    store: Services, args: tuple[str, ...], says: str
) -> None:
    code, output = _run(store, "orgs", "set", "acme", *args)
    assert code == 2
    said = " ".join("".join(c for c in output if c not in "│╭╮╰╯─").split())
    assert says in said
    assert len(said) < 1000  # a huge value is not echoed whole
    assert _providers(store) is None  # nothing changed


def test_status_shows_each_providers_breaker(store: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    from producers.cli import status

    policy = Policy(failures=1, cool_down=3600)
    with store.transaction() as conn:
        record_signals(conn, policy, 1_700_000_000.0, [("twilio", Signal.FAILURE)])
    monkeypatch.setattr(status, "cli_services", lambda: store)
    shown = status.breakers(store.settings.model_copy(update={"sms_breaker_failures": 1}))
    assert shown is not None
    (twilio,) = shown
    assert (twilio["provider"], twilio["failures"], twilio["trials"]) == ("twilio", 0, 0)
    assert twilio["since"] == "2023-11-14T22:13:20+00:00"
    # Long past its cool-down (of HERALD_SMS_BREAKER_COOL_DOWN_SECONDS): half-open now.
    assert twilio["state"] == "half_open"


def test_status_json_lists_the_breakers_beside_the_queues(store: Services) -> None:
    with store.transaction() as conn:
        record_signals(conn, Policy(failures=1, cool_down=3600), time.time(), [("backup", Signal.FAILURE)])
    code, output = _run(store, "status", "--json")
    assert code == 0, output
    shown = json.loads(output)
    assert "stages" in shown
    (backup,) = shown["breakers"]
    assert (backup["provider"], backup["state"]) == ("backup", "open")
    assert 0 < backup["reopens_in_s"] <= 30  # HERALD_SMS_BREAKER_COOL_DOWN_SECONDS' default
