"""webhook retention: the webhooks process deletes the status outbox rows it is done with, with
their deliveries and attempts; these indexes find a row's deliveries and a delivery's attempts

Revision ID: 0014_webhook_retention
Revises: 0013_breakers
Create Date: 2026-12-08 01:10:00
"""

from alembic import op

revision = "0014_webhook_retention"
down_revision = "0013_breakers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_webhook_deliveries_outbox", "webhook_deliveries", ["outbox_id"])
    op.create_index("ix_webhook_attempts_delivery", "webhook_attempts", ["delivery_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_attempts_delivery", table_name="webhook_attempts")
    op.drop_index("ix_webhook_deliveries_outbox", table_name="webhook_deliveries")
