"""A pool's Entra group (issue 18): members read live from Graph, never stored.

Revision ID: r0011
Revises: r0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0011"
down_revision: str | None = "r0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the nullable ``pools.group_id`` (an Entra group object id)."""
    with op.batch_alter_table("pools") as batch:
        batch.add_column(sa.Column("group_id", sa.String(36), nullable=True))


def downgrade() -> None:
    """Drop it again."""
    with op.batch_alter_table("pools") as batch:
        batch.drop_column("group_id")
