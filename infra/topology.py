"""Queue names and arguments, shared by the dramatiq broker and the publisher.

Each stage has its own queue, plus dramatiq's delay queue (``.DQ``) and
dead-letter queue (``.XQ``). Whoever declares a queue first must use exactly
these arguments, or RabbitMQ refuses the second declaration.
"""

from __future__ import annotations

from typing import Any

STAGES: tuple[str, ...] = ("route", "render", "sms", "email", "history", "collect")
#: Stages that are not dramatiq actors: they consume plain JSON from any AMQP client.
PLAIN_STAGES: tuple[str, ...] = ("ingest",)

#: The durable topic exchange any AMQP client publishes events to; the routing key is the event type.
EVENTS_EXCHANGE = "herald.events"
#: Header that says why a message was dead-lettered.
REASON_HEADER = "x-herald-reason"

#: The actor that receives published events.
ROUTE_ACTOR = "route_event"


def queue_name(prefix: str, stage: str) -> str:
    """``herald.route`` for prefix ``herald`` and stage ``route``."""
    return f"{prefix}.{stage}"


def delay_queue(queue: str) -> str:
    return f"{queue}.DQ"


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.XQ"


def queue_arguments(queue: str, max_priority: int | None = None) -> dict[str, Any]:
    """Arguments of a stage queue and its delay queue: failures go to ``.XQ``."""
    canonical = queue.removesuffix(".DQ")
    args: dict[str, Any] = {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead_letter_queue(canonical),
    }
    if max_priority:
        args["x-max-priority"] = max_priority
    return args


def dead_letter_arguments(ttl_ms: int) -> dict[str, Any]:
    """Arguments of a ``.XQ`` queue: dead messages are kept ``ttl_ms``."""
    return {"x-message-ttl": ttl_ms}
