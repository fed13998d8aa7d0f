"""Reminder scheduling in the store: open invoices (kept by route), each organisation's offsets,
and the (invoice, offset) decisions that make every reminder go out at most once."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from infra.store import status_outbox
from infra.store.batches import rounds
from infra.store.db import insert_ignore
from infra.store.keys import pair_params, pairs_where
from infra.store.organisations import invoices_paid
from infra.store.tables import invoices, reminder_offsets, reminders_sent
from schemas.events import Event, InvoiceCreated, PaymentReceived
from schemas.rows import InvoiceRow

CLAIMED, PUBLISHED, SUPERSEDED = "claimed", "published", "superseded"
#: Waiting for a Direct Debit payment on its way: not decided, planned again each tick.
DEFERRED = "deferred_collection_pending"


def track_invoice(conn: Connection, event: Event) -> None:
    """Keep the open-invoice table current from a routed event (in route's transaction).

    ``invoice.created`` stores (or refreshes) the invoice; ``payment.received`` marks it paid
    once the recorded payments cover its balance. Either order works: an invoice whose payment
    was routed first is stored already paid. Idempotent.
    """
    track_invoices(conn, [event])


def track_invoices(conn: Connection, events: Sequence[Event]) -> None:
    """``track_invoice`` for each event, in order, with the same outcome: events of one invoice
    go in successive rounds (``infra.store.batches.rounds``); each round stores its invoices in
    one upsert (executemany, handing back each invoice as it now stands) and refreshes their paid
    state with ``refresh_paid_many`` (reading only the invoices the upsert did not hand back)."""
    tracked = [e for e in events if isinstance(e, InvoiceCreated | PaymentReceived)]
    now = datetime.now(UTC)
    for indexes in rounds([[(e.org_id, e.invoice_id)] for e in tracked]):
        batch = [tracked[i] for i in indexes]
        created = [e for e in batch if isinstance(e, InvoiceCreated)]
        stored: dict[tuple[str, str], Any] = {}
        if created:
            upserted = conn.execute(
                _invoice_upsert(conn.dialect.name),
                [
                    {
                        "org_id": e.org_id,
                        "invoice_id": e.data.invoice.id,
                        "customer_id": e.data.invoice.customer_id,
                        "currency": e.data.invoice.currency,
                        "total": str(e.data.invoice.total),
                        "balance": str(e.data.invoice.balance),
                        "due_date": e.data.invoice.due_date,
                        "invoice": e.data.invoice.model_dump(mode="json"),
                        "updated_at": now,
                    }
                    for e in created
                ],
            )
            stored = {(r.org_id, r.invoice_id): r for r in upserted}
        _refresh_paid(conn, [(e.org_id, e.invoice_id) for e in batch], now, stored)


@functools.cache
def _invoice_upsert(dialect: str) -> Any:
    """Store or refresh invoices, handing back each as it now stands (built once per dialect)."""
    insert = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(invoices)
    columns = ("customer_id", "currency", "total", "balance", "due_date", "invoice", "updated_at")
    return insert.on_conflict_do_update(
        index_elements=["org_id", "invoice_id"],
        set_={name: insert.excluded[name] for name in columns},
    ).returning(invoices.c.org_id, invoices.c.invoice_id, invoices.c.balance, invoices.c.paid_at)


@functools.lru_cache(maxsize=64)
def _invoices_of(terms: int) -> Any:
    return select(invoices.c.org_id, invoices.c.invoice_id, invoices.c.balance, invoices.c.paid_at).where(
        pairs_where(invoices.c.org_id, invoices.c.invoice_id, terms)
    )


_MARK_PAID = update(invoices).where(
    invoices.c.org_id == bindparam("b_org_id"),
    invoices.c.invoice_id == bindparam("b_invoice_id"),
    invoices.c.paid_at.is_(None),
)


def refresh_paid(conn: Connection, org_id: str, invoice_id: str, now: datetime) -> bool:
    """Whether the invoice is paid, from the recorded payments; marks it paid when it is.

    Unknown invoices count as unpaid (nothing to remind of anyway: the scheduler only sees
    stored ones).
    """
    return refresh_paid_many(conn, [(org_id, invoice_id)], now)[0]


def refresh_paid_many(conn: Connection, keys: Sequence[tuple[str, str]], now: datetime) -> list[bool]:
    """``refresh_paid`` for each ``(org_id, invoice_id)``: one ``SELECT`` of the invoices, one of
    their payments (``invoices_paid``), one ``UPDATE`` (executemany) of those now paid."""
    return _refresh_paid(conn, keys, now, {})


def _refresh_paid(
    conn: Connection, keys: Sequence[tuple[str, str]], now: datetime, known: dict[tuple[str, str], Any]
) -> list[bool]:
    """``refresh_paid_many``, given the invoices already read (``known``: rows with ``balance`` and
    ``paid_at``, by key): only the others are read."""
    stored = dict(known)
    for terms, params in pair_params(key for key in keys if key not in known):
        stored.update(((r.org_id, r.invoice_id), r) for r in conn.execute(_invoices_of(terms), params))
    open_ = [key for key, row in stored.items() if row.paid_at is None]
    covered = invoices_paid(conn, [(org, inv, Decimal(stored[org, inv].balance)) for org, inv in open_])
    newly_paid = [key for key, paid in zip(open_, covered, strict=True) if paid]
    if newly_paid:
        conn.execute(
            _MARK_PAID,
            [
                {"b_org_id": org, "b_invoice_id": inv, "paid_at": now, "updated_at": now}
                for org, inv in newly_paid
            ],
        )
    paid = {key for key, row in stored.items() if row.paid_at is not None} | set(newly_paid)
    return [key in paid for key in keys]


def set_offsets(
    conn: Connection, org_id: str, offsets: Mapping[int, str | None], business: Iterable[int] = ()
) -> None:
    """Replace an organisation's reminder offsets (offset → template key, or None: the standard one;
    the offsets in ``business`` count business days, ``+3b``).

    Reminders already decided stay decided; a new offset whose time has passed is caught up once
    (with the latest-only rule) on the next tick.
    """
    now = datetime.now(UTC)
    in_business = set(business)
    conn.execute(delete(reminder_offsets).where(reminder_offsets.c.org_id == org_id))
    if offsets:
        conn.execute(
            reminder_offsets.insert(),
            [
                {
                    "org_id": org_id,
                    "offset_days": o,
                    "template": t,
                    "updated_at": now,
                    "business": o in in_business,
                }
                for o, t in sorted(offsets.items())
            ],
        )


def load_offsets(conn: Connection, org_id: str | None = None) -> dict[str, dict[int, str | None]]:
    """Reminder offsets per organisation (one organisation's, or every one's)."""
    query = select(reminder_offsets)
    if org_id is not None:
        query = query.where(reminder_offsets.c.org_id == org_id)
    found: dict[str, dict[int, str | None]] = {}
    for row in conn.execute(query.order_by(reminder_offsets.c.org_id, reminder_offsets.c.offset_days)):
        found.setdefault(row.org_id, {})[row.offset_days] = row.template
    return found


def load_business_offsets(conn: Connection, org_id: str | None = None) -> dict[str, frozenset[int]]:
    """Per organisation, its offsets that count business days (``+3b``)."""
    query = select(reminder_offsets.c.org_id, reminder_offsets.c.offset_days).where(
        reminder_offsets.c.business.is_(True)
    )
    if org_id is not None:
        query = query.where(reminder_offsets.c.org_id == org_id)
    found: dict[str, set[int]] = {}
    for row in conn.execute(query):
        found.setdefault(row.org_id, set()).add(row.offset_days)
    return {org: frozenset(days) for org, days in found.items()}


def open_invoices(conn: Connection, org_id: str, due_by: date) -> list[InvoiceRow]:
    """The organisation's unpaid invoices due on or before ``due_by``."""
    rows = conn.execute(
        select(invoices).where(
            invoices.c.org_id == org_id, invoices.c.paid_at.is_(None), invoices.c.due_date <= due_by
        )
    ).mappings()
    return [InvoiceRow(**r) for r in rows]


