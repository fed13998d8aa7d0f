"""A circuit breaker per provider: stop calling a provider that keeps failing, try it again later.

- **closed**: every send is admitted. Transient failures and timeouts are counted in a window
  (``window`` seconds from the first failure of the run); ``failures`` of them within it open the
  breaker. A success ends the run.
- **open**: nothing is admitted for ``cool_down`` seconds after it opened.
- **half-open**: after the cool-down, up to ``trials`` sends are admitted as trials. A success
  closes the breaker; a failed trial opens it again for another cool-down. Trials that never
  answer (their process died) are given up after another cool-down, and new ones admitted.

A permanent refusal (an invalid number, an opted-out recipient) says nothing about the provider's
health: it neither counts as a failure nor as a success. Times are wall-clock seconds (epoch),
because the state is shared through the store by processes on several hosts. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from schemas.breakers import Breaker, State

__all__ = ["Breaker", "Policy", "Signal", "State", "admit", "current", "record", "reopens_in"]


class Signal(StrEnum):
    """What one send told about the provider."""

    SUCCESS = "success"  # the provider answered and took the message
    FAILURE = "failure"  # a transient failure or a timeout (after the request went out or not)
    NEUTRAL = "neutral"  # a permanent refusal of this message, or no call at all


@dataclass(frozen=True)
class Policy:
    """How quickly a breaker opens and how it recovers (``HERALD_SMS_BREAKER_*``)."""

    failures: int = 5
    window: float = 60.0
    cool_down: float = 30.0
    trials: int = 3

    @property
    def enabled(self) -> bool:
        """``failures`` 0 turns breakers off: every send is admitted, nothing opens."""
        return self.failures > 0


def current(breaker: Breaker, policy: Policy, now: float) -> Breaker:
    """The breaker as it stands at ``now``: open turns half-open once its cool-down is over."""
    opened, tried = breaker.opened_at, breaker.trial_at
    if breaker.state == State.OPEN and opened is not None and now >= opened + policy.cool_down:
        return replace(breaker, state=State.HALF_OPEN, trials=0, trial_at=None)
    spent = breaker.state == State.HALF_OPEN and breaker.trials >= policy.trials
    if spent and tried is not None and now >= tried + policy.cool_down:
        # Trials that never answered (their process died): after another cool-down, new trials.
        return replace(breaker, trials=0, trial_at=None)
    return breaker


def admit(breaker: Breaker, policy: Policy, now: float) -> tuple[bool, Breaker]:
    """Whether one send may go to the provider now, and the breaker after admitting it (a
    half-open breaker counts its trials)."""
    if not policy.enabled:
        return True, breaker
    breaker = current(breaker, policy, now)
    if breaker.state == State.CLOSED:
        return True, breaker
    if breaker.state == State.HALF_OPEN and breaker.trials < policy.trials:
        return True, replace(breaker, trials=breaker.trials + 1, trial_at=now)
    return False, breaker


def record(breaker: Breaker, policy: Policy, now: float, signal: Signal) -> Breaker:
    """The breaker after one send's outcome."""
    if not policy.enabled or signal == Signal.NEUTRAL:
        return breaker
    breaker = current(breaker, policy, now)
    if signal == Signal.SUCCESS:
        if breaker.state == State.OPEN:
            # A send admitted before it opened came back fine: not enough to close it early.
            return breaker
        return Breaker()
    if breaker.state == State.HALF_OPEN:
        return Breaker(state=State.OPEN, opened_at=now)
    if breaker.state == State.OPEN:
        return breaker  # late answers of sends admitted before it opened change nothing
    start = breaker.window_start
    if start is None or now - start > policy.window:
        start, count = now, 1  # a new run
    else:
        count = breaker.failures + 1
    if count >= policy.failures:
        return Breaker(state=State.OPEN, opened_at=now)
    return Breaker(state=State.CLOSED, failures=count, window_start=start)


def reopens_in(breaker: Breaker, policy: Policy, now: float) -> float:
    """Seconds until an open breaker admits trial sends (0 when it admits now)."""
    breaker = current(breaker, policy, now)
    if breaker.state != State.OPEN or breaker.opened_at is None:
        return 0.0
    return max(0.0, breaker.opened_at + policy.cool_down - now)
