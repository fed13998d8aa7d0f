"""Observability on the real broker and store: the pipeline's metrics and log lines,
``herald status --json``, and ``/readyz`` with the broker up and down."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pika
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import select

from infra import topology
from infra.bootstrap import Services
from infra.logs import JsonFormatter
from infra.queue_status import collect
from infra.settings import Settings
from infra.store.directory import upsert_customer
from infra.store.tables import notifications
from producers.api.app import create_app
from producers.publisher import Publisher
from schemas.directory import CustomerRecord
from schemas.notifications import Status
from tests.conftest import wait_for
from tests.factories import customer, invoice_created
from workers.rules.segments import count_segments

BIN = Path(sys.executable).parent


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends: nothing listens


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every log line of this process, as the workers write them (JSON, masked)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def _sms_rows(services: Services) -> list[dict[str, Any]]:
    with services.reading() as conn:
        rows = conn.execute(select(notifications).where(notifications.c.channel == "sms")).mappings()
        return [dict(r) for r in rows]


def test_the_pipeline_counts_sent_and_refused_sms_and_tags_every_line_with_its_ids(
    pipeline: Services, twilio_sandbox: Any, json_log: io.StringIO
) -> None:
    labels = {
        "ok": {"stage": "sms", "outcome": "ok"},
        "refused": {"provider": "twilio", "code": "21211"},
        "sent": {"channel": "sms", "status": "sent"},
        "failed": {"channel": "sms", "status": "failed"},
    }
    before = {
        "ok": _value("herald_messages_total", **labels["ok"]),
        "refused": _value("herald_provider_errors_total", **labels["refused"]),
        "sent": _value("herald_notifications_total", **labels["sent"]),
        "failed": _value("herald_notifications_total", **labels["failed"]),
        "segments": _value("herald_sms_segments_sent_total"),
        "timed": _value("herald_message_duration_seconds_count", stage="sms"),
    }
    with pipeline.transaction() as conn:
        for n in (1, 2, 3):
            upsert_customer(conn, CustomerRecord.model_validate(customer(f"C{n}")), region="FI")
    twilio_sandbox.faults.fail_next(1, status=400, code=21211)  # the first SMS sent is refused
    with Publisher(pipeline.settings) as publisher:
        for n in (1, 2, 3):
            publisher.publish(invoice_created(f"evt_obs{n}", id=f"INV-{n}", customer_id=f"C{n}"))

    def settled() -> list[dict[str, Any]] | None:
        rows = _sms_rows(pipeline)
        done = [r for r in rows if r["status"] in (Status.SENT, Status.DELIVERED, Status.FAILED)]
        return rows if len(rows) == 3 and len(done) == 3 else None

    rows = wait_for(settled, timeout=60, what="three SMS settled")
    sent = [r for r in rows if r["status"] != Status.FAILED]
    assert len(sent) == 2
    wait_for(
        lambda: (
            _value("herald_notifications_total", **labels["failed"]) == before["failed"] + 1
            and _value("herald_notifications_total", **labels["sent"]) == before["sent"] + 2
        ),
        what="history counted two sent and one failed",
    )
    # Messages, not notifications: render gathers what waits into one batch message, so the three
    # notifications reach sms in one to three messages, each counted once as handled.
    handled = _value("herald_messages_total", **labels["ok"]) - before["ok"]
    assert 1 <= handled <= 3
    assert _value("herald_provider_errors_total", **labels["refused"]) == before["refused"] + 1
    segments = sum(count_segments(r["body"]).parts for r in sent)
    assert _value("herald_sms_segments_sent_total") == before["segments"] + segments
    assert (
        _value("herald_message_duration_seconds_count", stage="sms") > before["timed"]
    )  # gathered ones ride in its time

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    refused = [e for e in lines if e["msg"] == "sms refused"]
    assert len(refused) == 1
    failed = next(r for r in rows if r["status"] == Status.FAILED)
    assert refused[0]["notification_id"] == failed["id"]
    assert refused[0]["event_id"] == failed["event_id"]
    assert refused[0]["stage"] == "sms"
    # One "sms accepted" line per message the stage handled, counting what Twilio accepted (issue 15:
    # a batch logs one line, not one per notification); a single-item message's names its event.
    accepted = [e for e in lines if e["msg"] == "sms accepted"]
    assert sum(e["accepted"] for e in accepted) == len(sent)
    assert {e["stage"] for e in accepted} == {"sms"}
    assert {e["event_id"] for e in accepted if "event_id" in e} <= {r["event_id"] for r in sent}
    raw = json_log.getvalue()
    for row in rows:
        assert row["recipient"] not in raw  # numbers stay masked
    assert "test-token" not in raw  # the Twilio auth token (a SecretStr) never appears


@pytest.fixture
def status_queues(herald_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A queue namespace of its own, with the render queue declared and nobody consuming it."""
    prefix = f"status-{uuid.uuid4().hex[:8]}"
    url = herald_env["HERALD_AMQP_URL"]
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    queue = topology.queue_name(prefix, "render")
    names = (queue, topology.delay_queue(queue), topology.dead_letter_queue(queue))
    for name in names:
        channel.queue_declare(name, durable=True)
    yield url, prefix
    for name in names:
        channel.queue_delete(name)
    connection.close()


