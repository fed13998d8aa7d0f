"""Dead letters: what ends in a stage's ``.XQ``, saying why, and what ``herald dlq`` does with it.

Writing. dramatiq rejects a failed message (``basic_nack``, no requeue) and RabbitMQ dead-letters
the body as it was *delivered*: the retry count and traceback of the failure that killed it live
only in the worker's memory. ``DeadLetteringConsumer`` instead publishes that final state to
``.XQ``, with the reason, the stage and the number of tries in headers, and then acks the original,
in that order on the one channel (RabbitMQ handles a channel's commands in order, so the copy is
routed before the original goes). ``ingest`` copies a message the contract refuses to its ``.XQ``
as it came, with the reason and its routing key (``dead_letter_rejected``). A quorum queue's own
delivery-limit dead letters carry no header of ours: they are explained by RabbitMQ's ``x-death``.

Reading and moving. ``DeadLetters`` holds one stage's ``.XQ`` open; ``waiting``, ``peek``,
``detail``, ``replay`` and ``purge`` are ``herald dlq list|show|replay|purge`` without the printing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pika
from dramatiq.brokers.rabbitmq import _RabbitmqConsumer
from dramatiq.errors import ConnectionClosed
from pika.adapters.blocking_connection import BlockingChannel

from infra import amqp_nodes, topology
from infra.errors import MessageUnroutable, NotFound
from infra.masking import mask_text
from infra.settings import Settings

#: Every stage with a dead-letter queue: ``ingest``, then the dramatiq stages.
STAGES: tuple[str, ...] = topology.PLAIN_STAGES + topology.STAGES

#: Why a message was dead-lettered (every dead letter of herald's own).
REASON_HEADER = "x-herald-reason"
#: The stage and the tries of a dramatiq stage's dead letter.
STAGE_HEADER = "x-herald-stage"
ATTEMPTS_HEADER = "x-herald-attempts"
#: The routing key an ingest dead letter came with: a replay publishes it back with that key.
ROUTING_KEY_HEADER = "x-herald-routing-key"
#: Reasons are cut to this many characters: a header, not a log.
MAX_REASON = 1000
#: Options dramatiq adds while a message is retried: a replay starts afresh without them.
RETRY_OPTIONS = ("retries", "traceback", "requeue_timestamp", "eta")


# --- Writing dead letters ----------------------------------------------------------------------


def describe(exc: BaseException) -> str:
    """``MalformedMessage: unknown notification ntf_1``: an exception as a reason."""
    return f"{type(exc).__name__}: {exc}"


def reason_of(message: Any) -> str:
    """Why a dramatiq message failed: its exception, else the last line of its traceback."""
    exc = getattr(message, "_exception", None)
    if exc is not None:
        return describe(exc)[:MAX_REASON]
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
            REASON_HEADER: reason_of(message),
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


def dead_letter_rejected(
    channel: BlockingChannel, queue: str, body: bytes, properties: Any, *, reason: str, routing_key: str
) -> None:
    """Copy a message ``ingest`` refuses to its ``.XQ`` (``queue``) as it came, with the reason and
    the routing key in headers (confirmed, when ``channel`` confirms)."""
    headers = dict(properties.headers or {})
    headers[REASON_HEADER] = reason
    headers[ROUTING_KEY_HEADER] = routing_key
    channel.basic_publish(
        "",
        queue,
        body,
        pika.BasicProperties(delivery_mode=2, content_type=properties.content_type, headers=headers),
        mandatory=True,
    )


# --- Reading dead letters ----------------------------------------------------------------------


@dataclass
class DeadLetter:
    """One dead message, decoded for people."""

    tag: int
    id: str
    stage: str
    reason: str
    attempts: int
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    message: dict[str, Any] | None = None  # the dramatiq message, when it is one

    @property
    def traceback(self) -> str:
        return str((self.message or {}).get("options", {}).get("traceback") or "")

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "stage": self.stage, "attempts": self.attempts, "reason": self.reason}

    def shown(self, *, full: bool = False) -> dict[str, Any]:
        """As an operator sees it, masked: the summary, or (``full``) with its body and traceback."""
        item: dict[str, Any] = {**self.summary(), "reason": mask_text(self.reason)}
        if full:
            item["body"] = mask_text(self.body.decode("utf-8", "replace")[:2000])
            if self.traceback:
                item["traceback"] = mask_text(self.traceback)
        return item


def _x_death(headers: dict[str, Any]) -> dict[str, Any]:
    deaths = headers.get("x-death") or []
    return dict(deaths[0]) if deaths else {}


def decode(tag: int, stage: str, properties: Any, body: bytes) -> DeadLetter:
    """A dead letter from what ``basic_get`` returned."""
    headers = dict(properties.headers or {})
    message: dict[str, Any] | None = None
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and "message_id" in parsed and "actor_name" in parsed:
            message = parsed
    except (ValueError, UnicodeDecodeError):
        parsed = None
    options = (message or {}).get("options", {})
    if message is not None:
        ident = str(message["message_id"])
    elif properties.message_id:
        ident = str(properties.message_id)
    elif isinstance(parsed, dict) and parsed.get("event_id"):
        ident = str(parsed["event_id"])
    else:
        ident = hashlib.sha256(body).hexdigest()[:16]
    death = _x_death(headers)
    reason = headers.get(REASON_HEADER)
    if reason is None and options.get("traceback"):
        reason = str(options["traceback"]).strip().splitlines()[-1]
    if reason is None and death:
        reason = f"{death.get('reason', 'dead-lettered')} by RabbitMQ (queue {death.get('queue')})"
    attempts = headers.get(ATTEMPTS_HEADER)
    if attempts is None:
        attempts = headers.get("x-delivery-count") or options.get("retries") or death.get("count") or 0
    return DeadLetter(
        tag=tag,
        id=ident,
        stage=stage,
        reason=str(reason or "(unknown)"),
        attempts=int(attempts),
        body=body,
        headers=headers,
        message=message,
    )


class DeadLetters:
    """One stage's ``.XQ``, held open: peek, then settle (ack what was moved, requeue the rest)."""

    def __init__(self, settings: Settings, stage: str) -> None:
        self.settings = settings
        self.stage = stage
        self.queue = topology.queue_name(settings.queue_prefix, stage)
        self.dead_queue = topology.dead_letter_queue(self.queue)
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._publisher: BlockingChannel | None = None

    def __enter__(self) -> DeadLetters:
        self._connection = amqp_nodes.connect(self.settings.amqp_urls)  # the first node that answers
        self._channel = self._connection.channel()
        return self

    def __exit__(self, *_exc: object) -> None:
        # Whatever was fetched and not acked goes back to the queue when the connection closes.
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    @property
    def channel(self) -> BlockingChannel:
        assert self._channel is not None, "use DeadLetters in a with block"
        return self._channel

    def count(self) -> int:
        """Messages waiting (raises ``ChannelClosedByBroker`` when the queue was never declared)."""
        return int(self.channel.queue_declare(self.dead_queue, passive=True).method.message_count)

    def fetch(self, limit: int | None = None) -> Iterator[DeadLetter]:
        """Dead letters in order, unacked (they stay in the queue unless ``remove``d)."""
        seen = 0
        total = self.count()  # each fetched message stays unacked, so this bounds the walk
        while seen < total and (limit is None or seen < limit):
            method, properties, body = self.channel.basic_get(self.dead_queue, auto_ack=False)
            if method is None:
                return
            seen += 1
            yield decode(method.delivery_tag, self.stage, properties, body)

    def remove(self, letter: DeadLetter) -> None:
        """Take a fetched dead letter out of the queue for good."""
        self.channel.basic_ack(letter.tag)

    def replay(self, letter: DeadLetter) -> None:
        """Republish to the stage's own queue (ingest: the events exchange), confirmed, then remove.

        The stage handles it as any delivery: every actor is idempotent on its event or
        notification id, so a message whose work was done already does it no second time.
        """
        publisher = self._confirming()
        if letter.message is not None:
            message = dict(letter.message)
            options = {k: v for k, v in message.get("options", {}).items() if k not in RETRY_OPTIONS}
            message.update(queue_name=self.queue, options=options)
            body = json.dumps(message, separators=(",", ":")).encode()
            publisher.queue_declare(
                self.queue, durable=True, arguments=topology.stage_queue_arguments(self.settings, self.queue)
            )
            publisher.basic_publish(
                "", self.queue, body, pika.BasicProperties(delivery_mode=2), mandatory=True
            )
        else:
            headers = {k: v for k, v in letter.headers.items() if not k.startswith("x-")}
            routing_key = str(letter.headers.get(ROUTING_KEY_HEADER) or "")
            publisher.basic_publish(
                topology.events_exchange(self.settings.queue_prefix),
                routing_key,
                letter.body,
                pika.BasicProperties(delivery_mode=2, content_type="application/json", headers=headers),
                mandatory=True,
            )
        self.remove(letter)  # only after RabbitMQ confirmed the copy: never lost in between

    def purge(self) -> int:
        """Delete every dead letter of the stage; returns how many there were."""
        return int(self.channel.queue_purge(self.dead_queue).method.message_count)

    def _confirming(self) -> BlockingChannel:
        if self._publisher is None:
            assert self._connection is not None
            self._publisher = self._connection.channel()
            self._publisher.confirm_delivery()
        return self._publisher


