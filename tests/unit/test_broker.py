"""The broker as configured: confirms on, a queue per stage, dead letters kept."""

from __future__ import annotations

from infra import topology
from infra.broker import build_broker
from infra.settings import Settings


def test_publisher_confirms_are_on_and_building_the_broker_connects_to_nothing() -> None:
    broker = build_broker(Settings(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F"))  # type: ignore[arg-type]
    assert broker.confirm_delivery
    assert broker.connections == set()


def test_each_stage_has_its_own_queue_dead_lettering_to_its_xq() -> None:
    queues = {topology.queue_name("herald", stage) for stage in topology.STAGES}
    stages = ("route", "render", "sms", "email", "history", "collect")
    assert queues == {f"herald.{stage}" for stage in stages}
    assert topology.queue_arguments("herald.sms.DQ") == {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "herald.sms.XQ",
    }


def test_dead_letters_are_kept_for_the_configured_days() -> None:
    broker = build_broker(Settings(dead_message_ttl_days=7))
    assert broker.dead_message_ttl_ms == 7 * 86_400_000
    assert topology.dead_letter_arguments(broker.dead_message_ttl_ms) == {"x-message-ttl": 604_800_000}
