"""gocardless: integrations, linked customers, mandates, payments, billing requests, webhook events,
sync history

Revision ID: 0005_gocardless
Revises: 0004
Create Date: 2026-11-25 04:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_gocardless"
down_revision = "0004"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "integrations",
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("account", sa.String(length=200), nullable=True),
        _ts("connected_at"),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("provider"),
    )
    op.create_table(
        "gc_customers",
        sa.Column("gc_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=200), nullable=True),
        sa.Column("customer_id", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        _ts("created_at"),
        _ts("synced_at", nullable=False),
        sa.PrimaryKeyConstraint("gc_id"),
    )
    with op.batch_alter_table("gc_customers", schema=None) as batch_op:
        batch_op.create_index("ix_gc_customers_link", ["org_id", "customer_id"], unique=False)
    op.create_table(
        "gc_mandates",
        sa.Column("gc_id", sa.String(length=40), nullable=False),
        sa.Column("gc_customer_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("scheme", sa.String(length=40), nullable=True),
        sa.Column("reference", sa.String(length=100), nullable=True),
        _ts("created_at"),
        _ts("synced_at", nullable=False),
        sa.PrimaryKeyConstraint("gc_id"),
    )
    with op.batch_alter_table("gc_mandates", schema=None) as batch_op:
        batch_op.create_index("ix_gc_mandates_customer", ["gc_customer_id"], unique=False)
    op.create_table(
        "gc_payments",
        sa.Column("gc_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=200), nullable=True),
        sa.Column("invoice_id", sa.String(length=200), nullable=True),
        sa.Column("customer_id", sa.String(length=200), nullable=True),
        sa.Column("gc_mandate_id", sa.String(length=40), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("charge_date", sa.String(length=10), nullable=True),
        _ts("created_at"),
        _ts("synced_at", nullable=False),
        sa.PrimaryKeyConstraint("gc_id"),
    )
    with op.batch_alter_table("gc_payments", schema=None) as batch_op:
        batch_op.create_index("ix_gc_payments_invoice", ["org_id", "invoice_id"], unique=False)
    op.create_table(
        "gc_billing_requests",
        sa.Column("gc_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=200), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("invoice_id", sa.String(length=200), nullable=True),
        sa.Column("flow_id", sa.String(length=40), nullable=True),
        sa.Column("authorisation_url", sa.String(length=2000), nullable=True),
        sa.Column("status", sa.String(length=40), nullable=False),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("gc_id"),
    )
    with op.batch_alter_table("gc_billing_requests", schema=None) as batch_op:
        batch_op.create_index("ix_gc_billing_requests_customer", ["org_id", "customer_id"], unique=False)
    op.create_table(
        "gc_webhook_events",
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("resource_type", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("resource_id", sa.String(length=40), nullable=True),
        _ts("received_at", nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_table(
        "sync_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _ts("at", nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("data_type", sa.String(length=40), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("detail", sa.String(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sync_history", schema=None) as batch_op:
        batch_op.create_index("ix_sync_history_at", ["at"], unique=False)


def downgrade() -> None:
    for table, index in (
        ("sync_history", "ix_sync_history_at"),
        ("gc_billing_requests", "ix_gc_billing_requests_customer"),
        ("gc_payments", "ix_gc_payments_invoice"),
        ("gc_mandates", "ix_gc_mandates_customer"),
        ("gc_customers", "ix_gc_customers_link"),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(index)
    for table in (
        "sync_history",
        "gc_webhook_events",
        "gc_billing_requests",
        "gc_payments",
        "gc_mandates",
        "gc_customers",
        "integrations",
    ):
        op.drop_table(table)
