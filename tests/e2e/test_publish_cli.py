"""``herald publish`` as a user runs it: bad lines named, good lines published, broker down."""

from __future__ import annotations

import json
import time

import pika

from tests.e2e.conftest import Deployment
from tests.factories import invoice_created


def _depth(deployment: Deployment) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(deployment.env["HERALD_AMQP_URL"]))
    try:
        queue = f"{deployment.env['HERALD_QUEUE_PREFIX']}.route"
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()


def _cleanup(deployment: Deployment) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(deployment.env["HERALD_AMQP_URL"]))
    queue = f"{deployment.env['HERALD_QUEUE_PREFIX']}.route"
    channel = connection.channel()
    for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
        channel.queue_delete(name)
    connection.close()


def test_bad_lines_are_rejected_with_number_and_reason_and_the_valid_lines_published(
    deployment: Deployment,
) -> None:
    missing = invoice_created("evt_3")
    del missing["data"]["invoice"]["due_date"]
    lines = [
        json.dumps(invoice_created("evt_1")),
        '{"type": "invoice.created", "event_id": ',  # malformed JSON
        json.dumps(missing),
        json.dumps({**invoice_created("evt_4"), "type": "invoice.paid"}),
        "",
        json.dumps(invoice_created("evt_6")),
    ]
    try:
        result = deployment.herald("publish", "-", stdin="\n".join(lines) + "\n")
        assert result.returncode == 1
        assert "line 2: not valid JSON" in result.stderr
        assert "line 3: data.invoice.due_date: Field required" in result.stderr
        assert "line 4: type: unknown event type 'invoice.paid'" in result.stderr
        assert "published 2 events; rejected 3 lines" in result.stdout
        assert _depth(deployment) == 2
    finally:
        _cleanup(deployment)


def test_a_broker_that_is_down_fails_clearly_within_ten_seconds_reporting_nothing_published(
    deployment: Deployment,
) -> None:
    deployment.env["HERALD_AMQP_URL"] = "amqp://guest:hunter2@127.0.0.1:1/%2F"
    started = time.monotonic()
    result = deployment.herald("publish", "-", stdin=json.dumps(invoice_created()) + "\n", timeout=30)
    elapsed = time.monotonic() - started
    assert result.returncode == 2
    assert elapsed < 10
    assert "cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:1/%2F" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "published 0 events (confirmed by RabbitMQ) before the failure" in result.stdout


def test_schema_prints_a_json_schema_for_the_three_events(deployment: Deployment) -> None:
    result = deployment.herald("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert set(schema["discriminator"]["mapping"]) == {"invoice.created", "reminder.due", "payment.received"}
