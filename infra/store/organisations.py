"""Organisation settings, opt-outs, paid invoices and SMS credit."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from infra.store.batches import in_chunks, unique
from infra.store.consent import apply_consent
from infra.store.keys import IDS, ids_where, pair_params, pairs_where
from infra.store.tables import contacts, events, notifications, org_warnings, organisations
from schemas.directory import OrgView
from schemas.providers import parse_stored
from schemas.toggles import Change

#: Settings an organisation that was never configured has.
DEFAULTS: dict[str, Any] = {
    "name": None,
    "default_locale": None,
    "default_region": None,
    "sms_connected": True,
    "sender_number": None,
    "sender_name": None,
    "sender_name_active": False,
    "disabled_templates": [],
    "buys_credit": False,
    "credit_balance": 0,
    "low_balance_threshold": None,
    # Local time (producers/operations/local_time.py): None means the deployment's setting.
    "timezone": None,
    "reminder_hour": None,
    "country": None,
    "subdivision": None,
    "business_days": False,
    "send_windows": None,
    "collection_grace_days": None,
    "sms_providers": None,  # Twilio alone (docs/failover.md)
}


_ORGS = select(organisations).where(ids_where(organisations.c.org_id))


@functools.lru_cache(maxsize=64)
def _payments_of(terms: int) -> Any:
    return select(events.c.org_id, events.c.invoice_id, events.c.payload).where(
        pairs_where(events.c.org_id, events.c.invoice_id, terms), events.c.type == "payment.received"
    )


def load_org(conn: Connection, org_id: str, default_region: str) -> OrgView:
    """The organisation's settings, or the defaults when it was never configured."""
    return load_orgs(conn, [org_id], default_region)[org_id]


def load_orgs(conn: Connection, org_ids: Iterable[str], default_region: str) -> dict[str, OrgView]:
    """``load_org`` for each of ``org_ids``, by id (every one: the defaults for one never
    configured), in one ``SELECT`` (per 500)."""
    wanted = unique(org_ids)
    stored: dict[str, Any] = {}
    for chunk in in_chunks(wanted):
        for found in conn.execute(_ORGS, {IDS: chunk}).mappings():
            stored[found["org_id"]] = found
    views: dict[str, OrgView] = {}
    for org_id in wanted:
        row = stored.get(org_id)
        values = {**DEFAULTS, **(dict(row) if row else {})}
        views[org_id] = OrgView(
            org_id=org_id,
            region=values["default_region"] or default_region,
            sms_connected=values["sms_connected"],
            sender_number=values["sender_number"],
            sender_name=values["sender_name"],
            sender_name_active=values["sender_name_active"],
            disabled_templates=frozenset(values["disabled_templates"]),
            buys_credit=values["buys_credit"],
            credit_balance=values["credit_balance"],
            sms_providers=parse_stored(values["sms_providers"]),
        )
    return views


def org_settings(conn: Connection, org_id: str) -> dict[str, Any]:
    """The stored settings as a dict (defaults filled in), for display."""
    row = conn.execute(select(organisations).where(organisations.c.org_id == org_id)).mappings().first()
    values = {**DEFAULTS, **(dict(row) if row else {})}
    values.pop("updated_at", None)
    values["org_id"] = org_id
    return values


