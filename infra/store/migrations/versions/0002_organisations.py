"""organisations and opt-outs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 00:04:24.196982
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("org_id", sa.String(length=200), nullable=False),
        sa.Column("default_region", sa.String(length=2), nullable=True),
        sa.Column("sms_connected", sa.Boolean(), nullable=False),
        sa.Column("sender_number", sa.String(length=20), nullable=True),
        sa.Column("sender_name", sa.String(length=11), nullable=True),
        sa.Column("sender_name_active", sa.Boolean(), nullable=False),
        sa.Column("disabled_templates", sa.JSON(), nullable=False),
        sa.Column("buys_credit", sa.Boolean(), nullable=False),
        sa.Column("credit_balance", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_id"),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sms_opted_out", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("segments", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("segments")

    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("sms_opted_out")

    op.drop_table("organisations")
