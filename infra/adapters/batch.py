"""Sending a batch: a bounded pool of sending threads, and one result per item, in order.

The provider adapters' ``send_many`` (``TwilioSms``, ``SmtpEmail``) run each item of a batch on a
``SendPool``: at most ``size`` items are on the wire at once, each pool thread keeps its own
connection to the provider (the adapter's business), and a failed item never fails the batch:
its error is its result.

Each item goes through an ``attempt`` hook, ``attempt(index, call)``: ``index`` is the item's
place in the batch, ``call()`` tries the item once (it returns the provider's answer or raises a
classified ``ProviderError``, exactly as the adapter's ``send`` does). The hook returns the
answer, usually ``call()``'s, or raises. The default, ``once``, tries once. A sending stage passes
one that retries in-call, logs each retried try and notes when the accepted try began, per item,
e.g. with ``workers.sending.call_provider``::

    began: dict[int, datetime] = {}

    def attempt(i: int, call: Callable[[], SentSms]) -> SentSms:
        sent, began[i] = call_provider(svc, nids[i], call, source="sms")
        return sent

    results = svc.sms.send_many(batch, attempt=attempt)

Hooks run in the pool's threads, several at once: what they share must be thread-safe (a dict
written at distinct keys is), and a hook must not call ``send_many`` itself (it would wait for
the pool it runs on). A ``ProviderError`` the hook raises is the item's result; any other
``Exception`` becomes a ``TransientProviderError`` with ``accepted_unknown`` (the adapter cannot
know whether a try reached the provider before it), chained to the original.

The caller waits for every item. Should it be interrupted (a worker's time limit), the items
already handed to the pool still run, and their answers are lost to it: like any attempt cut
short, they are found again by the stage's reconciliation of claims left ``sending``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, cast

from infra.errors import ProviderError, TransientProviderError
from infra.masking import mask_text

R = TypeVar("R")
T = TypeVar("T")

#: ``attempt(index, call)``: runs one item's provider call (see the module docstring).
Attempt = Callable[[int, Callable[[], R]], R]


def once(index: int, call: Callable[[], R]) -> R:
    """The default ``attempt``: one try, no retry."""
    return call()


def run_item(attempt: Attempt[R], index: int, call: Callable[[], R], what: str) -> R | ProviderError:
    """One item through its ``attempt`` hook: its answer, or the error that is its result."""
    try:
        return attempt(index, call)
    except ProviderError as exc:
        return exc
    except Exception as exc:
        # Not the provider's classified answer (a failing hook, an error the client did not
        # foresee): a try may have reached the provider, so it is ambiguous, never a clean "not sent".
        error = TransientProviderError(
            mask_text(f"{what}: {type(exc).__name__}: {exc}; it may have been sent"),
            accepted_unknown=True,
        )
        error.__cause__ = exc
        return error


def run_in_turn(
    items: Sequence[T], send_one: Callable[[T], R], attempt: Attempt[R], what: str
) -> list[R | ProviderError]:
    """What ``SendPool.run`` does, one item after another in the calling thread (the fakes)."""
    results: list[R | ProviderError] = []
    for index, item in enumerate(items):
        result = run_item(attempt, index, _bind(send_one, item), what)
        results.append(result)
    return results


class SendPool:
    """A bounded pool of sending threads, made once per adapter and closed with it.

    Threads start on first use, up to ``size``; ``close()`` waits for the items under way and
    ends them. A pool is shared by every caller of its adapter: ``size`` bounds the items on the
    wire across all the batches of the process.
    """

    def __init__(self, size: int, name: str) -> None:
        if size < 1:
            raise ValueError(f"a send pool needs at least one thread, not {size}")
        self.size = size
        self._name = name
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def run(
        self, items: Sequence[T], send_one: Callable[[T], R], attempt: Attempt[R], what: str
    ) -> list[R | ProviderError]:
        """``send_one(item)`` for each item through ``attempt``, concurrently; results in order.

        Items are taken in order by up to ``size`` runners on the pool's threads (fewer for a
        small batch), each sending one item at a time. Returns once every item has its result.
        Raises only ``RuntimeError`` on a closed pool.
        """
        if not items:
            return []
        results: list[R | ProviderError | None] = [None] * len(items)
        order = iter(range(len(items)))
        taking = threading.Lock()

        def drain() -> None:
            # One of the batch's runners: the next item not yet taken, until none is left. A
            # runner per pool thread, not a task per item: a batch costs a handful of hand-offs
            # between threads, not one (with its Future) per item.
            while True:
                with taking:
                    index = next(order, None)
                if index is None:
                    return
                results[index] = run_item(attempt, index, _bind(send_one, items[index]), what)

        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self._name}: the send pool is closed")
            runners = [self._executor.submit(drain) for _ in range(min(self.size, len(items)))]
        for runner in runners:
            runner.result()
        return cast("list[R | ProviderError]", results)

    def close(self) -> None:
        """Wait for the items under way, then end the threads; idempotent."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=False)


def _bind(send_one: Callable[[T], R], item: T) -> Callable[[], R]:
    def call() -> R:
        return send_one(item)

    return call
