"""What the batch store functions share: bounded ``IN`` lists, and rounds of independent items.

Pure: no connection here.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

#: Values bound in one ``IN (…)`` list (or rows in one ``VALUES`` list): a stage batch is one
#: statement, and even a composite key of several columns stays far under SQLite's limit of bound
#: parameters (32,766 since SQLite 3.32).
IN_CHUNK = 500


def in_chunks(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """``values`` in consecutive slices of at most ``size`` (none for no values)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def unique(values: Iterable[T]) -> list[T]:
    """``values`` without repeats, in the order each first came."""
    return list(dict.fromkeys(values))


def rounds(keys: Sequence[Iterable[Hashable]]) -> list[list[int]]:
    """Split a batch into rounds whose items share no key, keeping the order of items that do.

    ``keys[i]`` are the keys item ``i`` reads or writes (an event's ``(org_id, event_id)`` and its
    invoice, say). Items with no key in common do not see each other, so handling a round at once
    comes to the same as handling its items one after another; an item that shares a key with an
    earlier one goes to a later round than it. Returns the indexes of each round, in order; a batch
    whose items share nothing is one round.
    """
    last_round: dict[Hashable, int] = {}
    placed: list[list[int]] = []
    for index, item_keys in enumerate(keys):
        mine = list(item_keys)
        at = 1 + max((last_round[k] for k in mine if k in last_round), default=-1)
        if at == len(placed):
            placed.append([])
        placed[at].append(index)
        for k in mine:
            last_round[k] = at
    return placed
