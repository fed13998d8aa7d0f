"""Stage ``ingest``: plain-JSON events from any AMQP client, validated and handed to ``route``.

Upstreams in any language publish the event envelope as the message body to the
durable topic exchange ``herald.events`` (``{HERALD_QUEUE_PREFIX}.events``) with
the event type as routing key. Each
message is validated against the schemas; valid events are handed to the route
queue in batches with a publisher confirm, and only then are the originals
acked. An invalid one is copied to ``<prefix>.ingest.XQ`` with its reason in the
``x-herald-reason`` header (confirmed), then acked: never dropped silently,
never retried forever.

Batches form from what is already waiting: each turn takes every message RabbitMQ has delivered
so far (up to the prefetch), without waiting for more, and forwards the valid ones in
``events.published`` messages of up to ``HERALD_STAGE_BATCH_SIZE`` events. A lone message goes at
once, as a batch of one.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import pika
from dramatiq.errors import BrokerConnectionError
from pika.adapters.blocking_connection import BlockingChannel

from infra import amqp_nodes, metrics, metrics_http, topology
from infra.broker import Emitter, build_broker
from infra.dead_letters import dead_letter_rejected
from infra.errors import InvalidEvent
from infra.logs import configure_logging
from infra.settings import Settings, get_settings
from infra.shutdown import exit_after
from schemas.messages import EventsPublished
from schemas.validation import DEPTH_CEILING, event_to_json, parse_event

logger = logging.getLogger("herald.ingest")


def declare(channel: BlockingChannel, settings: Settings) -> str:
    """The exchange, the ingest queue (bound to every event type) and its dead-letter queue."""
    queue = topology.queue_name(settings.queue_prefix, "ingest")
    exchange = topology.events_exchange(settings.queue_prefix)
    channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    channel.queue_declare(queue, durable=True, arguments=topology.stage_queue_arguments(settings, queue))
    channel.queue_declare(
        topology.dead_letter_queue(queue),
        durable=True,
        arguments=topology.stage_dead_letter_arguments(settings),
    )
    # '#': unknown types reach us too, so they are dead-lettered with a reason instead of vanishing.
    channel.queue_bind(queue, exchange, routing_key="#")
    return queue


def check(
    body: bytes, routing_key: str, max_bytes: int, max_depth: int = DEPTH_CEILING
) -> tuple[Any, str | None]:
    """Validate one message: ``(event, None)`` or ``(None, reason)``.

    Nothing a message holds may raise here: one that did would stop the consumer and come back
    on its restart, again and again. Nesting is bounded (``max_depth``) for the same reason.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"body is not UTF-8 text: {exc}"
    try:
        event = parse_event(text, max_bytes=max_bytes, max_depth=max_depth)
    except InvalidEvent as exc:
        return None, exc.reason
    if routing_key != event.type:
        return None, f"routing key {routing_key!r} does not match the event type {event.type!r}"
    return event, None


class Ingest:
    """The consumer loop; ``stop()`` (or SIGTERM) ends it after the message in hand. Valid events
    go on to route through ``emitter``."""

    def __init__(self, settings: Settings, emitter: Emitter, prefetch: int = 100) -> None:
        self.settings = settings
        self.emitter = emitter
        self.prefetch = prefetch
        self._stopping = threading.Event()
        self._channel: BlockingChannel | None = None

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when stopped meanwhile."""
        self._stopping.wait(seconds)

    def stop(self) -> None:
        self._stopping.set()
        if self._channel is not None and self._channel.is_open:
            self._channel.connection.add_callback_threadsafe(self._channel.stop_consuming)

    def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Consume until stopped."""
        settings = self.settings
        # The first node that answers; lost, ``main`` runs this again, which moves on to the next.
        connection = amqp_nodes.connect(settings.amqp_urls)
        channel = connection.channel()
        channel.confirm_delivery()
        self._channel = channel
        queue = declare(channel, settings)
        dead = topology.dead_letter_queue(queue)
        channel.basic_qos(prefetch_count=self.prefetch)
        received: list[tuple[Any, Any, bytes]] = []

        def take(_ch: BlockingChannel, method: Any, properties: Any, body: bytes) -> None:
            received.append((method, properties, body))

        channel.basic_consume(queue, take)
        if on_ready is not None:
            on_ready()
        logger.info("ingest consuming", extra={"queue": queue})
        try:
            while not self.stopping:
                # Returns as soon as deliveries came in (each handed to ``take``), or after a second.
                connection.process_data_events(time_limit=1)
                if received and not self.stopping:
                    self.forward(channel, dead, received)
                    received.clear()
        finally:
            # Also when handing an event on failed: the unacked messages go back to the queue now.
            if connection.is_open:
                with contextlib.suppress(pika.exceptions.AMQPError):
                    connection.close()

    def forward(self, channel: BlockingChannel, dead: str, received: list[tuple[Any, Any, bytes]]) -> None:
        """Hand the valid events of ``received`` on to route in confirmed batches and copy the
        invalid ones to ``dead`` (confirmed), then ack them all (the originals go only now)."""
        settings = self.settings
        good: list[dict[str, Any]] = []
        for method, properties, body in received:
            event, reason = check(body, method.routing_key, settings.max_event_bytes, settings.max_json_depth)
            if reason is not None:
                dead_letter_rejected(
                    channel, dead, body, properties, reason=reason, routing_key=method.routing_key
                )
                logger.warning("event dead-lettered", extra={"queue": dead, "reason": reason})
                metrics.INGESTED.labels(outcome="dead_lettered").inc()
            else:
                good.append(event_to_json(event))
        # Returns once RabbitMQ confirmed each batch on the route queue.
        self.emitter.emit_batches(EventsPublished, good, settings.batch_size)
        if good:
            metrics.INGESTED.labels(outcome="ingested").inc(len(good))
        channel.basic_ack(received[-1][0].delivery_tag, multiple=True)


def main(settings: Settings) -> None:
    """Run ingest until SIGTERM: the process's composition root builds the emitter's broker here
    (no connection until the first event), from ``settings``."""
    configure_logging(settings)
    emitter = Emitter(build_broker(settings), settings.queue_prefix)
    ingest = Ingest(settings, emitter)

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        ingest.stop()
        # The message in hand finishes and the unacked rest return to the queue when the connection
        # closes; should closing hang (RabbitMQ gone mid-confirm), exit anyway once the time is up.
        exit_after(settings.shutdown_timeout_seconds)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    metrics_http.serve("ingest", settings)  # never stops ingest (off, or port taken: logged)
    delay = 0.5
    while not ingest.stopping:
        try:
            ingest.run(on_ready=lambda: logger.info("ingest connected"))
            delay = 0.5
        except (
            pika.exceptions.AMQPConnectionError,
            pika.exceptions.AMQPChannelError,
            ConnectionError,
            BrokerConnectionError,  # handing an event on to route (dramatiq's connection) failed
        ) as exc:
            # Unacked messages go back to the queue; reconnect rather than take the Procfile down.
            logger.warning(
                "ingest lost RabbitMQ; reconnecting", extra={"error": str(exc), "in_seconds": delay}
            )
            ingest.pause(delay)
            delay = min(delay * 2, 30.0)
    emitter.close()


if __name__ == "__main__":  # ``herald worker ingest``: the settings are read here, once
    main(get_settings())
