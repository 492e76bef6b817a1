"""Loop templates (issue 17): a tenant's saved interview loops.

Revision ID: r0006
Revises: r0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from calendar_backend.storage import UTCDateTime

revision = "r0006"
down_revision: str | None = "r0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``loop_templates`` (one row per tenant and name)."""
    op.create_table(
        "loop_templates",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(120), primary_key=True),
        sa.Column("template_json", sa.Text, nullable=False),
        sa.Column("owner_oid", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    """Drop ``loop_templates``."""
    op.drop_table("loop_templates")
