"""The publishing API: confirmed, batched, many in flight.

    with Publisher(settings) as publisher:
        publisher.publish(event)
        publisher.publish_many(events)

Both return only once RabbitMQ has confirmed every message, and raise a
``PublishError`` (nack, unroutable, broker down) whose ``confirmed`` lists
the event ids that did get through.

Events travel to the route stage in batches (issue 15): consecutive events go in one
``events.published`` message of up to ``HERALD_STAGE_BATCH_SIZE`` events (and about a MiB), so
the stages handle them many per transaction. An event published alone goes at once, as the single
``event.published`` message it always was: nothing waits for a batch to fill.

A ``Publisher`` is one connection, for one thread at a time; ``SharedPublisher`` shares one
between threads (the api's requests), putting together what they publish at the same moment.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from infra import amqp_nodes, topology
from infra.errors import BrokerUnavailable, InvalidEvent, PublishError
from infra.settings import Settings
from producers.coalescing import Coalescer
from producers.confirming import ConfirmingChannel
from schemas.events import Event
from schemas.messages import EventPublished, EventsPublished
from schemas.validation import check_json, event_to_json, parse_event

#: A batch message closes before it would pass this many bytes of events (one larger event goes
#: alone): RabbitMQ and the route stage handle a few large messages better than one huge one.
BATCH_BYTES = 1024 * 1024
# As dramatiq's JSON encoder writes a message, so a message built here decodes as any other.
_JSON = json.JSONEncoder(separators=(",", ":"))
_TAIL = b'],"kwargs":{},"options":{},"message_id":"'
logger = logging.getLogger(__name__)


def _message_head(queue: str, actor: str) -> bytes:
    """The bytes of a dramatiq message up to its first argument."""
    return f'{{"queue_name":{_JSON.encode(queue)},"actor_name":{_JSON.encode(actor)},"args":['.encode()


def _message(head: bytes, argument: bytes) -> tuple[str, bytes]:
    """A dramatiq message (its id and bytes) of one argument, already JSON: what
    ``dramatiq.Message(...).encode()`` makes, without decoding and encoding the argument again."""
    message_id = str(uuid.uuid4())
    tail = f'{message_id}","message_timestamp":{int(time.time() * 1000)}}}'.encode()
    return message_id, head + argument + _TAIL + tail


class Publisher:
    """Publishes events to herald's ``route`` queue with publisher confirms."""

    def __init__(self, settings: Settings, *, window: int | None = None) -> None:
        self.settings = settings
        self.window = window or self.settings.publish_window
        self.queue = topology.queue_name(self.settings.queue_prefix, EventPublished.stage)
        self.batch_size = self.settings.batch_size
        self._single_head = _message_head(self.queue, EventPublished.actor)
        self._batch_head = _message_head(self.queue, EventsPublished.actor)
        timeout = self.settings.publish_timeout_seconds
        urls = self.settings.amqp_urls
        # It declares the route queue: classic queues on a cluster are refused here too.
        amqp_nodes.check_cluster_queues(
            urls, self.settings.queue_type, allowed=self.settings.allow_classic_queues_on_cluster
        )
        self._channel = ConfirmingChannel(
            urls,
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

    @property
    def connected(self) -> bool:
        """Whether the connection is open (as far as this side knows)."""
        return self._channel.is_open

    def connect(self) -> None:
        """Open the connection now (it opens on first publish otherwise)."""
        if not self._channel.is_open:
            self._connect_retry(self._channel.open)

    def close(self) -> None:
        """Close the connection."""
        self._channel.close()

    def encode(self, event: Event | Mapping[str, Any]) -> tuple[str, bytes]:
        """Validate one event and encode it as the route stage's message (``event.published``).

        The size limit applies to the message as sent alone; it is checked on the
        encoded bytes, so each event is serialised once. A model built by the
        caller is held to the same nesting limit as a decoded event.
        ``publish_encoded`` puts encoded events together in batches.
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
        _, body = _message(self._single_head, _JSON.encode(payload).encode())
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
        """Publish events made by ``encode`` (so a caller that reports bad events one by one
        encodes each once), in batches; returns how many events once RabbitMQ confirmed all.

        ``on_confirmed`` is told how many events each confirm covered; a ``PublishError``'s
        ``confirmed`` lists the event ids of the messages that were confirmed.

        With several nodes in ``HERALD_AMQP_URL``, a connection lost mid-publish leaves what was
        not confirmed unconfirmed: it is published again on the next node that answers (up to once
        per node), and ``confirmed`` counts what any node confirmed.
        """
        if not messages:
            return 0
        batches = self.batches(messages)
        pending = [(message_id, body) for message_id, body, _ in batches]
        events_of = {message_id: event_ids for message_id, _, event_ids in batches}
        count_of = {message_id: len(event_ids) for message_id, _, event_ids in batches}
        confirmed: list[str] = []  # message ids, over every node tried
        failovers = 0

        def failed(exc: PublishError) -> PublishError:
            exc.confirmed = [
                event_id for m in confirmed + exc.confirmed for event_id in events_of.get(m, [m])
            ]
            return exc

        while True:
            try:
                self.connect()  # the first node that answers, retried briefly
            except BrokerUnavailable as exc:
                raise failed(exc) from None
            try:
                self._channel.publish(
                    self.queue, pending, self.window, on_confirmed, weights=[count_of[m] for m, _ in pending]
                )
                return len(messages)
            except BrokerUnavailable as exc:
                if len(self._channel.urls) == 1 or failovers >= len(self._channel.urls):
                    raise failed(exc) from None
                confirmed += exc.confirmed
            except PublishError as exc:  # nacked or unroutable: another node would not take it
                raise failed(exc) from None
            # The connection was lost mid-publish: what RabbitMQ had not confirmed is unconfirmed,
            # and goes again on the next node that answers (a message the lost node did take is
            # then queued twice; the route stage is idempotent on the event id).
            failovers += 1
            done = set(confirmed)
            pending = [(m, body) for m, body in pending if m not in done]
            logger.warning(
                "publisher lost its node; publishing the unconfirmed on the next",
                extra={
                    "node": self._channel.node,
                    "unconfirmed_messages": len(pending),
                    "confirmed_messages": len(done),
                },
            )
            self._channel.close()

    def batches(self, messages: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes, list[str]]]:
        """Encoded events put together in order as the messages that carry them: ``(message id,
        bytes, event ids)`` each. A run of one event is its own ``event.published`` message, as
        encoded; more go in ``events.published`` messages of at most ``batch_size`` events and
        about ``BATCH_BYTES``."""
        out: list[tuple[str, bytes, list[str]]] = []
        run: list[tuple[str, bytes, bytes]] = []  # (event id, the event's JSON, its own message)
        size = 0

        def close() -> None:
            nonlocal run, size
            if len(run) == 1:
                ((event_id, _, alone),) = run
                out.append((event_id, alone, [event_id]))
            elif run:
                events = b'{"events":[' + b",".join(payload for _, payload, _ in run) + b"]}"
                message_id, body = _message(self._batch_head, events)
                out.append((message_id, body, [event_id for event_id, _, _ in run]))
            run, size = [], 0

        for event_id, body in messages:
            payload = self._payload_of(body)
            if run and (len(run) >= self.batch_size or size + len(payload) > BATCH_BYTES):
                close()
            run.append((event_id, payload, body))
            size += len(payload) + 1
        close()
        return out

    def _payload_of(self, body: bytes) -> bytes:
        """The event JSON of a message made by ``encode`` (cut out, not decoded), or of any other
        ``event.published`` message (decoded and encoded again)."""
        if body.startswith(self._single_head):
            end = body.rfind(_TAIL)
            if end > len(self._single_head):
                return body[len(self._single_head) : end]
        message = json.loads(body)
        return _JSON.encode(message["args"][0]).encode()


class SharedPublisher:
    """One ``Publisher`` (one connection) for every thread of a process, such as the api's
    requests: ``publish_encoded`` may be called from any thread, and what threads publish at the
    same moment goes out together (``producers.coalescing``), in the same batches and round trip.
    Each call still returns only once RabbitMQ confirmed its own events, and its ``PublishError``
    names only its own confirmed events. The connection opens on the first publish and is kept;
    one found lost when publishing is opened again once. ``encode`` is the ``Publisher``'s (pure).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.publisher = Publisher(settings)
        self._coalescer: Coalescer[Sequence[tuple[str, bytes]]] = Coalescer(self._flush, "herald-publish")

    def encode(self, event: Event | Mapping[str, Any]) -> tuple[str, bytes]:
        """``Publisher.encode``: validate one event and encode it (thread-safe: nothing is sent)."""
        return self.publisher.encode(event)

    def publish_encoded(self, messages: Sequence[tuple[str, bytes]]) -> int:
        """``Publisher.publish_encoded`` from any thread; how many once all are confirmed."""
        if messages:
            self._coalescer.submit(messages)
        return len(messages)

    def close(self) -> None:
        """Publish what was handed over, then close the connection."""
        self._coalescer.close()
        self.publisher.close()

    def _flush(self, calls: list[Sequence[tuple[str, bytes]]]) -> list[BaseException | None]:
        """On the coalescer's thread, the only one that touches the connection."""
        try:
            self._publish([message for messages in calls for message in messages])
        except PublishError as exc:
            confirmed = set(exc.confirmed)
            return [
                type(exc)(str(exc), confirmed=[event_id for event_id, _ in messages if event_id in confirmed])
                for messages in calls
            ]
        return [None] * len(calls)

    def _publish(self, messages: list[tuple[str, bytes]]) -> None:
        kept = self.publisher.connected
        try:
            self.publisher.publish_encoded(messages)
        except BrokerUnavailable as exc:
            if not kept or exc.confirmed:
                raise
            # The kept connection was gone (RabbitMQ restarted while we were idle): once more on a
            # new one. A message RabbitMQ did take is then published twice, which the route stage
            # is idempotent on (the event id).
            self.publisher.close()
            self.publisher.publish_encoded(messages)
