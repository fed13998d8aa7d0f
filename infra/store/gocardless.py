"""GoCardless records as last seen and their links to our directory (sync history is in
``infra.store.sync_history``).

Pure SQLAlchemy Core over ``tables``: every function takes a connection inside the
caller's transaction. Records come in GoCardless's JSON shape (``resource.attributes`` of the
official client, or a webhook's fetched resource).

Upserts answer ``"added"``, ``"updated"`` or ``"unchanged"`` (a sync counts them); an unchanged
record is not written at all, so ``synced_at`` is when herald last saw it *change*.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Connection

from infra.store import status_outbox
from infra.store.tables import (
    contact_emails,
    customer_contacts,
    gc_billing_requests,
    gc_customers,
    gc_mandates,
    gc_payments,
    gc_webhook_events,
)

logger = logging.getLogger("herald.store.gocardless")

Outcome = Literal["added", "updated", "unchanged"]
#: Metadata keys herald writes on the GoCardless resources it creates, and reads back to link them.
ORG_KEY, CUSTOMER_KEY, INVOICE_KEY = "herald_org_id", "herald_customer_id", "herald_invoice_id"


def _when(value: Any) -> datetime | None:
    """GoCardless's ``2026-11-25T10:00:00.000Z`` as an aware datetime (``None`` stays ``None``)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _same(have: Any, want: Mapping[str, Any]) -> bool:
    def norm(v: Any) -> Any:  # SQLite hands datetimes back naive (UTC)
        return v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v

    return all(norm(have[k]) == norm(v) for k, v in want.items())


def _upsert(conn: Connection, table: Any, gc_id: str, values: dict[str, Any], now: datetime) -> Outcome:
    have = conn.execute(select(table).where(table.c.gc_id == gc_id)).mappings().first()
    if have is None:
        conn.execute(insert(table).values(gc_id=gc_id, synced_at=now, **values))
        return "added"
    if _same(have, values):
        return "unchanged"
    conn.execute(update(table).where(table.c.gc_id == gc_id).values(synced_at=now, **values))
    return "updated"


# -- customers and their links ------------------------------------------------------------------
def find_link(conn: Connection, customer: Mapping[str, Any]) -> tuple[str, str] | None:
    """Which of our customers a GoCardless customer is, as ``(org_id, customer_id)``.

    1. Its ``metadata`` names ``herald_org_id`` and ``herald_customer_id`` (herald writes them on
       every customer it creates): that link, as given.
    2. Otherwise its email, when exactly one customer of our directory has a contact with that
       address (case-insensitive). Two customers sharing the address, or none: no link, because a
       guessed link would collect from, or thank, the wrong customer.
    """
    return metadata_link(customer) or _email_link(conn, customer)


def metadata_link(customer: Mapping[str, Any]) -> tuple[str, str] | None:
    """The link the customer's ``metadata`` names (``herald_org_id``, ``herald_customer_id``)."""
    metadata = customer.get("metadata") or {}
    if metadata.get(ORG_KEY) and metadata.get(CUSTOMER_KEY):
        return str(metadata[ORG_KEY]), str(metadata[CUSTOMER_KEY])
    return None


def _email_link(conn: Connection, customer: Mapping[str, Any]) -> tuple[str, str] | None:
    email = customer.get("email")
    if not email:
        return None
    rows = conn.execute(
        select(customer_contacts.c.org_id, customer_contacts.c.customer_id)
        .join(
            contact_emails,
            and_(
                contact_emails.c.org_id == customer_contacts.c.org_id,
                contact_emails.c.contact_id == customer_contacts.c.contact_id,
            ),
        )
        .where(contact_emails.c.address == str(email).lower())
        .distinct()
        .limit(2)
    ).all()
    return (rows[0].org_id, rows[0].customer_id) if len(rows) == 1 else None


