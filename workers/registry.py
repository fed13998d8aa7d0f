"""The actors, declared at start-up on a given broker: one per registry message, each running its
stage's plain function with the process's services.

The stage modules declare nothing on import: each exposes a function ``(services, body)`` (decode →
pure rule → adapter). ``declare`` makes the ``dramatiq.Actor`` of each, under the contract's names:
queue ``{prefix}.{stage}`` and the actor name of ``schemas.messages``. The worker processes call it
from ``workers.start``; tests call it on dramatiq's ``StubBroker`` or on a real broker, with the
services they booted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import dramatiq

from infra import log_context, topology
from infra.bootstrap import Services
from infra.middleware.log_context import lookup_event_id
from infra.retry_policy import is_permanent
from schemas.messages import (
    BatchMessage,
    CollectionRequested,
    DeliveryStatusesReported,
    DeliveryStatusReported,
    EmailRendered,
    EmailsRendered,
    EventPublished,
    EventsPublished,
    MandateSetupRequested,
    NotificationDecided,
    NotificationRendered,
    NotificationsDecided,
    NotificationsRendered,
    StageMessage,
)
from workers import collect, email, gather, history, render, route, sms
from workers.batches import dead_letter_item
from workers.decode import decode

#: What a stage runs for one message: the process's services and the message body.
Handler = Callable[[Services, Any], None]

#: Each message type the stages consume, with the function that handles it.
HANDLERS: dict[type[StageMessage], Handler] = {
    EventPublished: route.route_event,
    EventsPublished: route.route_events,
    MandateSetupRequested: route.route_mandate_setup,
    NotificationDecided: render.render_notification,
    NotificationsDecided: render.render_notifications,
    NotificationRendered: sms.send_sms,
    EmailRendered: email.send_email,
    CollectionRequested: collect.collect_invoice,
    DeliveryStatusReported: history.record_status,
    DeliveryStatusesReported: history.record_statuses,
}

#: The stages that take the messages waiting behind the one they took into one batch
#: (``workers.gather``): the kinds of message that join, by the stage's actors.
GATHERED: dict[str, gather.Kind] = {
    "route": gather.Kind(
        EventsPublished,
        {EventPublished.actor: lambda body: [body], EventsPublished.actor: lambda body: list(body["events"])},
    ),
    "render": gather.Kind(
        NotificationsDecided,
        {
            NotificationDecided.actor: lambda body: [body["notification_id"]],
            NotificationsDecided.actor: lambda body: list(body["notification_ids"]),
        },
    ),
    "history": gather.Kind(
        DeliveryStatusesReported,
        {
            DeliveryStatusReported.actor: lambda body: [body],
            DeliveryStatusesReported.actor: lambda body: list(body["reports"]),
        },
    ),
}


#: Batch messages a stage may be sent before it has a batch function of its own, with the
#: single-item message each item of theirs is (``item_by_item``): render hands the senders batches,
#: and a sender stage without a batch function still takes them, one item after another. Once a
#: stage's batch function is in ``HANDLERS`` it is used instead.
SINGLE_OF: dict[type[BatchMessage], type[StageMessage]] = {
    NotificationsRendered: NotificationRendered,
    EmailsRendered: EmailRendered,
}
#: How long ``item_by_item`` handles a batch's items in turn before handing the rest on as single
#: messages (well under the time limit of a message, whatever the items wait for).
ITEM_BY_ITEM_SECONDS = 10.0


def handlers(stage: str) -> dict[type[StageMessage], Handler]:
    """The message types ``stage`` consumes, with their functions (a batch type of ``SINGLE_OF``
    without one of its own: ``item_by_item`` with the single-item function; a stage of
    ``GATHERED``: each taking the messages waiting behind it into one batch)."""
    found = {message: handler for message, handler in HANDLERS.items() if message.stage == stage}
    if not found:
        raise ValueError(f"no dramatiq stage {stage!r}; expected one of {', '.join(topology.STAGES)}")
    for batch, single in SINGLE_OF.items():
        if batch.stage == stage and batch not in found and single in found:
            found[batch] = item_by_item(batch, single, found[single])
    kind = GATHERED.get(stage)
    if kind is not None:
        batch_handler = found[kind.batch]
        found = {
            message: gather.gathering(kind, message.actor, handler, batch_handler)
            if message.actor in kind.items
            else handler
            for message, handler in found.items()
        }
    return found


def item_by_item(batch: type[BatchMessage], single: type[StageMessage], handler: Handler) -> Handler:
    """A handler of ``batch`` messages that runs ``handler`` (the stage's single-item function) on
    each item in turn, as the ``single`` message it would have had, its log lines naming the item.

    Each item keeps the outcome it has alone: a permanent error dead-letters that item alone (as a
    ``single`` message, with its reason); an item to be tried again later (``dramatiq.Retry``, a
    transient error), and the items after it, go back to the stage as ``single`` messages (after
    the delay asked for), each with its own retries. So does the rest of a batch that has taken
    ``ITEM_BY_ITEM_SECONDS``. Idempotent as ``handler`` is: a redelivered batch runs each item again.
    """

    def run(svc: Services, body: Any) -> None:
        items = [
            single.model_validate({"notification_id": item}).body()
            for item in decode(batch, body).batch_items()
        ]
        started = time.monotonic()
        for index, item in enumerate(items):
            if time.monotonic() - started > ITEM_BY_ITEM_SECONDS:
                _hand_back(svc, single, items[index:])
                return
            nid = item["notification_id"]
            try:
                with log_context.bound(notification_id=nid):
                    log_context.bind_lazy(event_id=partial(lookup_event_id, lambda: svc, nid))
                    handler(svc, item)
            except dramatiq.Retry as again:
                _hand_back(svc, single, items[index : index + 1], delay=again.delay)
                _hand_back(svc, single, items[index + 1 :])
                return
            except Exception as exc:
                if is_permanent(exc):
                    dead_letter_item(svc, single.stage, single.actor, item, exc)
                    continue
                _hand_back(svc, single, items[index:])
                return

    run.__module__ = __name__
    run.__name__ = run.__qualname__ = batch.actor  # dramatiq's and herald's log lines name the actor
    run.__doc__ = item_by_item.__doc__
    return run


def _hand_back(svc: Services, single: type[StageMessage], items: list[Any], delay: int | None = None) -> None:
    for item in items:
        svc.emitter.emit(single.model_validate(item), delay=delay)


def declare(
    broker: dramatiq.Broker,
    services: Callable[[], Services],
    stages: Iterable[str],
    *,
    queue_prefix: str,
) -> dict[str, dramatiq.Actor[Any, None]]:
    """Declare the actors of ``stages`` on ``broker``; returns them by actor name.

    ``services`` is called for each message (in a worker process, the services its ``Lifecycle``
    booted once the worker started, after declaring).
    """
    actors: dict[str, dramatiq.Actor[Any, None]] = {}
    for stage in stages:
        for message, handler in handlers(stage).items():
            declared = dramatiq.actor(
                broker=broker,
                actor_name=message.actor,
                queue_name=topology.queue_name(queue_prefix, message.stage),
            )
            actors[message.actor] = declared(_bound(handler, services))
    return actors


def _bound(handler: Handler, services: Callable[[], Services]) -> Callable[[Any], None]:
    """The actor's function: the body in, the handler run with the services of the moment."""

    def run(body: Any) -> None:
        handler(services(), body)

    # The handler's names, so dramatiq's and herald's log lines name the stage's function.
    run.__module__, run.__name__, run.__qualname__ = (
        handler.__module__,
        handler.__name__,
        handler.__qualname__,
    )
    run.__doc__ = handler.__doc__
    return run
