"""Interviewer pools (issue 18): pools, members, trainees, assignments, cap overrides.

Revision ID: r0005
Revises: r0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from calendar_backend.storage import UTCDateTime

revision = "r0005"
down_revision: str | None = "r0004"
branch_labels: str | None = None
depends_on: str | None = None


def _pool_fk() -> sa.Column[str]:
    return sa.Column(
        "pool_id", sa.String(36), sa.ForeignKey("pools.id", ondelete="CASCADE"), primary_key=True
    )


def upgrade() -> None:
    """Create ``pools``, ``pool_members``, ``pool_trainees``, ``pool_assignments``, ``pool_cap_overrides``."""
    op.create_table(
        "pools",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(320), nullable=True),
        sa.Column("default_weekly_cap", sa.Integer, nullable=False),
        sa.Column("default_daily_cap", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("tenant_id", "name", name="uq_pools_tenant_name"),
    )
    op.create_table(
        "pool_members",
        _pool_fk(),
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("week_start", sa.Integer, nullable=False),
        sa.Column("weekly_cap", sa.Integer, nullable=True),
        sa.Column("daily_cap", sa.Integer, nullable=True),
        sa.Column("hot_hours", sa.JSON, nullable=False),
        sa.Column("added_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_pool_members_address", "pool_members", ["address"])
    op.create_table(
        "pool_trainees",
        _pool_fk(),
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("week_start", sa.Integer, nullable=False),
        sa.Column("shadow_required", sa.Integer, nullable=False),
        sa.Column("reverse_shadow_required", sa.Integer, nullable=False),
        sa.Column("shadow_done", sa.Integer, nullable=False),
        sa.Column("reverse_shadow_done", sa.Integer, nullable=False),
        sa.Column("weekly_cap", sa.Integer, nullable=False),
        sa.Column("daily_cap", sa.Integer, nullable=False),
        sa.Column("added_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("graduated_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "pool_assignments",
        sa.Column(
            "interview_id",
            sa.String(36),
            sa.ForeignKey("interviews.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("mailbox", sa.String(320), primary_key=True),
        sa.Column("pool_id", sa.String(36), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("completed_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_pool_assignments_mailbox", "pool_assignments", ["mailbox"])
    op.create_table(
        "pool_cap_overrides",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("pool_id", sa.String(36), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("interview_id", sa.String(36), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(512), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_pool_cap_overrides_tenant_address", "pool_cap_overrides", ["tenant_id", "address"])


def downgrade() -> None:
    """Drop the pool tables."""
    op.drop_index("ix_pool_cap_overrides_tenant_address", "pool_cap_overrides")
    op.drop_table("pool_cap_overrides")
    op.drop_index("ix_pool_assignments_mailbox", "pool_assignments")
    op.drop_table("pool_assignments")
    op.drop_table("pool_trainees")
    op.drop_index("ix_pool_members_address", "pool_members")
    op.drop_table("pool_members")
    op.drop_table("pools")
