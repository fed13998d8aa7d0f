"""Organisation template overrides and the names templates greet people with."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, delete, select
from sqlalchemy.engine import Connection

from infra.store.batches import in_chunks, unique
from infra.store.keys import IDS, ids_where, pairs_in
from infra.store.tables import contacts, customers, organisations, templates
from schemas.rows import GreetingNames

Key = tuple[str, str, str, str]  # kind, channel, locale, part


_OVERRIDES = select(templates).where(ids_where(templates.c.org_id))


def load_overrides(conn: Connection, org_id: str) -> dict[Key, str]:
    """An organisation's own templates, keyed (kind, channel, locale, part)."""
    return load_overrides_many(conn, [org_id])[org_id]


def load_overrides_many(conn: Connection, org_ids: Iterable[str]) -> dict[str, dict[Key, str]]:
    """``load_overrides`` of each organisation (empty for one with none), in one ``SELECT`` per 500."""
    wanted = unique(org_ids)
    found: dict[str, dict[Key, str]] = {org_id: {} for org_id in wanted}
    for chunk in in_chunks(wanted):
        for r in conn.execute(_OVERRIDES, {IDS: chunk}).mappings():
            found[r["org_id"]][r["kind"], r["channel"], r["locale"], r["part"]] = r["source"]
    return found


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
    key = (org_id, customer_id, contact_id)
    return greeting_names_many(conn, [key])[key]


def greeting_names_many(
    conn: Connection, keys: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], GreetingNames]:
    """``greeting_names`` for each ``(org_id, customer_id, contact_id)``, by key: three ``SELECT``s
    (per 500), of the organisations, the customers and the contacts."""
    wanted = unique(keys)
    orgs: dict[str, Any] = {}
    for chunk in in_chunks(unique(org for org, _, _ in wanted)):
        rows = conn.execute(
            select(organisations.c.org_id, organisations.c.name, organisations.c.default_locale).where(
                organisations.c.org_id.in_(chunk)
            )
        )
        orgs.update((r.org_id, r) for r in rows)
    customer_names = _names(conn, customers.c.customer_id, ((org, cust) for org, cust, _ in wanted))
    contact_names = _names(conn, contacts.c.contact_id, ((org, contact) for org, _, contact in wanted))
    names: dict[tuple[str, str, str], GreetingNames] = {}
    for org_id, customer_id, contact_id in wanted:
        org = orgs.get(org_id)
        names[org_id, customer_id, contact_id] = GreetingNames(
            org=org.name if org and org.name else org_id,
            org_locale=org.default_locale if org and org.default_locale else "en",
            customer=customer_names.get((org_id, customer_id), ""),
            contact=contact_names.get((org_id, contact_id), ""),
        )
    return names


def _names(
    conn: Connection, id_column: Column[str], keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """The ``name`` of each ``(org_id, id)`` found in ``id_column``'s table, one ``SELECT`` per 500."""
    table = id_column.table
    found: dict[tuple[str, str], str] = {}
    for pairs in in_chunks(unique(keys)):
        rows = conn.execute(
            select(table.c.org_id, id_column, table.c.name).where(pairs_in(table.c.org_id, id_column, pairs))
        )
        found.update(((org_id, ident), name) for org_id, ident, name in rows)
    return found
