"""``herald publish`` as a user runs it: bad lines named, good lines published, broker down."""

from __future__ import annotations

import json
import time

import pika

from tests.e2e.conftest import Deployment
from tests.factories import invoice_created


def _depth(deployment: Deployment) -> int:
    """The events waiting on the route queue (a run of events travels in one batch message: issue
    15), counted without consuming them (unacked, they go back when the connection closes)."""
    connection = pika.BlockingConnection(pika.URLParameters(deployment.env["HERALD_AMQP_URL"]))
    try:
        queue = f"{deployment.env['HERALD_QUEUE_PREFIX']}.route"
        channel = connection.channel()
        events = 0
        while True:
            method, _properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                return events
            message = json.loads(body)
            events += len(message["args"][0]["events"]) if message["actor_name"] == "route_events" else 1
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
    # The CLI's own start-up, measured in the same run (a loaded machine stretches it several-fold):
    # what the bound is about is the wait on the broker, not the interpreter.
    started = time.monotonic()
    assert deployment.herald("schema").returncode == 0
    start_up = time.monotonic() - started
    started = time.monotonic()
    result = deployment.herald("publish", "-", stdin=json.dumps(invoice_created()) + "\n", timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 2
    assert elapsed - start_up < 10, f"{elapsed:.1f} s, of which start-up about {start_up:.1f} s"
    assert "cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:1/%2F" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "published 0 events (confirmed by RabbitMQ) before the failure" in result.stdout


def test_schema_prints_a_json_schema_for_every_event(deployment: Deployment) -> None:
    result = deployment.herald("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert set(schema["discriminator"]["mapping"]) == {
        "invoice.created",
        "reminder.due",
        "payment.received",
        "payment.failed",
    }


def test_each_hostile_line_of_a_file_is_rejected_by_number_and_every_good_line_published(
    deployment: Deployment,
) -> None:
    limit = 64 * 1024  # HERALD_MAX_EVENT_BYTES' default
    template = json.dumps(invoice_created("evt_deep", extra="HOLE"))
    # Under the limit as a line, over it once wrapped as the message that is sent.
    padded = invoice_created("evt_padded")
    compact = json.dumps(padded, separators=(",", ":"))
    padded["data"]["invoice"]["note"] = "x" * (limit - len(compact) - 40)
    lines = [
        json.dumps(invoice_created("evt_g1")).encode(),
        b"\xff\xfe binary \x00\x01 garbage",  # 2: not UTF-8
        json.dumps(invoice_created("evt_latin", number="caf\u00e9"), ensure_ascii=False).encode(
            "latin-1"
        ),  # 3: Latin-1
        b'{"type": "invoice.created",\x00 "event_id": "evt_nul"}',  # 4: a NUL byte
        json.dumps(invoice_created("evt_g2")).encode(),
        json.dumps(invoice_created("evt_huge", note="y" * (3 * limit))).encode(),  # 6: a huge line
        template.replace('"HOLE"', "[" * 5000 + "]" * 5000).encode(),  # 7: thousands of levels
        template.replace('"HOLE"', '{"a": ' * 260 + "1" + "}" * 260).encode(),  # 8: hundreds
        json.dumps(padded, separators=(",", ":")).encode(),  # 9: over the limit once encoded
        json.dumps(invoice_created("evt_crlf", number="1001\r\nBcc: x")).encode(),  # 10
        b"",
        json.dumps(invoice_created("evt_g3")).encode(),
    ]
    path = deployment.workdir / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    try:
        result = deployment.herald("publish", str(path))
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode == 1, result.stderr
        assert "line 2: not UTF-8 text" in result.stderr
        assert "line 3: not UTF-8 text" in result.stderr
        assert "line 4: not valid JSON" in result.stderr
        assert f"line 6: event is {len(lines[5])} bytes, over the limit of {limit} bytes" in result.stderr
        assert "line 7: data.invoice.extra: nested deeper than 32 levels" in result.stderr
        assert "line 8: data.invoice.extra: nested deeper than 32 levels" in result.stderr
        assert "line 9: event evt_padded is" in result.stderr
        assert "line 10: data.invoice.number: contains a control character U+000D" in result.stderr
        assert "published 3 events; rejected 8 lines" in result.stdout
        assert _depth(deployment) == 3
    finally:
        _cleanup(deployment)


def test_a_byte_order_mark_at_the_start_of_a_file_is_not_an_error(deployment: Deployment) -> None:
    path = deployment.workdir / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(invoice_created("evt_bom")).encode() + b"\r\n")
    try:
        result = deployment.herald("publish", str(path))
        assert result.returncode == 0, result.stderr
        assert "published 1 events; rejected 0 lines" in result.stdout
    finally:
        _cleanup(deployment)
