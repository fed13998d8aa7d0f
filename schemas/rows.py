"""Rows as the store hands them to the pure rules: typed, frozen, a field per column in table order.

The store (``infra.store``) builds them from its tables; the rules (``workers.rules``) decide from
them. A datetime comes back aware (UTC) whatever the database: SQLite hands back naive UTC, and
this is the one place that says so, so no rule has to.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import Any


@dataclass(frozen=True)
class _Row:
    """Makes every naive datetime field of the row aware (UTC)."""

    def __post_init__(self) -> None:
        for name in _datetime_fields(type(self)):
            value = getattr(self, name)
            if isinstance(value, datetime) and value.tzinfo is None:
                object.__setattr__(self, name, value.replace(tzinfo=UTC))


#: By row class: its fields that may hold a datetime (``_datetime_fields``).
_DATETIME_FIELDS: dict[type, tuple[str, ...]] = {}


def _datetime_fields(cls: type) -> tuple[str, ...]:
    """The fields of a row class that may hold a datetime (by their annotations), found once: rows
    are made by the thousand on the hot path, and ``fields()`` is rebuilt on every call."""
    found = _DATETIME_FIELDS.get(cls)
    if found is None:
        found = _DATETIME_FIELDS[cls] = tuple(
            f.name for f in fields(cls) if any(t in str(f.type) for t in ("datetime", "Any", "object"))
        )
    return found


@dataclass(frozen=True)
class NotificationRow(_Row):
    """One ``notifications`` row: who is told what, on which channel, and how far it got.

    ``status`` is a ``schemas.notifications.Status`` value; ``provider_id`` is set once the
    provider accepted, ``error_code`` once it refused; ``attempted_at`` is the latest claim.
    """

    id: str
    org_id: str
    event_id: str
    invoice_id: str
    customer_id: str
    contact_id: str
    kind: str
    channel: str
    recipient: str  # E.164 number or email address; '' when the contact has none (skipped)
    locale: str
    reason: str
    status: str
    sender: str | None
    body: str | None  # SMS text, or an email's plain-text part (None: not rendered yet)
    subject: str | None
    html: str | None
    provider_id: str | None
    error_code: int | None
    segments: int | None  # SMS credit reserved (None: none reserved; 0 after a refund)
    attempts: int
    attempted_at: datetime | None
    created_at: datetime
    updated_at: datetime  # when it moved last (for a ``sent`` one: when it became ``sent``)
    swept_at: datetime | None  # when the status sweep last asked the provider (None: never)
    provider: str | None = None  # the SMS provider of its latest attempt (None: twilio)


@dataclass(frozen=True)
class BillingRequestRow(_Row):
    """One ``gc_billing_requests`` row: a mandate-setup request collect made at GoCardless."""

    gc_id: str
    org_id: str
    customer_id: str
    invoice_id: str | None
    flow_id: str | None
    authorisation_url: str | None
    status: str
    created_at: datetime


@dataclass(frozen=True)
class InvoiceRow(_Row):
    """One ``invoices`` row: an invoice route keeps for the reminder scheduler.

    ``invoice`` is the invoice JSON as its ``invoice.created`` event carried it, kept word for word
    (a reminder repeats it so); the other fields were read out of it when it was stored.
    """

    org_id: str
    invoice_id: str
    customer_id: str
    currency: str
    total: str  # a decimal string, as on the wire
    balance: str
    due_date: date
    invoice: dict[str, Any]
    paid_at: datetime | None  # None: still open
    updated_at: datetime


@dataclass(frozen=True)
class GreetingNames:
    """The names a template greets people with ('' when unknown), and the organisation's locale."""

    org: str = ""
    customer: str = ""
    contact: str = ""
    org_locale: str = "en"
