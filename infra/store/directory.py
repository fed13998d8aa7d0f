"""The contact directory: idempotent upsert of customers, contacts and emails."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import and_, delete, select, update
from sqlalchemy.engine import Connection

from infra.store.batches import unique
from infra.store.db import insert_ignore
from infra.store.keys import pair_params, pairs_where
from infra.store.tables import contact_emails, contacts, customer_contacts, customers
from schemas.directory import Contact, ContactView, CustomerRecord, CustomerView, EmailView
from schemas.phones import to_e164

UpsertOutcome = Literal["created", "updated", "unchanged"]


def _named(name: str | None) -> dict[str, Any]:
    # No name (blank or absent) keeps the stored one: an upsert never destroys data by omission.
    # A new row without one gets the column's default, "".
    return {} if name is None else {"name": name}


def _customer_row(record: CustomerRecord) -> dict[str, Any]:
    return {**_named(record.name), "sms_enabled": record.sms_enabled}


def _contact_row(contact: Contact, region: str) -> dict[str, Any]:
    return {
        **_named(contact.name),
        "mobile_raw": contact.mobile,
        "mobile_e164": to_e164(contact.mobile, region),
        "sms_enabled": contact.sms_enabled,
        "locale": contact.locale,
        "status": contact.status,
        "timezone": contact.timezone,
    }


def _upsert(conn: Connection, table: Any, key: dict[str, Any], values: dict[str, Any], now: datetime) -> bool:
    """Insert or update one row; True when something changed."""
    where = and_(*(table.c[k] == v for k, v in key.items()))
    current = conn.execute(select(*(table.c[k] for k in values)).where(where)).mappings().first()
    if current is None:
        conn.execute(table.insert().values(**key, **values, updated_at=now))
        return True
    if dict(current) == values:
        return False
    conn.execute(update(table).where(where).values(**values, updated_at=now))
    return True


def upsert_customer(conn: Connection, record: CustomerRecord, *, region: str) -> UpsertOutcome:
    """Store one customer with its contacts, links and email addresses.

    Keyed on the upstream ids, so importing the same line twice changes
    nothing the second time. Links and emails of this customer's contacts
    that the record no longer lists are removed. A customer or contact given
    no name keeps the name it has.
    """
    now = datetime.now(UTC)
    org = record.org_id
    existed = conn.execute(
        select(customers.c.customer_id).where(
            customers.c.org_id == org, customers.c.customer_id == record.customer_id
        )
    ).first()
    changed = _upsert(
        conn, customers, {"org_id": org, "customer_id": record.customer_id}, _customer_row(record), now
    )
    for contact in record.contacts:
        changed |= _upsert(
            conn,
            contacts,
            {"org_id": org, "contact_id": contact.contact_id},
            _contact_row(contact, region),
            now,
        )
        changed |= _sync_emails(conn, org, contact)
    changed |= _sync_links(conn, record)
    if existed is None:
        return "created"
    return "updated" if changed else "unchanged"


def _sync_links(conn: Connection, record: CustomerRecord) -> bool:
    org, customer = record.org_id, record.customer_id
    wanted = {c.contact_id: c.primary for c in record.contacts}
    rows = conn.execute(
        select(
            customer_contacts.c.contact_id, customer_contacts.c.is_primary, customer_contacts.c.sms_enabled
        ).where(customer_contacts.c.org_id == org, customer_contacts.c.customer_id == customer)
    ).all()
    have = {r.contact_id: r.is_primary for r in rows}
    # The contact's own choice for this account (preference page) outlives a change of links.
    chosen = {r.contact_id: r.sms_enabled for r in rows}
    if have == wanted:
        return False
    conn.execute(
        delete(customer_contacts).where(
            customer_contacts.c.org_id == org, customer_contacts.c.customer_id == customer
        )
    )
    if wanted:
        conn.execute(
            customer_contacts.insert(),
            [
                {
                    "org_id": org,
                    "customer_id": customer,
                    "contact_id": cid,
                    "is_primary": primary,
                    "sms_enabled": chosen.get(cid),
                }
                for cid, primary in wanted.items()
            ],
        )
    return True


def _sync_emails(conn: Connection, org: str, contact: Contact) -> bool:
    wanted = {
        e.address.lower(): {"notify": e.notify, "categories": e.categories.model_dump()}
        for e in contact.emails
    }
    rows = conn.execute(
        select(
            contact_emails.c.address,
            contact_emails.c.notify,
            contact_emails.c.categories,
            contact_emails.c.suppressed_reason,
            contact_emails.c.suppressed_at,
        ).where(contact_emails.c.org_id == org, contact_emails.c.contact_id == contact.contact_id)
    ).all()
    have = {r.address: {"notify": r.notify, "categories": r.categories} for r in rows}
    # A hard bounce's suppression outlives an import: only an operator lifts it.
    suppressed = {
        r.address: {"suppressed_reason": r.suppressed_reason, "suppressed_at": r.suppressed_at}
        for r in rows
        if r.suppressed_reason is not None
    }
    if have == wanted:
        return False
    conn.execute(
        delete(contact_emails).where(
            contact_emails.c.org_id == org, contact_emails.c.contact_id == contact.contact_id
        )
    )
    for address, values in wanted.items():
        conn.execute(
            insert_ignore(conn, contact_emails).values(
                org_id=org,
                contact_id=contact.contact_id,
                address=address,
                **values,
                **suppressed.get(address, {}),
            )
        )
    return True


def load_customer(conn: Connection, org_id: str, customer_id: str) -> CustomerView | None:
    """The customer with its contacts, or ``None`` when it was never imported."""
    return load_customers(conn, [(org_id, customer_id)]).get((org_id, customer_id))


@functools.lru_cache(maxsize=64)
def _customers_of(terms: int) -> Any:
    return select(
        customers.c.org_id, customers.c.customer_id, customers.c.name, customers.c.sms_enabled
    ).where(pairs_where(customers.c.org_id, customers.c.customer_id, terms))


@functools.lru_cache(maxsize=64)
def _contacts_of(terms: int) -> Any:
    return (
        select(
            contacts.c.org_id,
            contacts.c.contact_id,
            contacts.c.name,
            contacts.c.mobile_raw,
            contacts.c.mobile_e164,
            contacts.c.sms_enabled,
            contacts.c.locale,
            contacts.c.status,
            contacts.c.sms_opted_out,
            customer_contacts.c.customer_id,
            customer_contacts.c.is_primary,
            customer_contacts.c.sms_enabled.label("account_sms"),
        )
        .join(
            customer_contacts,
            and_(
                customer_contacts.c.org_id == contacts.c.org_id,
                customer_contacts.c.contact_id == contacts.c.contact_id,
            ),
        )
        .where(pairs_where(customer_contacts.c.org_id, customer_contacts.c.customer_id, terms))
        .order_by(customer_contacts.c.is_primary.desc(), contacts.c.contact_id)
    )


@functools.lru_cache(maxsize=64)
def _emails_of(terms: int) -> Any:
    return (
        select(contact_emails)
        .where(pairs_where(contact_emails.c.org_id, contact_emails.c.contact_id, terms))
        .order_by(contact_emails.c.address)
    )


def load_customers(conn: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], CustomerView]:
    """``load_customer`` for each ``(org_id, customer_id)``, by key; one never imported is left
    out. Three ``SELECT``s (per 500 customers): the customers, their contacts, the contacts' emails;
    of the columns the views hold only (a timestamp costs a parse per row on SQLite).
    """
    found: dict[tuple[str, str], Any] = {}
    for terms, params in pair_params(keys):
        found.update(((r.org_id, r.customer_id), r) for r in conn.execute(_customers_of(terms), params))
    contact_rows: dict[tuple[str, str], list[Any]] = {}
    for terms, params in pair_params(found):
        for r in conn.execute(_contacts_of(terms), params):
            contact_rows.setdefault((r.org_id, r.customer_id), []).append(r)
    contact_keys = unique((r.org_id, r.contact_id) for rows in contact_rows.values() for r in rows)
    emails: dict[tuple[str, str], list[EmailView]] = {}
    for terms, params in pair_params(contact_keys):
        for e in conn.execute(_emails_of(terms), params):
            categories = tuple(sorted((str(k), bool(v)) for k, v in (e.categories or {}).items()))
            emails.setdefault((e.org_id, e.contact_id), []).append(
                EmailView(e.address, e.notify, categories, suppressed=e.suppressed_reason is not None)
            )
    return {
        key: CustomerView(
            org_id=key[0],
            customer_id=key[1],
            name=row.name,
            sms_enabled=row.sms_enabled,
            contacts=tuple(
                ContactView(
                    contact_id=r.contact_id,
                    is_primary=r.is_primary,
                    name=r.name,
                    mobile_raw=r.mobile_raw,
                    mobile_e164=r.mobile_e164,
                    sms_enabled=r.sms_enabled,
                    locale=r.locale,
                    status=r.status,
                    sms_opted_out=r.sms_opted_out,
                    account_sms=r.account_sms,
                    emails=tuple(emails.get((r.org_id, r.contact_id), ())),
                )
                for r in contact_rows.get(key, ())
            ),
        )
        for key, row in found.items()
    }


#: The tables route's directory read joins.
DIRECTORY_TABLES = (customers, contacts, customer_contacts, contact_emails)


def refresh_statistics(conn: Connection) -> bool:
    """``ANALYZE`` the directory's tables on PostgreSQL (a no-op elsewhere); returns whether it ran.

    A bulk import is followed by traffic at once, and autovacuum analyzes a new table only after a
    while: without statistics PostgreSQL plans route's contact read as a nested loop over every
    contact of the organisation (5 s a query at 1,500 contacts, 0.1 ms once analyzed).
    """
    if conn.dialect.name != "postgresql":
        return False
    conn.exec_driver_sql("ANALYZE " + ", ".join(table.name for table in DIRECTORY_TABLES))
    return True
