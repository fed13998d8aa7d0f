"""The providers' circuit breakers, moved by the rules (``workers.rules.breaker``) over the state
in the store (``infra.store.breakers``), in the caller's transaction; every state change is
logged and counted (``herald_breaker_transitions``, ``herald_breaker_state``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy.engine import Connection

from infra import metrics
from infra.settings import Settings
from infra.store.breakers import read_breakers, save_breakers
from schemas.breakers import Breaker, State, Transition
from workers.rules.breaker import Policy, Signal, admit, current, record, reopens_in
from workers.rules.failover import choose

logger = logging.getLogger("herald.breakers")


def policy_of(settings: Settings) -> Policy:
    """The breakers' policy from ``HERALD_SMS_BREAKER_*``."""
    return Policy(
        failures=settings.sms_breaker_failures,
        window=settings.sms_breaker_window_seconds,
        cool_down=settings.sms_breaker_cool_down_seconds,
        trials=settings.sms_breaker_trials,
    )


def _apply(
    conn: Connection, names: Iterable[str], step: Callable[[dict[str, Breaker]], bool], now: float
) -> list[Transition]:
    """Run ``step`` over the breakers (it changes the dict in place and says whether it changed
    anything): first over an unlocked read, and only when that changes something, again over the
    rows locked, saving the changes. The common case (all closed, all fine) writes nothing."""
    wanted = sorted(set(names))
    if not wanted or not step(dict(read_breakers(conn, wanted, lock=False))):
        return []
    before = read_breakers(conn, wanted, lock=True)
    after = dict(before)
    step(after)
    moved = save_breakers(conn, before, after, now)
    for name, breaker in after.items():
        metrics.BREAKER_STATE.labels(provider=name).set(metrics.BREAKER_LEVELS[breaker.state])
    return moved


def route(
    conn: Connection,
    policy: Policy,
    now: float,
    requests: Sequence[tuple[Sequence[str], str | None]],
) -> tuple[list[str | None], list[Transition]]:
    """The provider of each send, one request ``(providers in order, provider of its last
    unambiguous failure)`` each (``workers.rules.failover.choose`` over the providers' breakers);
    ``None`` when every circuit of its list is open. Half-open trials are spent in the store."""
    chosen: list[str | None] = []

    def step(breakers: dict[str, Breaker]) -> bool:
        chosen.clear()
        changed = False

        def admits(name: str) -> bool:
            nonlocal changed
            ok, after = admit(breakers[name], policy, now)
            if after != breakers[name]:
                breakers[name], changed = after, True
            return ok

        for providers, failed_at in requests:
            chosen.append(choose(providers, failed_at, admits))
        return changed

    moved = _apply(conn, (name for providers, _ in requests for name in providers), step, now)
    return list(chosen), moved


def record_signals(
    conn: Connection, policy: Policy, now: float, signals: Sequence[tuple[str, Signal]]
) -> list[Transition]:
    """What the sends told about their providers, ``(provider, signal)`` each, in order."""

    def step(breakers: dict[str, Breaker]) -> bool:
        changed = False
        for name, signal in signals:
            after = record(breakers[name], policy, now, signal)
            if after != breakers[name]:
                breakers[name], changed = after, True
        return changed

    return _apply(conn, (name for name, _ in signals), step, now)


def reopening_in(conn: Connection, policy: Policy, now: float, providers: Iterable[str]) -> float:
    """Seconds until the first of these providers' breakers admits a send again."""
    breakers = read_breakers(conn, providers, lock=False)
    return min((reopens_in(b, policy, now) for b in breakers.values()), default=0.0)


def state_now(breaker: Breaker, policy: Policy, now: float) -> State:
    """A stored breaker's state now (open past its cool-down: half-open)."""
    return current(breaker, policy, now).state


def announce(moved: Sequence[Transition]) -> None:
    """Log and count each state change (after its transaction committed)."""
    for t in moved:
        metrics.BREAKER_TRANSITIONS.labels(provider=t.provider, state=str(t.after)).inc()
        level = logging.WARNING if t.after == State.OPEN else logging.INFO
        logger.log(
            level,
            f"circuit breaker {t.after}",
            extra={"provider": t.provider, "breaker_from": str(t.before), "breaker_to": str(t.after)},
        )
