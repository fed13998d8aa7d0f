"""Plain JSON from any AMQP client: a raw pika publish to herald.events becomes an SMS."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pika
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from infra import topology
from infra.bootstrap import Services
from infra.dead_letters import REASON_HEADER
from infra.store.tables import notifications
from producers.cli import app
from tests.conftest import RUN_PREFIX, wait_for
from tests.factories import customer, invoice_created
from tests.integration.conftest import drain, import_customers


@pytest.fixture
def ingest(pipeline: Services) -> Iterator[None]:
    """The ingest consumer in a thread, beside the in-process pipeline."""
    from workers.ingest import Ingest

    consumer = Ingest(pipeline.settings, pipeline.emitter)
    ready = threading.Event()
    thread = threading.Thread(target=consumer.run, kwargs={"on_ready": ready.set}, daemon=True)
    thread.start()
    assert ready.wait(30), "the ingest consumer did not start"
    yield
    consumer.stop()
    thread.join(10)


def _raw_publish(url: str, messages: list[tuple[str, bytes]]) -> None:
    """What a Java, Go or Node upstream does: its own AMQP client, plain JSON, no herald code."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for routing_key, body in messages:
            channel.basic_publish(
                topology.events_exchange(RUN_PREFIX),
                routing_key,
                body,
                pika.BasicProperties(content_type="application/json", delivery_mode=2),
            )
    finally:
        connection.close()


def _dead_letters(url: str) -> list[tuple[str, bytes]]:
    return [
        (properties.headers[REASON_HEADER], body)
        for properties, body in drain(url, f"{RUN_PREFIX}.ingest.XQ")
    ]


def _sent(services: Services) -> list[Any]:
    with services.transaction() as conn:
        return conn.execute(
            select(notifications.c.event_id).where(
                notifications.c.channel == "sms", notifications.c.status == "sent"
            )
        ).all()


def test_a_raw_amqp_publish_of_plain_json_becomes_an_sms(
    pipeline: Services, twilio_sandbox: Any, ingest: None
) -> None:
    import_customers(pipeline, customer())
    url = pipeline.settings.amqp_url.get_secret_value()
    _raw_publish(url, [("invoice.created", json.dumps(invoice_created("evt_raw")).encode())])
    wait_for(lambda: _sent(pipeline), timeout=30, what="the SMS of the raw event")
    assert [m["to"] for m in twilio_sandbox.messages()] == ["+358401234567"]


def test_bad_messages_are_dead_lettered_with_their_reasons_and_the_good_ones_flow(
    pipeline: Services, twilio_sandbox: Any, ingest: None
) -> None:
    import_customers(pipeline, customer())
    url = pipeline.settings.amqp_url.get_secret_value()
    wrong_shape = invoice_created("evt_shape")
    del wrong_shape["data"]["invoice"]["balance"]
    unknown = {**invoice_created("evt_unknown"), "type": "invoice.voided"}
    _raw_publish(
        url,
        [
            ("invoice.created", b"\xff\xfe garbage"),
            ("invoice.created", json.dumps(invoice_created("evt_good1")).encode()),
            ("invoice.created", json.dumps(wrong_shape).encode()),
            ("invoice.voided", json.dumps(unknown).encode()),
            ("invoice.created", json.dumps(invoice_created("evt_good2", id="INV-2")).encode()),
        ],
    )
    wait_for(lambda: len(_sent(pipeline)) == 2, timeout=30, what="the two good events sent")

    def shown() -> list[dict[str, str]] | None:
        result = CliRunner().invoke(app, ["dlq", "show", "ingest", "--json"], obj=pipeline.settings)
        items = json.loads(result.output) if result.exit_code == 0 else []
        return items if len(items) == 3 else None

    operator_view = wait_for(shown, timeout=30, what="three dead letters in herald dlq show")
    assert operator_view[1]["reason"] == "data.invoice.balance: Field required"
    dead = _dead_letters(url)  # showing did not consume them
    reasons = [reason for reason, _ in dead]
    assert reasons[0].startswith("body is not UTF-8 text")
    assert reasons[1] == "data.invoice.balance: Field required"
    assert reasons[2].startswith("type: unknown event type 'invoice.voided'")
    assert dead[0][1] == b"\xff\xfe garbage"  # kept as it came, for whoever replays it


