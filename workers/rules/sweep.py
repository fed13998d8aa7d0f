"""The status sweep's rules: which SMS to look up at the provider, and what its answer means.

Twilio does not retry a status callback that found nobody listening, so an SMS whose callbacks
fell while the api was down stays ``sent``. The sweep asks Twilio about such notifications:
one ``sent`` (with a provider id) for longer than ``after``, not asked within ``every``, and
``sent`` for less than ``max_age`` (a carrier that never reports delivery is not asked forever).
The store's query (``infra.store.notifications.sweep_candidates``) says the same in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.notifications import Status
from schemas.rows import NotificationRow

#: Twilio's final message statuses and the notification status each one reports.
FINAL: dict[str, Status] = {
    "delivered": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
}


@dataclass(frozen=True)
class SweepWindow:
    """The three instants a notification row is compared with."""

    sent_before: datetime  # ``sent`` at least ``after`` ago
    sent_after: datetime  # ... but not longer than ``max_age`` ago
    swept_before: datetime  # never asked, or asked more than ``every`` ago

    @classmethod
    def at(cls, now: datetime, *, after: timedelta, every: timedelta, max_age: timedelta) -> SweepWindow:
        return cls(sent_before=now - after, sent_after=now - max_age, swept_before=now - every)


def due_for_sweep(row: NotificationRow, window: SweepWindow) -> bool:
    """Whether the notification should be looked up at the provider now.

    ``updated_at`` is when it became ``sent`` (nothing else changes a ``sent`` notification).
    """
    if row.channel != "sms" or row.status != Status.SENT or not row.provider_id:
        return False
    if not window.sent_after <= row.updated_at <= window.sent_before:
        return False
    return row.swept_at is None or row.swept_at < window.swept_before


def sweep_verdict(provider_status: str) -> Status | None:
    """The status to report for the provider's answer; None while the provider has not moved on
    (``queued``, ``sending``, ``sent``, …: a later sweep or a callback settles it)."""
    return FINAL.get(provider_status.strip().lower())
