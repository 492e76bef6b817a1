"""Watcher repairs from pools: a pool's ``auto_repair`` switch and which repair a drift row got.

Revision ID: r0013
Revises: r0010 (the lead re-chains it after r0012_tenant_settings)
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0013"
down_revision: str | None = "r0012"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``pools.auto_repair`` (off) and ``watch_drift.applied_repair``."""
    with op.batch_alter_table("pools") as batch:
        batch.add_column(sa.Column("auto_repair", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("watch_drift") as batch:
        batch.add_column(sa.Column("applied_repair", sa.String(32), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("watch_drift") as batch:
        batch.drop_column("applied_repair")
    with op.batch_alter_table("pools") as batch:
        batch.drop_column("auto_repair")