def load_invoice(conn: Connection, org_id: str, invoice_id: str) -> InvoiceRow | None:
    """One stored invoice row, or None."""
    row = conn.execute(
        select(invoices).where(invoices.c.org_id == org_id, invoices.c.invoice_id == invoice_id)
    ).mappings()
    first = row.first()
    return InvoiceRow(**first) if first else None


def decided_offsets(conn: Connection, org_id: str, invoice_ids: Iterable[str]) -> dict[str, set[int]]:
    """For each invoice, the offsets already claimed, published or superseded (a deferred one is
    not decided: it is planned again)."""
    ids = list(invoice_ids)
    found: dict[str, set[int]] = {i: set() for i in ids}
    for start in range(0, len(ids), 500):  # bounded IN lists
        rows = conn.execute(
            select(reminders_sent.c.invoice_id, reminders_sent.c.offset_days).where(
                reminders_sent.c.org_id == org_id,
                reminders_sent.c.invoice_id.in_(ids[start : start + 500]),
                reminders_sent.c.status != DEFERRED,
            )
        )
        for row in rows:
            found[row.invoice_id].add(row.offset_days)
    return found


def supersede(conn: Connection, org_id: str, invoice_id: str, offsets: Iterable[int], now: datetime) -> None:
    """Record missed offsets as superseded (never sent); ones already decided keep their state."""
    rows = [
        {"org_id": org_id, "invoice_id": invoice_id, "offset_days": o, "status": SUPERSEDED, "at": now}
        for o in offsets
    ]
    if rows:
        conn.execute(insert_ignore(conn, reminders_sent), rows)
        conn.execute(
            update(reminders_sent)
            .where(
                reminders_sent.c.org_id == org_id,
                reminders_sent.c.invoice_id == invoice_id,
                reminders_sent.c.offset_days.in_([r["offset_days"] for r in rows]),
                reminders_sent.c.status == DEFERRED,
            )
            .values(status=SUPERSEDED, at=now)
        )