def update_org(conn: Connection, org_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Create or change an organisation's settings; returns them afterwards."""
    now = datetime.now(UTC)
    current = org_settings(conn, org_id)
    exists = conn.execute(select(organisations.c.org_id).where(organisations.c.org_id == org_id)).first()
    merged = {**{k: v for k, v in current.items() if k != "org_id"}, **changes}
    if exists:
        conn.execute(
            update(organisations).where(organisations.c.org_id == org_id).values(**merged, updated_at=now)
        )
    else:
        conn.execute(organisations.insert().values(org_id=org_id, **merged, updated_at=now))
    return org_settings(conn, org_id)


def invoice_paid(conn: Connection, org_id: str, invoice_id: str, balance: Decimal) -> bool:
    """Whether the invoice is paid: nothing left on it, or recorded payments cover its balance."""
    return invoices_paid(conn, [(org_id, invoice_id, balance)])[0]


def invoices_paid(conn: Connection, items: Sequence[tuple[str, str, Decimal]]) -> list[bool]:
    """``invoice_paid`` for each ``(org_id, invoice_id, balance)``: one ``SELECT`` (per 500
    invoices) of the payments recorded for those with a balance left."""
    owing = unique((org_id, invoice_id) for org_id, invoice_id, balance in items if balance > 0)
    paid = paid_so_far(conn, owing)
    return [
        balance <= 0 or paid.get((org_id, invoice_id), Decimal(0)) >= balance
        for org_id, invoice_id, balance in items
    ]


def paid_so_far(conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Decimal]:
    """Per ``(org_id, invoice_id)``, the sum of its recorded ``payment.received`` amounts (only the
    invoices with a payment are keys)."""
    paid: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for terms, params in pair_params(unique(keys)):
        for row in conn.execute(_payments_of(terms), params):
            try:
                paid[row.org_id, row.invoice_id] += Decimal(row.payload["data"]["payment"]["amount"])
            except (KeyError, TypeError, InvalidOperation):
                continue  # stored events were validated; a broken one pays nothing
    return dict(paid)


def mark_opted_out(conn: Connection, org_id: str, contact_id: str, *, notification_id: str = "") -> None:
    """The contact replied STOP (Twilio refused a send with 21610): no SMS to them from now on,
    recorded in the consent trail."""
    current = conn.execute(
        select(contacts.c.sms_opted_out).where(
            contacts.c.org_id == org_id, contacts.c.contact_id == contact_id
        )
    ).scalar()
    if current is None or current:
        return
    apply_consent(
        conn,
        org_id,
        contact_id,
        [Change("sms_opted_out", False, True)],
        source="twilio_21610",
        actor=f"twilio:{notification_id}" if notification_id else "twilio",
        detail="Twilio refused an SMS with 21610: the recipient replied STOP",
    )


def reserve_credit(conn: Connection, nid: str, org_id: str, parts: int) -> bool:
    """Take ``parts`` from the organisation's balance for this notification, once.

    Atomic: the balance never goes below zero, however many senders race. A
    notification that already holds a reservation keeps it (True).
    """
    return reserve_credit_many(conn, [(nid, org_id, parts)])[0]


def reserve_credit_many(conn: Connection, items: Sequence[tuple[str, str, int]]) -> list[bool]:
    """``reserve_credit`` for each ``(notification id, org id, parts)``, in order, as if one after
    another: whether each holds its reservation now.

    Each notification reserves all its parts or none, once (a notification that holds a
    reservation, or that does not exist, is True and takes nothing). The notifications' rows, then
    the organisations', are locked in key order (``FOR UPDATE`` on PostgreSQL; SQLite's write
    transaction holds the database), so the balance never goes below zero however many senders
    race, and two batches cannot deadlock. When a reservation takes the balance under the
    organisation's threshold, a low-balance warning names it, as ``reserve_credit`` does. Two
    ``SELECT``s, then at most three executemany writes (reservations, balances, warnings).
    """
    ids = unique(nid for nid, _, _ in items)
    held: dict[str, int | None] = {}
    invoice_of: dict[str, str] = {}
    for chunk in in_chunks(ids):
        rows = conn.execute(
            select(notifications.c.id, notifications.c.segments, notifications.c.invoice_id)
            .where(notifications.c.id.in_(chunk))
            .order_by(notifications.c.id)
            .with_for_update()
        )
        for r in rows:
            held[r.id], invoice_of[r.id] = r.segments, r.invoice_id
    org_ids = sorted({org for nid, org, _ in items if nid in held and held[nid] is None})
    balance: dict[str, int] = {}
    threshold: dict[str, int | None] = {}
    for chunk in in_chunks(org_ids):
        rows = conn.execute(
            select(
                organisations.c.org_id,
                organisations.c.credit_balance,
                organisations.c.low_balance_threshold,
            )
            .where(organisations.c.org_id.in_(chunk))
            .order_by(organisations.c.org_id)
            .with_for_update()
        )
        for r in rows:
            balance[r.org_id], threshold[r.org_id] = r.credit_balance, r.low_balance_threshold
    reserved: list[dict[str, Any]] = []
    taken: dict[str, int] = defaultdict(int)
    warnings: list[dict[str, Any]] = []
    results: list[bool] = []
    now = datetime.now(UTC)
    for nid, org_id, parts in items:
        if nid not in held or held[nid] is not None:
            results.append(True)  # holds one already (or there is nothing to hold it)
            continue
        before = balance.get(org_id)
        if before is None or before < parts:
            results.append(False)
            continue
        after = balance[org_id] = before - parts
        held[nid] = parts
        taken[org_id] += parts
        reserved.append({"b_id": nid, "b_parts": parts})
        limit = threshold[org_id]
        if limit is not None and after < limit <= before:
            warnings.append(
                {
                    "org_id": org_id,
                    "kind": "low_balance",
                    "detail": f"SMS credit balance {after} is under the threshold {limit}",
                    "notification_id": nid,
                    "invoice_id": invoice_of[nid],
                    "at": now,
                }
            )
        results.append(True)
    if reserved:
        conn.execute(
            update(notifications)
            .where(notifications.c.id == bindparam("b_id"), notifications.c.segments.is_(None))
            .values(segments=bindparam("b_parts")),
            reserved,
        )
        conn.execute(
            update(organisations)
            .where(organisations.c.org_id == bindparam("b_org_id"))
            .values(credit_balance=organisations.c.credit_balance - bindparam("b_parts")),
            [{"b_org_id": org_id, "b_parts": parts} for org_id, parts in taken.items()],
        )
    if warnings:
        conn.execute(org_warnings.insert(), warnings)
    return results


def refund_credit(conn: Connection, nid: str, org_id: str) -> int:
    """Give back what a notification reserved (it failed for good); idempotent. Returns the segments."""
    return refund_credit_many(conn, [(nid, org_id)])[0]


def refund_credit_many(conn: Connection, items: Sequence[tuple[str, str]]) -> list[int]:
    """``refund_credit`` for each ``(notification id, org id)``, in order: the segments each gave
    back (0 when it held none, or gave them back already, in this batch or before).

    The notifications' rows are locked first (``FOR UPDATE``, in id order, as ``reserve_credit_many``
    does), so two refunds of one notification racing give it back once. One ``SELECT``, then at
    most two writes (balances, executemany; the reservations zeroed).
    """
    ids = unique(nid for nid, _ in items)
    held: dict[str, int] = {}
    for chunk in in_chunks(ids):
        rows = conn.execute(
            select(notifications.c.id, notifications.c.segments)
            .where(notifications.c.id.in_(chunk))
            .order_by(notifications.c.id)
            .with_for_update()
        )
        held.update((r.id, r.segments or 0) for r in rows)
    given: dict[str, int] = defaultdict(int)
    results: list[int] = []
    for nid, org_id in items:
        segments = held.get(nid, 0)
        if segments:
            held[nid] = 0
            given[org_id] += segments
        results.append(segments)
    if given:
        conn.execute(
            update(organisations)
            .where(organisations.c.org_id == bindparam("b_org_id"))
            .values(credit_balance=organisations.c.credit_balance + bindparam("b_parts")),
            [{"b_org_id": org_id, "b_parts": parts} for org_id, parts in given.items()],
        )
        refunded = [nid for nid, segments in zip((n for n, _ in items), results, strict=True) if segments]
        for chunk in in_chunks(refunded):
            conn.execute(update(notifications).where(notifications.c.id.in_(chunk)).values(segments=0))
    return results


def add_credit(conn: Connection, org_id: str, parts: int) -> int:
    """Add SMS credit (segments) to an organisation; returns the new balance."""
    update_org(conn, org_id, {})  # creates the row with defaults when the organisation was never configured
    conn.execute(
        update(organisations)
        .where(organisations.c.org_id == org_id)
        .values(credit_balance=organisations.c.credit_balance + parts)
    )
    return int(org_settings(conn, org_id)["credit_balance"])


def recent_warnings(conn: Connection, org_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The organisation's latest warnings, newest first."""
    rows = conn.execute(
        select(org_warnings)
        .where(org_warnings.c.org_id == org_id)
        .order_by(org_warnings.c.id.desc())
        .limit(limit)
    ).mappings()
    return [dict(r) for r in rows]
