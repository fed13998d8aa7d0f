"""templates, organisation names, credit warnings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 00:48:06.226519
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_warnings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("notification_id", sa.String(length=40), nullable=True),
        sa.Column("invoice_id", sa.String(length=200), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("org_warnings", schema=None) as batch_op:
        batch_op.create_index("ix_org_warnings_org", ["org_id", "at"], unique=False)

    op.create_table(
        "templates",
        sa.Column("org_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("locale", sa.String(length=10), nullable=False),
        sa.Column("part", sa.String(length=10), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "kind", "channel", "locale", "part"),
    )
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("default_locale", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("low_balance_threshold", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("low_balance_threshold")
        batch_op.drop_column("default_locale")
        batch_op.drop_column("name")

    op.drop_table("templates")
    with op.batch_alter_table("org_warnings", schema=None) as batch_op:
        batch_op.drop_index("ix_org_warnings_org")

    op.drop_table("org_warnings")
