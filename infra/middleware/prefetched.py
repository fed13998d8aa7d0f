"""The messages a worker process has prefetched and not yet started, for a stage to gather.

dramatiq's consumer keeps up to its prefetch count of messages delivered but unacked, in the
worker's in-memory work queue, where its threads take them one at a time. Those messages are no
longer in RabbitMQ's queue, so ``basic_get`` cannot see them: a stage that gathers what waits
behind the message it took (``workers.gather``) takes them from here first. A message taken here
stays unacked until its batch is done, then it is acked on its consumer as dramatiq acks its own
(``settle``); if the batch fails it is put back in the work queue untouched (``give_back``), to be
handled again. Either way the work queue's task count stays as dramatiq keeps it (``join`` and a
graceful stop still wait for it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from queue import Empty
from typing import Any, Generic, TypeVar

from dramatiq.middleware import Middleware

T = TypeVar("T")

#: Messages looked at, at most, in one ``take``: the work queue holds a prefetch count of them
#: (a few per thread), this is only a bound against a worker run with an unusually large one.
_MAX_LOOKED_AT = 1000


@dataclass(frozen=True)
class Taken(Generic[T]):
    """A message taken from the work queue: the queue's item (put back as it was, if need be),
    the message, and what ``accept`` made of it."""

    worker: Any  # dramatiq.Worker
    item: Any  # dramatiq.worker._WorkQueueItem
    value: T

    @property
    def message(self) -> Any:
        """The ``dramatiq.broker.MessageProxy``."""
        return self.item.message


class Prefetched(Middleware):
    """Knows the worker of this process (dramatiq hands it to middleware at boot) and takes, from
    its work queue, the prefetched messages a caller accepts. Its consumers prefetch at least
    ``prefetch`` messages."""

    def __init__(self, prefetch: int = 0) -> None:
        self.prefetch = prefetch
        self._worker: Any = None
        self._lock = threading.Lock()

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        # Before its consumers exist (dramatiq makes them once the boot hooks ran): dramatiq's own
        # prefetch is two messages a thread, too few to gather a batch from.
        worker.queue_prefetch = max(worker.queue_prefetch, self.prefetch)
        with self._lock:
            self._worker = worker

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        # Stopping: what is not started stays for RabbitMQ to hand out again, not for a last batch.
        with self._lock:
            if self._worker is worker:
                self._worker = None

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        with self._lock:
            if self._worker is worker:
                self._worker = None

    def take(self, accept: Callable[[Any], T | None], room: int, size: Callable[[T], int]) -> list[Taken[T]]:
        """Prefetched messages that ``accept`` turns into something (not ``None``), oldest first,
        up to ``room`` in all by ``size``; the others are put back where they were. Nothing when
        no worker runs here (a process that only emits)."""
        worker = self._worker
        if worker is None or room <= 0:
            return []
        work_queue = worker.work_queue
        taken: list[Taken[T]] = []
        passed: list[Any] = []
        try:
            while room > 0 and len(passed) + len(taken) < _MAX_LOOKED_AT:
                try:
                    item = work_queue.get_nowait()
                except Empty:
                    break
                try:
                    value = accept(item.message)
                except BaseException:
                    passed.append(item)
                    raise
                if value is None or size(value) > room:
                    passed.append(item)
                    continue
                taken.append(Taken(worker, item, value))
                room -= size(value)
        finally:
            for item in passed:  # for another thread, in their order (the item keeps its place)
                work_queue.put(item)
                work_queue.task_done()  # the get: put counted it again
        return taken

    def settle(self, taken: Sequence[Taken[Any]]) -> None:
        """The batch holding ``taken`` is done: ack each on its consumer, as dramatiq acks a message
        its thread handled (a consumer that reconnected since has forgotten the tag: the message
        comes again, and the stages are idempotent)."""
        for one in taken:
            try:
                one.worker.consumers[one.message.queue_name].post_process_message(one.message)
            finally:
                one.worker.work_queue.task_done()

    def give_back(self, taken: Sequence[Taken[Any]]) -> None:
        """The batch holding ``taken`` failed: each goes back to the work queue untouched, still
        unacked, for a thread to handle again."""
        for one in taken:
            one.worker.work_queue.put(one.item)
            one.worker.work_queue.task_done()  # its get: put counted it again


def prefetched(broker: Any) -> Prefetched | None:
    """The broker's ``Prefetched`` middleware, if it has one."""
    for middleware in getattr(broker, "middleware", ()):
        if isinstance(middleware, Prefetched):
            return middleware
    return None
