"""What the scheduler asks the store before a reminder: the invoice's GoCardless payments (is one
on its way?) and what was paid so far (how much is still owed?)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from infra.store.batches import in_chunks, unique
from infra.store.keys import pairs_in
from infra.store.tables import gc_payments


def collections_of(
    conn: Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Per ``(org_id, invoice_id)``, its GoCardless payments: ``payment_id``, ``status``,
    ``charge_date`` (a date or None) and ``will_attempt_retry``, oldest first."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for chunk in in_chunks(unique(keys)):
        rows = conn.execute(
            select(gc_payments)
            .where(pairs_in(gc_payments.c.org_id, gc_payments.c.invoice_id, chunk))
            .order_by(gc_payments.c.created_at, gc_payments.c.gc_id)
        ).mappings()
        for r in rows:
            try:
                charge = date.fromisoformat(r["charge_date"]) if r["charge_date"] else None
            except ValueError:
                charge = None
            found[r["org_id"], r["invoice_id"]].append(
                {
                    "payment_id": r["gc_id"],
                    "status": r["status"],
                    "charge_date": charge,
                    "will_attempt_retry": bool(r["will_attempt_retry"]),
                }
            )
    return dict(found)


def record_retry(conn: Connection, payment_id: str, will_attempt_retry: bool) -> None:
    """A ``payments.failed`` webhook said whether GoCardless will retry the payment."""
    conn.execute(
        update(gc_payments)
        .where(gc_payments.c.gc_id == payment_id)
        .values(will_attempt_retry=will_attempt_retry)
    )
