"""Initial schema: tenants, token caches, interviews, offers, archived users, audit, bot state.

Revision ID: r0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from calendar_backend.storage import UTCDateTime

revision = "r0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _tenant_tables() -> None:
    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("credential_blob", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.BigInteger, nullable=False),
        sa.Column("consented_scopes", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "token_caches",
        sa.Column(
            "tenant_id",
            sa.String(64),
            sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_oid", sa.String(64), primary_key=True),
        sa.Column("blob", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "archived_users",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("oid", sa.String(64), primary_key=True),
        sa.Column("archived_at", UTCDateTime, nullable=False),
    )


def _interview_tables() -> None:
    op.create_table(
        "interviews",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("organizer_oid", sa.String(64), nullable=False),
        sa.Column("organizer_upn", sa.String(320), nullable=False),
        sa.Column("transaction_id", sa.String(128), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_utc", UTCDateTime, nullable=False),
        sa.Column("end_utc", UTCDateTime, nullable=False),
        sa.Column("attendees", sa.JSON, nullable=False),
        sa.Column("candidate_name", sa.String(256), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("event_id", sa.String(512), nullable=True),
        sa.Column("join_url", sa.String(2048), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("offer_id", sa.String(36), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.CheckConstraint("start_utc < end_utc", name="ck_interviews_interval"),
    )
    op.create_index("ix_interviews_organizer", "interviews", ["tenant_id", "organizer_oid", "start_utc"])
    op.create_index("ix_interviews_status_created", "interviews", ["status", "created_at"])
    op.create_table(
        "interview_mailboxes",
        sa.Column(
            "interview_id",
            sa.String(36),
            sa.ForeignKey("interviews.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("mailbox", sa.String(320), primary_key=True),
    )
    op.create_index("ix_interview_mailboxes_mailbox", "interview_mailboxes", ["mailbox"])
    op.create_table(
        "offers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("organizer_oid", sa.String(64), nullable=False),
        sa.Column("organizer_upn", sa.String(320), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("interviewers", sa.JSON, nullable=False),
        sa.Column("display_names", sa.JSON, nullable=False),
        sa.Column("duration_min", sa.Integer, nullable=False),
        sa.Column("window_start", UTCDateTime, nullable=False),
        sa.Column("window_end", UTCDateTime, nullable=False),
        sa.Column("candidate_time_zone", sa.String(64), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("interview_id", sa.String(36), nullable=True),
        sa.Column("conversation_ref", sa.LargeBinary, nullable=True),
        sa.Column("conversation_ref_key_id", sa.BigInteger, nullable=True),
        sa.Column("reschedules_used", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_offers_organizer", "offers", ["tenant_id", "organizer_oid"])


def _audit_and_bot_tables() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("actor_oid", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("targets", sa.JSON, nullable=False),
        sa.Column("result", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("graph_request_ids", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_tenant_at", "audit_log", ["tenant_id", "at"])
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("head_seq", sa.BigInteger, nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("prev_signature", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(64), nullable=False),
    )
    # The bot owns bot_state (dialogs/sql_storage.py creates it when missing); a bot that answered a
    # turn before the Calendar Service's first migration may have created it already.
    if sa.inspect(op.get_bind()).has_table("bot_state"):
        return
    op.create_table(
        "bot_state",
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def upgrade() -> None:
    """Create every table."""
    _tenant_tables()
    _interview_tables()
    _audit_and_bot_tables()


def downgrade() -> None:
    """Drop every table (development only)."""
    for table in (
        "bot_state",
        "audit_checkpoints",
        "audit_log",
        "offers",
        "interview_mailboxes",
        "interviews",
        "archived_users",
        "token_caches",
        "tenants",
    ):
        op.drop_table(table)
