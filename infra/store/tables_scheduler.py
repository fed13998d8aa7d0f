"""Reminder scheduler tables: the open invoices route keeps, each organisation's reminder offsets,
and the (invoice, offset) reminders already claimed, published or superseded."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Date, DateTime, Index, Integer, String, Table

from infra.store.tables import metadata

#: Invoices as route last saw them (``invoice.created``), and when recorded payments covered them.
invoices = Table(
    "invoices",
    metadata,
    Column("org_id", String(200), primary_key=True),
    Column("invoice_id", String(200), primary_key=True),
    Column("customer_id", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    # Decimal strings, as on the wire (SQLite has no exact decimal type).
    Column("total", String(40), nullable=False),
    Column("balance", String(40), nullable=False),
    Column("due_date", Date, nullable=False),
    # The invoice as the event carried it: a reminder.due repeats it word for word.
    Column("invoice", JSON, nullable=False),
    Column("paid_at", DateTime(timezone=True)),  # NULL: still open
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_invoices_open", "org_id", "paid_at", "due_date"),
)

#: When an organisation reminds: days from the due date (negative: before it), each with an
#: optional template key (NULL: the standard ``payment_reminder`` templates).
reminder_offsets = Table(
    "reminder_offsets",
    metadata,
    Column("org_id", String(200), primary_key=True),
    Column("offset_days", Integer, primary_key=True),
    Column("template", String(40)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: One row per (invoice, offset) ever decided: ``claimed`` (a scheduler won it and is publishing),
#: ``published`` (RabbitMQ confirmed it) or ``superseded`` (missed, and a later one went instead).
reminders_sent = Table(
    "reminders_sent",
    metadata,
    Column("org_id", String(200), primary_key=True),
    Column("invoice_id", String(200), primary_key=True),
    Column("offset_days", Integer, primary_key=True),
    Column("event_id", String(200)),  # NULL when superseded
    Column("status", String(20), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),  # when claimed / last changed
    Index("ix_reminders_sent_status", "status", "at"),
)
