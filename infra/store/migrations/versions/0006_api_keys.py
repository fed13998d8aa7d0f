"""api keys: per-organisation keys for the HTTP API, stored as SHA-256 hashes

Revision ID: 0006_api_keys
Revises: 0005_gocardless
Create Date: 2026-11-25 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_api_keys"
down_revision = "0005_gocardless"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_index("ix_api_keys_org", "api_keys", ["org_id"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_org", table_name="api_keys")
    op.drop_table("api_keys")
