"""Archived users' addresses, so an archived user is refused by name as an interviewer.

Revision ID: r0003
Revises: r0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from calendar_backend import lifecycle
from calendar_backend.storage import UTCDateTime

_ = lifecycle  # registers the table on storage.metadata (drift checks)

revision = "r0003"
down_revision: str | None = "r0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``archived_addresses``."""
    op.create_table(
        "archived_addresses",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("oid", sa.String(64), nullable=False),
        sa.Column("archived_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_table("archived_addresses")