def defer(
    conn: Connection,
    org_id: str,
    invoice_id: str,
    offset_days: int,
    now: datetime,
    *,
    payment_id: str,
    reason: str,
    resume_after: date | None,
    fire_at: datetime | None = None,
) -> None:
    """Record one (invoice, offset) as ``deferred_collection_pending``: it waits for GoCardless
    payment ``payment_id`` (``reason``: its status), until after ``resume_after`` (None: while the
    payment is on its way). It stays undecided: each tick plans it again."""
    values = {
        "status": DEFERRED,
        "at": now,
        "payment_id": payment_id,
        "resume_after": resume_after,
        "moved_reason": reason[:200],
        "fire_at": fire_at,
    }
    key = {"org_id": org_id, "invoice_id": invoice_id, "offset_days": offset_days}
    inserted = conn.execute(insert_ignore(conn, reminders_sent).values(**key, **values))
    if not inserted.rowcount:
        conn.execute(
            update(reminders_sent)
            .where(*_key(org_id, invoice_id, offset_days), reminders_sent.c.status == DEFERRED)
            .values(**values)
        )


def claim(
    conn: Connection,
    org_id: str,
    invoice_id: str,
    offset_days: int,
    event_id: str,
    now: datetime,
    *,
    fire_at: datetime | None = None,
    moved_from: date | None = None,
    moved_reason: str | None = None,
) -> bool:
    """Claim one (invoice, offset) for publishing. Atomic: of any number of schedulers, one wins.

    Its fire time, and the date it moved from to a business day and why, are kept for history.
    """
    result = conn.execute(
        insert_ignore(conn, reminders_sent).values(
            org_id=org_id,
            invoice_id=invoice_id,
            offset_days=offset_days,
            event_id=event_id,
            status=CLAIMED,
            at=now,
            fire_at=fire_at,
            moved_from=moved_from,
            moved_reason=moved_reason[:200] if moved_reason else None,
        )
    )
    if result.rowcount:
        return True
    # A reminder deferred while a payment was on its way is claimed the same way, once.
    resumed = conn.execute(
        update(reminders_sent)
        .where(*_key(org_id, invoice_id, offset_days), reminders_sent.c.status == DEFERRED)
        .values(
            status=CLAIMED,
            event_id=event_id,
            at=now,
            fire_at=fire_at,
            moved_from=moved_from,
            moved_reason=moved_reason[:200] if moved_reason else None,
        )
    )
    return bool(resumed.rowcount)


