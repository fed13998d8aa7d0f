"""The publisher against a real RabbitMQ: confirms, nacks, unroutable, broker down."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pika
import pytest

from infra.errors import BrokerUnavailable, InvalidEvent, MessageNacked, MessageUnroutable
from infra.settings import Settings
from producers.confirming import ConfirmingChannel
from producers.publisher import Publisher
from tests.factories import invoice_created
from tests.integration.conftest import drain


def _settings(url: str, prefix: str) -> Settings:
    return Settings(amqp_url=url, queue_prefix=prefix)  # type: ignore[arg-type]


def _depth(url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()


def _read(url: str, queue: str) -> list[dict[str, Any]]:
    """Every message waiting in ``queue``, taken off it, oldest first."""
    return [json.loads(body) for _properties, body in drain(url, queue)]


def test_a_lone_event_goes_as_the_single_message_and_a_run_of_events_in_batches(amqp_url: str) -> None:
    prefix = f"pub-{uuid.uuid4().hex[:6]}"
    settings = Settings(amqp_url=amqp_url, queue_prefix=prefix, stage_batch_size=3)  # type: ignore[arg-type]
    try:
        with Publisher(settings) as publisher:
            publisher.publish(invoice_created("evt_alone"))
            confirmed: list[int] = []
            assert (
                publisher.publish_many(
                    [invoice_created(f"evt_{i}") for i in range(7)], on_confirmed=confirmed.append
                )
                == 7
            )
            assert sum(confirmed) == 7  # counted in events, not messages
        messages = _read(amqp_url, f"{prefix}.route")
        assert [m["actor_name"] for m in messages] == [
            "route_event",
            "route_events",
            "route_events",
            "route_event",
        ]
        assert messages[0]["args"][0]["event_id"] == "evt_alone"
        assert [[e["event_id"] for e in m["args"][0]["events"]] for m in messages[1:3]] == [
            ["evt_0", "evt_1", "evt_2"],
            ["evt_3", "evt_4", "evt_5"],
        ]
        assert messages[3]["args"][0]["event_id"] == "evt_6"
    finally:
        _delete(amqp_url, f"{prefix}.route", f"{prefix}.route.DQ", f"{prefix}.route.XQ")


def test_a_nack_of_a_batch_names_only_the_events_of_the_batches_confirmed(amqp_url: str) -> None:
    prefix = f"pub-{uuid.uuid4().hex[:6]}"
    settings = Settings(amqp_url=amqp_url, queue_prefix=prefix, stage_batch_size=2)  # type: ignore[arg-type]
    publisher = Publisher(settings)
    # Only one message fits the route queue: the second batch is nacked.
    publisher._channel._declare = [(f"{prefix}.route", {"x-max-length": 1, "x-overflow": "reject-publish"})]
    try:
        with publisher, pytest.raises(MessageNacked) as info:
            publisher.publish_many([invoice_created(f"evt_{i}") for i in range(4)])
        assert info.value.confirmed == ["evt_0", "evt_1"]
    finally:
        _delete(amqp_url, f"{prefix}.route")


def _delete(url: str, *queues: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for queue in queues:
            channel.queue_delete(queue)
    finally:
        connection.close()


def test_publish_many_returns_after_every_message_is_confirmed_and_queued(amqp_url: str) -> None:
    prefix = f"pub-{uuid.uuid4().hex[:6]}"
    events = [invoice_created(f"evt_{i}") for i in range(2500)]
    try:
        settings = _settings(amqp_url, prefix)
        size = settings.batch_size  # HERALD_STAGE_BATCH_SIZE, or its default for the store
        with Publisher(settings, window=300) as publisher:
            confirmed: list[int] = []
            assert publisher.publish_many(events, on_confirmed=confirmed.append) == 2500
            assert sum(confirmed) == 2500
        # Every event queued, in order, in batches of the stage batch size.
        messages = _read(amqp_url, f"{prefix}.route")
        full, rest = divmod(2500, size)
        assert [(m["actor_name"], len(m["args"][0]["events"])) for m in messages] == [
            ("route_events", size)
        ] * full + [("route_events", rest)] * (rest > 0)
        queued = [e["event_id"] for m in messages for e in m["args"][0]["events"]]
        assert queued == [f"evt_{i}" for i in range(2500)]
        assert _depth(amqp_url, f"{prefix}.route") == 0  # read off: nothing else was queued
    finally:
        _delete(amqp_url, f"{prefix}.route", f"{prefix}.route.DQ", f"{prefix}.route.XQ")


def test_an_invalid_event_is_refused_before_anything_is_published(amqp_url: str) -> None:
    prefix = f"pub-{uuid.uuid4().hex[:6]}"
    bad = invoice_created("evt_bad")
    del bad["data"]["invoice"]["currency"]
    try:
        with Publisher(_settings(amqp_url, prefix)) as publisher:
            publisher.connect()
            with pytest.raises(InvalidEvent, match=r"event #1: data.invoice.currency: Field required"):
                publisher.publish_many([invoice_created(), bad])
        assert _depth(amqp_url, f"{prefix}.route") == 0
    finally:
        _delete(amqp_url, f"{prefix}.route", f"{prefix}.route.DQ", f"{prefix}.route.XQ")


def test_a_nack_raises_and_lists_only_what_was_confirmed(amqp_url: str) -> None:
    queue = f"full-{uuid.uuid4().hex[:6]}"
    # A queue that rejects publishes beyond one message makes RabbitMQ nack them.
    channel = ConfirmingChannel(amqp_url, [(queue, {"x-max-length": 1, "x-overflow": "reject-publish"})], 5.0)
    try:
        with pytest.raises(MessageNacked, match="refused 2 message") as info:
            channel.publish(queue, [("a", b"{}"), ("b", b"{}"), ("c", b"{}")], window=10)
        assert info.value.confirmed == ["a"]
    finally:
        channel.close()
        _delete(amqp_url, queue)


def test_an_unroutable_message_raises(amqp_url: str) -> None:
    channel = ConfirmingChannel(amqp_url, [], 5.0)
    try:
        with pytest.raises(MessageUnroutable, match="could not route 1 message"):
            channel.publish(f"nowhere-{uuid.uuid4().hex}", [("a", b"{}")], window=10)
    finally:
        channel.close()


def test_a_broker_that_is_down_is_a_clear_error_within_ten_seconds() -> None:
    url = "amqp://guest:secret@127.0.0.1:1/%2F"
    started = time.monotonic()
    with Publisher(_settings(url, "down")) as publisher, pytest.raises(BrokerUnavailable) as info:
        publisher.publish(invoice_created())
    assert time.monotonic() - started < 10
    assert "127.0.0.1:1" in str(info.value)
    assert "secret" not in str(info.value)
    assert info.value.confirmed == []


def test_the_shared_publishers_kept_connection_found_dead_is_opened_again_and_the_publish_goes_through(
    amqp_url: str,
) -> None:
    import socket

    from producers.publisher import SharedPublisher

    prefix = f"pub-{uuid.uuid4().hex[:6]}"
    shared = SharedPublisher(_settings(amqp_url, prefix))
    try:
        shared.publish_encoded([shared.encode(invoice_created("evt_before"))])
        # The kept connection dies while nobody drives it (RabbitMQ restarted, a proxy timed out).
        shared.publisher._channel._conn._transport._sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
        assert shared.publish_encoded([shared.encode(invoice_created("evt_after"))]) == 1
        assert [m["args"][0]["event_id"] for m in _read(amqp_url, f"{prefix}.route")] == [
            "evt_before",
            "evt_after",
        ]
    finally:
        shared.close()
        _delete(amqp_url, f"{prefix}.route", f"{prefix}.route.DQ", f"{prefix}.route.XQ")
