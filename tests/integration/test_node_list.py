"""A node list whose first node does not answer, against a real RabbitMQ as its second: every
kind of connection herald opens goes through the second (the cluster's own failover is in
``tests/faults/test_cluster.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pika
import pytest
from typer.testing import CliRunner

from infra import dead_letters
from infra.broker import Emitter, build_broker
from infra.errors import BrokerUnavailable
from infra.queue_status import read_depths
from infra.readiness import broker_check
from infra.settings import Settings
from producers.cli import app
from producers.publisher import Publisher
from schemas.messages import EventsPublished
from tests.e2e.conftest import free_port
from tests.factories import invoice_created
from tests.integration.conftest import drain


def _dead() -> str:
    """A loopback port nobody listens on, with a password that must never be shown."""
    return f"amqp://guest:s3cret@127.0.0.1:{free_port()}/%2F"


@pytest.fixture
def settings(amqp_url: str) -> Iterator[Settings]:
    prefix = f"nodes-{uuid.uuid4().hex[:6]}"
    # One node listed twice would be refused; two dead ports and the live node are three nodes.
    settings = Settings(
        amqp_url=f"{_dead()},{_dead()},{amqp_url}",  # type: ignore[arg-type]
        queue_prefix=prefix,
        allow_classic_queues_on_cluster=True,  # one real node: the test's own broker
    )
    yield settings
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        for stage in ("route", "ingest"):
            for suffix in ("", ".DQ", ".XQ"):
                channel.queue_delete(f"{prefix}.{stage}{suffix}")
    finally:
        connection.close()


def test_publisher_emitter_status_dlq_and_readiness_go_through_the_node_that_answers(
    settings: Settings, amqp_url: str
) -> None:
    with Publisher(settings) as publisher:
        publisher.publish_many([invoice_created(f"evt_{i}") for i in range(3)])
        assert publisher._channel.node == f"127.0.0.1:{pika.URLParameters(amqp_url).port}"
    emitter = Emitter(build_broker(settings), settings.queue_prefix)
    try:
        emitter.emit_batches(EventsPublished, [{"event_id": "evt_x"}], 10)
    finally:
        emitter.close()
    assert len(drain(amqp_url, f"{settings.queue_prefix}.route")) == 2  # one batch, one emitted
    rows = {row.stage: row for row in read_depths(settings.amqp_urls, settings.queue_prefix)}
    assert rows["route"].ready == 0
    assert dead_letters.waiting(settings)["route"] == 0
    broker_check(settings.amqp_urls, timeout=2.0)()  # raises when no node answers


def test_when_no_node_answers_the_error_names_every_node_and_no_password() -> None:
    settings = Settings(
        amqp_url=f"{_dead()},{_dead()}",  # type: ignore[arg-type]
        queue_type="quorum",
        publish_timeout_seconds=1.0,
    )
    with Publisher(settings) as publisher, pytest.raises(BrokerUnavailable) as failed:
        publisher.publish(invoice_created("evt_1"))
    assert str(failed.value).startswith("no RabbitMQ node answers")
    assert str(failed.value).count("cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:") == 2
    assert "s3cret" not in str(failed.value)
    result = CliRunner().invoke(app, ["status"], obj=settings)
    assert result.exit_code == 2
    assert "did not answer" in result.output
    assert "s3cret" not in result.output
