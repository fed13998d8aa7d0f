"""merge: the webhooks, consent and local-time branches

All three grew from 0008 side by side (issues 19, 18 and 17); from here on the history is one line
again (``upgrade(..., "heads")`` applies either way).

Revision ID: 0012_merge
Revises: 0009_webhooks, 0010_consent, 0011_local_time
Create Date: 2026-12-07 13:00:00
"""

revision = "0012_merge"
down_revision = ("0009_webhooks", "0010_consent", "0011_local_time")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: a merge point."""


def downgrade() -> None:
    """Nothing to change: a merge point."""
