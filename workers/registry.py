"""The actors, declared at start-up on a given broker: one per registry message, each running its
stage's plain function with the process's services.

The stage modules declare nothing on import: each exposes a function ``(services, body)`` (decode →
pure rule → adapter). ``declare`` makes the ``dramatiq.Actor`` of each, under the contract's names:
queue ``{prefix}.{stage}`` and the actor name of ``schemas.messages``. The worker processes call it
from ``workers.start``; tests call it on dramatiq's ``StubBroker`` or on a real broker, with the
services they booted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import dramatiq

from infra import topology
from infra.bootstrap import Services
from schemas.messages import (
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
from workers.batch_turn import Turn

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
    NotificationsRendered: sms.send_sms_batch,
    EmailRendered: email.send_email,
    EmailsRendered: email.send_email_batch,
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
    "sms": gather.Kind(
        NotificationsRendered,
        {
            NotificationRendered.actor: lambda body: [body["notification_id"]],
            NotificationsRendered.actor: lambda body: list(body["notification_ids"]),
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


def handlers(stage: str) -> dict[type[StageMessage], Handler]:
    """The message types ``stage`` consumes, with their functions (for a stage of ``GATHERED``, each
    taking the messages waiting behind it into one batch)."""
    found = {message: handler for message, handler in HANDLERS.items() if message.stage == stage}
    if not found:
        raise ValueError(f"no dramatiq stage {stage!r}; expected one of {', '.join(topology.STAGES)}")
    kind = GATHERED.get(stage)
    if kind is not None:
        batch_handler = found[kind.batch]
        turn = Turn()  # the stage's actors gather one batch at a time between them
        found = {
            message: gather.gathering(kind, message.actor, handler, batch_handler, turn)
            if message.actor in kind.items
            else handler
            for message, handler in found.items()
        }
    return found


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
    return functools.update_wrapper(run, handler, updated=())
