"""Putting together what many threads hand over at the same moment (group commit).

The api answers each request only once RabbitMQ confirmed what it published; a confirm is a round
trip. ``Coalescer`` runs one thread that publishes: a request hands its items over and waits;
whatever was handed over while the previous publish was under way goes in the next one, together.
When nothing is under way an item goes at once, so an idle api adds no wait; under load one round
trip carries many requests' items, over one connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")

logger = logging.getLogger("herald.coalescing")


class Coalescer(Generic[T]):
    """Hands what ``submit`` is given to ``flush``, many at a time, on a thread of its own (started
    on first use), one ``flush`` at a time.

    ``flush(items)`` returns one outcome per item, ``None`` for done or the exception that item's
    ``submit`` raises; an exception ``flush`` raises is every item's. Thread-safe.
    """

    def __init__(self, flush: Callable[[list[T]], Sequence[BaseException | None]], name: str) -> None:
        self._flush = flush
        self._name = name
        self._ready = threading.Condition()
        self._waiting: list[tuple[T, Future[None]]] = []
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, item: T) -> None:
        """Hand ``item`` over and wait until the flush that took it is done (raising its outcome)."""
        return self.submit_async(item).result()

    def submit_async(self, item: T) -> Future[None]:
        """Hand ``item`` over; the future is done when the flush that took it is."""
        future: Future[None] = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError(f"{self._name} is closed")
            self._waiting.append((item, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._ready.notify()
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Flush what was handed over, then stop the thread."""
        with self._ready:
            self._closed = True
            thread = self._thread
            self._ready.notify()
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._waiting and not self._closed:
                    self._ready.wait()
                if not self._waiting:
                    return  # closed, and nothing left
                batch, self._waiting = self._waiting, []
            items = [item for item, _ in batch]
            try:
                outcomes: Sequence[BaseException | None] = self._flush(items)
            except BaseException as exc:
                outcomes = [exc] * len(batch)
            if len(outcomes) != len(batch):  # pragma: no cover - a flush that breaks its contract
                error = RuntimeError(f"{self._name}: {len(outcomes)} outcomes for {len(batch)} items")
                outcomes = [error] * len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if outcome is None:
                    future.set_result(None)
                else:
                    future.set_exception(outcome)
