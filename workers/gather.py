"""Batches from what is waiting (issue 15): a stage that takes a message also takes the messages of
its kind already waiting for it, and handles them all as one batch.

Producers that publish one event at a time (an upstream at 200 events/s, the scheduler) send
single messages; handled one by one, each pays a stage's whole fixed cost (a transaction, the
round trips, dramatiq's own). So when ``route``, ``render``, ``sms`` or ``history`` takes a message
it takes those waiting behind it, up to ``HERALD_STAGE_BATCH_SIZE`` items in all, and hands the lot
to its batch function. They wait in two places: delivered to this worker but not yet started (the
consumer's prefetch, in the worker's work queue: ``infra.middleware.prefetched``), and, when the
prefetch is full, still in RabbitMQ's queue (``basic_get``, on the worker thread's own channel).
Nothing waits to fill: a quiet pipeline handles each message as it comes (asking RabbitMQ nothing
more), and a busy one handles bigger batches the busier it is.

The messages taken are acked only once the batch is done (committed and handed on); if it fails,
they go back untouched (to the work queue, or to RabbitMQ's queue), to be handled again (the
message taken first is retried or dead-lettered by dramatiq as always). A message tried before (a
retry) is handled on its own and never takes others, so a batch that keeps failing cannot hold
good messages hostage.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import CurrentMessage
from pydantic import ValidationError

from infra import metrics, topology
from infra.bootstrap import Services
from infra.middleware.prefetched import prefetched
from schemas.messages import BatchMessage

logger = logging.getLogger("herald.gather")

Handler = Callable[[Services, Any], None]


@dataclass(frozen=True)
class Kind:
    """The messages of one stage that make one batch: the batch type, and for each actor whose
    messages join it, the items of a body."""

    batch: type[BatchMessage]
    items: dict[str, Callable[[Any], list[Any]]]


def gathering(
    kind: Kind, actor: str, handler: Handler, batch_handler: Handler, turn: threading.Lock
) -> Handler:
    """``handler`` for a message of ``actor``, taking the messages of ``kind`` waiting behind it
    into one batch for ``batch_handler`` (see the module). ``turn`` is shared by the actors of
    ``kind`` in this process: one gathered batch at a time."""

    def run(svc: Services, body: Any) -> None:
        current = CurrentMessage.get_current_message()
        if current is None or current.options.get("retries"):
            handler(svc, body)  # a retry (or called outside a worker): alone, as ever
            return
        try:
            own = kind.items[actor](body)
        except (KeyError, TypeError):
            handler(svc, body)  # not a body of its kind: its own function says what is wrong
            return
        room = svc.settings.stage_batch_size - len(own)
        if room <= 0:
            handler(svc, body)  # a full batch already
            return
        # One gathering batch at a time per process: the threads that took a message meanwhile
        # wait here, and the first to go on takes everything that came in the meantime, as one
        # batch. Gathering first and then waiting (for the store's write lock, on SQLite) would
        # make each of them a batch of one, queued behind the others.
        with turn:
            _gather(kind, svc, body, own, room, handler, batch_handler)

    return functools.update_wrapper(run, handler, updated=())


def _gather(
    kind: Kind, svc: Services, body: Any, own: list[Any], room: int, handler: Handler, batch_handler: Handler
) -> None:
    """Handle ``body`` (whose items are ``own``) with what waits behind it, up to ``room`` more
    items: alone when nothing does."""
    broker = svc.emitter.broker
    queue = topology.queue_name(svc.settings.queue_prefix, kind.batch.stage)
    buffer = prefetched(broker)
    held = buffer.take(lambda message: _joins(kind, queue, message), room, len) if buffer else []
    room -= sum(len(one.value) for one in held)
    # Only a consumer whose prefetch is full leaves messages in RabbitMQ's queue: one that
    # held nothing in its buffer asks no round trip of an empty queue.
    channel = broker.channel if held and room > 0 and isinstance(broker, RabbitmqBroker) else None
    fetched = _take_waiting(channel, queue, kind, room) if channel is not None else []
    if not held and not fetched:
        handler(svc, body)
        return
    items = (
        own + [item for one in held for item in one.value] + [item for _, more in fetched for item in more]
    )
    try:
        batch_handler(svc, {kind.batch.items_field: items})
    except BaseException:
        if buffer is not None:
            buffer.give_back(held)
        if channel is not None and channel.is_open:  # else RabbitMQ has put them back already
            for tag, _ in fetched:
                channel.basic_nack(tag, requeue=True)
        raise
    if channel is not None and channel.is_open:
        for tag, _ in fetched:
            channel.basic_ack(tag)
    if buffer is not None:
        buffer.settle(held)
    taken = len(held) + len(fetched)
    metrics.MESSAGES.labels(stage=kind.batch.stage, outcome=metrics.OK).inc(taken)
    logger.debug("messages gathered", extra={"messages": 1 + taken, "items": len(items)})


def _joins(kind: Kind, queue: str, message: Any) -> list[Any] | None:
    """The items of a prefetched message (a ``dramatiq`` message proxy) that can join a batch of
    ``kind`` from ``queue``, or ``None`` (see ``_items``)."""
    if message.queue_name != queue:
        return None  # another stage's, in a worker that runs several
    return _valid_items(kind, message.actor_name, message.options, message.args)


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
    except dramatiq.errors.DecodeError:
        return None
    return _valid_items(kind, message.actor_name, message.options, message.args)


def _valid_items(kind: Kind, actor: str, options: dict[str, Any], args: tuple[Any, ...]) -> list[Any] | None:
    if options.get("retries") or actor not in kind.items or len(args) != 1:
        return None
    try:
        items = kind.items[actor](args[0])
        kind.batch.model_validate({kind.batch.items_field: items})
    except (KeyError, TypeError, ValueError, ValidationError):
        return None
    return items
