"""Batches end to end (issue 15), on a real RabbitMQ and each store: published events travel to
route and on to render many per message, each SMS is still sent and recorded exactly once, and a
single event on an idle pipeline is not held back waiting for a batch to fill."""

from __future__ import annotations

import json
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
from tests.integration.conftest import drain

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
    size = pipeline.settings.batch_size
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


def test_single_events_waiting_in_routes_queue_are_routed_together_and_handed_on_in_few_messages(
    herald_env: dict[str, str], tmp_path: Any
) -> None:
    """Events published one at a time (no batch forms at the producer) that wait in route's queue
    are taken together by the next route message (``workers.gather``): routed in one transaction
    and handed on to render in one message. No render worker here: its queue holds what route
    handed on."""
    handed, routed = _route_singles(herald_env, tmp_path, 60)
    assert sorted(nid for m in handed for nid in m) == sorted(routed)  # each once
    # The worker's consumer holds up to 32 of them delivered (its prefetch): each batch takes
    # whatever is there when it starts, so far fewer messages go on to render than events.
    assert len(handed) <= 6, [len(m) for m in handed]


def test_a_gathered_batch_that_fails_puts_the_messages_it_took_back_and_none_is_lost_or_doubled(
    herald_env: dict[str, str], tmp_path: Any, monkeypatch: Any
) -> None:
    import workers.route

    original = workers.route._route
    failed: list[int] = []

    def fails_once(svc: Any, events: Any) -> Any:
        if len(events) > 1 and not failed:  # the first batch that took waiting messages
            failed.append(len(events))
            raise ConnectionError("the store went away")  # transient: the first message is retried
        return original(svc, events)

    monkeypatch.setattr(workers.route, "_route", fails_once)
    handed, routed = _route_singles(herald_env, tmp_path, 20)
    assert failed  # a gathered batch failed, with the messages it had taken
    assert sorted(nid for m in handed for nid in m) == sorted(routed)  # each handed on once
    assert len(routed) == 20


def _route_singles(
    herald_env: dict[str, str], tmp_path: Any, count: int
) -> tuple[list[list[str]], list[str]]:
    """``count`` events published one by one to a route stage of its own (one worker thread),
    started once they all wait; returns the ids of each message it handed on to render, and the
    ids of the SMS notifications stored."""
    import uuid

    import dramatiq

    from infra import topology
    from infra.bootstrap import bootstrap, shutdown
    from infra.broker import Emitter, build_broker
    from tests.conftest import settings_of
    from workers.registry import declare

    prefix = f"gather-{uuid.uuid4().hex[:6]}"
    settings = settings_of(herald_env, queue_prefix=prefix, database_url=f"sqlite:///{tmp_path / 'g.db'}")
    broker = build_broker(settings, services=lambda: services)
    services = bootstrap(settings, emitter=Emitter(broker, prefix))
    declare(broker, lambda: services, ["route"], queue_prefix=prefix)
    url = settings.amqp_url.get_secret_value()
    route = topology.queue_name(prefix, "route")
    try:
        _import(services, count, "4")
        with Publisher(settings) as publisher:
            for i in range(count):  # one at a time: each its own event.published message
                publisher.publish(invoice_created(f"evt_one{i}", id=f"INV-O{i}", customer_id=f"C4{i}"))
        worker = dramatiq.Worker(broker, queues={route}, worker_threads=1, worker_timeout=100)
        worker.start()
        try:
            wait_for(lambda: len(_sms(services)) == count, timeout=60, what=f"{count} events routed")
            wait_for(
                lambda: sum(len(m) for m in _handed(url, prefix, keep=True)) >= count,
                timeout=30,
                what="every notification handed on",
            )
        finally:
            worker.stop()
        assert drain(url, route) == []  # every message acked, none left behind
        return _handed(url, prefix), [r["id"] for r in _sms(services)]
    finally:
        for stage in ("route", "render"):
            queue = topology.queue_name(prefix, stage)
            for name in (queue, topology.delay_queue(queue), topology.dead_letter_queue(queue)):
                broker.channel.queue_delete(name)
        broker.close()
        shutdown(services)


def _handed(url: str, prefix: str, *, keep: bool = False) -> list[list[str]]:
    """The notification ids of each message waiting in render's queue (left there with ``keep``)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        found = []
        while True:
            method, _properties, body = channel.basic_get(f"{prefix}.render", auto_ack=not keep)
            if method is None:
                return found  # unacked ones go back when the connection closes
            found.append(json.loads(body)["args"][0]["notification_ids"])
    except pika.exceptions.ChannelClosedByBroker:
        return []  # not declared yet: nothing handed on
    finally:
        if connection.is_open:
            connection.close()
