"""status sweep: when each notification was last looked up at the provider

Revision ID: 0007_status_sweep
Revises: 0006_api_keys
Create Date: 2026-11-26 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_status_sweep"
down_revision = "0006_api_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("swept_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_notifications_status", ["status", "updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_status")
        batch_op.drop_column("swept_at")
