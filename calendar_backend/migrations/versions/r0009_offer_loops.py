"""Candidate links for interview loops: ``offers.loop_template`` and ``offers.loop_id``.

Revision ID: r0009
Revises: r0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0009"
down_revision: str | None = "r0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the loop link's template and booked loop (NULL: a single-meeting link)."""
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("loop_template", sa.JSON, nullable=True))
        batch.add_column(sa.Column("loop_id", sa.String(36), nullable=True))


def downgrade() -> None:
    """Drop the loop columns."""
    with op.batch_alter_table("offers") as batch:
        batch.drop_column("loop_id")
        batch.drop_column("loop_template")
