"""The delivery-attempt log: every provider call of a notification, in order.

Statuses say where a notification stands; this log says how it got there
(the 500s retried, the 429 waited out, the ambiguous attempt reconciled).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

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
    number = count_attempts(conn, notification_id)
    conn.execute(
        insert(delivery_attempts).values(
            notification_id=notification_id,
            attempt=number + 1,
            outcome=str(outcome),
            http_status=http_status,
            error_code=error_code,
            retry_after_seconds=retry_after,
            detail=(detail or "")[:500] or None,
            at=at or datetime.now(UTC),
        )
    )


def count_attempts(conn: Connection, notification_id: str) -> int:
    """How many provider calls a notification has had."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(delivery_attempts)
            .where(delivery_attempts.c.notification_id == notification_id)
        ).scalar_one()
    )


def first_attempt_at(conn: Connection, notification_id: str) -> datetime | None:
    """When the notification's first provider call was logged (UTC), if ever."""
    first = conn.execute(
        select(func.min(delivery_attempts.c.at)).where(delivery_attempts.c.notification_id == notification_id)
    ).scalar_one()
    if first is not None and first.tzinfo is None:  # SQLite hands back naive UTC
        first = first.replace(tzinfo=UTC)
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
