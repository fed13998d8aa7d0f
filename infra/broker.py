"""The broker and the emitter, built by a composition root at start-up (never at import).

``build_broker(settings)`` makes herald's RabbitMQ broker; an ``Emitter`` sends stage messages
and events on it. Building either opens no connection: dramatiq connects lazily, per thread, on
first publish or consume. The worker processes (``workers.start``) declare their actors on the
broker they build; every other process gets its emitter from its services
(``infra.bootstrap.Services.emitter``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import dramatiq
import pika
from dramatiq.broker import MessageProxy
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from infra import amqp_nodes, handing_on, topology
from infra.dead_letters import (
    ATTEMPTS_HEADER,
    MAX_REASON,
    REASON_HEADER,
    STAGE_HEADER,
    DeadLetteringConsumer,
    describe,
)
from infra.middleware.dead_letters import DeadLetterLog
from infra.middleware.log_context import LogContext
from infra.middleware.metrics import Metrics
from infra.middleware.prefetched import Prefetched
from infra.middleware.single_sigterm import SingleSigterm
from infra.retry_policy import retry_when
from infra.settings import Settings
from schemas.events import Event
from schemas.messages import MAX_BATCH_ITEMS, BatchMessage, EventPublished, StageMessage, chunks
from schemas.validation import event_to_json

if TYPE_CHECKING:
    from infra.bootstrap import Services


#: Messages a worker's consumer holds delivered and unacked, at most (or a batch's worth, if
#: fewer): what a stage can gather a batch from with no round trip (``workers.gather``). Bounded,
#: since a message can itself be a batch of ``HERALD_STAGE_BATCH_SIZE`` items held in memory, and
#: since what one process holds another process of the stage cannot take.
GATHER_PREFETCH = 32

#: Tries to publish a dead letter (a lost connection is reopened in between), as dramatiq's enqueue.
_DEAD_LETTER_ATTEMPTS = 6


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

    def dead_letter(self, message: dramatiq.Message[Any], headers: dict[str, Any]) -> None:
        """Publish ``message`` to its queue's ``.XQ`` with ``headers`` (the reason, the stage, the
        tries), confirmed: an item of a batch that fails alone, while the rest of the batch goes on.
        Retried on a fresh connection as ``enqueue`` is; ``ConnectionClosed`` when it cannot be."""
        queue = message.queue_name.removesuffix(".DQ")
        attempts = 0
        while True:
            try:
                self.declare_queue(queue, ensure=True)
                self.channel.basic_publish(
                    exchange="",
                    routing_key=topology.dead_letter_queue(queue),
                    body=message.encode(),
                    properties=pika.BasicProperties(
                        delivery_mode=2, content_type="application/json", headers=headers
                    ),
                    mandatory=self.confirm_delivery,
                )
                return
            except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as exc:
                del self.connection  # the next try (or caller) opens a new one
                attempts += 1
                if attempts >= _DEAD_LETTER_ATTEMPTS:
                    raise ConnectionClosed(exc) from None

    def _declare_xq_queue(self, queue_name: str) -> Any:
        return self.channel.queue_declare(
            queue=topology.dead_letter_queue(queue_name),
            durable=True,
            arguments=topology.dead_letter_arguments(self.dead_message_ttl_ms, self.queue_type),
        )


def build_broker(settings: Settings, *, services: Callable[[], Services] | None = None) -> HeraldBroker:
    """A broker with publisher confirms on and herald's middleware (``herald_middleware``).

    A worker process adds its ``Lifecycle`` (``workers.start``): it is not part of every broker,
    so that a process that only emits, or a test that boots its own services, never boots twice.

    With several nodes in ``HERALD_AMQP_URL`` every connection it opens (each consumer's, each
    thread's for publishing) goes to the first node that answers, pika trying them in order, and
    one lost is opened again the same way (dramatiq restarts consumers; ``enqueue`` retries on a
    new connection, a message unconfirmed when the connection went being published again).
    ``ConfigurationError`` for classic queues on several nodes (``amqp_nodes.check_cluster_queues``).
    """
    urls = settings.amqp_urls
    amqp_nodes.check_cluster_queues(
        urls, settings.queue_type, allowed=settings.allow_classic_queues_on_cluster
    )
    middleware = herald_middleware(settings, services=services)
    return HeraldBroker(
        url=urls if len(urls) > 1 else urls[0],
        confirm_delivery=True,
        middleware=middleware,
        dead_message_ttl_ms=settings.dead_message_ttl_ms,
        queue_type=settings.queue_type,
        delivery_limit=settings.delivery_limit,
    )


def herald_middleware(
    settings: Settings, *, services: Callable[[], Services] | None = None
) -> list[Middleware]:
    """herald's middleware, in order: what every herald broker runs (and a test's ``StubBroker``).

    ``services`` gives the process's booted services to the log context, which reads a message's
    event id from the store (without it, log lines name the ids the message carries).
    """
    return [
        # First, so their after-hooks run last (dramatiq runs after-hooks in reverse): the log
        # context spans every line of the message, and Metrics sees Retries' verdict.
        LogContext(settings.queue_prefix, services),
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
        SingleSigterm(),
        # What the worker prefetched, for the stages that gather what waits (workers.gather).
        Prefetched(prefetch=min(settings.batch_size, GATHER_PREFETCH)),
    ]


class Emitter:
    """Sends registry messages and events to the queues that consume them, on a given broker.

    Built by the composition root (``infra.bootstrap``, ``workers.start``, a test's fixture) and
    handed to whoever emits through ``Services.emitter``. On herald's broker every send returns
    once RabbitMQ confirmed it; on dramatiq's ``StubBroker`` it lands in the stub's queue.
    """

    def __init__(self, broker: dramatiq.Broker, queue_prefix: str) -> None:
        self.broker = broker
        self.queue_prefix = queue_prefix

    def queue(self, stage: str) -> str:
        """The queue of a stage under this deployment's prefix."""
        return topology.queue_name(self.queue_prefix, stage)

    def emit(self, message: StageMessage, *, delay: int | None = None) -> None:
        """Send a registry message to the stage that consumes it (confirmed by RabbitMQ), to be
        handled no sooner than ``delay`` ms from now when given."""
        self._send(message.stage, message.actor, message.body(), delay=delay)

    def emit_event(self, event: Event) -> None:
        """Hand a validated event to the route stage (confirmed by RabbitMQ)."""
        self._send(EventPublished.stage, EventPublished.actor, event_to_json(event))

    def emit_batches(self, message: type[BatchMessage], items: Sequence[Any], size: int) -> int:
        """Send ``items`` (already JSON primitives, each valid as an item of ``message``) to the
        stage that consumes ``message``, in messages of at most ``size`` items (``chunks``), each
        confirmed in turn; how many messages. Nothing for no items.

        The items are not validated again here (the consuming stage validates the message): the
        caller built them from validated models, and a second pydantic pass per item is what
        batches are to save.
        """
        sent = 0
        for chunk in chunks(items, min(size, MAX_BATCH_ITEMS)):
            self._send(message.stage, message.actor, {message.items_field: chunk})
            sent += 1
        return sent

    def dead_letter(
        self, stage: str, actor: str, body: Any, error: BaseException, *, attempts: int = 0
    ) -> None:
        """Dead-letter one item of a batch on its own, with the reason: ``body`` goes to the
        stage's ``.XQ`` as the single-item message ``actor`` (so ``herald dlq replay`` hands it back
        to the stage alone), the rest of the batch going on. On herald's broker it is confirmed,
        with the headers of every dead letter (``infra.dead_letters``); on dramatiq's ``StubBroker``
        it lands among the stub's dead letters, carrying ``error``."""
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=self.queue(stage), actor_name=actor, args=(body,), kwargs={}, options={}
        )
        publish = getattr(self.broker, "dead_letter", None)
        if publish is not None:
            headers = {
                REASON_HEADER: describe(error)[:MAX_REASON],
                STAGE_HEADER: stage,
                ATTEMPTS_HEADER: attempts,
            }
            publish(message, headers)
        elif isinstance(self.broker, StubBroker):
            proxy = MessageProxy(message.copy(options={"retries": attempts}))
            proxy.stuff_exception(error)
            proxy.fail()
            self.broker.dead_letters_by_queue[message.queue_name].append(proxy)
        else:  # pragma: no cover - herald runs on its own broker, tests on the stub
            raise TypeError(f"cannot dead-letter on {type(self.broker).__name__}")

    def _send(self, stage: str, actor: str, body: Any, *, delay: int | None = None) -> None:
        handing_on.sending()
        self.broker.enqueue(
            dramatiq.Message(
                queue_name=self.queue(stage),
                actor_name=actor,
                args=(body,),
                kwargs={},
                options={},
            ),
            delay=delay,
        )

    def close(self) -> None:
        """Close the broker's connections (the composition root that built it calls this)."""
        self.broker.close()


class EmitterOnce:
    """A process's emitter on a broker built from ``settings`` on first use, once (thread-safe): a
    process that may never emit builds nothing, and emitting needs no store (the api's status
    callbacks go on while the database is away). ``close()`` closes its broker if built."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._emitter: Emitter | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Emitter:
        with self._lock:
            if self._emitter is None:
                self._emitter = Emitter(build_broker(self.settings), self.settings.queue_prefix)
            return self._emitter

    def close(self) -> None:
        with self._lock:
            built, self._emitter = self._emitter, None
        if built is not None:
            built.close()