# --- What ``herald dlq`` does ------------------------------------------------------------------


@contextmanager
def dead_letters(settings: Settings, stage: str) -> Iterator[DeadLetters]:
    """``DeadLetters`` for a ``with`` block; ``NotFound`` when the stage's ``.XQ`` was never
    declared (nothing has failed there)."""
    try:
        with DeadLetters(settings, stage) as letters:
            yield letters
    except pika.exceptions.ChannelClosedByBroker:
        raise NotFound(f"no dead-letter queue for stage {stage} (nothing has failed there)") from None


def waiting(settings: Settings) -> dict[str, int]:
    """Dead letters waiting, per stage (0 where none was ever declared)."""
    counts: dict[str, int] = {}
    for stage in STAGES:
        try:
            with dead_letters(settings, stage) as letters:
                counts[stage] = letters.count()
        except NotFound:
            counts[stage] = 0
    return counts


def peek(settings: Settings, stage: str, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` dead letters of a stage, masked; they stay in the queue."""
    with dead_letters(settings, stage) as letters:
        return [letter.shown() for letter in letters.fetch(limit)]


def detail(settings: Settings, stage: str, message_id: str) -> dict[str, Any]:
    """One dead letter in full (reason, traceback, body), masked; ``NotFound`` when there is none."""
    with dead_letters(settings, stage) as letters:
        for letter in letters.fetch():
            if letter.id == message_id:
                return letter.shown(full=True)
    raise NotFound(f"no dead letter {message_id} in stage {stage}")


def replay(settings: Settings, stage: str, message_id: str | None = None) -> int:
    """Put one dead letter (or every one, without ``message_id``) back on the stage's queue through
    the normal path; how many. ``NotFound`` when there is no such dead letter, ``MessageUnroutable``
    when RabbitMQ could not route a copy (that one stays dead)."""
    replayed = 0
    try:
        with dead_letters(settings, stage) as letters:
            for letter in letters.fetch():
                if message_id is None or letter.id == message_id:
                    letters.replay(letter)
                    replayed += 1
    except pika.exceptions.UnroutableError:
        raise MessageUnroutable(f"RabbitMQ could not route a replayed message of stage {stage}") from None
    if message_id is not None and replayed == 0:
        raise NotFound(f"no dead letter {message_id} in stage {stage}")
    return replayed


def purge(settings: Settings, stage: str) -> int:
    """Delete every dead letter of a stage; how many there were."""
    with dead_letters(settings, stage) as letters:
        return letters.purge()
