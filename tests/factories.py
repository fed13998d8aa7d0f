"""Builders for events and directory records used across the test layers."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from typing import Any

from schemas.rows import InvoiceRow, NotificationRow

INVOICE: dict[str, Any] = {
    "id": "INV-1",
    "number": "1001",
    "customer_id": "C1",
    "currency": "EUR",
    "total": "1234.50",
    "balance": "1234.50",
    "due_date": "2026-12-01",
    "url": "https://billing.example/i/INV-1",
    "send": True,
    "recurring": False,
    "collection": None,
}


def invoice_row(org_id: str = "acme", **invoice: Any) -> InvoiceRow:
    """The ``invoices`` row route keeps for INV-1 (open); keyword arguments override invoice fields."""
    data = {**copy.deepcopy(INVOICE), **invoice}
    return InvoiceRow(
        org_id=org_id,
        invoice_id=data["id"],
        customer_id=data["customer_id"],
        currency=data["currency"],
        total=data["total"],
        balance=data["balance"],
        due_date=date.fromisoformat(data["due_date"]),
        invoice=data,
        paid_at=None,
        updated_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
    )


def notification_row(**columns: Any) -> NotificationRow:
    """A ``notifications`` row: a pending SMS of INV-1 to P1; keyword arguments override columns."""
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    defaults: dict[str, Any] = {
        "id": "ntf_1",
        "org_id": "acme",
        "event_id": "evt_1",
        "invoice_id": "INV-1",
        "customer_id": "C1",
        "contact_id": "P1",
        "kind": "invoice",
        "channel": "sms",
        "recipient": "+358401234567",
        "locale": "fi",
        "reason": "send",
        "status": "pending",
        "sender": None,
        "body": None,
        "subject": None,
        "html": None,
        "provider_id": None,
        "error_code": None,
        "segments": None,
        "attempts": 0,
        "attempted_at": None,
        "created_at": at,
        "updated_at": at,
        "swept_at": None,
    }
    return NotificationRow(**{**defaults, **columns})


def invoice_created(event_id: str = "evt_1", **invoice: Any) -> dict[str, Any]:
    """An ``invoice.created`` envelope; keyword arguments override invoice fields."""
    return {
        "type": "invoice.created",
        "event_id": event_id,
        "org_id": "acme",
        "occurred_at": "2026-11-23T10:00:00Z",
        "data": {"invoice": {**copy.deepcopy(INVOICE), **invoice}},
    }


def reminder_due(event_id: str = "evt_r1", offset_days: int = 3) -> dict[str, Any]:
    """A ``reminder.due`` envelope for INV-1."""
    return {
        "type": "reminder.due",
        "event_id": event_id,
        "org_id": "acme",
        "occurred_at": "2026-11-23T10:00:00Z",
        "data": {"invoice": copy.deepcopy(INVOICE), "reminder": {"offset_days": offset_days}},
    }


def payment_received(
    event_id: str = "evt_p1", method: str = "online", notify: bool = False
) -> dict[str, Any]:
    """A ``payment.received`` envelope for INV-1."""
    return {
        "type": "payment.received",
        "event_id": event_id,
        "org_id": "acme",
        "occurred_at": "2026-11-23T10:00:00Z",
        "data": {
            "payment": {
                "id": "PAY-1",
                "invoice_id": "INV-1",
                "customer_id": "C1",
                "amount": "1234.50",
                "currency": "EUR",
                "method": method,
                "notify": notify,
            }
        },
    }


def customer(
    customer_id: str = "C1", *, sms_enabled: bool = True, contacts: list[dict[str, Any]] | None = None
):  # type: ignore[no-untyped-def]
    """A directory line; by default one primary contact with a Finnish mobile."""
    return {
        "org_id": "acme",
        "customer_id": customer_id,
        "name": "Acme Oy",
        "sms_enabled": sms_enabled,
        "contacts": contacts
        if contacts is not None
        else [
            {"contact_id": "P1", "primary": True, "name": "Aino", "mobile": "+358 40 1234567", "locale": "fi"}
        ],
    }


def email_customer(address: str = "aino@example.fi", **contact: Any) -> dict[str, Any]:
    """Customer C1 with SMS off and one contact, P1 (Aino), at the email ``address``: the one
    notification that sends is the email. Keyword arguments add to (or override) the contact."""
    person = {"contact_id": "P1", "primary": True, "name": "Aino", "emails": [{"address": address}]}
    return customer(sms_enabled=False, contacts=[{**person, **contact}])


def payment_failed(event_id: str = "evt_pf1") -> dict[str, Any]:
    """A ``payment.failed`` envelope for INV-1: its Direct Debit failed, with no retry."""
    return {
        "type": "payment.failed",
        "event_id": event_id,
        "org_id": "acme",
        "occurred_at": "2026-12-04T10:00:00Z",
        "data": {
            "payment": {
                "id": "PM0001",
                "invoice_id": "INV-1",
                "customer_id": "C1",
                "amount": "1234.50",
                "currency": "EUR",
                "reason": "The customer's bank account had insufficient funds.",
            }
        },
    }