def upsert_customer(
    conn: Connection,
    customer: Mapping[str, Any],
    now: datetime,
    *,
    link: tuple[str, str] | None = None,
) -> Outcome:
    """Store a GoCardless customer and its link: its metadata's, else ``link`` (what herald knows,
    e.g. the customer a mandate-setup request was made for), else a unique email match
    (``find_link``). A link found before is kept when none is found now (an edit at GoCardless
    does not undo it)."""
    found: tuple[str | None, str | None] | None = (
        metadata_link(customer) or link or _email_link(conn, customer)
    )
    link_ = found
    if link_ is None:
        have = conn.execute(
            select(gc_customers.c.org_id, gc_customers.c.customer_id).where(
                gc_customers.c.gc_id == customer["id"]
            )
        ).first()
        link_ = (have.org_id, have.customer_id) if have is not None else (None, None)
    name = customer.get("company_name") or " ".join(
        p for p in (customer.get("given_name"), customer.get("family_name")) if p
    )
    values = {
        "org_id": link_[0],
        "customer_id": link_[1],
        "email": customer.get("email"),
        "name": name or None,
        "created_at": _when(customer.get("created_at")),
    }
    return _upsert(conn, gc_customers, str(customer["id"]), values, now)


def linked_customer(conn: Connection, gc_customer_id: str) -> tuple[str, str] | None:
    """Our ``(org_id, customer_id)`` for a GoCardless customer id, when linked."""
    row = conn.execute(
        select(gc_customers.c.org_id, gc_customers.c.customer_id).where(
            gc_customers.c.gc_id == gc_customer_id
        )
    ).first()
    if row is None or row.org_id is None or row.customer_id is None:
        return None
    return row.org_id, row.customer_id


def gc_customer_for(conn: Connection, org_id: str, customer_id: str) -> str | None:
    """The GoCardless customer id linked to one of our customers (the oldest when several are)."""
    return conn.execute(
        select(gc_customers.c.gc_id)
        .where(gc_customers.c.org_id == org_id, gc_customers.c.customer_id == customer_id)
        .order_by(gc_customers.c.created_at, gc_customers.c.gc_id)
        .limit(1)
    ).scalar()


def unlink_all(conn: Connection) -> int:
    """Clear every customer link (deleting the integration); the rows stay as GoCardless's
    records. The number of links cleared."""
    result = conn.execute(
        update(gc_customers).where(gc_customers.c.org_id.is_not(None)).values(org_id=None, customer_id=None)
    )
    return int(result.rowcount or 0)


def known(conn: Connection, kind: str, gc_id: str) -> bool:
    """Whether a customer, mandate or payment is stored already."""
    table = {"customers": gc_customers, "mandates": gc_mandates, "payments": gc_payments}[kind]
    return conn.execute(select(table.c.gc_id).where(table.c.gc_id == gc_id)).first() is not None


def billing_request_link(conn: Connection, gc_id: str) -> tuple[str, str] | None:
    """Our customer a mandate-setup request (Billing Request) was made for, when herald made it."""
    row = conn.execute(
        select(gc_billing_requests.c.org_id, gc_billing_requests.c.customer_id).where(
            gc_billing_requests.c.gc_id == gc_id
        )
    ).first()
    return (row.org_id, row.customer_id) if row is not None else None


def set_billing_request_status(conn: Connection, gc_id: str, status: str) -> bool:
    """Record a Billing Request's status as GoCardless says it is; whether herald knew it."""
    result = conn.execute(
        update(gc_billing_requests).where(gc_billing_requests.c.gc_id == gc_id).values(status=status)
    )
    return bool(result.rowcount)


