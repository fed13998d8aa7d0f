"""Organisation template overrides and the names templates greet people with."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from infra.store.tables import contacts, customers, organisations, templates
from schemas.rows import GreetingNames

Key = tuple[str, str, str, str]  # kind, channel, locale, part


def load_overrides(conn: Connection, org_id: str) -> dict[Key, str]:
    """An organisation's own templates, keyed (kind, channel, locale, part)."""
    rows = conn.execute(select(templates).where(templates.c.org_id == org_id)).mappings()
    return {(r["kind"], r["channel"], r["locale"], r["part"]): r["source"] for r in rows}


def save_override(conn: Connection, org_id: str, key: Key, source: str) -> None:
    """Store (replace) one template part of an organisation; the caller has checked it."""
    kind, channel, locale, part = key
    where = (
        templates.c.org_id == org_id,
        templates.c.kind == kind,
        templates.c.channel == channel,
        templates.c.locale == locale,
        templates.c.part == part,
    )
    conn.execute(delete(templates).where(*where))
    conn.execute(
        templates.insert().values(
            org_id=org_id,
            kind=kind,
            channel=channel,
            locale=locale,
            part=part,
            source=source,
            updated_at=datetime.now(UTC),
        )
    )


def greeting_names(conn: Connection, org_id: str, customer_id: str, contact_id: str) -> GreetingNames:
    """The organisation's, customer's and contact's names (empty when unknown), and the org's locale."""
    org = conn.execute(
        select(organisations.c.name, organisations.c.default_locale).where(organisations.c.org_id == org_id)
    ).first()
    customer = conn.execute(
        select(customers.c.name).where(customers.c.org_id == org_id, customers.c.customer_id == customer_id)
    ).first()
    contact = conn.execute(
        select(contacts.c.name).where(contacts.c.org_id == org_id, contacts.c.contact_id == contact_id)
    ).first()
    return GreetingNames(
        org=org.name if org and org.name else org_id,
        org_locale=org.default_locale if org and org.default_locale else "en",
        customer=customer.name if customer else "",
        contact=contact.name if contact else "",
    )
