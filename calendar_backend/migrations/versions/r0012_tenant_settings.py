"""Per-tenant settings (issue 18): the opt-in to count Outlook "Interview"-category events as load.

Revision ID: r0012
Revises: r0010 (to be re-chained onto r0011_pool_group when both are merged)
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from calendar_backend.storage.schema import UTCDateTime

revision = "r0012"
down_revision: str | None = "r0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``tenant_settings`` (one row per tenant that changed a setting)."""
    op.create_table(
        "tenant_settings",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("count_interview_category", sa.Boolean, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    """Drop ``tenant_settings``."""
    op.drop_table("tenant_settings")
