"""A provider's circuit breaker as stored (the rules that move it: ``workers.rules.breaker``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Breaker:
    """One provider's breaker. Times are wall-clock epoch seconds: processes on several hosts
    share it through the store."""

    state: State = State.CLOSED
    #: Failures in the current run (closed), counted from ``window_start``.
    failures: int = 0
    window_start: float | None = None
    #: When it last opened.
    opened_at: float | None = None
    #: Trial sends admitted since it went half-open, and when the last one was.
    trials: int = 0
    trial_at: float | None = None


@dataclass(frozen=True)
class Transition:
    """A breaker that changed state, at ``at`` (epoch seconds)."""

    provider: str
    before: State
    after: State
    at: float
