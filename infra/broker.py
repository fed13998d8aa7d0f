"""The broker, configured once. Every worker module imports this first.

Building the broker opens no connection: dramatiq connects lazily, per
thread, on first publish or consume.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from infra import topology
from infra.dead_letters import DeadLetteringConsumer
from infra.middleware.dead_letters import DeadLetterLog
from infra.middleware.lifecycle import Lifecycle
from infra.middleware.log_context import LogContext
from infra.middleware.metrics import Metrics
from infra.middleware.single_sigterm import SingleSigterm
from infra.retry_policy import retry_when
from infra.settings import Settings, get_settings
from schemas.events import Event
from schemas.messages import EventPublished, StageMessage
from schemas.validation import event_to_json


class HeraldBroker(RabbitmqBroker):
    """dramatiq's RabbitMQ broker with herald's queue arguments and dead letters that say why."""

    def __init__(
        self,
        *,
        dead_message_ttl_ms: int,
        queue_type: str = "classic",
        delivery_limit: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dead_message_ttl_ms = dead_message_ttl_ms
        self.queue_type = queue_type
        self.delivery_limit = delivery_limit

    @property
    def consumer_class(self) -> type[DeadLetteringConsumer]:
        # Dead letters carry their reason, stage and tries in headers (see infra.dead_letters).
        return DeadLetteringConsumer

    def _build_queue_arguments(self, queue_name: str) -> dict[str, Any]:
        return topology.queue_arguments(
            queue_name, self.max_priority, queue_type=self.queue_type, delivery_limit=self.delivery_limit
        )

    def _declare_xq_queue(self, queue_name: str) -> Any:
        return self.channel.queue_declare(
            queue=topology.dead_letter_queue(queue_name),
            durable=True,
            arguments=topology.dead_letter_arguments(self.dead_message_ttl_ms, self.queue_type),
        )


def build_broker(settings: Settings) -> HeraldBroker:
    """A broker with publisher confirms on and herald's middleware."""
    middleware = [
        # First, so their after-hooks run last (dramatiq runs after-hooks in reverse): the log
        # context spans every line of the message, and Metrics sees Retries' verdict.
        LogContext(settings.queue_prefix),
        Metrics(settings.queue_prefix),
        AgeLimit(),
        TimeLimit(time_limit=120_000),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=settings.min_backoff_ms,
            max_backoff=settings.max_backoff_ms,
            retry_when=retry_when(settings.max_retries),
        ),
        CurrentMessage(),
        DeadLetterLog(),
        Lifecycle(),
        SingleSigterm(),
    ]
    return HeraldBroker(
        url=settings.amqp_url.get_secret_value(),
        confirm_delivery=True,
        middleware=middleware,
        dead_message_ttl_ms=settings.dead_message_ttl_ms,
        queue_type=settings.queue_type,
        delivery_limit=settings.delivery_limit,
    )


settings = get_settings()
broker = build_broker(settings)
dramatiq.set_broker(broker)


def queue(stage: str) -> str:
    """The queue of a stage under this deployment's prefix."""
    return topology.queue_name(settings.queue_prefix, stage)


def emit(message: StageMessage) -> None:
    """Send a registry message to the stage that consumes it (confirmed by RabbitMQ)."""
    broker.enqueue(
        dramatiq.Message(
            queue_name=queue(message.stage),
            actor_name=message.actor,
            args=(message.body(),),
            kwargs={},
            options={},
        )
    )


def emit_event(event: Event) -> None:
    """Hand a validated event to the route stage (confirmed by RabbitMQ)."""
    broker.enqueue(
        dramatiq.Message(
            queue_name=queue(EventPublished.stage),
            actor_name=EventPublished.actor,
            args=(event_to_json(event),),
            kwargs={},
            options={},
        )
    )
