"""The circuit breaker per provider (workers/rules/breaker.py), rule by rule."""

from __future__ import annotations

from workers.rules.breaker import Breaker, Policy, Signal, State, admit, current, record, reopens_in

POLICY = Policy(failures=3, window=60.0, cool_down=30.0, trials=2)


def _fail(b: Breaker, now: float, times: int = 1) -> Breaker:
    for _ in range(times):
        b = record(b, POLICY, now, Signal.FAILURE)
    return b


def test_a_closed_breaker_admits_every_send() -> None:
    for _ in range(10):
        ok, b = admit(Breaker(), POLICY, 0.0)
        assert ok
        assert b.state == State.CLOSED


def test_a_run_of_failures_within_the_window_opens_it() -> None:
    b = _fail(Breaker(), 0.0, 2)
    assert b.state == State.CLOSED
    assert b.failures == 2
    b = _fail(b, 59.0)
    assert b.state == State.OPEN
    assert b.opened_at == 59.0
    assert admit(b, POLICY, 60.0)[0] is False


def test_failures_spread_wider_than_the_window_never_open_it() -> None:
    b = Breaker()
    for t in (0.0, 61.0, 122.0, 183.0):
        b = _fail(b, t)
        assert b.state == State.CLOSED
        assert b.failures == 1


def test_a_success_ends_the_run_of_failures() -> None:
    b = _fail(Breaker(), 0.0, 2)
    b = record(b, POLICY, 1.0, Signal.SUCCESS)
    assert b == Breaker()
    assert _fail(b, 2.0, 2).state == State.CLOSED


def test_a_permanent_refusal_neither_counts_nor_heals() -> None:
    b = _fail(Breaker(), 0.0, 2)
    assert record(b, POLICY, 1.0, Signal.NEUTRAL) == b
    opened = _fail(b, 2.0)
    assert record(opened, POLICY, 3.0, Signal.NEUTRAL) == opened


def test_after_the_cool_down_it_is_half_open_and_admits_a_few_trials() -> None:
    b = _fail(Breaker(), 0.0, 3)
    assert reopens_in(b, POLICY, 10.0) == 20.0
    assert admit(b, POLICY, 29.9)[0] is False
    ok1, b = admit(b, POLICY, 30.0)
    ok2, b = admit(b, POLICY, 30.1)
    ok3, b = admit(b, POLICY, 30.2)
    assert (ok1, ok2, ok3) == (True, True, False)
    assert b.state == State.HALF_OPEN
    assert b.trials == 2
    assert reopens_in(b, POLICY, 30.2) == 0.0


def test_a_successful_trial_closes_it() -> None:
    _, b = admit(_fail(Breaker(), 0.0, 3), POLICY, 31.0)
    b = record(b, POLICY, 31.5, Signal.SUCCESS)
    assert b == Breaker()
    assert admit(b, POLICY, 31.6)[0] is True


def test_a_failed_trial_reopens_it_for_another_cool_down() -> None:
    _, b = admit(_fail(Breaker(), 0.0, 3), POLICY, 31.0)
    b = record(b, POLICY, 32.0, Signal.FAILURE)
    assert b.state == State.OPEN
    assert b.opened_at == 32.0
    assert admit(b, POLICY, 61.0)[0] is False
    assert admit(b, POLICY, 62.0)[0] is True


def test_late_answers_of_sends_admitted_before_it_opened_change_nothing() -> None:
    opened = _fail(Breaker(), 0.0, 3)
    assert record(opened, POLICY, 1.0, Signal.SUCCESS) == opened
    assert record(opened, POLICY, 1.0, Signal.FAILURE) == opened


def test_trials_that_never_answer_are_given_up_after_another_cool_down() -> None:
    b = _fail(Breaker(), 0.0, 3)
    _, b = admit(b, POLICY, 30.0)
    _, b = admit(b, POLICY, 30.0)
    assert admit(b, POLICY, 59.0)[0] is False
    assert current(b, POLICY, 60.0).trials == 0
    assert admit(b, POLICY, 60.0)[0] is True


def test_failures_zero_turns_breakers_off() -> None:
    off = Policy(failures=0)
    b = Breaker()
    for t in range(100):
        b = record(b, off, float(t), Signal.FAILURE)
        assert admit(b, off, float(t))[0] is True
    assert b == Breaker()
