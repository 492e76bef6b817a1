"""Admin tables: the per-tenant allow-list of schedulable mailboxes and the directory delta link.

Revision ID: r0002
Revises: r0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from calendar_backend import allowlist, lifecycle
from calendar_backend.storage import UTCDateTime

# Importing the modules registers their tables on storage.metadata (autogenerate / drift checks).
_ = (allowlist, lifecycle)

revision = "r0002"
down_revision: str | None = "r0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``allowlist_entries`` and ``directory_sync``."""
    op.create_table(
        "allowlist_entries",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("value", sa.String(320), primary_key=True),
        sa.Column("added_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "directory_sync",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("delta_link", sa.Text, nullable=False),
        sa.Column("synced_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("directory_sync")
    op.drop_table("allowlist_entries")
