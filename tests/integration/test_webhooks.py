"""Signed webhooks back to the upstream, on both stores: every outward event type, written by the
store function that writes it in production, reaches the receiver sandbox signed and verified by
the ``standardwebhooks`` library, in order per notification; failures, pauses, rotation, replay."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from infra.bootstrap import Services, bootstrap, shutdown
from infra.settings import Settings
from infra.store.notifications import StatusChange, apply_statuses
from infra.store.tables import status_outbox
from producers.webhooks.runner import WebhookRunner
from schemas.notifications import Status
from schemas.status_events import StatusEventType, validate_status_event
from tests.conftest import RUN_PREFIX, TEST_AMQP_URL, wait_for
from tests.integration.webhook_helpers import every_event_type, receiver_with_endpoint
from tooling.sandboxes.webhook_receiver import Received

FAST = {
    "webhook_retry_base_seconds": 0.2,
    "webhook_retry_max_seconds": 1.0,
    "webhook_poll_seconds": 0.05,
    "status_exchange": False,
}


@pytest.fixture
def webhook_fields() -> dict[str, Any]:
    """Settings a test adds to ``FAST`` (override it)."""
    return {}


@pytest.fixture
def hooks(database_url: str, webhook_fields: dict[str, Any]) -> Iterator[Services]:
    """Services on a fresh store with fast retries."""
    fields: dict[str, Any] = {**FAST, **webhook_fields}
    settings = Settings(database_url=database_url, amqp_url=TEST_AMQP_URL, queue_prefix=RUN_PREFIX, **fields)  # type: ignore[arg-type]
    services = bootstrap(settings)
    yield services
    shutdown(services)


def _until(runner: WebhookRunner, check: Any, timeout: float = 30.0, what: str = "deliveries") -> Any:
    def step() -> Any:
        runner.round()
        return check()

    return wait_for(step, timeout=timeout, interval=0.05, what=what)


def _by_subject(received: list[Received]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in received:
        data = r.payload["data"]
        subject = data.get("notification_id") or data.get("payment_id") or data.get("mandate_id") or ""
        out.setdefault(subject, []).append(r.payload["type"])
    return out


def test_every_event_type_reaches_the_receiver_signed_verified_and_in_order(hooks: Services) -> None:
    with receiver_with_endpoint(hooks) as (receiver, _endpoint):
        ids = every_event_type(hooks)
        runner = WebhookRunner(hooks)
        try:
            wanted = {t.value for t in StatusEventType}
            _until(runner, lambda: wanted <= {r.type for r in receiver.state.accepted()})
        finally:
            runner.close()
        got = receiver.state.accepted()
        assert all(r.verified for r in receiver.state.received)  # nothing came unsigned or forged
        for r in got:
            validate_status_event(r.payload)  # the published JSON Schema's models
            assert r.webhook_id == r.payload["id"]
            assert "+358401234567" not in str(r.payload)
            assert "aino@example.fi" not in str(r.payload)
        order = _by_subject(got)
        assert order[ids["sms"]] == ["notification.decided", "notification.sent", "notification.delivered"]
        assert order[ids["email"]] == ["notification.decided", "notification.failed"]
        assert order[ids["second_sms"]] == [
            "notification.decided",
            "notification.held",
            "notification.sent",
            "notification.undelivered",
        ]
        assert order[ids["skip"]] == ["notification.decided"]
        assert order[ids["setup"]] == ["notification.decided", "notification.sent", "mandate.setup_link_sent"]
        assert order["PM1"] == ["payment.created", "payment.status_changed"]
        assert order["MD1"] == ["mandate.status_changed", "mandate.status_changed"]
        skip = next(r for r in got if r.payload["data"].get("notification_id") == ids["skip"])
        assert (
            skip.payload["data"].items()
            >= {
                "decision": "skip",
                "reason": "no_mobile_number",
                "contact_id": "P3",
            }.items()
        )
        failed = next(r for r in got if r.type == "notification.failed")
        assert failed.payload["data"]["code"] == 550
        assert failed.payload["data"]["recipient"] == "a***@example.fi"
        sent = next(
            r
            for r in got
            if r.type == "notification.sent" and r.payload["data"]["notification_id"] == ids["sms"]
        )
        assert (
            sent.payload["data"].items()
            >= {
                "org_id": "acme",
                "invoice_id": "INV-1",
                "customer_id": "C1",
                "contact_id": "P1",
                "event_id": "evt_1",
                "recipient": "+358*******67",
                "provider_id": "SM1",
            }.items()
        )
        assert receiver.state.duplicates() == 0


def _outbox_rows(services: Services) -> int:
    with services.reading() as conn:
        return int(conn.execute(select(func.count()).select_from(status_outbox)).scalar_one())


def test_writing_the_same_change_twice_makes_one_event(hooks: Services) -> None:
    ids = every_event_type(hooks, "evt_1")
    before = _outbox_rows(hooks)
    with hooks.transaction() as conn:  # a redelivered report of a status already recorded
        apply_statuses(conn, [StatusChange(ids["sms"], Status.SENT, "again", datetime.now(UTC))])
        apply_statuses(conn, [StatusChange(ids["sms"], Status.DELIVERED, "again", datetime.now(UTC))])
    assert _outbox_rows(hooks) == before
