"""Reading and moving dead letters: what ``herald dlq`` is made of (no CLI here).

A dead letter is a message in a stage's ``.XQ``. Those of the dramatiq stages are dramatiq
messages (JSON with ``message_id`` and ``options``) with the reason, stage and tries in headers
(``infra.dead_lettering``); those of ``ingest`` are the upstream's own bytes with the reason in
``x-herald-reason``; a quorum queue's delivery-limit dead letters have only RabbitMQ's ``x-death``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from infra import topology
from infra.dead_lettering import ATTEMPTS_HEADER
from infra.settings import Settings

#: Options dramatiq adds while a message is retried: a replay starts afresh without them.
RETRY_OPTIONS = ("retries", "traceback", "requeue_timestamp", "eta")


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
    reason = headers.get(topology.REASON_HEADER)
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
        self._connection = pika.BlockingConnection(
            pika.URLParameters(self.settings.amqp_url.get_secret_value())
        )
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
            routing_key = str(letter.headers.get("x-herald-routing-key") or "")
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


@contextmanager
def dead_letters(settings: Settings, stage: str) -> Iterator[DeadLetters]:
    """``DeadLetters`` for a ``with`` block."""
    with DeadLetters(settings, stage) as letters:
        yield letters
