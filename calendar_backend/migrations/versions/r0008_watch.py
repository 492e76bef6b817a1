"""The drift watcher: Graph subscriptions, watched events, the notification inbox, drift rows.

Revision ID: r0008
Revises: r0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from calendar_backend.storage.schema import UTCDateTime

revision = "r0008"
down_revision: str | None = "r0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``watch_subscriptions``, ``watch_events``, ``watch_inbox`` and ``watch_drift``."""
    op.create_table(
        "watch_subscriptions",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("mailbox", sa.String(320), nullable=False),
        sa.Column("state_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_watch_subscriptions_mailbox", "watch_subscriptions", ["tenant_id", "mailbox"], unique=True
    )
    op.create_table(
        "watch_events",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("mailbox", sa.String(320), primary_key=True),
        sa.Column("event_id", sa.String(512), primary_key=True),
        sa.Column("interview_id", sa.String(36), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
    )
    op.create_index("ix_watch_events_interview", "watch_events", ["interview_id"])
    op.create_table(
        "watch_inbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("subscription_id", sa.String(128), nullable=False),
        sa.Column("mailbox", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(512), nullable=True),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("taken_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "watch_drift",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("interview_id", sa.String(36), nullable=False),
        sa.Column("organizer_oid", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("who", sa.String(320), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("detected_at", UTCDateTime, nullable=False),
        sa.Column("fingerprint", sa.String(400), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("repairs", sa.JSON, nullable=False),
    )
    op.create_index("ix_watch_drift_organizer", "watch_drift", ["tenant_id", "organizer_oid", "status"])


def downgrade() -> None:
    """Drop the watcher's tables."""
    for table in ("watch_drift", "watch_inbox", "watch_events", "watch_subscriptions"):
        op.drop_table(table)
