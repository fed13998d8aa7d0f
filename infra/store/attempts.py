"""The delivery-attempt log: every provider call of a notification, in order.

Statuses say where a notification stands; this log says how it got there
(the 500s retried, the 429 waited out, the ambiguous attempt reconciled).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from infra.store.batches import in_chunks, unique
from infra.store.tables import delivery_attempts


class Outcome(StrEnum):
    """What one provider call came to."""

    ACCEPTED = "accepted"  # the provider took the message
    RETRY = "retry"  # transient failure: it will be tried again
    REFUSED = "refused"  # permanent refusal: never retried
    AMBIGUOUS = "ambiguous"  # no answer after the request went out: reconcile before resending
    RECONCILED = "reconciled"  # the provider had it after all; not resent
    GAVE_UP = "gave_up"  # transient failures outlasted the retry deadline


def log_attempt(
    conn: Connection,
    notification_id: str,
    outcome: Outcome,
    *,
    http_status: int | None = None,
    error_code: int | None = None,
    retry_after: float | None = None,
    detail: str | None = None,
    at: datetime | None = None,
) -> None:
    """Append one provider call to the notification's attempt log (``at``: when, default now)."""
    log_attempts(
        conn,
        [
            Attempt(
                notification_id,
                outcome,
                http_status=http_status,
                error_code=error_code,
                retry_after=retry_after,
                detail=detail,
                at=at,
            )
        ],
    )


@dataclass(frozen=True)
class Attempt:
    """One provider call to log: ``log_attempt``'s arguments."""

    notification_id: str
    outcome: Outcome
    http_status: int | None = None
    error_code: int | None = None
    retry_after: float | None = None
    detail: str | None = None
    at: datetime | None = None  # when; None: now
    provider: str | None = None  # the provider called (None: the channel's only one)


_INSERT = insert(delivery_attempts)


def log_attempts(conn: Connection, attempts: Sequence[Attempt]) -> None:
    """``log_attempt`` for each, in order: one ``SELECT`` of the notifications' counts, one
    ``INSERT`` (executemany). Two attempts of one notification are numbered one after the other."""
    if not attempts:
        return
    number = count_attempts_many(conn, [a.notification_id for a in attempts])
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for a in attempts:
        number[a.notification_id] += 1
        rows.append(
            {
                "notification_id": a.notification_id,
                "attempt": number[a.notification_id],
                "outcome": str(a.outcome),
                "http_status": a.http_status,
                "error_code": a.error_code,
                "retry_after_seconds": a.retry_after,
                "detail": (a.detail or "")[:500] or None,
                "at": a.at or now,
                "provider": a.provider,
            }
        )
    conn.execute(_INSERT, rows)


def count_attempts(conn: Connection, notification_id: str) -> int:
    """How many provider calls a notification has had."""
    return count_attempts_many(conn, [notification_id])[notification_id]


def count_attempts_many(conn: Connection, notification_ids: Iterable[str]) -> dict[str, int]:
    """How many provider calls each notification has had (0 for none), in one ``SELECT`` per 500."""
    ids = unique(notification_ids)
    counts = dict.fromkeys(ids, 0)
    for chunk in in_chunks(ids):
        rows = conn.execute(
            select(delivery_attempts.c.notification_id, func.count())
            .where(delivery_attempts.c.notification_id.in_(chunk))
            .group_by(delivery_attempts.c.notification_id)
        )
        counts.update((nid, int(n)) for nid, n in rows)
    return counts


def first_attempt_at(conn: Connection, notification_id: str) -> datetime | None:
    """When the notification's first provider call was logged (UTC), if ever."""
    return first_attempts_at(conn, [notification_id])[notification_id]


def first_attempts_at(conn: Connection, notification_ids: Iterable[str]) -> dict[str, datetime | None]:
    """``first_attempt_at`` of each notification (None: never called), in one ``SELECT`` per 500."""
    ids = unique(notification_ids)
    first: dict[str, datetime | None] = dict.fromkeys(ids)
    for chunk in in_chunks(ids):
        rows = conn.execute(
            select(delivery_attempts.c.notification_id, func.min(delivery_attempts.c.at))
            .where(delivery_attempts.c.notification_id.in_(chunk))
            .group_by(delivery_attempts.c.notification_id)
        )
        for nid, at in rows:
            if at is not None and at.tzinfo is None:  # SQLite hands back naive UTC
                at = at.replace(tzinfo=UTC)
            first[nid] = at
    return first


def load_attempts(conn: Connection, notification_ids: list[str]) -> list[dict[str, Any]]:
    """The attempts of these notifications, oldest first."""
    if not notification_ids:
        return []
    rows = conn.execute(
        select(delivery_attempts)
        .where(delivery_attempts.c.notification_id.in_(notification_ids))
        .order_by(delivery_attempts.c.id)
    ).mappings()
    return [dict(r) for r in rows]
