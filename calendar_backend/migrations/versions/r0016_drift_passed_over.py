"""Newcomers a manager cannot read, remembered on their drift row: ``watch_drift.passed_over``.

A same-pool replacement the manager's own token cannot read (delegated readability) is answered
``409`` with fresh repairs that leave that person out; the row remembers them, so they are not
offered again (`watch_repairs`, issue 19 polish).

Revision ID: r0016
Revises: r0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0016"
down_revision: str | None = "r0015"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``watch_drift.passed_over`` (a JSON list of addresses; NULL: nobody)."""
    with op.batch_alter_table("watch_drift") as batch:
        batch.add_column(sa.Column("passed_over", sa.JSON, nullable=True))


def downgrade() -> None:
    """Drop it again."""
    with op.batch_alter_table("watch_drift") as batch:
        batch.drop_column("passed_over")