# -- mandates -----------------------------------------------------------------------------------
def upsert_mandate(conn: Connection, mandate: Mapping[str, Any], now: datetime) -> Outcome:
    """Store a GoCardless mandate as seen (status and all)."""
    links = mandate.get("links") or {}
    values = {
        "gc_customer_id": links.get("customer"),
        "status": mandate["status"],
        "scheme": mandate.get("scheme"),
        "reference": mandate.get("reference"),
        "created_at": _when(mandate.get("created_at")),
    }
    gc_id = str(mandate["id"])
    previous = conn.execute(select(gc_mandates.c.status).where(gc_mandates.c.gc_id == gc_id)).scalar()
    outcome = _upsert(conn, gc_mandates, gc_id, values, now)
    if outcome != "unchanged":  # mandate.status_changed, in this transaction
        status_outbox.mandate(conn, _mandate_owner(conn, gc_id), gc_id, values["status"], previous)
    return outcome


def active_mandate_for(conn: Connection, org_id: str, customer_id: str) -> str | None:
    """The id of one of our customer's ``active`` mandates (the newest), or ``None``.

    Only mandates of GoCardless customers linked to ``(org_id, customer_id)`` count; a
    ``pending_submission`` or ``submitted`` mandate is not active yet.
    """
    linked = select(gc_customers.c.gc_id).where(
        gc_customers.c.org_id == org_id, gc_customers.c.customer_id == customer_id
    )
    return conn.execute(
        select(gc_mandates.c.gc_id)
        .where(gc_mandates.c.gc_customer_id.in_(linked), gc_mandates.c.status == "active")
        .order_by(gc_mandates.c.created_at.desc(), gc_mandates.c.gc_id.desc())
        .limit(1)
    ).scalar()


# -- payments -----------------------------------------------------------------------------------
def upsert_payment(
    conn: Connection,
    payment: Mapping[str, Any],
    now: datetime,
    *,
    org_id: str | None = None,
    invoice_id: str | None = None,
    customer_id: str | None = None,
) -> Outcome:
    """Store a GoCardless payment as seen, with the invoice it collects.

    The invoice comes from the arguments (the collect stage knows it), else from what was stored
    before, else from the payment's ``metadata`` (``herald_org_id`` / ``herald_invoice_id``); the
    customer likewise, else from the mandate's linked customer.

    Metadata is only believed when it agrees with what herald knows already: the organisation
    stored for the payment, and the (organisation, customer) the payment's mandate is linked to.
    Metadata naming another organisation (or another customer) is ignored, so a payment taken on
    one organisation's mandate can never mark another organisation's invoice paid, and a later
    edit of the metadata at GoCardless cannot move a stored payment to another organisation.
    """
    gc_id = str(payment["id"])
    metadata = payment.get("metadata") or {}
    metadata = metadata if isinstance(metadata, Mapping) else {}
    links = payment.get("links") or {}
    mandate_id = links.get("mandate")
    row = conn.execute(select(gc_payments).where(gc_payments.c.gc_id == gc_id)).mappings().first()
    have: dict[str, Any] = dict(row) if row is not None else {}
    owner = _mandate_owner(conn, mandate_id) if mandate_id else None
    if org_id is None:  # not told by the caller: what was stored, then the metadata if it agrees
        said = _metadata_link(metadata, have.get("org_id") or (owner[0] if owner else None), owner)
        org_id = have.get("org_id") or said[0]
        invoice_id = invoice_id or have.get("invoice_id") or said[1]
        customer_id = customer_id or have.get("customer_id") or said[2]
    if customer_id is None and owner is not None and (org_id is None or owner[0] == org_id):
        org_id, customer_id = owner
    values = {
        "org_id": org_id,
        "invoice_id": invoice_id,
        "customer_id": customer_id,
        "gc_mandate_id": mandate_id,
        "amount_minor": int(payment["amount"]),
        "currency": str(payment["currency"]),
        "status": str(payment["status"]),
        "charge_date": payment.get("charge_date"),
        "created_at": _when(payment.get("created_at")),
    }
    outcome = _upsert(conn, gc_payments, gc_id, values, now)
    if outcome != "unchanged":  # payment.created / payment.status_changed, in this transaction
        status_outbox.payment(conn, values, gc_id, have.get("status"))
    return outcome


