"""One gathering batch at a time per stage process, and what comes meanwhile joins the next one.

dramatiq's threads each take a message off the work queue. Were each to make its own batch of it
(and of what it can gather), a stage taking singles at 200/s would run four small batches at a
time, queued for the store's write lock one behind the other, each paying a batch's whole fixed
cost. Instead a thread that finds a batch in flight leaves its message's items here and waits; the
thread whose batch ends hands the turn to the first that waits, which leads the next batch and
takes every waiting thread's items into it (``workers.gather``); a leader passes the turn on as
soon as its batch starts handing on (its store work done, ``infra.handing_on``), so the next batch
does its store work while this one waits for RabbitMQ's confirm. A waiting thread then learns how
its message fared: done with the batch (dramatiq acks it), or the batch failed and it is to handle
its message alone, or it leads the next batch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Outcome(Enum):
    """What became of a waiting thread's message."""

    DONE = "done"  # handled in the batch that took it
    ALONE = "alone"  # that batch failed: handle it on its own
    LEAD = "lead"  # not taken: lead the next batch


@dataclass(eq=False)
class Waiting:
    """A thread's message waiting for a batch: its items, and how it fared once settled."""

    items: list[Any]
    outcome: Outcome | None = None
    _settled: threading.Event = field(default_factory=threading.Event)

    def settle(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self._settled.set()

    def wait(self) -> Outcome:
        """Until settled; how it fared."""
        self._settled.wait()
        assert self.outcome is not None
        return self.outcome


class Turn:
    """Whose turn it is to lead a batch of one stage in this process, and who waits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = False
        self._waiting: list[Waiting] = []

    def enter(self, items: list[Any]) -> Waiting | None:
        """``None``: lead a batch now (``leave`` after it). Else wait on what is returned."""
        with self._lock:
            if not self._busy:
                self._busy = True
                return None
            waiting = Waiting(items)
            self._waiting.append(waiting)
            return waiting

    def take(self, room: int) -> list[Waiting]:
        """For the leader: the waiting messages whose items fit in ``room``, in the order they came
        (those that do not fit wait for the next batch)."""
        taken: list[Waiting] = []
        with self._lock:
            for waiting in list(self._waiting):
                if len(waiting.items) <= room:
                    taken.append(waiting)
                    self._waiting.remove(waiting)
                    room -= len(waiting.items)
        return taken

    def withdraw(self, waiting: Waiting) -> None:
        """A waiting thread gives up (its message was interrupted: dramatiq's time limit, a stop):
        no longer waiting, and should the turn have passed to it, it passes on. Its items may be
        in a batch already; that is the stages' idempotency's to absorb, as for a redelivery."""
        with self._lock:
            if waiting in self._waiting:
                self._waiting.remove(waiting)
                return
        if waiting.outcome is Outcome.LEAD:
            self.leave()

    def leave(self) -> None:
        """The leader's batch ended: the first waiting thread leads the next one, if any waits."""
        with self._lock:
            if self._waiting:
                self._waiting.pop(0).settle(Outcome.LEAD)
            else:
                self._busy = False
