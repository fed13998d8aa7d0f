"""Delivery you can trust, on the real broker and the Twilio sandbox: retries, Retry-After,
permanent codes, opt-out and giving up, each visible in history."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from infra.bootstrap import Services
from infra.store.history import invoice_history
from infra.store.tables import notifications
from producers.publisher import Publisher
from schemas.notifications import Status
from tests.conftest import wait_for
from tests.factories import customer, invoice_created
from tests.integration.conftest import import_customers, publish

SETTLED = (Status.SENT, Status.DELIVERED, Status.FAILED, Status.SKIPPED)


def _sms(services: Services, invoice_id: str = "INV-1") -> dict[str, Any] | None:
    """The invoice's one SMS notification once it has settled."""
    with services.transaction() as conn:
        rows = conn.execute(
            select(notifications).where(
                notifications.c.channel == "sms", notifications.c.invoice_id == invoice_id
            )
        ).mappings()
        settled = [dict(r) for r in rows if r["status"] in SETTLED]
    return settled[0] if settled else None


def _published_while_failing(
    services: Services, twilio_sandbox: Any, times: int, what: str = "the SMS settled", **fault: Any
) -> dict[str, Any]:
    """Customer C1 imported, the sandbox told to fail its next ``times`` requests (``fault``:
    ``fail_next``'s status, code, retry_after), one invoice published; its SMS once settled."""
    import_customers(services, customer())
    twilio_sandbox.faults.fail_next(times, **fault)
    publish(services.settings, invoice_created())
    return wait_for(lambda: _sms(services), timeout=60, what=what)


def _attempts(services: Services, invoice_id: str = "INV-1") -> list[dict[str, Any]]:
    with services.transaction() as conn:
        timeline = invoice_history(conn, invoice_id)["timeline"]
    return [e for e in timeline if e["what"] == "attempt" and e["channel"] == "sms"]


