"""providers and failover: a circuit breaker per provider, each organisation's ordered SMS
providers, the provider of each notification's attempt and of each logged try

Revision ID: 0013_breakers
Revises: 0012_merge
Create Date: 2026-12-07 15:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_breakers"
down_revision = "0012_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_breakers",
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.Float(), nullable=True),
        sa.Column("opened_at", sa.Float(), nullable=True),
        sa.Column("trials", sa.Integer(), nullable=False),
        sa.Column("trial_at", sa.Float(), nullable=True),
        sa.Column("changed_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("provider"),
    )
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sms_providers", sa.JSON(), nullable=True))
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider", sa.String(length=20), nullable=True))
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_column("provider")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("provider")
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("sms_providers")
    op.drop_table("provider_breakers")
