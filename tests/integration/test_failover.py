"""Failover between two SMS providers on the real broker and store: two Twilio-compatible
sandboxes, the second registered under another name ("backup"), the organisation listing both.

A 503 storm at the first opens its breaker and traffic goes to the second, every SMS sent exactly
once across the two; once the first recovers, a half-open trial closes its breaker and traffic
returns. An ambiguous timeout at the first is reconciled there, never resent at the second; a
permanent 21211 does not fail over."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
import pytest
from sqlalchemy import select

from infra import topology
from infra.adapters.sms import TwilioSms
from infra.bootstrap import Services, bootstrap, shutdown
from infra.broker import Emitter, build_broker
from infra.settings import Settings
from infra.store.attempts import load_attempts
from infra.store.breakers import all_breakers
from infra.store.organisations import update_org
from infra.store.tables import notifications, send_rate
from schemas.breakers import State
from schemas.notifications import Status
from tests.conftest import settings_of, wait_for
from tests.factories import customer, invoice_created
from tests.integration.conftest import SMTP_FROM, cut_short, import_customers, publish
from workers.breakers import policy_of, state_now
from workers.registry import declare

SETTLED = (Status.SENT, Status.DELIVERED, Status.FAILED, Status.SKIPPED)
COOL_DOWN = 2.0


@pytest.fixture
def failover(
    herald_env: dict[str, str], database_url: str, twilio_sandbox: Any, smtp_sandbox: Any
) -> Iterator[tuple[Services, Any, Any]]:
    """The pipeline with two SMS providers: ``twilio`` (the usual sandbox) and ``backup`` (a
    second sandbox), listed in that order for ``acme``; breakers that open after two failures."""
    from tooling.sandboxes.twilio import SandboxConfig, TwilioSandbox

    sid, token = herald_env["HERALD_TWILIO_ACCOUNT_SID"], herald_env["HERALD_TWILIO_AUTH_TOKEN"]
    with TwilioSandbox(SandboxConfig(sid, token)) as backup_sandbox:
        settings = settings_of(
            herald_env,
            database_url=database_url,
            twilio_base_url=twilio_sandbox.url,
            twilio_timeout_seconds=1.0,
            smtp_host=smtp_sandbox.host,
            smtp_port=smtp_sandbox.port,
            smtp_from=SMTP_FROM,
            send_call_attempts=1,
            send_call_max_wait_seconds=0,  # one try: no in-call waits, and a shorter in-flight window
            sms_rate_max_wait_seconds=0.5,
            sms_breaker_failures=2,
            sms_breaker_window_seconds=60,
            sms_breaker_cool_down_seconds=COOL_DOWN,
            sms_breaker_trials=1,
        )
        backup = TwilioSms(sid, token, backup_sandbox.url, 1.0, concurrency=4)
        try:
            with pipeline(settings, sms_gateways={"backup": backup}) as services:
                with services.transaction() as conn:
                    backup_own = {"name": "backup", "sender": "ACME", "rate": 1000}  # its own sender, rate
                    update_org(conn, "acme", {"sms_providers": [{"name": "twilio"}, backup_own]})
                yield services, twilio_sandbox, backup_sandbox
        finally:
            backup.close()


@contextmanager
def pipeline(settings: Settings, **given: Any) -> Iterator[Services]:
    """Every stage on the real broker, in a worker of this process, for as long as the block runs;
    ``given``: what ``bootstrap`` takes besides the emitter (other SMS gateways).

    On queues of the test's own: notification ids derive from the event, so every test's SMS has
    the same id, and a message a test before left in flight (a retry coming back) must not reach
    this test's notification."""
    settings = settings.model_copy(update={"queue_prefix": f"{settings.queue_prefix}-{uuid.uuid4().hex[:8]}"})
    broker = build_broker(settings, services=lambda: services)
    services = bootstrap(settings, emitter=Emitter(broker, settings.queue_prefix), **given)
    declare(broker, lambda: services, topology.STAGES, queue_prefix=settings.queue_prefix)
    broker.flush_all()
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
    worker.start()
    try:
        yield services
    finally:
        worker.stop()
        broker.flush_all()
        broker.close()
        shutdown(services)


