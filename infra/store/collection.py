"""What the collect stage records: billing requests for mandate setup, the synthetic
``mandate.setup_requested`` event that carries the link through route/render/email, and
collection outcomes (skipped, failed) in an invoice's history.

Payments, mandates and integrations are read and written through ``infra.store.gocardless`` and
``infra.store.integrations``; this module holds only what those do not.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from infra.store.db import insert_ignore
from infra.store.gocardless import linked_customer, payments_for_invoice
from infra.store.tables import events, gc_billing_requests, gc_mandates, org_warnings
from schemas.rows import BillingRequestRow

#: ``org_warnings`` kinds of a collection that did not happen (shown in the invoice's history).
COLLECTION_SKIPPED, COLLECTION_FAILED = "collection_skipped", "collection_failed"


def mandate_owner(conn: Connection, mandate_id: str) -> tuple[str, str] | None:
    """Our ``(org_id, customer_id)`` a stored mandate belongs to, when its customer is linked."""
    gc_customer = conn.execute(
        select(gc_mandates.c.gc_customer_id).where(gc_mandates.c.gc_id == mandate_id)
    ).scalar()
    return linked_customer(conn, gc_customer) if gc_customer else None


def outstanding_billing_request(
    conn: Connection, org_id: str, customer_id: str, invoice_id: str
) -> str | None:
    """The id of a still-pending mandate-setup request for this invoice, if one was made."""
    return conn.execute(
        select(gc_billing_requests.c.gc_id)
        .where(
            gc_billing_requests.c.org_id == org_id,
            gc_billing_requests.c.customer_id == customer_id,
            gc_billing_requests.c.invoice_id == invoice_id,
            gc_billing_requests.c.status == "pending",
        )
        .order_by(gc_billing_requests.c.created_at)
        .limit(1)
    ).scalar()


def record_billing_request(
    conn: Connection,
    *,
    org_id: str,
    customer_id: str,
    invoice_id: str,
    billing_request_id: str,
    flow_id: str,
    authorisation_url: str,
) -> bool:
    """Store a mandate-setup request once; False when it was already stored."""
    result = conn.execute(
        insert_ignore(conn, gc_billing_requests).values(
            gc_id=billing_request_id,
            org_id=org_id,
            customer_id=customer_id,
            invoice_id=invoice_id,
            flow_id=flow_id,
            authorisation_url=authorisation_url,
            status="pending",
            created_at=datetime.now(UTC),
        )
    )
    return bool(result.rowcount)


def load_billing_request(conn: Connection, billing_request_id: str) -> BillingRequestRow | None:
    """One stored billing request, or ``None``."""
    row = (
        conn.execute(select(gc_billing_requests).where(gc_billing_requests.c.gc_id == billing_request_id))
        .mappings()
        .first()
    )
    return BillingRequestRow(**row) if row is not None else None


def billing_requests_for_invoice(
    conn: Connection, org_id: str | None, invoice_id: str
) -> list[BillingRequestRow]:
    """Every mandate-setup request made for an invoice, oldest first."""
    query = select(gc_billing_requests).where(gc_billing_requests.c.invoice_id == invoice_id)
    if org_id is not None:
        query = query.where(gc_billing_requests.c.org_id == org_id)
    rows = conn.execute(query.order_by(gc_billing_requests.c.created_at)).mappings()
    return [BillingRequestRow(**r) for r in rows]


def record_synthetic_event(conn: Connection, payload: dict[str, Any], outcome: str) -> bool:
    """Store an event herald made itself (``mandate.setup_requested``) once, like an upstream one.

    ``payload`` carries ``type``, ``event_id``, ``org_id``, ``occurred_at`` and ``data.invoice``
    (``id``, ``customer_id``). False when it was already stored.
    """
    invoice = payload["data"]["invoice"]
    result = conn.execute(
        insert_ignore(conn, events).values(
            org_id=payload["org_id"],
            event_id=payload["event_id"],
            type=payload["type"],
            invoice_id=invoice["id"],
            customer_id=invoice["customer_id"],
            occurred_at=datetime.fromisoformat(payload["occurred_at"]),
            received_at=datetime.now(UTC),
            outcome=outcome,
            payload=payload,
        )
    )
    return bool(result.rowcount)


def record_collection_outcome(conn: Connection, org_id: str, invoice_id: str, kind: str, detail: str) -> bool:
    """Record once why an invoice was not collected (the same outcome again adds nothing)."""
    detail = detail[:500]
    seen = conn.execute(
        select(org_warnings.c.id).where(
            org_warnings.c.org_id == org_id,
            org_warnings.c.invoice_id == invoice_id,
            org_warnings.c.kind == kind,
            org_warnings.c.detail == detail,
        )
    ).first()
    if seen is not None:
        return False
    conn.execute(
        org_warnings.insert().values(
            org_id=org_id, kind=kind, detail=detail, invoice_id=invoice_id, at=datetime.now(UTC)
        )
    )
    return True


def collection_timeline(conn: Connection, invoice_id: str, org_id: str | None = None) -> list[dict[str, Any]]:
    """An invoice's collection steps as timeline entries: ``payment_created`` (the GoCardless
    payment id and amount) and ``mandate_setup_requested`` (the billing request and its link).
    ``at`` is a datetime (the caller formats it)."""
    entries: list[dict[str, Any]] = [
        {
            "at": p["created_at"] or p["synced_at"],
            "what": "payment_created",
            "payment_id": p["gc_id"],
            "mandate_id": p["gc_mandate_id"],
            "amount_minor": p["amount_minor"],
            "currency": p["currency"],
        }
        for p in payments_for_invoice(conn, org_id, invoice_id)
    ]
    entries += [
        {
            "at": r.created_at,
            "what": "mandate_setup_requested",
            "billing_request_id": r.gc_id,
            "customer_id": r.customer_id,
            "status": r.status,
            "authorisation_url": r.authorisation_url,
        }
        for r in billing_requests_for_invoice(conn, org_id, invoice_id)
    ]
    return entries
