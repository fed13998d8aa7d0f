"""Breakers shared through the store: two engines (as two ``sms`` processes on two hosts) and a
separate process see and move the same state, and a transition is applied once however many race
for it (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from infra.bootstrap import Services, bootstrap, shutdown
from infra.store.breakers import all_breakers
from schemas.breakers import State, Transition
from tests.integration.conftest import race
from workers.breakers import announce, record_signals, route
from workers.rules.breaker import Policy, Signal

POLICY = Policy(failures=2, window=60.0, cool_down=30.0, trials=1)
T0 = 1_800_000_000.0


@pytest.fixture
def second(store: Services) -> Iterator[Services]:
    """Services of their own (their own engine) on the same database."""
    other = bootstrap(store.settings, migrate=False)
    yield other
    shutdown(other)


def _state(services: Services, provider: str = "twilio") -> State | None:
    with services.reading() as conn:
        found = all_breakers(conn).get(provider)
    return found[0].state if found else None


def _fail(services: Services, now: float, moved: list[Transition]) -> None:
    with services.transaction() as conn:
        moved.extend(record_signals(conn, POLICY, now, [("twilio", Signal.FAILURE)]))


def test_failures_seen_by_two_engines_open_the_shared_breaker_once(store: Services, second: Services) -> None:
    moved: list[Transition] = []
    race([lambda: _fail(store, T0, moved), lambda: _fail(second, T0 + 0.1, moved)])
    assert _state(store) == _state(second) == State.OPEN
    assert [(t.provider, t.after) for t in moved] == [("twilio", State.OPEN)]


def test_two_engines_racing_for_the_one_half_open_trial_get_it_once(
    store: Services, second: Services
) -> None:
    for services in (store, second):
        _fail(services, T0, [])
    chosen: list[str | None] = []

    def take(services: Services) -> None:
        with services.transaction() as conn:
            picked, _ = route(conn, POLICY, T0 + 31.0, [(["twilio"], None)])
        chosen.extend(picked)

    race([lambda: take(store), lambda: take(second)])
    assert sorted(chosen, key=str) == [None, "twilio"]
    assert _state(store) == State.HALF_OPEN
    # The trial answers at one engine: the other sees the breaker closed.
    with store.transaction() as conn:
        record_signals(conn, POLICY, T0 + 32.0, [("twilio", Signal.SUCCESS)])
    assert _state(second) == State.CLOSED


def test_another_process_sees_the_state_an_engine_wrote(store: Services) -> None:
    for at in (T0, T0 + 1):
        _fail(store, at, [])
    url = store.settings.database_url.get_secret_value()
    probe = (
        "import json, sys; from sqlalchemy import create_engine; "
        "from infra.store.breakers import all_breakers; "
        f"engine = create_engine({url!r}); conn = engine.connect(); "
        "print(json.dumps({k: [str(b.state), b.opened_at] for k, (b, _) in all_breakers(conn).items()}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == {"twilio": ["open", T0 + 1]}


def test_an_organisation_with_no_failures_writes_nothing(store: Services) -> None:
    with store.transaction() as conn:
        picked, moved = route(conn, POLICY, T0, [(["twilio", "backup"], None)] * 3)
        moved += record_signals(conn, POLICY, T0, [("twilio", Signal.SUCCESS)] * 3)
    assert picked == ["twilio"] * 3
    assert moved == []
    with store.reading() as conn:
        assert all_breakers(conn) == {}


def test_each_transition_is_logged_and_counted(store: Services, caplog: pytest.LogCaptureFixture) -> None:
    from prometheus_client import REGISTRY

    def opened() -> float:
        found = REGISTRY.get_sample_value(
            "herald_breaker_transitions_total", {"provider": "twilio", "state": "open"}
        )
        return found or 0.0

    before = opened()
    moved: list[Transition] = []
    with caplog.at_level(logging.INFO, logger="herald.breakers"):
        for at in (T0, T0 + 1):
            _fail(store, at, moved)
        announce(moved)
    (line,) = [r for r in caplog.records if r.name == "herald.breakers"]
    assert (line.levelno, line.getMessage()) == (logging.WARNING, "circuit breaker open")
    said = line.__dict__
    assert (said["provider"], said["breaker_from"], said["breaker_to"]) == ("twilio", "closed", "open")
    assert opened() == before + 1
    assert REGISTRY.get_sample_value("herald_breaker_state", {"provider": "twilio"}) == 2
