"""Throttling of repeated failed authentication, per client address, in-process.

A key is 256 random bits, so nobody guesses one; what the throttle stops is a client hammering
the api with wrong keys (a scanner, a misconfigured integration): each failure costs a database
look-up and a WARNING line. Past the limit, the address is answered 429 without its key being
checked, valid keys included, until its oldest failure leaves the window: checking keys while
throttled would give the flood the very look-ups the throttle is there to refuse, and would
answer each guess (200 or 429) as before.

Memory is bounded: at most ``limit`` timestamps per address and ``max_clients`` addresses (the
least recently failing is forgotten first). IPv6 clients count per /64, the block one host is
given, so rotating addresses within it gains nothing.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

#: Addresses remembered at once (each at most ``limit`` floats).
MAX_CLIENTS = 10_000


def client_key(host: str) -> str:
    """What failures are counted by: the address, or its /64 for IPv6."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an address (a test client's name, a unix socket): counted as it is
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class FailureThrottle:
    """At most ``limit`` failures per client in any ``window_seconds``; then the client waits."""

    def __init__(
        self,
        limit: int,
        window_seconds: float = 60.0,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window, self.max_clients, self._clock = limit, window_seconds, max_clients, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()  # sync dependencies run in a thread pool

    def retry_after(self, client: str) -> int | None:
        """Whole seconds until ``client`` may try again, or None when it may now."""
        now = self._clock()
        with self._lock:
            failures = self._failures.get(client_key(client))
            if failures is None:
                return None
            self._expire(failures, now)
            if len(failures) < self.limit:
                return None
            return max(1, math.ceil(failures[0] + self.window - now))

    def failed(self, client: str) -> bool:
        """Count one failure of ``client``; True when it is the one that reaches the limit."""
        now = self._clock()
        key = client_key(client)
        with self._lock:
            failures = self._failures.get(key)
            if failures is None:
                failures = self._failures[key] = deque(maxlen=self.limit)
            self._expire(failures, now)
            failures.append(now)
            self._failures.move_to_end(key)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
            return len(failures) == self.limit

    def clients(self) -> int:
        """How many addresses are remembered (for tests and the curious)."""
        with self._lock:
            return len(self._failures)

    def _expire(self, failures: deque[float], now: float) -> None:
        while failures and failures[0] <= now - self.window:
            failures.popleft()
