"""Sync history: one row per sync of one data type (full import or a webhook batch), kept 7 days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from infra.store.gocardless import Outcome
from infra.store.tables import sync_history

#: Sync history rows older than this are purged at every sync.
SYNC_HISTORY_KEPT = timedelta(days=7)


@dataclass
class SyncCounts:
    """Added / updated / unchanged / failed records of one data type, with failure reasons."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    reasons: list[str] | None = None

    def count(self, outcome: Outcome) -> None:
        """Count one stored record."""
        setattr(self, outcome, getattr(self, outcome) + 1)

    def fail(self, reason: str) -> None:
        """Count one record that could not be stored, and why."""
        self.failed += 1
        self.reasons = [*(self.reasons or []), reason]

    @property
    def detail(self) -> str | None:
        """The failure reasons, shortened to fit the column."""
        if not self.reasons:
            return None
        text = "; ".join(self.reasons)
        return text if len(text) <= 2000 else text[:1996] + " …"


def record_sync(
    conn: Connection,
    *,
    data_type: str,
    trigger: str,
    counts: SyncCounts,
    now: datetime,
    provider: str = "gocardless",
    direction: str = "inbound",
) -> None:
    """Write one sync-history row."""
    conn.execute(
        insert(sync_history).values(
            at=now,
            provider=provider,
            direction=direction,
            data_type=data_type,
            trigger=trigger,
            added=counts.added,
            updated=counts.updated,
            failed=counts.failed,
            detail=counts.detail,
        )
    )


def purge_sync_history(conn: Connection, now: datetime) -> int:
    """Delete rows older than ``SYNC_HISTORY_KEPT``; how many went."""
    result = conn.execute(delete(sync_history).where(sync_history.c.at < now - SYNC_HISTORY_KEPT))
    return int(result.rowcount or 0)


def sync_rows(conn: Connection, limit: int = 200) -> list[dict[str, Any]]:
    """The newest sync-history rows, newest first."""
    rows = conn.execute(
        select(sync_history).order_by(sync_history.c.at.desc(), sync_history.c.id.desc()).limit(limit)
    )
    return [dict(r) for r in rows.mappings()]
