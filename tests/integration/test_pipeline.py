"""The stages together on a real RabbitMQ and SQLite, sending to the Twilio sandbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from twilio.rest import Client

from infra.bootstrap import Services
from infra.store.tables import notifications
from producers.publisher import Publisher
from schemas.notifications import Status
from tests.conftest import wait_for
from tests.factories import customer, invoice_created
from tests.integration.conftest import cut_short, import_customers, publish, queue_depths


def _customers(count: int) -> list[dict[str, Any]]:
    return [
        customer(
            f"C{i}",
            contacts=[{"contact_id": f"P{i}", "primary": True, "mobile": f"+35840{i:07d}", "locale": "en"}],
        )
        for i in range(count)
    ]


def _rows(services: Services) -> list[dict[str, Any]]:
    """The SMS notifications (each contact also gets an email decision: no_email here)."""
    with services.transaction() as conn:
        query = select(notifications).where(notifications.c.channel == "sms")
        return [dict(r) for r in conn.execute(query).mappings()]


def _all_reported(services: Services, expected: int) -> list[dict[str, Any]] | None:
    rows = _rows(services)
    settled = [r for r in rows if r["status"] in (Status.SENT, Status.FAILED, Status.SKIPPED)]
    return rows if len(rows) == expected and len(settled) == expected else None


def _one_sms_to(services: Services, mobile: str, what: str) -> dict[str, Any]:
    """An invoice published to customer C1's one contact, at ``mobile`` (Twilio's magic numbers
    pick the answer); its SMS notification once settled."""
    import_customers(services, customer(contacts=[{"contact_id": "P1", "primary": True, "mobile": mobile}]))
    publish(services.settings, invoice_created())
    (row,) = wait_for(lambda: _all_reported(services, 1), timeout=30, what=what)
    return row


def test_published_events_become_one_sms_each_recorded_with_the_providers_id(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    import_customers(pipeline, *_customers(20))
    events = [invoice_created(f"evt_{i}", id=f"INV-{i}", customer_id=f"C{i}") for i in range(20)]
    with Publisher(pipeline.settings) as publisher:
        assert publisher.publish_many(events) == 20

    rows = wait_for(lambda: _all_reported(pipeline, 20), timeout=60, what="20 notifications sent")
    captured = {m["sid"]: m for m in twilio_sandbox.messages()}
    assert len(captured) == 20
    assert {r["provider_id"] for r in rows} == set(captured)
    assert all(r["status"] == Status.SENT for r in rows)
    assert {m["to"] for m in captured.values()} == {f"+35840{i:07d}" for i in range(20)}


def test_the_same_events_published_twice_send_one_sms_each(pipeline: Services, twilio_sandbox: Any) -> None:
    import_customers(pipeline, *_customers(10))
    events = [invoice_created(f"evt_{i}", id=f"INV-{i}", customer_id=f"C{i}") for i in range(10)]
    with Publisher(pipeline.settings) as publisher:
        publisher.publish_many(events)
        publisher.publish_many(events)
    wait_for(lambda: _all_reported(pipeline, 10), timeout=60, what="10 notifications sent")
    wait_for(lambda: queue_depths(pipeline.settings.amqp_url.get_secret_value(), "route")[0] == 0, timeout=30)
    wait_for(lambda: _all_reported(pipeline, 10), timeout=30, what="still exactly 10 notifications")
    assert len(twilio_sandbox.messages()) == 10


def test_a_number_twilio_refuses_for_good_is_failed_with_its_code_and_not_retried(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    row = _one_sms_to(pipeline, "+15005550001", "the refusal recorded")
    assert (row["status"], row["error_code"], row["attempts"]) == (Status.FAILED, 21211, 1)
    assert twilio_sandbox.messages() == []


def test_a_malformed_message_is_dead_lettered_and_good_ones_flow_on(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    import dramatiq

    import_customers(pipeline, customer())
    pipeline.emitter.broker.enqueue(
        dramatiq.Message(
            queue_name=pipeline.emitter.queue("route"),
            actor_name="route_event",
            args=({"type": "nope"},),
            kwargs={},
            options={},
        )
    )
    publish(pipeline.settings, invoice_created())
    wait_for(lambda: _all_reported(pipeline, 1), timeout=30, what="the good event sent")
    url = pipeline.settings.amqp_url.get_secret_value()
    wait_for(lambda: queue_depths(url, "route")[2] == 1, timeout=30, what="one dead letter in route.XQ")


def test_an_attempt_cut_short_after_the_provider_accepted_is_reconciled_not_resent(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    from schemas.messages import NotificationRendered

    # Let the pipeline send once, then wind the row back to 'sending' as if we crashed before recording.
    row = _one_sms_to(pipeline, "+15005550006", "the first send")
    cut_short(pipeline, row["id"])
    pipeline.emitter.emit(NotificationRendered(notification_id=row["id"]))

    def reconciled() -> dict[str, Any] | None:
        (again,) = _rows(pipeline)
        return again if again["provider_id"] else None

    again = wait_for(reconciled, timeout=30, what="the attempt reconciled")
    assert again["provider_id"] == row["provider_id"]
    assert len(twilio_sandbox.messages()) == 1


def test_the_official_client_sees_what_the_pipeline_sent(pipeline: Services, twilio_sandbox: Any) -> None:
    import_customers(pipeline, customer())
    publish(pipeline.settings, invoice_created())
    (row,) = wait_for(lambda: _all_reported(pipeline, 1), timeout=30, what="one sms")
    settings = pipeline.settings
    assert settings.twilio_auth_token is not None
    client = Client(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value())
    client.api.base_url = twilio_sandbox.url
    (message,) = client.messages.list(to="+358401234567")
    assert message.sid == row["provider_id"]
    assert message.body.startswith("Lasku 1001")
