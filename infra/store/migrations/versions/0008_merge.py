"""merge: the scheduler branch and the GoCardless / API keys / status sweep branch

Both grew from 0004 side by side; from here on the history is one line again
(``upgrade(..., "heads")`` applies either way).

Revision ID: 0008_merge
Revises: 0005_scheduler, 0007_status_sweep
Create Date: 2026-11-25 05:00:00
"""

revision = "0008_merge"
down_revision = ("0005_scheduler", "0007_status_sweep")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: a merge point."""


def downgrade() -> None:
    """Nothing to change: a merge point."""
