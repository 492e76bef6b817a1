"""A lease on a drift row being applied: ``watch_drift.applying_since`` (issue 19 follow-up).

A row claimed (``applying``) by a process that died is looked at again by the watcher's round
once its lease ran out (`watch_recover`): closed as applied when the Outlook write happened,
else opened again.

Revision ID: r0015
Revises: r0013 here; the lead re-chains it after r0014 (feed lease)
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from calendar_backend.storage.schema import UTCDateTime

revision = "r0015"
down_revision: str | None = "r0014"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``watch_drift.applying_since`` and ``apply_ref`` (NULL unless a repair is being applied)."""
    with op.batch_alter_table("watch_drift") as batch:
        batch.add_column(sa.Column("applying_since", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("apply_ref", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop it again."""
    with op.batch_alter_table("watch_drift") as batch:
        batch.drop_column("apply_ref")
        batch.drop_column("applying_since")
