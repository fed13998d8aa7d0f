"""scheduler: open invoices, reminder offsets per organisation, reminders claimed/published/superseded

Revision ID: 0005_scheduler
Revises: 0004
Create Date: 2026-11-25 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_scheduler"
# A branch of its own beside 0005_gocardless: both apply with "upgrade heads", neither needs the other.
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoices",
        sa.Column("org_id", sa.String(length=200), nullable=False),
        sa.Column("invoice_id", sa.String(length=200), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total", sa.String(length=40), nullable=False),
        sa.Column("balance", sa.String(length=40), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("invoice", sa.JSON(), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "invoice_id"),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index("ix_invoices_open", ["org_id", "paid_at", "due_date"], unique=False)
    op.create_table(
        "reminder_offsets",
        sa.Column("org_id", sa.String(length=200), nullable=False),
        sa.Column("offset_days", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(length=40), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "offset_days"),
    )
    op.create_table(
        "reminders_sent",
        sa.Column("org_id", sa.String(length=200), nullable=False),
        sa.Column("invoice_id", sa.String(length=200), nullable=False),
        sa.Column("offset_days", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "invoice_id", "offset_days"),
    )
    with op.batch_alter_table("reminders_sent", schema=None) as batch_op:
        batch_op.create_index("ix_reminders_sent_status", ["status", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reminders_sent", schema=None) as batch_op:
        batch_op.drop_index("ix_reminders_sent_status")
    op.drop_table("reminders_sent")
    op.drop_table("reminder_offsets")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_open")
    op.drop_table("invoices")
