"""What the publisher puts on the wire (no broker needed: nothing connects until publish)."""

from __future__ import annotations

import json

import pytest

from infra.errors import InvalidEvent
from infra.settings import Settings
from producers.publisher import Publisher
from tests.factories import invoice_created


def test_an_event_is_encoded_as_a_dramatiq_message_for_the_route_actor() -> None:
    publisher = Publisher(Settings(queue_prefix="unit"))
    event_id, body = publisher.encode(invoice_created("evt_9"))
    message = json.loads(body)
    assert event_id == "evt_9"
    assert (message["queue_name"], message["actor_name"]) == ("unit.route", "route_event")
    assert message["args"][0]["data"]["invoice"]["total"] == "1234.50"


def test_an_event_over_the_size_limit_is_refused_naming_its_id_and_both_sizes() -> None:
    publisher = Publisher(Settings(max_event_bytes=2048))
    expected = r"event evt_big is \d+ bytes encoded, over the limit of 2048 bytes"
    with pytest.raises(InvalidEvent, match=expected):
        publisher.encode(invoice_created("evt_big", note="x" * 3000))


def test_constructing_a_publisher_opens_no_connection() -> None:
    publisher = Publisher(Settings(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F"))  # type: ignore[arg-type]
    assert not publisher._channel.is_open
