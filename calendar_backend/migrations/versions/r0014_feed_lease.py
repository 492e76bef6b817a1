"""The drift feed's lease: which bot poller holds an undelivered drift row, and until when.

Revision ID: r0014
Revises: r0010 (the lead re-chains it onto r0013_pool_auto_repair)
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from calendar_backend.storage.schema import UTCDateTime

revision = "r0014"
down_revision: str | None = "r0013"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``watch_drift.claimed_by`` and ``watch_drift.claimed_until``."""
    with op.batch_alter_table("watch_drift") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("claimed_until", UTCDateTime, nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("watch_drift") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
