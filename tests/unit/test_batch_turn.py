"""One gathering batch at a time per stage process (``workers.batch_turn``): the first thread
leads, the others wait with their items, the leader takes what fits, and the turn passes on."""

from __future__ import annotations

import threading

from workers.batch_turn import Outcome, Turn


def test_the_first_thread_leads_and_the_next_ones_wait_with_their_items() -> None:
    turn = Turn()
    assert turn.enter(["a"]) is None
    second, third = turn.enter(["b"]), turn.enter(["c", "d"])
    assert second is not None
    assert third is not None
    assert second.items == ["b"]
    assert second.outcome is None


def test_the_leader_takes_the_waiting_items_that_fit_in_order_and_the_rest_wait_on() -> None:
    turn = Turn()
    turn.enter(["a"])
    big, small = turn.enter(["b", "c", "d"]), turn.enter(["e"])
    assert turn.take(2) == [small]
    assert turn.take(3) == [big]


def test_the_turn_passes_to_the_first_that_still_waits_or_is_free_again() -> None:
    turn = Turn()
    turn.enter(["a"])
    waiting = turn.enter(["b", "c"])
    assert waiting is not None
    turn.take(1)  # too big for this batch: it waits on
    turn.leave()
    assert waiting.wait() is Outcome.LEAD
    turn.leave()  # the new leader's batch ended, nobody waits
    assert turn.enter(["d"]) is None


def test_a_waiting_thread_learns_how_its_message_fared() -> None:
    turn = Turn()
    turn.enter(["a"])
    waiting = turn.enter(["b"])
    assert waiting is not None
    seen: list[Outcome] = []
    thread = threading.Thread(target=lambda: seen.append(waiting.wait()))
    thread.start()
    (taken,) = turn.take(10)
    taken.settle(Outcome.ALONE)  # the batch failed: its thread handles it on its own
    thread.join(timeout=10)
    assert seen == [Outcome.ALONE]


def test_a_thread_that_gives_up_waiting_leaves_the_line_and_passes_the_turn_on() -> None:
    turn = Turn()
    turn.enter(["a"])
    quitter, next_one = turn.enter(["b"]), turn.enter(["c"])
    assert quitter is not None
    assert next_one is not None
    turn.leave()  # the turn passes to the quitter, which is interrupted before it leads
    turn.withdraw(quitter)
    assert next_one.wait() is Outcome.LEAD
    late = turn.enter(["d"])
    assert late is not None
    turn.withdraw(late)  # still in line: just leaves it
    assert turn.take(10) == []
