"""The moment a thread starts handing its work on: its first send through an ``Emitter``.

A stage's batch function commits, then emits. Waiting for RabbitMQ's confirm of that emit takes
round trips (tens of ms on a loaded machine) in which the batch no longer needs the store; a
gathering stage (``workers.gather``) uses this moment to let its next batch start meanwhile. The
callback runs at most once, in the thread that registered it, before that thread's first send.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_local = threading.local()


@contextmanager
def on_first_send(callback: Callable[[], None]) -> Iterator[None]:
    """Run ``callback`` before this thread's first send within the block (if it sends at all)."""
    _local.callback = callback
    try:
        yield
    finally:
        _local.callback = None


def sending() -> None:
    """Called by the emitter before each send: runs this thread's callback, once."""
    callback = getattr(_local, "callback", None)
    if callback is not None:
        _local.callback = None
        callback()
