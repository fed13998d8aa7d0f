"""Queue names and arguments, shared by the dramatiq broker and the publisher.

Each stage has its own queue, plus dramatiq's delay queue (``.DQ``) and
dead-letter queue (``.XQ``). Whoever declares a queue first must use exactly
these arguments, or RabbitMQ refuses the second declaration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.settings import Settings

STAGES: tuple[str, ...] = ("route", "render", "sms", "email", "history", "collect")
#: Stages that are not dramatiq actors: they consume plain JSON from any AMQP client.
PLAIN_STAGES: tuple[str, ...] = ("ingest",)


def events_exchange(prefix: str) -> str:
    """The durable topic exchange any AMQP client publishes events to (routing key: the event type).

    ``herald.events`` for the default prefix. It carries the deployment's prefix like every queue,
    so two deployments (or a demo and a test run) on one RabbitMQ never receive each other's events.
    """
    return f"{prefix}.events"


#: The actor that receives published events.
ROUTE_ACTOR = "route_event"


def queue_name(prefix: str, stage: str) -> str:
    """``herald.route`` for prefix ``herald`` and stage ``route``."""
    return f"{prefix}.{stage}"


def delay_queue(queue: str) -> str:
    return f"{queue}.DQ"


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.XQ"


def queue_arguments(
    queue: str,
    max_priority: int | None = None,
    *,
    queue_type: str = "classic",
    delivery_limit: int | None = None,
) -> dict[str, Any]:
    """Arguments of a stage queue and its delay queue: failures go to ``.XQ``.

    With ``queue_type="quorum"`` the queue is replicated (a RabbitMQ cluster) and a message
    delivered ``delivery_limit`` times without an ack (a worker that keeps crashing on it) is
    dead-lettered too. RabbitMQ refuses to redeclare a queue with other arguments, so the broker,
    the publisher and ingest all take their arguments from here.
    """
    canonical = queue.removesuffix(".DQ")
    args: dict[str, Any] = {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead_letter_queue(canonical),
    }
    if queue_type == "quorum":
        args["x-queue-type"] = "quorum"
        if delivery_limit is not None:
            args["x-delivery-limit"] = delivery_limit
    elif max_priority:  # quorum queues have no x-max-priority
        args["x-max-priority"] = max_priority
    return args


def dead_letter_arguments(ttl_ms: int, queue_type: str = "classic") -> dict[str, Any]:
    """Arguments of a ``.XQ`` queue: dead messages are kept ``ttl_ms`` (replicated too, with quorum)."""
    args: dict[str, Any] = {"x-message-ttl": ttl_ms}
    if queue_type == "quorum":
        args["x-queue-type"] = "quorum"
    return args


def stage_queue_arguments(settings: Settings, queue: str) -> dict[str, Any]:
    """``queue_arguments`` as this deployment's settings ask (queue type, delivery limit)."""
    return queue_arguments(queue, queue_type=settings.queue_type, delivery_limit=settings.delivery_limit)


def stage_dead_letter_arguments(settings: Settings) -> dict[str, Any]:
    """``dead_letter_arguments`` as this deployment's settings ask."""
    return dead_letter_arguments(settings.dead_message_ttl_ms, settings.queue_type)
