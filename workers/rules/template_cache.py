"""A least-recently-used cache bounded by the summed size of its keys' sources, not by entries.

Compiled templates and check results are kept per process (the render stage checks and compiles
every template it loads); a count of entries would let a few huge templates hold any amount of
memory. Each entry is weighed by the size of the source it came from, and the oldest entries are
dropped until the total fits the bound the caller passes (it comes from settings).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class SizedLru(Generic[V]):
    """Values by key, at most ``max_bytes`` of summed weight; thread-safe."""

    def __init__(self) -> None:
        self._entries: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """The summed weight of what is kept."""
        with self._lock:
            return self._bytes

    def get(self, key: Hashable, weight: int, build: Callable[[], V], max_bytes: int) -> V:
        """The value for ``key``, built (outside the lock) and kept when missing.

        An entry heavier than ``max_bytes`` is built and returned, never kept; the cache then
        shrinks to ``max_bytes``, so a lower bound takes effect on the next call.
        """
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self._shrink(max_bytes)
                return found[0]
        value = build()  # may raise: nothing is kept then
        with self._lock:
            if key not in self._entries and weight <= max_bytes:
                self._entries[key] = (value, weight)
                self._bytes += weight
            self._shrink(max_bytes)
        return value

    def _shrink(self, max_bytes: int) -> None:
        while self._bytes > max_bytes and self._entries:
            _, (_, weight) = self._entries.popitem(last=False)
            self._bytes -= weight
