"""Dead letters that say why: the stage's ``.XQ`` gets the message as it last failed, with headers.

dramatiq rejects a failed message (``basic_nack``, no requeue) and RabbitMQ dead-letters the body as it
was *delivered*: the retry count and traceback of the failure that killed it live only in the
worker's memory. This consumer instead publishes that final state to ``.XQ``, with the reason, the
stage and the number of tries in headers, and then acks the original, in that order on the one
channel (RabbitMQ handles a channel's commands in order, so the copy is routed before the original
goes). ``herald dlq`` reads the headers; a quorum queue's own delivery-limit dead letters (no header)
are shown by their ``x-death`` reason.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pika
from dramatiq.brokers.rabbitmq import _RabbitmqConsumer
from dramatiq.errors import ConnectionClosed

from infra import topology

#: Headers on a dead letter (besides ``x-herald-reason``).
STAGE_HEADER = "x-herald-stage"
ATTEMPTS_HEADER = "x-herald-attempts"
#: Reasons are cut to this many characters: a header, not a log.
MAX_REASON = 1000


def reason_of(message: Any) -> str:
    """Why a dramatiq message failed: its exception, else the last line of its traceback."""
    exc = getattr(message, "_exception", None)
    if exc is not None:
        return f"{type(exc).__name__}: {exc}"[:MAX_REASON]
    trace = str(message.options.get("traceback") or "").strip()
    return (trace.splitlines()[-1] if trace else "failed")[:MAX_REASON]


def stage_of(queue_name: str) -> str:
    """``route`` for ``herald.route`` (or ``herald.route.DQ``)."""
    return queue_name.removesuffix(".DQ").rsplit(".", 1)[-1]


class DeadLetteringConsumer(_RabbitmqConsumer):
    """dramatiq's RabbitMQ consumer, whose ``nack`` dead-letters with the reason in headers."""

    def nack(self, message: Any) -> None:
        try:
            self.known_tags.remove(message._tag)
        except KeyError:
            self.logger.warning("Failed to nack message: not in known tags.")
            return
        canonical = message.queue_name.removesuffix(".DQ")
        headers = {
            topology.REASON_HEADER: reason_of(message),
            STAGE_HEADER: stage_of(canonical),
            ATTEMPTS_HEADER: int(message.options.get("retries", 0)),
        }
        body = message._message.encode()
        try:
            self.connection.add_callback_threadsafe(
                partial(self._dead_letter, message._tag, topology.dead_letter_queue(canonical), body, headers)
            )
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as e:
            raise ConnectionClosed(e) from None

    def _dead_letter(self, tag: int, queue: str, body: bytes, headers: dict[str, Any]) -> None:
        # Runs on the consumer's connection thread: publish the copy, then settle the original.
        properties = pika.BasicProperties(delivery_mode=2, content_type="application/json", headers=headers)
        self.channel.basic_publish("", queue, body, properties)
        self.channel.basic_ack(tag)
