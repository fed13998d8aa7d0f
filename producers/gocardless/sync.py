"""The full import: every customer, mandate and payment at GoCardless into the store.

One sync-history row per data type (trigger ``full``) with added / updated / failed counts. A bad
record (say, a customer whose email is not an address) is counted failed with its reason and
never stops the others; a second run over unchanged data adds and updates nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from sqlalchemy.engine import Connection

from infra.adapters.gocardless_account import JSON, GoCardlessReader, GoCardlessUnavailable
from infra.bootstrap import Services
from infra.errors import IntegrationInactive
from infra.store import gocardless as store
from infra.store import sync_history
from infra.store.integrations import integration_active

logger = logging.getLogger("herald.gocardless.sync")

#: Data types in the order they are imported: payments find their customer through the mandate.
DATA_TYPES = ("customers", "mandates", "payments")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BATCH = 500


def check_customer(customer: JSON) -> str | None:
    """Why a GoCardless customer cannot be stored, or ``None`` when it can (pure)."""
    email = customer.get("email")
    if email is not None and not _EMAIL.match(str(email)):
        return "email is not a valid address"  # the value itself is not repeated: it may be personal
    return None


def store_record(conn: Connection, kind: str, record: JSON, now: datetime) -> store.Outcome:
    """Upsert one record of ``kind``; ``ValueError`` with the reason when it is bad."""
    if kind == "customers":
        problem = check_customer(record)
        if problem:
            raise ValueError(problem)
        return store.upsert_customer(conn, record, now)
    if kind == "mandates":
        return store.upsert_mandate(conn, record, now)
    if kind == "payments":
        return store.upsert_payment(conn, record, now)
    raise ValueError(f"unknown data type {kind}")


def store_one(
    conn: Connection, kind: str, record: JSON, now: datetime, counts: sync_history.SyncCounts
) -> None:
    """Upsert one record in a savepoint, counting it; a failure is counted with its reason and
    rolled back alone, so the rest of the batch (and of the sync) goes on."""
    try:
        with conn.begin_nested():
            counts.count(store_record(conn, kind, record, now))
    except Exception as exc:  # one bad record never stops the others
        reason = str(exc) if isinstance(exc, ValueError) else type(exc).__name__
        counts.fail(f"{record.get('id', '?')}: {reason}")
        logger.warning("sync: %s %s failed: %s", kind, record.get("id"), reason)


def _batches(records: Iterator[JSON]) -> Iterator[list[JSON]]:
    while batch := list(islice(records, _BATCH)):
        yield batch


def full_sync(
    services: Services,
    reader: GoCardlessReader,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, sync_history.SyncCounts]:
    """Import everything, type by type, in batches; write the sync-history rows and purge rows
    older than 7 days. ``IntegrationInactive`` when GoCardless is disconnected."""
    with services.transaction() as conn:
        if not integration_active(conn, "gocardless", services.settings):
            raise IntegrationInactive("the GoCardless integration is disconnected")
        sync_history.purge_sync_history(conn, now())
    results: dict[str, sync_history.SyncCounts] = {}
    for kind in DATA_TYPES:
        counts = results[kind] = sync_history.SyncCounts()
        try:
            for batch in _batches(reader.all(kind)):
                with services.transaction() as conn:
                    for record in batch:
                        store_one(conn, kind, record, now(), counts)
        except GoCardlessUnavailable as exc:
            counts.fail(f"interrupted: {exc}")
            _record(services, kind, counts, now())
            raise
        _record(services, kind, counts, now())
        logger.info(
            "sync: %s added=%d updated=%d failed=%d", kind, counts.added, counts.updated, counts.failed
        )
    return results


def _record(services: Services, kind: str, counts: sync_history.SyncCounts, at: datetime) -> None:
    with services.transaction() as conn:
        sync_history.record_sync(conn, data_type=kind, trigger="full", counts=counts, now=at)


def history_rows(services: Services, limit: int = 200) -> list[dict[str, Any]]:
    """Sync-history rows, newest first."""
    with services.reading() as conn:
        return sync_history.sync_rows(conn, limit)
