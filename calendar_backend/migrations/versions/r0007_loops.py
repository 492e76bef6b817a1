"""Interview loops: the ``loops`` table and each session's ``loop_id``/``session_index``.

Revision ID: r0007
Revises: r0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from calendar_backend.storage import UTCDateTime

revision = "r0007"
down_revision: str | None = "r0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``loops``; add ``interviews.loop_id`` and ``interviews.session_index`` (NULL: no loop)."""
    op.create_table(
        "loops",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("organizer_oid", sa.String(64), nullable=False),
        sa.Column("organizer_upn", sa.String(320), nullable=False),
        sa.Column("transaction_id", sa.String(128), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.String(512), nullable=False),
        sa.Column("candidate_name", sa.String(256), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_loops_organizer", "loops", ["tenant_id", "organizer_oid"])
    op.create_index("ix_loops_status_created", "loops", ["status", "created_at"])
    with op.batch_alter_table("interviews") as batch:
        batch.add_column(sa.Column("loop_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("session_index", sa.Integer, nullable=True))


def downgrade() -> None:
    """Drop the session columns and ``loops``."""
    with op.batch_alter_table("interviews") as batch:
        batch.drop_column("session_index")
        batch.drop_column("loop_id")
    op.drop_index("ix_loops_status_created", "loops")
    op.drop_index("ix_loops_organizer", "loops")
    op.drop_table("loops")
