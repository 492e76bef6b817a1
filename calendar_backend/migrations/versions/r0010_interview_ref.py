"""The drift feed: an interview's sealed conversation reference, and when a drift row was posted.

Revision ID: r0010
Revises: r0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from calendar_backend.storage.schema import UTCDateTime

revision = "r0010"
down_revision: str | None = "r0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``interviews.conversation_ref`` (+ key id) and ``watch_drift.delivered_at``."""
    with op.batch_alter_table("interviews") as batch:
        batch.add_column(sa.Column("conversation_ref", sa.LargeBinary, nullable=True))
        batch.add_column(sa.Column("conversation_ref_key_id", sa.BigInteger, nullable=True))
    with op.batch_alter_table("watch_drift") as batch:
        batch.add_column(sa.Column("delivered_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("watch_drift") as batch:
        batch.drop_column("delivered_at")
    with op.batch_alter_table("interviews") as batch:
        batch.drop_column("conversation_ref_key_id")
        batch.drop_column("conversation_ref")
