"""Batches from what is waiting (issue 15): a stage that takes a message also takes the messages of
its kind already waiting for it, and handles them all as one batch.

Producers that publish one event at a time (an upstream at 200 events/s, the scheduler) send
single messages; handled one by one, each pays a stage's whole fixed cost (a transaction, the
round trips, dramatiq's own). So when ``route``, ``render``, ``sms`` or ``history`` takes a message
it takes those waiting behind it, up to ``HERALD_STAGE_BATCH_SIZE`` items in all, and hands the lot
to its batch function. Nothing waits to fill: a quiet pipeline handles each message as it comes,
and a busy one handles bigger batches the busier it is.

They wait in two places. Taken by the stage's other threads while a batch was in flight: the
threads of a stage process gather one batch at a time, and a thread that takes a message
meanwhile waits, its message joining the next batch (``workers.batch_turn``). Delivered to this
worker and not yet taken: the consumer's prefetch, in the worker's work queue
(``infra.middleware.prefetched``, which also makes that prefetch large enough for a batch).
Neither costs a round trip; asking RabbitMQ for more (``basic_get``) costs one per message, and
made the stage that did it drain its queue no faster than one by one.

The messages taken are acked only once the batch is done (committed and handed on). If it fails,
the prefetched ones go back to the work queue untouched, still unacked, and those of other threads
are handled by their threads alone; the message taken first is retried or dead-lettered by
dramatiq as always. A message tried before (a retry) is handled on its own and never takes others,
so a batch that keeps failing cannot hold good messages hostage.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dramatiq.middleware import CurrentMessage
from pydantic import ValidationError

from infra import metrics, topology
from infra.bootstrap import Services
from infra.handing_on import on_first_send
from infra.middleware.prefetched import prefetched
from schemas.messages import BatchMessage
from workers.batch_turn import Outcome, Turn

logger = logging.getLogger("herald.gather")

Handler = Callable[[Services, Any], None]


@dataclass(frozen=True)
class Kind:
    """The messages of one stage that make one batch: the batch type, and for each actor whose
    messages join it, the items of a body."""

    batch: type[BatchMessage]
    items: dict[str, Callable[[Any], list[Any]]]


def gathering(kind: Kind, actor: str, handler: Handler, batch_handler: Handler, turn: Turn) -> Handler:
    """``handler`` for a message of ``actor``, taking the messages of ``kind`` waiting behind it
    into one batch for ``batch_handler`` (see the module). ``turn`` is shared by the actors of
    ``kind`` in this process: one gathering batch at a time (``workers.batch_turn``)."""

    def run(svc: Services, body: Any) -> None:
        current = CurrentMessage.get_current_message()
        if current is None or current.options.get("retries"):
            handler(svc, body)  # a retry (or called outside a worker): alone, as ever
            return
        own = _valid_items(kind, actor, {}, (body,))
        if own is None:
            handler(svc, body)  # not a valid body of its kind: its own function says what is wrong
            return
        room = svc.settings.batch_size - len(own)
        if room <= 0:
            handler(svc, body)  # a full batch already
            return
        waiting = turn.enter(own)
        if waiting is not None:
            try:
                outcome = waiting.wait()
            except BaseException:  # interrupted while waiting: the turn must not stop with us
                turn.withdraw(waiting)
                raise
            if outcome is Outcome.DONE:
                return  # handled in another thread's batch: dramatiq acks it now
            if outcome is Outcome.ALONE:
                handler(svc, body)  # that batch failed: on its own account
                return
        # The next batch may start once this one hands on (its store work done, its confirm
        # awaited), or at the latest once it ends.
        hand_over = _once(turn.leave)
        try:
            with on_first_send(hand_over):
                _lead(kind, svc, body, own, room, turn, handler, batch_handler)
        finally:
            hand_over()

    return functools.update_wrapper(run, handler, updated=())


def _once(action: Callable[[], None]) -> Callable[[], None]:
    """``action``, run on the first call only (calls come from one thread)."""
    done = False

    def run() -> None:
        nonlocal done
        if not done:
            done = True
            action()

    return run


def _lead(
    kind: Kind,
    svc: Services,
    body: Any,
    own: list[Any],
    room: int,
    turn: Turn,
    handler: Handler,
    batch_handler: Handler,
) -> None:
    """Handle ``body`` (whose items are ``own``) with what waits behind it, up to ``room`` more
    items: the messages other threads of the stage took meanwhile, then those prefetched and not
    yet taken; alone when nothing waits."""
    joined = turn.take(room)
    room -= sum(len(one.items) for one in joined)
    queue = topology.queue_name(svc.settings.queue_prefix, kind.batch.stage)
    buffer = prefetched(svc.emitter.broker)
    held = buffer.take(lambda message: _joins(kind, queue, message), room, len) if buffer else []
    if not joined and not held:
        handler(svc, body)
        return
    items = (
        own + [item for one in joined for item in one.items] + [item for one in held for item in one.value]
    )
    try:
        batch_handler(svc, {kind.batch.items_field: items})
    except BaseException:
        if buffer is not None:
            buffer.give_back(held)
        for one in joined:
            one.settle(Outcome.ALONE)
        raise
    if buffer is not None:
        buffer.settle(held)
    for one in joined:
        one.settle(Outcome.DONE)
    metrics.MESSAGES.labels(stage=kind.batch.stage, outcome=metrics.OK).inc(len(held))
    logger.debug("messages gathered", extra={"messages": 1 + len(joined) + len(held), "items": len(items)})


def _joins(kind: Kind, queue: str, message: Any) -> list[Any] | None:
    """The items of a prefetched message (a ``dramatiq`` message proxy) that can join a batch of
    ``kind`` from ``queue``, or ``None`` (see ``_valid_items``)."""
    if message.queue_name != queue:
        return None  # another stage's, in a worker that runs several
    return _valid_items(kind, message.actor_name, message.options, message.args)


def _valid_items(kind: Kind, actor: str, options: dict[str, Any], args: tuple[Any, ...]) -> list[Any] | None:
    """The items of a message that can join the batch, or ``None``: another actor's, one tried
    before, or one that is not valid as items of the batch (it is handled on its own, and fails on
    its own)."""
    if options.get("retries") or actor not in kind.items or len(args) != 1:
        return None
    try:
        items = kind.items[actor](args[0])
        kind.batch.model_validate({kind.batch.items_field: items})
    except (KeyError, TypeError, ValueError, ValidationError):
        return None
    return items
