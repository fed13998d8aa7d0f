"""Planned failures for the sandboxes: answer the next N requests with an error.

Tests (in-process, ``sandbox.faults.fail_next(...)``) and the fault suite (over
HTTP, ``POST /sandbox/faults``) use it to play a provider's bad day: 5xx
storms, 429 with ``Retry-After``, refusals with a given error code, or slow
answers.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fault:
    """One planned answer: HTTP ``status`` with the provider's error ``code``."""

    status: int
    code: int
    message: str = "planned failure (sandbox)"
    retry_after: float | None = None


class FaultPlan:
    """A thread-safe queue of planned failures, plus a log of every request they saw."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._planned: deque[Fault] = deque()
        self.delay_seconds = 0.0
        #: Requests being answered right now (inside the planned delay).
        self.in_flight = 0
        #: (monotonic time, HTTP status answered) of every request that consulted the plan.
        self.log: list[tuple[float, int]] = []

    def fail_next(
        self,
        times: int,
        status: int = 500,
        code: int | None = None,
        *,
        retry_after: float | None = None,
        message: str = "planned failure (sandbox)",
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``code``, default the status)."""
        with self._lock:
            self._planned.extend([Fault(status, code or status, message, retry_after)] * times)

    def clear(self) -> None:
        """Forget the planned failures not yet used (the provider recovers)."""
        with self._lock:
            self._planned.clear()

    def configure(self, spec: dict[str, Any]) -> None:
        """The HTTP form of ``fail_next`` (and ``delay_seconds`` for slow answers)."""
        if "delay_seconds" in spec:
            self.delay_seconds = float(spec["delay_seconds"])
        if int(spec.get("times", 0)) > 0:
            retry_after = spec.get("retry_after")
            self.fail_next(
                int(spec["times"]),
                int(spec.get("status", 500)),
                int(spec["code"]) if spec.get("code") is not None else None,
                retry_after=float(retry_after) if retry_after is not None else None,
            )

    def take(self) -> Fault | None:
        """The planned answer for this request, if any (after the configured delay)."""
        with self._lock:
            self.in_flight += 1
        try:
            if self.delay_seconds > 0:
                time.sleep(self.delay_seconds)  # a slow provider, on purpose
        finally:
            with self._lock:
                self.in_flight -= 1
        with self._lock:
            return self._planned.popleft() if self._planned else None

    def note(self, status: int) -> None:
        """Log the status a request was answered with."""
        with self._lock:
            self.log.append((time.monotonic(), status))

    def state(self) -> dict[str, Any]:
        """What the plan holds, for ``POST /sandbox/faults`` answers."""
        with self._lock:
            return {"pending": len(self._planned), "in_flight": self.in_flight, "requests": len(self.log)}

    def pending(self) -> int:
        """Planned failures not yet used."""
        with self._lock:
            return len(self._planned)
