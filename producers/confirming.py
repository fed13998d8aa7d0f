"""An AMQP channel with publisher confirms kept many-in-flight.

pika's blocking channel waits for each confirm in turn; here the select
connection's I/O loop is driven by the caller, so thousands of messages are
in flight and RabbitMQ's (often multiple) acks are matched as they arrive.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import pika
from pika.adapters.select_connection import SelectConnection
from pika.spec import Basic

from infra import amqp_nodes
from infra.amqp_nodes import split_urls
from infra.errors import BrokerUnavailable, MessageNacked, MessageUnroutable, PublishError
from infra.masking import redact_url

logger = logging.getLogger(__name__)


class ConfirmingChannel:
    """One connection and one confirm-mode channel to publish to one queue.

    ``declare`` lists ``(queue, arguments)`` pairs declared (durable) on open,
    so publishing works before any worker has started.

    ``url`` is one AMQP URL, or several (a list, or comma-separated as in ``HERALD_AMQP_URL``), one
    per node of a cluster: ``open`` connects to the first that answers, trying them in order.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        declare: Sequence[tuple[str, dict[str, Any]]],
        timeout: float,
        *,
        exchange: str = "",
    ) -> None:
        self.urls = split_urls(url) if isinstance(url, str) else list(url)
        # Between calls nobody drives the I/O loop, so heartbeats could not be answered.
        self._nodes = amqp_nodes.parameters(self.urls, timeout=timeout, heartbeat=0)
        self._url = self.urls[0]
        self._params = self._nodes[0]
        self._declare = list(declare)
        # A named exchange (topic, durable) is declared on open and published to, unrouted messages
        # allowed: a status exchange nobody has bound a queue to yet is not an error.
        self._exchange = exchange
        self._timeout = timeout
        self._conn: SelectConnection | None = None
        self._channel: Any = None
        self._ready = False
        self._error: PublishError | None = None
        self._done: Callable[[], bool] | None = None
        self._next_tag = 1
        # Per batch:
        self._tags: deque[int] = deque()
        self._open_tags: dict[int, int] = {}
        self._confirmed: list[int] = []
        self._nacked: list[int] = []
        self._returned: set[str] = set()
        self._last_progress = 0.0

    # -- connection ---------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._ready and self._conn is not None and self._conn.is_open

    @property
    def node(self) -> str:
        """The node connected to last (``host:port``)."""
        return amqp_nodes.node_name(self._url)

    def open(self) -> None:
        """Connect to the first node that answers, enable confirms, declare the queues; raises
        ``BrokerUnavailable`` (naming every node tried) when none does."""
        errors: list[str] = []
        for url, params in zip(self.urls, self._nodes, strict=True):
            self._url, self._params = url, params
            try:
                self._open_node()
            except BrokerUnavailable as exc:
                if len(self.urls) == 1:
                    raise
                errors.append(str(exc))
                continue
            if errors:
                logger.warning(
                    "publisher connected past unanswering nodes",
                    extra={"node": self.node, "skipped": len(errors)},
                )
            return
        raise BrokerUnavailable(f"no RabbitMQ node answers: {'; '.join(errors)}")

    def _open_node(self) -> None:
        self._ready = False
        self._error = None
        self._next_tag = 1
        self._conn = SelectConnection(
            self._params,
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_closed,
        )
        self._run_until(lambda: self._ready or self._error is not None, self._timeout)
        if self._error is not None:
            error, self._error = self._error, None
            self.close()
            raise error
        if not self._ready:
            self.close()
            raise BrokerUnavailable(
                f"RabbitMQ at {redact_url(self._url)} did not answer in {self._timeout:g}s"
            )

    def close(self) -> None:
        """Close the connection, waiting up to 2 s for RabbitMQ's close-ok."""
        conn, self._conn = self._conn, None
        self._ready = False
        if conn is None or conn.is_closed:
            return
        if not conn.is_closing:
            try:
                conn.close()
            except pika.exceptions.ConnectionWrongStateError:
                return
        if not conn.is_closed:
            # The poller only exists while the loop runs: drive it until _on_closed stops it.
            self._closing = conn
            timer = conn.ioloop.call_later(2.0, conn.ioloop.stop)
            try:
                conn.ioloop.start()
            finally:
                conn.ioloop.remove_timeout(timer)
                self._closing = None

    def _on_open(self, conn: SelectConnection) -> None:
        conn.channel(on_open_callback=self._on_channel_open)

    def _on_open_error(self, _conn: SelectConnection, exc: BaseException | str) -> None:
        self._fail(BrokerUnavailable(f"cannot connect to RabbitMQ at {redact_url(self._url)}: {exc}"))

    def _on_closed(self, conn: SelectConnection, reason: BaseException) -> None:
        self._ready = False
        closing = self._closing
        if closing is not None and closing is conn:
            closing.ioloop.stop()
            return
        if self._conn is not None:
            self._fail(BrokerUnavailable(f"connection to RabbitMQ was lost: {reason}"))

    def _on_channel_open(self, channel: Any) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(
            ack_nack_callback=self._on_confirm, callback=lambda _f: self._declare_next(0)
        )

    def _declare_next(self, i: int) -> None:
        if i == len(self._declare):
            if self._exchange:
                self._channel.exchange_declare(
                    exchange=self._exchange, exchange_type="topic", durable=True, callback=self._declared
                )
            else:
                self._declared(None)
            return
        queue, arguments = self._declare[i]
        self._channel.queue_declare(
            queue=queue, durable=True, arguments=arguments, callback=lambda _f: self._declare_next(i + 1)
        )

    def _declared(self, _frame: Any) -> None:
        self._ready = True
        self._check()

    def _on_channel_closed(self, _channel: Any, reason: BaseException) -> None:
        self._ready = False
        self._fail(BrokerUnavailable(f"RabbitMQ closed the channel: {reason}"))
        if self._conn is not None and self._conn.is_open:
            self._conn.close()

    # -- the I/O loop -------------------------------------------------------------------------

    def _fail(self, error: PublishError) -> None:
        if self._error is None:
            self._error = error
        if self._conn is not None:
            self._conn.ioloop.stop()

    def _check(self) -> None:
        if self._done is not None and self._done() and self._conn is not None:
            self._conn.ioloop.stop()

    def _run_until(self, done: Callable[[], bool], stall_timeout: float) -> None:
        """Drive the I/O loop until ``done()``, an error, or ``stall_timeout`` without progress."""
        assert self._conn is not None
        if done():
            return
        self._done = done
        self._last_progress = time.monotonic()
        ioloop = self._conn.ioloop

        def watchdog() -> None:
            if time.monotonic() - self._last_progress > stall_timeout:
                self._fail(BrokerUnavailable(f"RabbitMQ made no progress for {stall_timeout:g}s"))
            else:
                handles.append(ioloop.call_later(0.25, watchdog))

        handles = [ioloop.call_later(0.25, watchdog)]
        try:
            ioloop.start()
        finally:
            self._done = None
            for handle in handles:
                ioloop.remove_timeout(handle)

    # -- publishing ---------------------------------------------------------------------------

    def publish(
        self,
        routing_key: str,
        messages: Sequence[tuple[str, bytes]],
        window: int,
        on_confirmed: Callable[[int], None] | None = None,
        *,
        weights: Sequence[int] | None = None,
        routing_keys: Sequence[str] | None = None,
    ) -> None:
        """Publish ``(message_id, body)`` pairs; return once RabbitMQ confirmed every one.

        ``on_confirmed`` is told how many messages each confirm covered, or with ``weights`` (one
        per message: the events a batch carries) the sum of theirs.
        ``routing_keys`` (one per message) replaces ``routing_key`` message by message (a topic
        exchange's routing keys, in one ordered stream).
        Raises ``MessageNacked``, ``MessageUnroutable`` or ``BrokerUnavailable``;
        the error's ``confirmed`` lists the message ids that were confirmed.
        """
        if not self.is_open:
            self.open()
        self._tags.clear()
        self._open_tags.clear()
        self._confirmed = []
        self._nacked = []
        self._returned = set()
        total = len(messages)
        sent = 0
        self._on_confirmed = on_confirmed
        self._weights = weights

        def pump() -> None:
            nonlocal sent
            channel = self._channel
            while sent < total and len(self._open_tags) < window:
                message_id, body = messages[sent]
                channel.basic_publish(
                    self._exchange,
                    routing_keys[sent] if routing_keys is not None else routing_key,
                    body,
                    pika.BasicProperties(
                        delivery_mode=2, content_type="application/json", message_id=message_id
                    ),
                    mandatory=not self._exchange,
                )
                tag = self._next_tag
                self._next_tag += 1
                self._tags.append(tag)
                self._open_tags[tag] = sent
                sent += 1

        self._pump = pump
        pump()
        self._run_until(lambda: sent == total and not self._open_tags, self._timeout)
        self._pump = None
        confirmed_ids = [messages[i][0] for i in sorted(self._confirmed)]
        if self._error is not None:
            error, self._error = self._error, None
            self.close()
            error.confirmed = confirmed_ids
            raise error
        if self._nacked:
            ids = ", ".join(messages[i][0] for i in sorted(self._nacked)[:5])
            raise MessageNacked(
                f"RabbitMQ refused {len(self._nacked)} message(s) (nack): {ids}", confirmed=confirmed_ids
            )
        if self._returned:
            ids = ", ".join(sorted(self._returned)[:5])
            raise MessageUnroutable(
                f"RabbitMQ could not route {len(self._returned)} message(s) to queue {routing_key!r}: {ids}",
                confirmed=[i for i in confirmed_ids if i not in self._returned],
            )

    def _on_return(self, _channel: Any, _method: Any, properties: Any, _body: bytes) -> None:
        self._returned.add(properties.message_id)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        ack = isinstance(method, Basic.Ack)
        tag = method.delivery_tag
        resolved = []
        if method.multiple:
            while self._tags and self._tags[0] <= tag:
                t = self._tags.popleft()
                if t in self._open_tags:
                    resolved.append(self._open_tags.pop(t))
        elif tag in self._open_tags:
            resolved.append(self._open_tags.pop(tag))
        (self._confirmed if ack else self._nacked).extend(resolved)
        self._last_progress = time.monotonic()
        if self._on_confirmed is not None and ack and resolved:
            weights = self._weights
            self._on_confirmed(len(resolved) if weights is None else sum(weights[i] for i in resolved))
        if self._pump is not None:
            self._pump()
        self._check()

    _pump: Callable[[], None] | None = None
    _closing: SelectConnection | None = None
    _on_confirmed: Callable[[int], None] | None = None
    _weights: Sequence[int] | None = None
