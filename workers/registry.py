"""The actors, declared at start-up on a given broker: one per registry message, each running its
stage's plain function with the process's services.

The stage modules declare nothing on import: each exposes a function ``(services, body)`` (decode →
pure rule → adapter). ``declare`` makes the ``dramatiq.Actor`` of each, under the contract's names:
queue ``{prefix}.{stage}`` and the actor name of ``schemas.messages``. The worker processes call it
from ``workers.start``; tests call it on dramatiq's ``StubBroker`` or on a real broker, with the
services they booted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import dramatiq

from infra import topology
from infra.bootstrap import Services
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
from workers import collect, email, history, render, route, sms
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

#: Batch messages a stage may be sent before it has a batch function of its own, with the
#: single-item message each item of theirs becomes (``split``): render hands the senders batches,
#: and a sender stage without a batch function still takes them, item by item. Once a stage's
#: batch function is in ``HANDLERS`` it is used instead.
SINGLE_OF: dict[type[BatchMessage], type[StageMessage]] = {
    NotificationsRendered: NotificationRendered,
    EmailsRendered: EmailRendered,
}


def handlers(stage: str) -> dict[type[StageMessage], Handler]:
    """The message types ``stage`` consumes, with their functions (a batch type of ``SINGLE_OF``
    without one of its own: ``split`` into its single-item messages)."""
    found = {message: handler for message, handler in HANDLERS.items() if message.stage == stage}
    if not found:
        raise ValueError(f"no dramatiq stage {stage!r}; expected one of {', '.join(topology.STAGES)}")
    for batch, single in SINGLE_OF.items():
        if batch.stage == stage and batch not in found and single in found:
            found[batch] = split(batch, single)
    return found


def split(batch: type[BatchMessage], single: type[StageMessage]) -> Handler:
    """A handler that hands each item of a ``batch`` message back to its own stage as a ``single``
    message (confirmed), for a stage whose function takes one item at a time: each item then goes
    through that function as it always has, with its own retries and dead letter. A redelivered
    batch hands its items on again, which the single-item function is idempotent on."""

    def run(svc: Services, body: Any) -> None:
        for item in decode(batch, body).batch_items():
            svc.emitter.emit(single.model_validate({"notification_id": item}))

    run.__module__ = __name__
    run.__name__ = run.__qualname__ = batch.actor  # dramatiq's and herald's log lines name the actor
    run.__doc__ = split.__doc__
    return run


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
