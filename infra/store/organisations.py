"""Organisation settings, opt-outs, paid invoices and SMS credit."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from infra.store.tables import contacts, events, notifications, org_warnings, organisations
from schemas.directory import OrgView

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
}


def load_org(conn: Connection, org_id: str, default_region: str) -> OrgView:
    """The organisation's settings, or the defaults when it was never configured."""
    row = conn.execute(select(organisations).where(organisations.c.org_id == org_id)).mappings().first()
    values = {**DEFAULTS, **(dict(row) if row else {})}
    return OrgView(
        org_id=org_id,
        region=values["default_region"] or default_region,
        sms_connected=values["sms_connected"],
        sender_number=values["sender_number"],
        sender_name=values["sender_name"],
        sender_name_active=values["sender_name_active"],
        disabled_templates=frozenset(values["disabled_templates"]),
        buys_credit=values["buys_credit"],
        credit_balance=values["credit_balance"],
    )


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
    if balance <= 0:
        return True
    rows = conn.execute(
        select(events.c.payload).where(
            events.c.org_id == org_id, events.c.invoice_id == invoice_id, events.c.type == "payment.received"
        )
    ).all()
    paid = Decimal(0)
    for row in rows:
        try:
            paid += Decimal(row.payload["data"]["payment"]["amount"])
        except (KeyError, TypeError, InvalidOperation):
            continue  # stored events were validated; a broken one pays nothing
    return paid >= balance


def mark_opted_out(conn: Connection, org_id: str, contact_id: str) -> None:
    """The contact replied STOP: no SMS to them from now on."""
    conn.execute(
        update(contacts)
        .where(contacts.c.org_id == org_id, contacts.c.contact_id == contact_id)
        .values(sms_opted_out=True, updated_at=datetime.now(UTC))
    )


def reserve_credit(conn: Connection, nid: str, org_id: str, parts: int) -> bool:
    """Take ``parts`` from the organisation's balance for this notification, once.

    Atomic: the balance never goes below zero, however many senders race. A
    notification that already holds a reservation keeps it (True).
    """
    claimed = conn.execute(
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.segments.is_(None))
        .values(segments=parts)
    )
    if not claimed.rowcount:
        return True
    taken = conn.execute(
        update(organisations)
        .where(organisations.c.org_id == org_id, organisations.c.credit_balance >= parts)
        .values(credit_balance=organisations.c.credit_balance - parts)
    )
    if taken.rowcount:
        _warn_if_low(conn, nid, org_id, parts)
        return True
    conn.execute(update(notifications).where(notifications.c.id == nid).values(segments=None))
    return False


def refund_credit(conn: Connection, nid: str, org_id: str) -> int:
    """Give back what a notification reserved (it failed for good); idempotent. Returns the segments."""
    row = conn.execute(select(notifications.c.segments).where(notifications.c.id == nid)).first()
    if row is None or not row.segments:
        return 0
    conn.execute(
        update(organisations)
        .where(organisations.c.org_id == org_id)
        .values(credit_balance=organisations.c.credit_balance + row.segments)
    )
    conn.execute(update(notifications).where(notifications.c.id == nid).values(segments=0))
    return int(row.segments)


def _warn_if_low(conn: Connection, nid: str, org_id: str, parts: int) -> None:
    """Record a low-balance warning when this reservation took the balance under the threshold."""
    row = conn.execute(
        select(organisations.c.credit_balance, organisations.c.low_balance_threshold).where(
            organisations.c.org_id == org_id
        )
    ).first()
    if row is None or row.low_balance_threshold is None:
        return
    before = row.credit_balance + parts
    if row.credit_balance < row.low_balance_threshold <= before:
        invoice = conn.execute(select(notifications.c.invoice_id).where(notifications.c.id == nid)).scalar()
        conn.execute(
            org_warnings.insert().values(
                org_id=org_id,
                kind="low_balance",
                detail=f"SMS credit balance {row.credit_balance} is under the threshold "
                f"{row.low_balance_threshold}",
                notification_id=nid,
                invoice_id=invoice,
                at=datetime.now(UTC),
            )
        )


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
