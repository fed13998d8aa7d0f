"""Batches from what is waiting (issue 15): a stage that takes a message also takes the messages of
its kind already waiting in its queue, and handles them all as one batch.

Producers that publish one event at a time (an upstream at 200 events/s, the scheduler) send
single messages; handled one by one, each pays a stage's whole fixed cost (a transaction, the
round trips, dramatiq's own). So when ``route``, ``render`` or ``history`` takes a message it asks
RabbitMQ (``basic_get``, on the worker thread's own channel) for those waiting behind it, up to
``HERALD_STAGE_BATCH_SIZE`` items in all, and hands the lot to its batch function. Nothing waits:
an empty queue answers at once, so a quiet pipeline handles each message as it comes, and a busy
one handles bigger batches the busier it is.

The messages taken are acked only once the batch is done (committed and handed on); if it fails,
they go back to the queue untouched, to be handled on their own account (the message taken first
is retried or dead-lettered by dramatiq as always). A message tried before (a retry) is handled on
its own and never takes others, so a batch that keeps failing cannot hold good messages hostage.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import CurrentMessage
from pydantic import ValidationError

from infra import metrics, topology
from infra.bootstrap import Services
from schemas.messages import BatchMessage

logger = logging.getLogger("herald.gather")

Handler = Callable[[Services, Any], None]


@dataclass(frozen=True)
class Kind:
    """The messages of one stage that make one batch: the batch type, and for each actor whose
    messages join it, the items of a body."""

    batch: type[BatchMessage]
    items: dict[str, Callable[[Any], list[Any]]]


def gathering(kind: Kind, actor: str, handler: Handler, batch_handler: Handler) -> Handler:
    """``handler`` for a message of ``actor``, taking the messages of ``kind`` waiting behind it
    into one batch for ``batch_handler`` (see the module)."""

    def run(svc: Services, body: Any) -> None:
        current = CurrentMessage.get_current_message()
        broker = svc.emitter.broker
        if current is None or current.options.get("retries") or not isinstance(broker, RabbitmqBroker):
            handler(svc, body)  # a retry, or not on RabbitMQ (a test's stub): alone, as ever
            return
        try:
            own = kind.items[actor](body)
        except (KeyError, TypeError):
            handler(svc, body)  # not a body of its kind: its own function says what is wrong
            return
        room = svc.settings.stage_batch_size - len(own)
        queue = topology.queue_name(svc.settings.queue_prefix, kind.batch.stage)
        channel = broker.channel
        taken = _take_waiting(channel, queue, kind, room)
        if not taken:
            handler(svc, body)
            return
        items = own + [item for _, more in taken for item in more]
        try:
            batch_handler(svc, {kind.batch.items_field: items})
        except BaseException:
            if channel.is_open:  # else RabbitMQ has put them back already
                for tag, _ in taken:
                    channel.basic_nack(tag, requeue=True)
            raise
        if channel.is_open:
            for tag, _ in taken:
                channel.basic_ack(tag)
        stage = kind.batch.stage
        metrics.MESSAGES.labels(stage=stage, outcome=metrics.OK).inc(len(taken))
        logger.debug("messages gathered", extra={"messages": 1 + len(taken), "items": len(items)})

    return functools.update_wrapper(run, handler, updated=())


def _take_waiting(channel: Any, queue: str, kind: Kind, room: int) -> list[tuple[int, list[Any]]]:
    """Messages of ``kind`` waiting in ``queue``, up to ``room`` items, unacked: (tag, items) each.
    The first one that does not fit, or is not of the kind, goes back where it was, and taking
    stops there."""
    taken: list[tuple[int, list[Any]]] = []
    while room > 0:
        method, _properties, body = channel.basic_get(queue, auto_ack=False)
        if method is None:
            break
        items = _items(kind, body)
        if items is None or len(items) > room:
            channel.basic_nack(method.delivery_tag, requeue=True)
            break
        taken.append((method.delivery_tag, items))
        room -= len(items)
    return taken


def _items(kind: Kind, body: bytes) -> list[Any] | None:
    """The items of a waiting message that can join the batch, or ``None``: another actor's, one
    tried before, or one that is not valid as items of the batch (it is handled on its own, and
    fails on its own)."""
    try:
        message = dramatiq.Message.decode(body)
        if message.options.get("retries") or message.actor_name not in kind.items or len(message.args) != 1:
            return None
        items = kind.items[message.actor_name](message.args[0])
        kind.batch.model_validate({kind.batch.items_field: items})
    except (dramatiq.errors.DecodeError, KeyError, TypeError, ValueError, ValidationError):
        return None
    return items