def test_hostile_messages_are_dead_lettered_with_reasons_and_the_consumer_keeps_going(
    pipeline: Services, twilio_sandbox: Any, ingest: None
) -> None:
    import_customers(pipeline, customer())
    url = pipeline.settings.amqp_url.get_secret_value()
    template = json.dumps(invoice_created("evt_deep", extra="HOLE"))
    thousands = template.replace('"HOLE"', "[" * 5000 + "]" * 5000).encode()
    hundreds = template.replace('"HOLE"', '{"a": ' * 260 + "1" + "}" * 260).encode()
    _raw_publish(
        url,
        [
            ("invoice.created", thousands),  # past what json.loads recurses through
            ("invoice.created", hundreds),  # past what pydantic serialises
            ("invoice.created", json.dumps(invoice_created("evt_crlf", number="1\r\nBcc: x")).encode()),
            ("invoice.created", json.dumps(invoice_created("evt_exp", total="1E+3")).encode()),
            ("invoice.created", json.dumps(invoice_created("evt_fine")).encode()),
        ],
    )
    wait_for(lambda: len(_sent(pipeline)) == 1, timeout=30, what="the good event sent after the hostile ones")

    def four() -> list[tuple[str, bytes]] | None:
        found.extend(_dead_letters(url))
        return found if len(found) == 4 else None

    found: list[tuple[str, bytes]] = []
    dead = wait_for(four, timeout=30, what="four dead letters")
    reasons = [reason for reason, _ in dead]
    assert reasons[0] == "data.invoice.extra: nested deeper than 32 levels"
    assert reasons[1] == "data.invoice.extra: nested deeper than 32 levels"
    assert reasons[2] == "data.invoice.number: contains a control character U+000D"
    assert reasons[3].startswith("data.invoice.total: ")
    assert dead[0][1] == thousands  # kept as it came


def test_what_is_waiting_is_forwarded_in_batches_and_acked_once_confirmed(amqp_url: str) -> None:
    """No route worker here: the route queue holds exactly what ingest handed on."""
    import uuid

    from infra.broker import Emitter, build_broker
    from infra.settings import Settings
    from workers.ingest import Ingest, declare

    prefix = f"ingest-{uuid.uuid4().hex[:6]}"
    settings = Settings(amqp_url=amqp_url, queue_prefix=prefix)  # type: ignore[arg-type]
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    declare(channel, settings)
    events = [invoice_created(f"evt_w{i}") for i in range(100)]
    channel.confirm_delivery()
    for event in [*events[:50], {**events[0], "type": "invoice.voided"}, *events[50:]]:
        channel.basic_publish(
            topology.events_exchange(prefix), event["type"], json.dumps(event).encode(), mandatory=True
        )
    emitter = Emitter(build_broker(settings), prefix)
    consumer = Ingest(settings, emitter)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    route, queue = f"{prefix}.route", f"{prefix}.ingest"
    try:
        emitter.broker.declare_queue(route)  # what ingest hands on waits here, unconsumed
        wait_for(
            lambda: (
                channel.queue_declare(queue, passive=True).method.message_count == 0
                and channel.queue_declare(f"{queue}.XQ", passive=True).method.message_count == 1
            ),
            timeout=30,
            what="every waiting message taken",
        )
        consumer.stop()
        thread.join(10)
        # Acked only once handed on: nothing comes back to the ingest queue when ingest is gone.
        assert channel.queue_declare(queue, passive=True).method.message_count == 0
        messages = []
        while True:
            method, _properties, body = channel.basic_get(route, auto_ack=True)
            if method is None:
                break
            messages.append(json.loads(body))
        forwarded = [e["event_id"] for m in messages for e in m["args"][0]["events"]]
        assert forwarded == [e["event_id"] for e in events]  # each once, in order
        assert {m["actor_name"] for m in messages} == {"route_events"}
        assert len(messages) < len(events) / 2, len(messages)  # together, as they were waiting
    finally:
        consumer.stop()
        emitter.close()
        for name in (queue, f"{queue}.XQ", route, f"{route}.DQ", f"{route}.XQ"):
            channel.queue_delete(name)
        channel.exchange_delete(topology.events_exchange(prefix))
        connection.close()