def test_three_500s_then_201_send_exactly_one_sms_and_history_shows_the_retries(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    row = _published_while_failing(pipeline, twilio_sandbox, 3, status=500, code=20500)
    assert row["status"] in (Status.SENT, Status.DELIVERED)
    assert len(twilio_sandbox.messages()) == 1
    assert [status for _, status in twilio_sandbox.faults.log] == [500, 500, 500, 201]
    attempts = _attempts(pipeline)
    assert [(a["outcome"], a["http_status"]) for a in attempts] == [
        ("retry", 500),
        ("retry", 500),
        ("retry", 500),
        ("accepted", None),
    ]
    assert attempts[-1]["detail"] == row["provider_id"]


def test_a_429_with_retry_after_is_waited_out_and_sends_exactly_one_sms(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    _published_while_failing(pipeline, twilio_sandbox, 1, status=429, code=20429, retry_after=2)
    (refused_at, first), (accepted_at, second) = twilio_sandbox.faults.log
    assert (first, second) == (429, 201)
    assert accepted_at - refused_at >= 2.0
    assert len(twilio_sandbox.messages()) == 1
    (retry, accepted) = _attempts(pipeline)
    assert (retry["outcome"], retry["http_status"], retry["error_code"], retry["retry_after"]) == (
        "retry",
        429,
        20429,
        2.0,
    )
    assert accepted["outcome"] == "accepted"


def test_a_retry_after_longer_than_the_in_call_wait_goes_back_to_the_queue(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    pipeline.settings = pipeline.settings.model_copy(update={"send_call_max_wait_seconds": 0.5})
    _published_while_failing(pipeline, twilio_sandbox, 1, status=429, code=20429, retry_after=1.5)
    (refused_at, _), (accepted_at, _) = twilio_sandbox.faults.log
    assert accepted_at - refused_at >= 1.5
    assert len(twilio_sandbox.messages()) == 1


PERMANENT = [21211, 21408, 21612, 21614, 21635, 30004, 30005, 30006, 30007]


def test_each_permanent_code_is_failed_with_that_code_and_never_retried(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    import_customers(pipeline, *[customer(f"C{code}") for code in PERMANENT])
    with Publisher(pipeline.settings) as publisher:
        for code in PERMANENT:
            # One at a time, so each planned refusal meets its own event.
            twilio_sandbox.faults.fail_next(1, status=400, code=code)
            publisher.publish(invoice_created(f"evt_{code}", id=f"INV-{code}", customer_id=f"C{code}"))
            row = wait_for(
                lambda c=code: _sms(pipeline, f"INV-{c}"), timeout=30, what=f"code {code} recorded"
            )
            assert (row["status"], row["error_code"], row["attempts"]) == (Status.FAILED, code, 1)
            (attempt,) = _attempts(pipeline, f"INV-{code}")
            assert (attempt["outcome"], attempt["error_code"]) == ("refused", code)
    assert len(twilio_sandbox.faults.log) == len(PERMANENT)  # not one retry
    assert twilio_sandbox.messages() == []


def test_21610_opts_the_contact_out_and_the_next_event_skips_it(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    import_customers(pipeline, customer())
    twilio_sandbox.faults.fail_next(1, status=400, code=21610)
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(invoice_created())
        row = wait_for(lambda: _sms(pipeline), timeout=30, what="the STOP refusal")
        assert (row["status"], row["error_code"]) == (Status.FAILED, 21610)
        publisher.publish(invoice_created("evt_2", id="INV-2"))
    second = wait_for(lambda: _sms(pipeline, "INV-2"), timeout=30, what="the next event decided")
    assert (second["status"], second["reason"]) == (Status.SKIPPED, "opted_out")
    assert len(twilio_sandbox.faults.log) == 1


@pytest.mark.parametrize("status", [503, 429])
def test_a_storm_that_outlasts_the_deadline_ends_failed_gave_up(
    pipeline: Services, twilio_sandbox: Any, status: int
) -> None:
    pipeline.settings = pipeline.settings.model_copy(update={"send_retry_deadline_seconds": 2.0})
    row = _published_while_failing(
        pipeline,
        twilio_sandbox,
        1000,
        status=status,
        code=20429 if status == 429 else None,
        what="the notification given up",
    )
    assert row["status"] == Status.FAILED
    assert twilio_sandbox.messages() == []
    attempts = _attempts(pipeline)
    assert attempts[-1]["outcome"] == "gave_up"
    assert all(a["outcome"] == "retry" for a in attempts[:-1])
    assert len(attempts) == len(twilio_sandbox.faults.log) >= 3
    with pipeline.transaction() as conn:
        timeline = invoice_history(conn, "INV-1")["timeline"]
    failed = [e for e in timeline if e["what"] == "failed"]
    assert failed
    assert failed[0]["detail"].startswith("gave_up")


def test_the_sms_goes_from_the_organisations_own_sender(pipeline: Services, twilio_sandbox: Any) -> None:
    from infra.store.organisations import update_org

    with pipeline.transaction() as conn:
        update_org(conn, "acme", {"sender_number": "+358401110000"})
    import_customers(pipeline, customer())
    publish(pipeline.settings, invoice_created())
    wait_for(lambda: _sms(pipeline), timeout=30, what="the SMS sent")
    (message,) = twilio_sandbox.messages()
    assert message["from"] == "+358401110000"


def test_a_disconnected_twilio_integration_sends_nothing_and_says_so(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    from datetime import UTC, datetime

    from infra.store.integrations import mark_disconnected

    with pipeline.transaction() as conn:
        mark_disconnected(conn, "twilio", datetime.now(UTC))
    import_customers(pipeline, customer())
    publish(pipeline.settings, invoice_created())
    row = wait_for(lambda: _sms(pipeline), timeout=30, what="the SMS decided")
    assert row["status"] == Status.SKIPPED
    assert twilio_sandbox.faults.log == []
