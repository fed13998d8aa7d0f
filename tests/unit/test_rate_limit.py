"""The shared per-sender rate limit, as a timeline of slots."""

from __future__ import annotations

from infra.store.rate_limit import rate_slot


def test_an_idle_sender_sends_at_once() -> None:
    assert rate_slot(None, now=100.0, cost_seconds=1.0) == (100.0, 101.0)
    assert rate_slot(50.0, now=100.0, cost_seconds=1.0) == (100.0, 101.0)


def test_a_busy_sender_queues_each_message_after_the_last() -> None:
    start, free = rate_slot(None, now=100.0, cost_seconds=1.0)
    starts = [start]
    for _ in range(9):
        start, free = rate_slot(free, now=100.0, cost_seconds=1.0)
        starts.append(start)
    assert starts == [100.0 + i for i in range(10)]


def test_a_long_message_takes_one_slot_per_segment() -> None:
    # Three segments at one segment per second: the next message waits three seconds.
    _, free = rate_slot(None, now=0.0, cost_seconds=3 / 1.0)
    assert rate_slot(free, now=0.0, cost_seconds=1.0)[0] == 3.0
