"""What a sender does with a notification, given what the store says about it.

The attempt is recorded before the provider is called; a redelivered message
must never send twice, and an attempt cut short by a crash is checked with the
provider before anything is resent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from schemas.notifications import Status
from schemas.rows import NotificationRow


class Step(StrEnum):
    """The next thing to do."""

    NOTHING = "nothing"  # already reported, skipped or not ours
    SEND = "send"  # pending: claim it, then call the provider
    REPORT_SENT = "report_sent"  # the provider accepted; (re)report it to history
    REPORT_FAILED = "report_failed"  # the provider refused for good; (re)report it
    WAIT = "wait"  # another worker is inside the attempt right now
    RECONCILE = "reconcile"  # an attempt was cut short: ask the provider first


def next_step(row: NotificationRow, now: datetime, in_flight: timedelta) -> Step:
    """Decide from the notification row (status, provider_id, error_code, attempted_at)."""
    status = Status(row.status)
    if status == Status.PENDING:
        return Step.SEND
    if status != Status.SENDING:
        return Step.NOTHING
    if row.provider_id:
        return Step.REPORT_SENT
    if row.error_code is not None:
        return Step.REPORT_FAILED
    if row.attempted_at is not None and now - row.attempted_at <= in_flight:
        return Step.WAIT
    return Step.RECONCILE


def wait_out(attempted_at: datetime, now: datetime, in_flight: timedelta) -> float:
    """Seconds until an attempt started at ``attempted_at`` can no longer be in flight."""
    if attempted_at.tzinfo is None:  # SQLite hands back naive UTC
        attempted_at = attempted_at.replace(tzinfo=UTC)
    return max(0.0, (attempted_at + in_flight - now).total_seconds())


def backoff_seconds(retries: int, min_backoff: float, max_backoff: float, rand: float) -> float:
    """Exponential backoff with full jitter: a uniform share ``rand`` in [0, 1) of
    ``min_backoff * 2**retries``, capped at ``max_backoff``, never below ``min_backoff``.

    Jitter keeps a thousand messages that failed together from coming back together.
    """
    ceiling = min(max_backoff, min_backoff * 2 ** min(retries, 32))
    return max(min_backoff, ceiling * rand)


def retry_plan(
    *,
    first_attempt: datetime,
    now: datetime,
    deadline: timedelta,
    backoff: float,
    retry_after: float | None,
) -> float | None:
    """Seconds to wait before the next message-level try, or ``None`` to give up.

    The provider's Retry-After is a floor on the wait. The last try is placed at
    the deadline rather than past it; once the deadline has passed, give up.
    """
    remaining = (first_attempt + deadline - now).total_seconds()
    if remaining <= 0:
        return None
    wait = max(backoff, retry_after or 0.0)
    return min(wait, remaining)
