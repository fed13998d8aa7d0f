"""HERALD_QUEUE_TYPE=quorum: the broker, the publisher and ingest declare the same quorum queues,
and a message that keeps crashing its consumer is dead-lettered after the delivery limit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pika
import pytest

from infra import topology
from infra.broker import build_broker
from infra.settings import Settings
from producers.publisher import Publisher
from tests.conftest import wait_for
from tests.factories import invoice_created
from workers.ingest import declare

pytestmark = pytest.mark.integration


@pytest.fixture
def quorum(amqp_url: str) -> Iterator[Settings]:
    """Settings with quorum queues under a prefix of their own (a queue cannot change type)."""
    settings = Settings(
        amqp_url=amqp_url,  # type: ignore[arg-type]
        queue_prefix=f"quorum-{uuid.uuid4().hex[:8]}",
        queue_type="quorum",
        delivery_limit=2,
    )
    yield settings
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    for stage in ("route", "ingest"):
        queue = topology.queue_name(settings.queue_prefix, stage)
        for name in (queue, topology.delay_queue(queue), topology.dead_letter_queue(queue)):
            channel.queue_delete(name)
    connection.close()


def test_broker_publisher_and_ingest_agree_on_quorum_queues_and_a_poison_is_dead_lettered(
    quorum: Settings,
) -> None:
    broker = build_broker(quorum)
    route = topology.queue_name(quorum.queue_prefix, "route")
    broker.declare_queue(route)
    broker.flush_all()  # declares the queue, its .DQ and .XQ (dramatiq declares lazily)
    with Publisher(quorum) as publisher:  # a mismatch would be PRECONDITION_FAILED here
        publisher.publish(invoice_created("evt_quorum"))
    broker.close()

    connection = pika.BlockingConnection(pika.URLParameters(quorum.amqp_url.get_secret_value()))
    try:
        declare(connection.channel(), quorum)  # ingest's queue, quorum too
        channel = connection.channel()
        for name in (route, topology.delay_queue(route), topology.dead_letter_queue(route)):
            channel.queue_declare(name, passive=True)  # they exist …
        # … as quorum queues: redeclaring one as classic is refused.
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="x-queue-type"):
            connection.channel().queue_declare(route, durable=True, arguments=topology.queue_arguments(route))
    finally:
        connection.close()

    # A consumer that dies holding the message, over and over (a worker crashing on a poison).
    for _ in range(quorum.delivery_limit + 1):
        crashing = pika.BlockingConnection(pika.URLParameters(quorum.amqp_url.get_secret_value()))
        method, _, _ = crashing.channel().basic_get(route, auto_ack=False)
        crashing.close()  # unacked: RabbitMQ returns it and counts the delivery
        if method is None:
            break

    def dead() -> int:
        connection = pika.BlockingConnection(pika.URLParameters(quorum.amqp_url.get_secret_value()))
        try:
            xq = topology.dead_letter_queue(route)
            return int(connection.channel().queue_declare(xq, passive=True).method.message_count)
        finally:
            connection.close()

    wait_for(lambda: dead() == 1, timeout=15, what="the poison dead-lettered after the delivery limit")
