"""Reading and writing contact toggles (bulk changes and ``contacts show``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from infra.store.consent import Source, apply_consent
from infra.store.tables import contact_emails, contacts, customer_contacts, customers, notifications
from schemas.directory import is_directory_id
from schemas.toggles import EMAIL_CATEGORIES, Change, ContactToggles


def select_contacts(
    conn: Connection, org_id: str, *, ids: list[str] | None = None, customer_id: str | None = None
) -> list[str]:
    """Contact ids of an organisation: the listed ones as given, a customer's, or all."""
    if ids is not None:
        return ids
    if customer_id is not None and not is_directory_id(customer_id):
        return []  # no customer has such an id (and PostgreSQL would refuse a NUL in it)
    query = select(contacts.c.contact_id).where(contacts.c.org_id == org_id)
    if customer_id is not None:
        query = query.join(
            customer_contacts,
            and_(
                customer_contacts.c.org_id == contacts.c.org_id,
                customer_contacts.c.contact_id == contacts.c.contact_id,
            ),
        ).where(customer_contacts.c.customer_id == customer_id)
    return [r.contact_id for r in conn.execute(query.order_by(contacts.c.contact_id))]


def load_toggles(conn: Connection, org_id: str, contact_id: str) -> ContactToggles | None:
    """A contact's toggles, or ``None`` when there is no such contact."""
    if not is_directory_id(contact_id):
        return None  # no contact has such an id (and PostgreSQL would refuse a NUL in it)
    row = conn.execute(
        select(contacts.c.sms_enabled).where(contacts.c.org_id == org_id, contacts.c.contact_id == contact_id)
    ).first()
    if row is None:
        return None
    primary = conn.execute(
        select(customer_contacts.c.is_primary).where(
            customer_contacts.c.org_id == org_id,
            customer_contacts.c.contact_id == contact_id,
            customer_contacts.c.is_primary.is_(True),
        )
    ).first()
    emails = {
        e.address: (e.notify, dict(e.categories or {}))
        for e in conn.execute(
            select(contact_emails).where(
                contact_emails.c.org_id == org_id, contact_emails.c.contact_id == contact_id
            )
        )
    }
    return ContactToggles(contact_id, primary is not None, row.sms_enabled, emails)


def apply_changes(
    conn: Connection, org_id: str, contact_id: str, changes: list[Change], *, source: Source, actor: str
) -> None:
    """Write planned changes (from ``workers.rules.toggles.plan``), each with its consent row."""
    apply_consent(conn, org_id, contact_id, changes, source=source, actor=actor)


def contact_details(
    conn: Connection, org_id: str, contact_id: str, activity: int = 20
) -> dict[str, Any] | None:
    """A contact with its customers, addresses, toggles and most recent notifications."""
    if not is_directory_id(contact_id):
        return None  # as load_toggles
    row = (
        conn.execute(select(contacts).where(contacts.c.org_id == org_id, contacts.c.contact_id == contact_id))
        .mappings()
        .first()
    )
    if row is None:
        return None
    links = conn.execute(
        select(
            customer_contacts.c.customer_id,
            customer_contacts.c.is_primary,
            customer_contacts.c.sms_enabled.label("own_choice"),
            customers.c.sms_enabled,
        )
        .join(
            customers,
            and_(
                customers.c.org_id == customer_contacts.c.org_id,
                customers.c.customer_id == customer_contacts.c.customer_id,
            ),
        )
        .where(customer_contacts.c.org_id == org_id, customer_contacts.c.contact_id == contact_id)
        .order_by(customer_contacts.c.customer_id)
    ).all()
    toggles = load_toggles(conn, org_id, contact_id)
    recent = conn.execute(
        select(notifications)
        .where(notifications.c.org_id == org_id, notifications.c.contact_id == contact_id)
        .order_by(notifications.c.created_at.desc())
        .limit(activity)
    ).mappings()
    return {
        "org_id": org_id,
        "contact_id": contact_id,
        "name": row["name"],
        "mobile": row["mobile_e164"] or row["mobile_raw"],
        "locale": row["locale"],
        "status": row["status"],
        "sms_enabled": row["sms_enabled"],
        "sms_opted_out": row["sms_opted_out"],
        "customers": [
            {
                "customer_id": c.customer_id,
                "primary": c.is_primary,
                "customer_sms_enabled": c.sms_enabled,
                # The contact's own SMS choice for this account (preference page); None: not made.
                "contact_sms_choice": c.own_choice,
            }
            for c in links
        ],
        "emails": [
            {"address": a, "notify": n, "categories": {c: cats.get(c, True) for c in EMAIL_CATEGORIES}}
            for a, (n, cats) in sorted((toggles.emails if toggles else {}).items())
        ],
        "activity": [
            {
                "at": n["created_at"].isoformat(),
                "invoice_id": n["invoice_id"],
                "kind": n["kind"],
                "channel": n["channel"],
                "recipient": n["recipient"],
                "reason": n["reason"],
                "status": n["status"],
            }
            for n in recent
        ],
    }