def mark_published(conn: Connection, org_id: str, invoice_id: str, offset_days: int, now: datetime) -> None:
    """RabbitMQ confirmed the reminder: it is published for good (and ``reminder.scheduled`` is
    written to the status outbox in the same transaction)."""
    if _settle_claim(conn, (org_id, invoice_id, offset_days), PUBLISHED, now):
        _tell_scheduled(conn, org_id, invoice_id, offset_days)


def stale_claims(conn: Connection, before: datetime) -> list[dict[str, Any]]:
    """Claims older than ``before`` that were never confirmed (their scheduler died mid-publish)."""
    rows = conn.execute(
        select(reminders_sent).where(reminders_sent.c.status == CLAIMED, reminders_sent.c.at < before)
    ).mappings()
    return [dict(r) for r in rows]


def retake_claim(conn: Connection, claim_row: Mapping[str, Any], now: datetime) -> bool:
    """Take over a stale claim; atomic, so of several schedulers one re-publishes it."""
    result = conn.execute(
        update(reminders_sent)
        .where(
            *_key(claim_row["org_id"], claim_row["invoice_id"], claim_row["offset_days"]),
            reminders_sent.c.status == CLAIMED,
            reminders_sent.c.at == claim_row["at"],
        )
        .values(at=now)
    )
    return bool(result.rowcount)


def drop_claim(conn: Connection, org_id: str, invoice_id: str, offset_days: int, now: datetime) -> None:
    """A claimed reminder whose invoice was paid meanwhile: superseded, not sent."""
    _settle_claim(conn, (org_id, invoice_id, offset_days), SUPERSEDED, now)


def _tell_scheduled(conn: Connection, org_id: str, invoice_id: str, offset_days: int) -> None:
    row = conn.execute(
        select(reminders_sent.c.event_id, invoices.c.customer_id)
        .join(
            invoices,
            (invoices.c.org_id == reminders_sent.c.org_id)
            & (invoices.c.invoice_id == reminders_sent.c.invoice_id),
        )
        .where(*_key(org_id, invoice_id, offset_days))
    ).first()
    if row is not None and row.event_id:
        status_outbox.reminder(conn, org_id, invoice_id, row.customer_id, offset_days, row.event_id)


def _settle_claim(conn: Connection, key: tuple[str, str, int], status: str, now: datetime) -> bool:
    """A claim (still ``claimed``) ends as ``status``; whether it was still claimed."""
    return bool(
        conn.execute(
            update(reminders_sent)
            .where(*_key(*key), reminders_sent.c.status == CLAIMED)
            .values(status=status, at=now)
        ).rowcount
    )


def reminder_rows(conn: Connection, org_id: str, invoice_id: str) -> list[dict[str, Any]]:
    """Every decision for one invoice, by offset (for history and tests)."""
    rows = conn.execute(
        select(reminders_sent)
        .where(reminders_sent.c.org_id == org_id, reminders_sent.c.invoice_id == invoice_id)
        .order_by(reminders_sent.c.offset_days)
    ).mappings()
    return [dict(r) for r in rows]


def reminder_timeline(conn: Connection, invoice_id: str, org_id: str | None = None) -> list[dict[str, Any]]:
    """The invoice's reminder decisions as history entries (``what: reminder``): each offset's
    state, when it was due, and why it moved or waits (``at``: when last decided, a datetime)."""
    query = select(reminders_sent).where(reminders_sent.c.invoice_id == invoice_id)
    if org_id is not None:
        query = query.where(reminders_sent.c.org_id == org_id)
    entries = []
    for r in conn.execute(query.order_by(reminders_sent.c.offset_days)).mappings():
        entries.append(
            {
                "at": r["at"],
                "what": "reminder",
                "org_id": r["org_id"],
                "offset_days": r["offset_days"],
                "status": r["status"],
                "fire_at": r["fire_at"].isoformat() if r["fire_at"] else None,
                "moved_from": r["moved_from"].isoformat() if r["moved_from"] else None,
                "reason": r["moved_reason"],
                "payment_id": r["payment_id"],
            }
        )
    return entries


def _key(org_id: str, invoice_id: str, offset_days: int) -> tuple[Any, ...]:
    return (
        reminders_sent.c.org_id == org_id,
        reminders_sent.c.invoice_id == invoice_id,
        reminders_sent.c.offset_days == offset_days,
    )
