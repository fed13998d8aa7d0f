"""Quorum queue arguments, and how a dead letter is read (no broker needed)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from infra import topology
from infra.dead_letters import decode
from infra.settings import Settings


def test_quorum_queues_carry_their_type_and_delivery_limit_and_classic_ones_do_not() -> None:
    quorum = Settings(queue_type="quorum", delivery_limit=5)
    assert topology.stage_queue_arguments(quorum, "herald.sms.DQ") == {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "herald.sms.XQ",
        "x-queue-type": "quorum",
        "x-delivery-limit": 5,
    }
    assert topology.stage_dead_letter_arguments(quorum)["x-queue-type"] == "quorum"
    classic = Settings()
    assert "x-queue-type" not in topology.stage_queue_arguments(classic, "herald.sms")
    assert topology.stage_dead_letter_arguments(classic) == {"x-message-ttl": 604_800_000}


def test_a_dramatiq_dead_letter_shows_its_id_reason_and_tries_from_its_headers() -> None:
    body = json.dumps(
        {"message_id": "m1", "actor_name": "send_sms", "args": [], "kwargs": {}, "options": {"retries": 3}}
    ).encode()
    headers = {"x-herald-reason": "MalformedMessage: unknown notification", "x-herald-attempts": 4}
    letter = decode(1, "sms", SimpleNamespace(headers=headers, message_id=None), body)
    assert letter.summary() == {
        "id": "m1",
        "stage": "sms",
        "attempts": 4,
        "reason": "MalformedMessage: unknown notification",
    }


def test_a_delivery_limit_dead_letter_is_explained_by_rabbitmqs_x_death() -> None:
    body = json.dumps({"type": "invoice.created", "event_id": "evt_9"}).encode()
    headers = {"x-death": [{"reason": "delivery_limit", "queue": "herald.ingest", "count": 1}]}
    letter = decode(1, "ingest", SimpleNamespace(headers=headers, message_id=None), body)
    assert letter.id == "evt_9"
    assert letter.reason == "delivery_limit by RabbitMQ (queue herald.ingest)"
