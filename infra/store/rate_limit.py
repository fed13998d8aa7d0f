"""The shared per-sender rate limit, kept in the store so every ``sms`` process,
on every host, draws from the same timeline of each sender."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from infra.store.db import insert_ignore
from infra.store.tables import send_rate


def rate_slot(next_free_at: float | None, now: float, cost_seconds: float) -> tuple[float, float]:
    """The shared per-sender limiter: when this message may go, and the sender's next free time.

    Each message takes ``cost_seconds`` (its segments divided by the sender's rate) of the
    sender's timeline, starting no earlier than now and no earlier than the previous one ended.
    Returns ``(start, new_next_free_at)``; the caller waits ``start - now``.
    """
    start = max(now, next_free_at or now)
    return start, start + cost_seconds


def rate_slots(
    next_free_at: float | None, now: float, costs: Sequence[float], max_wait: float
) -> tuple[list[float], float | None]:
    """``rate_slot`` for messages one after another: each one's wait, and the sender's next free time.

    A message whose wait would exceed ``max_wait`` takes no slot (its wait is returned all the
    same); the ones after it are placed as if it had not been there. Pure.
    """
    waits: list[float] = []
    for cost in costs:
        start, next_free = rate_slot(next_free_at, now, cost)
        wait = start - now
        waits.append(wait)
        if wait <= max_wait:
            next_free_at = next_free
    return waits, next_free_at


def take_slot(conn: Connection, sender: str, cost_seconds: float, now: float, max_wait: float) -> float:
    """Reserve ``cost_seconds`` of ``sender``'s timeline; returns how long to wait before sending.

    When the wait would exceed ``max_wait`` nothing is reserved and the (positive) wait is
    returned all the same, so the caller can put the message back with that delay. The row is
    locked for the transaction (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on PostgreSQL),
    so two processes never take the same slot.
    """
    return take_slots(conn, sender, [cost_seconds], now, max_wait)[0]


def take_slots(
    conn: Connection, sender: str, costs: Sequence[float], now: float, max_wait: float
) -> list[float]:
    """``take_slot`` for several messages of one sender, in order (``rate_slots``): each one's
    wait from ``now``, so each still goes at its own slot. Three statements, whatever the count."""
    if not costs:
        return []
    conn.execute(insert_ignore(conn, send_rate).values(sender=sender, next_free_at=0.0))
    current = conn.execute(
        select(send_rate.c.next_free_at).where(send_rate.c.sender == sender).with_for_update()
    ).scalar_one()
    waits, next_free = rate_slots(current, now, costs, max_wait)
    if next_free != current:
        conn.execute(update(send_rate).where(send_rate.c.sender == sender).values(next_free_at=next_free))
    return waits
