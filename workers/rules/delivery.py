"""What a sender does with a notification, given what the store says about it.

The attempt is recorded before the provider is called; a redelivered message
must never send twice, and an attempt cut short by a crash is checked with the
provider before anything is resent.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def come_back_groups(
    later: Sequence[tuple[str, float, bool]], *, share: float = 0.25, slack: float = 0.5
) -> list[tuple[float, list[str]]]:
    """Notifications to come back to, ``(id, seconds, exact)`` each, as few ``(delay, ids)``
    groups as keep each one's delay: one message per group.

    Sorted by delay, a group takes the ids whose delay is within ``slack`` seconds or ``share`` of
    its first one's, and goes at its largest: no id comes back sooner than its own delay (a floor:
    the provider's Retry-After, the end of an attempt in flight), and at most a quarter (or half a
    second) later. An ``exact`` id (the last try, placed at the send deadline) is grouped only with
    ids of the same delay, so it is not pushed past the deadline. An id is kept once, at its
    largest delay. Pure.
    """
    longest: dict[str, tuple[float, bool]] = {}
    for nid, seconds, exact in later:
        seconds = max(0.0, seconds)
        if nid not in longest or seconds > longest[nid][0]:
            longest[nid] = (seconds, exact)
    ordered = sorted(longest.items(), key=lambda item: (item[1][0], item[0]))
    groups: list[tuple[float, list[str]]] = []
    kinds: list[tuple[float, bool]] = []  # per group: its first delay, and whether it is exact
    for nid, (seconds, exact) in ordered:
        if groups:
            first, exact_group = kinds[-1]
            fits = seconds == first if exact or exact_group else seconds <= first + max(slack, first * share)
            if fits:
                groups[-1] = (seconds, [*groups[-1][1], nid])
                continue
        kinds.append((seconds, exact))
        groups.append((seconds, [nid]))
    return groups
