"""The circuit breakers of the providers, kept in the store so every process on every host sees
and moves the same state (the rules: ``workers.rules.breaker``; applied by ``workers.breakers``).

``read_breakers(..., lock=True)`` creates the missing rows and locks them for the transaction
(``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on PostgreSQL, in provider order so two processes
never deadlock): a transition computed from them and saved in the same transaction is atomic.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from infra.store.batches import unique
from infra.store.db import insert_ignore
from infra.store.tables import provider_breakers
from schemas.breakers import Breaker, State, Transition


def _breaker(values: Any) -> Breaker:
    return Breaker(
        state=State(values["state"]),
        failures=values["failures"],
        window_start=values["window_start"],
        opened_at=values["opened_at"],
        trials=values["trials"],
        trial_at=values["trial_at"],
    )


def read_breakers(conn: Connection, providers: Iterable[str], *, lock: bool) -> dict[str, Breaker]:
    """These providers' breakers (a provider never stored: closed); with ``lock``, their rows are
    created if missing and locked until the transaction ends."""
    names = sorted(unique(providers))
    if not names:
        return {}
    if lock:
        for name in names:
            conn.execute(
                insert_ignore(conn, provider_breakers).values(
                    provider=name, state=str(State.CLOSED), failures=0, trials=0, changed_at=0.0
                )
            )
    query = select(provider_breakers).where(provider_breakers.c.provider.in_(names))
    if lock:
        query = query.order_by(provider_breakers.c.provider).with_for_update()
    stored = {row["provider"]: _breaker(row) for row in conn.execute(query).mappings()}
    return {name: stored.get(name, Breaker()) for name in names}


def save_breakers(
    conn: Connection, before: dict[str, Breaker], after: dict[str, Breaker], now: float
) -> list[Transition]:
    """Write the breakers that changed (read locked in this transaction as ``before``); returns the
    state changes."""
    moved: list[Transition] = []
    for name in sorted(after):
        new, old = after[name], before.get(name, Breaker())
        if new == old:
            continue
        values: dict[str, Any] = {
            "state": str(new.state),
            "failures": new.failures,
            "window_start": new.window_start,
            "opened_at": new.opened_at,
            "trials": new.trials,
            "trial_at": new.trial_at,
        }
        if new.state != old.state:
            values["changed_at"] = now
            moved.append(Transition(name, old.state, new.state, now))
        conn.execute(update(provider_breakers).where(provider_breakers.c.provider == name).values(**values))
    return moved


def all_breakers(conn: Connection) -> dict[str, tuple[Breaker, float | None]]:
    """Every stored breaker, with when it last changed state (None: never), by provider."""
    rows = conn.execute(select(provider_breakers).order_by(provider_breakers.c.provider)).mappings()
    return {row["provider"]: (_breaker(row), row["changed_at"] or None) for row in rows}
