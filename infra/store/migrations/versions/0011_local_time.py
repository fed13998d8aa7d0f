"""local time: organisations' time zone, reminder hour, business days and send windows; contacts'
time zones; business-day offsets; when each reminder fires, why it moved, the payment it waits
for; GoCardless retries; held notifications

Revision ID: 0011_local_time
Revises: 0008_merge
Create Date: 2026-12-07 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_local_time"
down_revision = "0008_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("reminder_hour", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("country", sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column("subdivision", sa.String(length=10), nullable=True))
        batch_op.add_column(
            sa.Column("business_days", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("send_windows", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("collection_grace_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
    with op.batch_alter_table("reminder_offsets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("business", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("reminders_sent", schema=None) as batch_op:
        batch_op.alter_column("status", existing_type=sa.String(length=20), type_=sa.String(length=40))
        batch_op.add_column(sa.Column("fire_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("moved_from", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("moved_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("payment_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("resume_after", sa.Date(), nullable=True))
    with op.batch_alter_table("gc_payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("will_attempt_retry", sa.Boolean(), nullable=True))
    op.create_table(
        "held_notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("notification_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=200), nullable=False),
        sa.Column("release_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("notification_id"),
    )
    with op.batch_alter_table("held_notifications", schema=None) as batch_op:
        batch_op.create_index("ix_held_due", ["released_at", "release_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("held_notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_held_due")
    op.drop_table("held_notifications")
    with op.batch_alter_table("gc_payments", schema=None) as batch_op:
        batch_op.drop_column("will_attempt_retry")
    with op.batch_alter_table("reminders_sent", schema=None) as batch_op:
        batch_op.drop_column("resume_after")
        batch_op.drop_column("payment_id")
        batch_op.drop_column("moved_reason")
        batch_op.drop_column("moved_from")
        batch_op.drop_column("fire_at")
        batch_op.alter_column("status", existing_type=sa.String(length=40), type_=sa.String(length=20))
    with op.batch_alter_table("reminder_offsets", schema=None) as batch_op:
        batch_op.drop_column("business")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("timezone")
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        for name in (
            "collection_grace_days",
            "send_windows",
            "business_days",
            "subdivision",
            "country",
            "reminder_hour",
            "timezone",
        ):
            batch_op.drop_column(name)