def _customers(first: int, count: int) -> list[dict[str, Any]]:
    return [
        customer(
            f"C{i}",
            contacts=[
                {"contact_id": f"P{i}", "primary": True, "name": "Aino", "mobile": f"+358 40 1{i:06d}"}
            ],
        )
        for i in range(first, first + count)
    ]


def _invoices(services: Services, first: int, count: int) -> None:
    import_customers(services, *_customers(first, count))
    publish(
        services.settings,
        *[
            invoice_created(f"evt_{i}", id=f"INV-{i}", customer_id=f"C{i}")
            for i in range(first, first + count)
        ],
    )


def _settled(services: Services, count: int) -> list[dict[str, Any]] | None:
    with services.reading() as conn:
        rows = [
            dict(r)
            for r in conn.execute(select(notifications).where(notifications.c.channel == "sms")).mappings()
        ]
    done = [r for r in rows if r["status"] in SETTLED]
    return done if len(done) == count else None


def _breaker(services: Services, provider: str, *, now: bool = False) -> State | None:
    """The provider's breaker as stored (``now``: as it stands now, past its cool-down or not)."""
    with services.reading() as conn:
        found = all_breakers(conn).get(provider)
    if found is None:
        return None
    return state_now(found[0], policy_of(services.settings), time.time()) if now else found[0].state


def _recipients(sandbox: Any) -> list[str]:
    return [m["to"] for m in sandbox.messages()]


def test_a_503_storm_opens_the_breaker_traffic_fails_over_once_each_and_returns_after_a_trial(
    failover: tuple[Services, Any, Any],
) -> None:
    services, twilio, backup = failover
    twilio.faults.fail_next(10_000, status=503, code=20503)
    _invoices(services, 1, 8)
    rows = wait_for(lambda: _settled(services, 8), timeout=60, what="eight SMS settled")
    assert {r["status"] for r in rows} <= {Status.SENT, Status.DELIVERED}
    assert _breaker(services, "twilio") == State.OPEN
    # Exactly once across the two: Twilio took none, the backup each one once.
    assert twilio.messages() == []
    assert sorted(_recipients(backup)) == sorted(r["recipient"] for r in rows)
    assert {r["provider"] for r in rows} == {"backup"}
    # The backup's own sender, paced on its own timeline (the deployment's rates are off).
    assert {m["from"] for m in backup.messages()} == {"ACME"}
    with services.reading() as conn:
        timelines = {row.sender for row in conn.execute(select(send_rate))}
    assert timelines == {"backup:ACME"}
    with services.reading() as conn:
        attempts = load_attempts(conn, [r["id"] for r in rows])
    tried_twilio = [a for a in attempts if a["provider"] == "twilio"]
    assert tried_twilio, "the storm was met at twilio before the breaker opened"
    assert {a["outcome"] for a in tried_twilio} == {"retry"}
    assert {a["http_status"] for a in tried_twilio} == {503}
    accepted = [a for a in attempts if a["outcome"] == "accepted"]
    assert len(accepted) == 8
    assert {a["provider"] for a in accepted} == {"backup"}

    # Twilio recovers: after the cool-down one trial goes there, succeeds, and closes the breaker.
    twilio.faults.clear()
    wait_for(
        lambda: _breaker(services, "twilio") == State.OPEN and len(twilio.faults.log) > 0,
        what="the storm over",
    )
    wait_for(lambda: _breaker(services, "twilio", now=True) == State.HALF_OPEN, what="the cool-down over")
    _invoices(services, 9, 1)
    wait_for(lambda: _settled(services, 9), timeout=30, what="the trial SMS settled")
    assert _recipients(twilio) == ["+358401000009"]
    assert _breaker(services, "twilio") == State.CLOSED
    _invoices(services, 10, 3)
    wait_for(lambda: _settled(services, 12), timeout=30, what="traffic back at twilio")
    assert sorted(_recipients(twilio)) == [f"+3584010000{i:02d}" for i in (9, 10, 11, 12)]
    assert {m["from"] for m in twilio.messages()} == {services.settings.twilio_from}
    assert len(backup.messages()) == 8