def _mandate_owner(conn: Connection, mandate_id: str) -> tuple[str, str] | None:
    """The (organisation, customer) a stored mandate's GoCardless customer is linked to."""
    owner = conn.execute(
        select(gc_customers.c.org_id, gc_customers.c.customer_id)
        .join(gc_mandates, gc_mandates.c.gc_customer_id == gc_customers.c.gc_id)
        .where(gc_mandates.c.gc_id == mandate_id)
    ).first()
    if owner is None or owner.org_id is None or owner.customer_id is None:
        return None
    return str(owner.org_id), str(owner.customer_id)


def _metadata_link(
    metadata: Mapping[str, Any], known_org: str | None, owner: tuple[str, str] | None
) -> tuple[str | None, str | None, str | None]:
    """(org, invoice, customer) as a payment's metadata names them, or all ``None`` when the
    metadata contradicts the organisation herald knows for it or the mandate's owner (pure)."""
    org, invoice, customer = (metadata.get(k) for k in (ORG_KEY, INVOICE_KEY, CUSTOMER_KEY))
    org, invoice, customer = (str(v) if v else None for v in (org, invoice, customer))
    if org is not None and known_org is not None and org != known_org:
        logger.warning("payment metadata names organisation %r, not %r: ignored", org[:40], known_org)
        return None, None, None
    if customer is not None and owner is not None and (org or owner[0], customer) != owner:
        logger.warning("payment metadata names a customer other than its mandate's: ignored")
        return None, None, None
    return org, invoice, customer


def load_payment(conn: Connection, gc_id: str) -> dict[str, Any] | None:
    """A stored payment row, or ``None``."""
    row = conn.execute(select(gc_payments).where(gc_payments.c.gc_id == gc_id)).mappings().first()
    return dict(row) if row is not None else None


def payments_for_invoice(conn: Connection, org_id: str | None, invoice_id: str) -> list[dict[str, Any]]:
    """Every stored payment of an invoice, oldest first."""
    query = select(gc_payments).where(gc_payments.c.invoice_id == invoice_id)
    if org_id is not None:
        query = query.where(gc_payments.c.org_id == org_id)
    return [
        dict(r)
        for r in conn.execute(query.order_by(gc_payments.c.created_at, gc_payments.c.gc_id)).mappings()
    ]


def payment_timeline(conn: Connection, invoice_id: str, org_id: str | None = None) -> list[dict[str, Any]]:
    """An invoice's GoCardless payments as timeline entries (``what: payment_status``): one per
    webhook event handled for each payment (its action, when received), or, for a payment no
    webhook has spoken of yet, its status as last seen unless still ``pending_submission`` (the
    collect stage's ``payment_created`` entry says that already)."""
    entries: list[dict[str, Any]] = []
    for payment in payments_for_invoice(conn, org_id, invoice_id):
        seen = conn.execute(
            select(gc_webhook_events.c.action, gc_webhook_events.c.received_at, gc_webhook_events.c.event_id)
            .where(
                gc_webhook_events.c.resource_type == "payments",
                gc_webhook_events.c.resource_id == payment["gc_id"],
            )
            .order_by(gc_webhook_events.c.received_at, gc_webhook_events.c.event_id)
        ).all()
        steps = [(r.received_at, r.action, r.event_id) for r in seen]
        if not steps and payment["status"] != "pending_submission":  # moved on before any webhook
            steps = [(payment["synced_at"], payment["status"], None)]
        for at, status, event_id in steps:
            entries.append(
                {
                    "at": at,
                    "what": "payment_status",
                    "payment_id": payment["gc_id"],
                    "status": status,
                    "amount_minor": payment["amount_minor"],
                    "currency": payment["currency"],
                    "gc_event_id": event_id,
                }
            )
    return entries


def count_rows(conn: Connection, table: Any) -> int:
    """How many rows a GoCardless table holds (for tests and status output)."""
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
