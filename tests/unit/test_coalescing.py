"""Group commit for the api (``producers.coalescing``): what threads hand over while a flush is
under way goes out together in the next one; an idle hand-over goes at once; each waiter gets its
own outcome."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from producers.coalescing import Coalescer
from tests.conftest import wait_for


class Gate:
    """A flush that records each batch and, for the first one, waits until opened."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, items: list[int]) -> Sequence[BaseException | None]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.opened.wait(10)
        return [ValueError(f"odd {i}") if i % 2 else None for i in items]


def test_an_item_handed_over_when_idle_goes_at_once_alone() -> None:
    gate = Gate()
    gate.opened.set()
    coalescer = Coalescer(gate, "test")
    coalescer.submit(2)
    assert gate.batches == [[2]]
    coalescer.close()


def test_what_is_handed_over_during_a_flush_goes_out_together_next_each_with_its_own_outcome() -> None:
    gate = Gate()
    coalescer = Coalescer(gate, "test")
    first = coalescer.submit_async(0)
    assert gate.entered.wait(10)  # the first flush is under way, holding the connection
    waiting = [coalescer.submit_async(i) for i in (2, 3, 4)]
    gate.opened.set()
    first.result(10)
    wait_for(lambda: all(f.done() for f in waiting), timeout=10, what="the second flush")
    assert gate.batches == [[0], [2, 3, 4]]
    assert waiting[0].result() is None
    assert waiting[2].result() is None
    with pytest.raises(ValueError, match="odd 3"):
        waiting[1].result()
    coalescer.close()


def test_an_exception_of_the_flush_is_every_waiters_and_the_next_flush_still_runs() -> None:
    calls: list[list[str]] = []

    def flush(items: list[str]) -> list[BaseException | None]:
        calls.append(items)
        if items == ["down"]:
            raise ConnectionError("broker away")
        return [None] * len(items)

    coalescer = Coalescer(flush, "test")
    with pytest.raises(ConnectionError, match="broker away"):
        coalescer.submit("down")
    coalescer.submit("up")  # the thread lives on
    assert calls == [["down"], ["up"]]
    coalescer.close()
    with pytest.raises(RuntimeError, match="closed"):
        coalescer.submit("late")