def test_an_ambiguous_timeout_is_reconciled_at_its_provider_and_never_resent_at_the_other(
    failover: tuple[Services, Any, Any],
) -> None:
    services, twilio, backup = failover
    twilio.faults.delay_seconds = 3.0  # takes the message, answers after the client gave up
    _invoices(services, 1, 1)
    wait_for(lambda: twilio.faults.in_flight == 1, what="the slow request under way")
    twilio.faults.delay_seconds = 0.0
    (row,) = wait_for(lambda: _settled(services, 1), timeout=60, what="the SMS reconciled")
    assert row["status"] in (Status.SENT, Status.DELIVERED)
    assert row["provider"] is None  # Twilio: only another provider is written
    assert len(twilio.messages()) == 1
    assert row["provider_id"] == twilio.messages()[0]["sid"]
    assert backup.messages() == []
    with services.reading() as conn:
        attempts = load_attempts(conn, [row["id"]])
    assert [(a["outcome"], a["provider"]) for a in attempts] == [
        ("ambiguous", "twilio"),
        ("reconciled", "twilio"),
    ]


def test_a_permanent_21211_does_not_fail_over(failover: tuple[Services, Any, Any]) -> None:
    services, twilio, backup = failover
    twilio.faults.fail_next(1, status=400, code=21211)
    _invoices(services, 1, 1)
    (row,) = wait_for(lambda: _settled(services, 1), timeout=30, what="the refusal recorded")
    assert (row["status"], row["error_code"], row["provider"]) == (Status.FAILED, 21211, None)
    assert backup.messages() == []
    assert backup.faults.log == []
    with services.reading() as conn:
        attempts = load_attempts(conn, [row["id"]])
    assert [(a["outcome"], a["provider"], a["error_code"]) for a in attempts] == [
        ("refused", "twilio", 21211)
    ]
    assert _breaker(services, "twilio") in (None, State.CLOSED)


def test_a_crash_after_the_second_provider_took_it_is_reconciled_there_not_resent_anywhere(
    failover: tuple[Services, Any, Any],
) -> None:
    from schemas.messages import NotificationRendered

    services, twilio, backup = failover
    twilio.faults.fail_next(10_000, status=503, code=20503)
    _invoices(services, 1, 3)
    rows = wait_for(lambda: _settled(services, 3), timeout=60, what="three SMS sent at the backup")
    twilio.faults.clear()  # twilio is fine again: a blind resend would now go there
    crashed = next(r for r in rows if r["provider"] == "backup")
    cut_short(services, crashed["id"])  # as if the worker died before recording the backup's answer
    services.emitter.emit(NotificationRendered(notification_id=crashed["id"]))

    def reconciled() -> dict[str, Any] | None:
        with services.reading() as conn:
            row = (
                conn.execute(select(notifications).where(notifications.c.id == crashed["id"]))
                .mappings()
                .one()
            )
        return dict(row) if row["provider_id"] else None

    again = wait_for(reconciled, timeout=30, what="the attempt reconciled at the backup")
    assert again["provider_id"] == crashed["provider_id"]
    assert twilio.messages() == []
    assert sorted(_recipients(backup)) == sorted(r["recipient"] for r in rows)  # each once
    with services.reading() as conn:
        attempts = load_attempts(conn, [crashed["id"]])
    assert (attempts[-1]["outcome"], attempts[-1]["provider"]) == ("reconciled", "backup")
