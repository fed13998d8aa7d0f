"""Failover from Twilio to Vonage through the documented settings and CLI: the Twilio sandbox in a
503 storm, the Vonage sandbox (TLS, the official SDK unchanged) taking every SMS, each once
across the two; Twilio's breaker opens, and after its cool-down a trial takes traffic back. A
timeout after Twilio took the message is reconciled at Twilio and never resent at Vonage; a
permanent 21211 never reaches Vonage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.bootstrap import Services
from infra.store.attempts import load_attempts
from producers.cli import app
from schemas.breakers import State
from schemas.notifications import Status
from tests.conftest import settings_of, wait_for
from tests.integration.conftest import SMTP_FROM
from tests.integration.test_failover import _breaker, _invoices, _recipients, _settled, pipeline

KEY, SECRET = "abcd1234", "sandbox-secret"


@pytest.fixture
def twilio_then_vonage(
    herald_env: dict[str, str], database_url: str, twilio_sandbox: Any, smtp_sandbox: Any
) -> Iterator[tuple[Services, Any, Any]]:
    from tooling.sandboxes.vonage import VonageConfig, VonageSandbox

    with VonageSandbox(VonageConfig(KEY, SECRET)) as vonage_sandbox:
        settings = settings_of(
            herald_env,
            database_url=database_url,
            twilio_base_url=twilio_sandbox.url,
            twilio_timeout_seconds=1.0,
            smtp_host=smtp_sandbox.host,
            smtp_port=smtp_sandbox.port,
            smtp_from=SMTP_FROM,
            vonage_api_key=KEY,
            vonage_api_secret=SECRET,
            vonage_rest_url=vonage_sandbox.host,
            vonage_api_url=vonage_sandbox.host,
            vonage_ca_bundle=vonage_sandbox.ca_file,
            vonage_reports_lag_seconds=0,
            vonage_from="ACME",
            send_call_attempts=1,
            # A claimed attempt counts as cut short once its window has passed, and the window is
            # made of these (10 s of Vonage timeout and 5 s of each wait by default): kept short,
            # the ambiguous timeout below is reconciled in about 18 s instead of 37.
            vonage_timeout_seconds=2,
            send_call_max_wait_seconds=0,
            sms_rate_max_wait_seconds=0.5,
            sms_breaker_failures=2,
            sms_breaker_cool_down_seconds=2,
            sms_breaker_trials=1,
        )
        with pipeline(settings) as services:
            chose = CliRunner().invoke(
                app, ["orgs", "set", "acme", "--sms-providers", "twilio,vonage"], obj=settings
            )
            assert chose.exit_code == 0, chose.output
            yield services, twilio_sandbox, vonage_sandbox


def test_a_twilio_503_storm_fails_over_to_vonage_once_each_and_traffic_returns(
    twilio_then_vonage: tuple[Services, Any, Any],
) -> None:
    services, twilio, vonage = twilio_then_vonage
    twilio.faults.fail_next(10_000, status=503, code=20503)
    _invoices(services, 1, 6)
    rows = wait_for(lambda: _settled(services, 6), timeout=60, what="six SMS settled")
    assert {r["status"] for r in rows} <= {Status.SENT, Status.DELIVERED}
    assert twilio.messages() == []
    taken = vonage.messages()
    assert sorted("+" + m["to"] for m in taken) == sorted(r["recipient"] for r in rows)  # each once
    assert {m["from"] for m in taken} == {"ACME"}  # HERALD_VONAGE_FROM
    assert {r["provider_id"] for r in rows} == {m["message_id"] for m in taken}
    assert {r["provider"] for r in rows} == {"vonage"}
    assert _breaker(services, "twilio") == State.OPEN
    with services.reading() as conn:
        attempts = load_attempts(conn, [r["id"] for r in rows])
    assert {(a["outcome"], a["provider"]) for a in attempts} <= {("retry", "twilio"), ("accepted", "vonage")}

    twilio.faults.clear()
    wait_for(lambda: _breaker(services, "twilio", now=True) == State.HALF_OPEN, what="the cool-down over")
    _invoices(services, 7, 1)
    wait_for(lambda: _settled(services, 7), timeout=30, what="the trial SMS settled")
    assert _recipients(twilio) == ["+358401000007"]
    assert _breaker(services, "twilio") == State.CLOSED
    assert len(vonage.messages()) == 6


def test_a_timeout_after_twilio_took_it_is_reconciled_at_twilio_never_resent_at_vonage(
    twilio_then_vonage: tuple[Services, Any, Any],
) -> None:
    services, twilio, vonage = twilio_then_vonage
    twilio.faults.delay_seconds = 3.0  # takes the message, answers after the client gave up (1 s)
    _invoices(services, 1, 1)
    wait_for(lambda: twilio.faults.in_flight == 1, what="the slow request under way")
    twilio.faults.delay_seconds = 0.0
    (row,) = wait_for(lambda: _settled(services, 1), timeout=60, what="the SMS reconciled")
    assert row["status"] in (Status.SENT, Status.DELIVERED)
    assert [m["sid"] for m in twilio.messages()] == [row["provider_id"]]
    assert vonage.messages() == []
    with services.reading() as conn:
        attempts = load_attempts(conn, [row["id"]])
    assert [(a["outcome"], a["provider"]) for a in attempts] == [
        ("ambiguous", "twilio"),
        ("reconciled", "twilio"),
    ]


def test_a_permanent_21211_at_twilio_never_reaches_vonage(
    twilio_then_vonage: tuple[Services, Any, Any],
) -> None:
    services, twilio, vonage = twilio_then_vonage
    twilio.faults.fail_next(1, status=400, code=21211)
    _invoices(services, 1, 1)
    (row,) = wait_for(lambda: _settled(services, 1), timeout=30, what="the refusal recorded")
    assert (row["status"], row["error_code"]) == (Status.FAILED, 21211)
    assert vonage.messages() == []
    with services.reading() as conn:
        attempts = load_attempts(conn, [row["id"]])
    assert [(a["outcome"], a["provider"]) for a in attempts] == [("refused", "twilio")]
