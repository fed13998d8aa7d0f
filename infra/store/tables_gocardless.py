"""GoCardless tables: integrations, the links between our customers and theirs, their mandates and
payments as last seen, billing requests for mandate setup, webhook events handled, sync history."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Table

from infra.store.tables import metadata

#: One row per provider: connected or disconnected (a deleted integration has no row).
integrations = Table(
    "integrations",
    metadata,
    Column("provider", String(20), primary_key=True),  # gocardless, twilio
    Column("status", String(20), nullable=False),  # connected, disconnected
    Column("account", String(200)),  # what the provider said we are (creditor, account SID)
    Column("connected_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: A GoCardless customer; (org_id, customer_id) is its link to our directory, when known.
gc_customers = Table(
    "gc_customers",
    metadata,
    Column("gc_id", String(40), primary_key=True),
    Column("org_id", String(200)),
    Column("customer_id", String(200)),
    Column("email", String(320)),
    Column("name", String(200)),
    Column("created_at", DateTime(timezone=True)),
    Column("synced_at", DateTime(timezone=True), nullable=False),
    Index("ix_gc_customers_link", "org_id", "customer_id"),
)

gc_mandates = Table(
    "gc_mandates",
    metadata,
    Column("gc_id", String(40), primary_key=True),
    Column("gc_customer_id", String(40)),
    Column("status", String(40), nullable=False),
    Column("scheme", String(40)),
    Column("reference", String(100)),
    Column("created_at", DateTime(timezone=True)),
    Column("synced_at", DateTime(timezone=True), nullable=False),
    Index("ix_gc_mandates_customer", "gc_customer_id"),
)

#: A payment at GoCardless; (org_id, invoice_id) says which invoice it collects.
gc_payments = Table(
    "gc_payments",
    metadata,
    Column("gc_id", String(40), primary_key=True),
    Column("org_id", String(200)),
    Column("invoice_id", String(200)),
    Column("customer_id", String(200)),
    Column("gc_mandate_id", String(40)),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(40), nullable=False),
    Column("charge_date", String(10)),
    Column("created_at", DateTime(timezone=True)),
    Column("synced_at", DateTime(timezone=True), nullable=False),
    Index("ix_gc_payments_invoice", "org_id", "invoice_id"),
)

#: A mandate-setup request (Billing Request + Flow) for a customer without a mandate.
gc_billing_requests = Table(
    "gc_billing_requests",
    metadata,
    Column("gc_id", String(40), primary_key=True),
    Column("org_id", String(200), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("invoice_id", String(200)),
    Column("flow_id", String(40)),
    Column("authorisation_url", String(2000)),
    Column("status", String(40), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_gc_billing_requests_customer", "org_id", "customer_id"),
)

#: Webhook events already handled, so each is handled once whatever GoCardless resends.
gc_webhook_events = Table(
    "gc_webhook_events",
    metadata,
    Column("event_id", String(40), primary_key=True),
    Column("resource_type", String(40), nullable=False),
    Column("action", String(60), nullable=False),
    Column("resource_id", String(40)),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

#: One row per sync of one data type (kept 7 days): full import or a webhook batch.
sync_history = Table(
    "sync_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("provider", String(20), nullable=False),
    Column("direction", String(10), nullable=False),  # inbound (theirs to ours), outbound
    Column("data_type", String(40), nullable=False),  # customers, mandates, payments
    Column("trigger", String(20), nullable=False),  # full, webhook
    Column("added", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("detail", String(2000)),
    Index("ix_sync_history_at", "at"),
)