def _publish(url: str, queue: str, count: int) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    for n in range(count):
        channel.basic_publish("", queue, json.dumps({"n": n}).encode())
    connection.close()


def test_herald_status_json_shows_the_depths_of_a_stage_without_consumers(
    status_queues: tuple[str, str],
) -> None:
    url, prefix = status_queues
    queue = topology.queue_name(prefix, "render")
    _publish(url, queue, 3)
    _publish(url, topology.dead_letter_queue(queue), 1)
    env = {
        **os.environ,
        "HERALD_AMQP_URL": url,
        "HERALD_QUEUE_PREFIX": prefix,
        # No management API there: the rates are sampled, and the report says so.
        "HERALD_RABBITMQ_MANAGEMENT_URL": f"http://127.0.0.1:{_closed_port()}",
    }
    done = subprocess.run(
        [str(BIN / "herald"), "status", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rates_source"] == "sampled"
    assert "net change" in report["note"]
    stages = {s["stage"]: s for s in report["stages"]}
    render = stages["render"]
    assert (render["queue"], render["ready"], render["delayed"], render["dead_letters"]) == (queue, 3, 0, 1)
    assert render["consumers"] == 0
    assert render["net_change_per_s"] == 0
    assert stages["sms"]["ready"] is None  # never declared in this namespace


class _FakeManagement(BaseHTTPRequestHandler):
    queues: list[dict[str, Any]] = []
    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps(type(self).queues).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_status_takes_rates_from_the_management_api_when_it_answers(status_queues: tuple[str, str]) -> None:
    url, prefix = status_queues
    queue = topology.queue_name(prefix, "render")
    rates = {"publish_details": {"rate": 4.0}, "deliver_get_details": {"rate": 3.5}}
    _FakeManagement.queues = [{"name": queue, "message_stats": rates}]
    server = HTTPServer(("127.0.0.1", 0), _FakeManagement)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings = Settings(
            amqp_url=url,  # type: ignore[arg-type]
            queue_prefix=prefix,
            rabbitmq_management_url=f"http://ops:pw@127.0.0.1:{server.server_port}",  # type: ignore[arg-type]
        )
        report = collect(settings)
    finally:
        server.shutdown()
    assert report["rates_source"] == "management"
    render = next(r for r in report["stages"] if r.stage == "render")
    assert (render.published_per_s, render.delivered_per_s) == (4.0, 3.5)
    path, auth = _FakeManagement.seen[-1]
    assert path == "/api/queues/%2F"
    assert auth is not None
    assert auth.startswith("Basic ")


def test_readyz_is_200_with_the_broker_and_database_and_503_naming_the_broker_when_it_is_down(
    herald_env: dict[str, str], tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'herald.db'}"
    up = Settings(amqp_url=herald_env["HERALD_AMQP_URL"], database_url=database)  # type: ignore[arg-type]
    with TestClient(create_app(up)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["broker"]["ok"] is True
        assert ready.json()["checks"]["database"]["ok"] is True
        assert client.get("/healthz").status_code == 200
        scraped = client.get("/metrics")
        assert scraped.status_code == 200
        assert "herald_messages_total" in scraped.text or "herald_sms_segments_sent_total" in scraped.text

    down = up.model_copy(update={"amqp_url": SecretStr(f"amqp://guest:guest@127.0.0.1:{_closed_port()}/%2F")})
    with TestClient(create_app(down)) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["failed"] == ["broker"]
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["error"]
