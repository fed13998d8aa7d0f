"""Shared by the webhook tests: every outward event type written through the store function that
writes it in production, and a receiver sandbox with an endpoint registered for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from infra.bootstrap import Services
from infra.store import status_outbox
from infra.store.gocardless import upsert_customer, upsert_mandate, upsert_payment
from infra.store.notifications import (
    NewNotification,
    StatusChange,
    apply_statuses,
    claim_for_sending_many,
    load_notification,
    record_event,
    record_notifications,
)
from infra.store.reminders import claim, mark_published, track_invoice
from infra.store.tables import notifications
from producers.webhooks import operations as ops
from schemas.notifications import Status
from schemas.validation import event_to_json, parse_event
from tests.factories import invoice_created
from tooling.sandboxes.webhook_receiver import WebhookReceiver

#: Webhook settings for quick tests: fast retries and polls, the status exchange off (the
#: ``hooks`` fixture's, in ``tests/integration/conftest.py``).
FAST = {
    "webhook_retry_base_seconds": 0.2,
    "webhook_retry_max_seconds": 1.0,
    "webhook_poll_seconds": 0.05,
    "status_exchange": False,
}


@contextmanager
def receiver_with_endpoint(
    services: Services, org_id: str = "acme", events: list[str] | None = None
) -> Iterator[tuple[WebhookReceiver, str]]:
    """A started receiver that verifies with the secret of a new endpoint pointing at it."""
    with WebhookReceiver() as receiver:
        made = ops.add(services, org_id, receiver.url + "/herald", events)
        receiver.state.secrets = [made["secret"]]
        yield receiver, made["endpoint_id"]


def every_event_type(services: Services, event_id: str = "evt_1") -> dict[str, str]:
    """Write one of each outward event type, through production's writers; the notification ids
    by role (``sms``: sent then delivered, ``email``: failed, ``second_sms``: undelivered, ``skip``,
    ``setup``: a mandate-setup email sent)."""
    event = parse_event(invoice_created(event_id))
    items = [
        NewNotification("P1", "invoice", "sms", "+358401234567", "fi", "send", True),
        NewNotification("P1", "invoice", "email", "aino@example.fi", "fi", "send", True),
        NewNotification("P2", "invoice", "sms", "+358401234568", "fi", "send", True),
        NewNotification("P3", "invoice", "sms", "", "fi", "no_phone", False),
        NewNotification("P4", "mandate_setup", "email", "pay@example.fi", "fi", "send", True),
    ]
    now = datetime.now(UTC)
    with services.transaction() as conn:
        record_event(conn, event, event_to_json(event), "routed")
        track_invoice(conn, event)
        record_notifications(conn, event, items)
    ids = {
        role: _nid(services, event_id, contact, channel)
        for role, contact, channel in [
            ("sms", "P1", "sms"),
            ("email", "P1", "email"),
            ("second_sms", "P2", "sms"),
            ("skip", "P3", "sms"),
            ("setup", "P4", "email"),
        ]
    }
    with services.transaction() as conn:
        claim_for_sending_many(conn, [ids["sms"], ids["email"], ids["second_sms"], ids["setup"]])
        row = load_notification(conn, ids["second_sms"])
        assert row is not None
        status_outbox.held(conn, asdict(row), "quiet_hours", now + timedelta(hours=8))
    changes = [
        StatusChange(ids["sms"], Status.SENT, "twilio", now, provider_id="SM1"),
        StatusChange(ids["sms"], Status.DELIVERED, "twilio_callback", now + timedelta(seconds=1)),
        StatusChange(ids["email"], Status.FAILED, "smtp", now, error_code=550, detail="550 no such user"),
        StatusChange(ids["second_sms"], Status.SENT, "twilio", now, provider_id="SM2"),
        StatusChange(ids["second_sms"], Status.UNDELIVERED, "twilio_callback", now, error_code=30003),
        StatusChange(ids["setup"], Status.SENT, "smtp", now, provider_id="<q1@herald>"),
    ]
    with services.transaction() as conn:
        apply_statuses(conn, changes)
    with services.transaction() as conn:
        upsert_customer(conn, {"id": "CU1", "email": "pay@example.fi"}, now, link=("acme", "C1"))
        upsert_mandate(conn, {"id": "MD1", "status": "pending_submission", "links": {"customer": "CU1"}}, now)
    with services.transaction() as conn:
        upsert_mandate(conn, {"id": "MD1", "status": "active", "links": {"customer": "CU1"}}, now)
        payment: dict[str, Any] = {
            "id": "PM1",
            "amount": 12350,
            "currency": "EUR",
            "status": "pending_submission",
            "links": {"mandate": "MD1"},
        }
        upsert_payment(conn, payment, now, org_id="acme", invoice_id="INV-1", customer_id="C1")
    with services.transaction() as conn:
        upsert_payment(conn, payment | {"status": "confirmed"}, now)
    with services.transaction() as conn:
        claim(conn, "acme", "INV-1", 3, "evt_reminder_3", now)  # once per invoice and offset
        mark_published(conn, "acme", "INV-1", 3, now)
    return ids


def _nid(services: Services, event_id: str, contact: str, channel: str) -> str:
    with services.reading() as conn:
        return str(
            conn.execute(
                select(notifications.c.id).where(
                    notifications.c.event_id == event_id,
                    notifications.c.contact_id == contact,
                    notifications.c.channel == channel,
                )
            ).scalar_one()
        )
