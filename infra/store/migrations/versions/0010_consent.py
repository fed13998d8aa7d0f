"""consent: the consent trail, per-account SMS choice, email suppression, preference-page settings,
short links for SMS

Revision ID: 0010_consent
Revises: 0008_merge
Create Date: 2026-12-07 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_consent"
down_revision = "0008_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=200), nullable=False),
        sa.Column("contact_id", sa.String(length=200), nullable=False),
        sa.Column("toggle", sa.String(length=400), nullable=False),
        sa.Column("old", sa.Boolean(), nullable=True),
        sa.Column("new", sa.Boolean(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consent_changes_contact", "consent_changes", ["org_id", "contact_id", "id"])
    op.create_table(
        "preference_settings",
        sa.Column("org_id", sa.String(length=200), nullable=False),
        sa.Column("brand_colour", sa.String(length=7), nullable=True),
        sa.Column("required_categories", sa.JSON(), nullable=False),
        sa.Column("required_reason", sa.String(length=300), nullable=True),
        sa.Column("unsubscribe_scope", sa.String(length=10), nullable=False),
        sa.Column("sms_help_text", sa.String(length=300), nullable=True),
        sa.Column("sms_link", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_id"),
    )
    op.create_table(
        "short_links",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("org_id", sa.String(length=200), nullable=False),
        sa.Column("token", sa.String(length=2000), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    with op.batch_alter_table("customer_contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sms_enabled", sa.Boolean(), nullable=True))
    with op.batch_alter_table("contact_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suppressed_reason", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("suppressed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contact_emails", schema=None) as batch_op:
        batch_op.drop_column("suppressed_at")
        batch_op.drop_column("suppressed_reason")
    with op.batch_alter_table("customer_contacts", schema=None) as batch_op:
        batch_op.drop_column("sms_enabled")
    op.drop_table("short_links")
    op.drop_table("preference_settings")
    op.drop_index("ix_consent_changes_contact", table_name="consent_changes")
    op.drop_table("consent_changes")
