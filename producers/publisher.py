"""The publishing API: confirmed, batched, many in flight.

    with Publisher(settings) as publisher:
        publisher.publish(event)
        publisher.publish_many(events)

Both return only once RabbitMQ has confirmed every message, and raise a
``PublishError`` (nack, unroutable, broker down) whose ``confirmed`` lists
the event ids that did get through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import dramatiq
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from infra import topology
from infra.errors import BrokerUnavailable, InvalidEvent
from infra.settings import Settings
from producers.confirming import ConfirmingChannel
from schemas.events import Event
from schemas.messages import EventPublished
from schemas.validation import check_json, event_to_json, parse_event


class Publisher:
    """Publishes events to herald's ``route`` queue with publisher confirms."""

    def __init__(self, settings: Settings, *, window: int | None = None) -> None:
        self.settings = settings
        self.window = window or self.settings.publish_window
        self.queue = topology.queue_name(self.settings.queue_prefix, EventPublished.stage)
        timeout = self.settings.publish_timeout_seconds
        self._channel = ConfirmingChannel(
            self.settings.amqp_url.get_secret_value(),
            declare=[
                (self.queue, topology.stage_queue_arguments(self.settings, self.queue)),
                (
                    topology.delay_queue(self.queue),
                    topology.stage_queue_arguments(self.settings, self.queue),
                ),
                (
                    topology.dead_letter_queue(self.queue),
                    topology.stage_dead_letter_arguments(self.settings),
                ),
            ],
            timeout=timeout,
        )
        # Connecting is retried briefly (a broker restarting); the whole budget stays under the timeout.
        self._connect_retry = Retrying(
            retry=retry_if_exception_type(BrokerUnavailable),
            stop=stop_after_delay(timeout / 2),
            wait=wait_exponential(multiplier=0.2, max=2.0),
            reraise=True,
        )

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Open the connection now (it opens on first publish otherwise)."""
        if not self._channel.is_open:
            self._connect_retry(self._channel.open)

    def close(self) -> None:
        """Close the connection."""
        self._channel.close()

    def encode(self, event: Event | Mapping[str, Any]) -> tuple[str, bytes]:
        """Validate one event and encode it as the route stage's message.

        The size limit applies to the message as sent; it is checked on the
        encoded bytes, so each event is serialised once. A model built by the
        caller is held to the same nesting limit as a decoded event.
        """
        depth = self.settings.max_json_depth
        model = event if not isinstance(event, Mapping) else parse_event(dict(event), max_depth=depth)
        try:
            payload = event_to_json(model)
        except ValueError as exc:  # pydantic stops serialising near 255 levels
            raise InvalidEvent(f"event {model.event_id}: cannot be serialised: {exc}") from None
        if not isinstance(event, Mapping):
            try:
                check_json(payload, depth)
            except InvalidEvent as exc:
                raise InvalidEvent(f"event {model.event_id}: {exc.reason}") from None
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=self.queue,
            actor_name=EventPublished.actor,
            args=(payload,),
            kwargs={},
            options={},
        )
        body = message.encode()
        if len(body) > self.settings.max_event_bytes:
            raise InvalidEvent(
                f"event {model.event_id} is {len(body)} bytes encoded, "
                f"over the limit of {self.settings.max_event_bytes} bytes"
            )
        return model.event_id, body

    def publish(self, event: Event | Mapping[str, Any]) -> None:
        """Publish one event; returns once RabbitMQ confirmed it."""
        self.publish_many([event])

    def publish_many(
        self,
        events: Iterable[Event | Mapping[str, Any]],
        *,
        on_confirmed: Callable[[int], None] | None = None,
    ) -> int:
        """Publish events, many in flight; returns the count once all are confirmed.

        Every event is validated first: an invalid one raises ``InvalidEvent``
        (naming its position and the problem) before anything is published.
        """
        messages = []
        for position, event in enumerate(events):
            try:
                messages.append(self.encode(event))
            except InvalidEvent as exc:
                raise InvalidEvent(f"event #{position}: {exc}") from None
        return self.publish_encoded(messages, on_confirmed=on_confirmed)

    def publish_encoded(
        self,
        messages: Sequence[tuple[str, bytes]],
        *,
        on_confirmed: Callable[[int], None] | None = None,
    ) -> int:
        """Publish messages made by ``encode`` (so a caller that reports bad events one by one
        encodes each once); returns the count once RabbitMQ confirmed all of them."""
        if not messages:
            return 0
        self.connect()
        self._channel.publish(self.queue, messages, self.window, on_confirmed)
        return len(messages)
