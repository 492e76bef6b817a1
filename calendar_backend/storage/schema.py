"""The Calendar Service's tables, their enums and the aware-UTC timestamp type.

``metadata`` holds every table of the Calendar Service's database (the audit, allow-list and
lifecycle modules add theirs to it). The bot's ``bot_state`` table is not here: the bot owns it
(dialogs/sql_storage.py).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata: Final = sa.MetaData()


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that is always bound and returned as an aware UTC ``datetime``.

    SQLite stores it as naive UTC text (fixed format, so text order is time order); PostgreSQL as
    ``timestamptz``. Binding a naive ``datetime`` raises ``ValueError``.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime cannot be stored; use an aware UTC datetime")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, _dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class TenantStatus(enum.StrEnum):
    """Lifecycle of a consented tenant."""

    ACTIVE = "active"
    DISCONNECTED = "disconnected"


class InterviewStatus(enum.StrEnum):
    """Lifecycle of an interview OpenSlot creates."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class InterviewSource(enum.StrEnum):
    """Who asked for the interview."""

    BOT = "bot"
    OFFER = "offer"
    MOVE = "move"  # a hold: the new time of a move in flight (see :func:`insert_hold`)


class OfferStatus(enum.StrEnum):
    """Lifecycle of a candidate booking offer."""

    OPEN = "open"
    BOOKED = "booked"
    REVOKED = "revoked"
    EXPIRED = "expired"


class BlobKind(enum.StrEnum):
    """Which table an encrypted blob lives in (the crypto layer derives its AAD from it)."""

    TENANT_CREDENTIAL = "tenant_credential"
    TOKEN_CACHE = "token_cache"  # noqa: S105  (a table name, not a secret)
    OFFER_CONVERSATION_REF = "offer_conversation_ref"
    INTERVIEW_CONVERSATION_REF = "interview_conversation_ref"  # r0009: the drift card's chat


tenants: Final = sa.Table(
    "tenants",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("credential_blob", sa.LargeBinary, nullable=False),
    sa.Column("key_id", sa.BigInteger, nullable=False),  # key ids are uint32
    sa.Column("consented_scopes", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

token_caches: Final = sa.Table(
    "token_caches",
    metadata,
    sa.Column(
        "tenant_id",
        sa.String(64),
        sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("user_oid", sa.String(64), primary_key=True),
    sa.Column("blob", sa.LargeBinary, nullable=False),
    sa.Column("key_id", sa.BigInteger, nullable=False),  # key ids are uint32
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

interviews: Final = sa.Table(
    "interviews",
    metadata,
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
    # the candidate's own invite (r0004); NULL when the candidate attends the one event (older rows)
    sa.Column("candidate_event_id", sa.String(512), nullable=True),
    # a session of an interview loop (r0007): the loop's id and the session's index in its template
    sa.Column("loop_id", sa.String(36), nullable=True),
    sa.Column("session_index", sa.Integer, nullable=True),
    # the manager's Teams conversation reference, sealed (r0009): where drift cards are posted
    sa.Column("conversation_ref", sa.LargeBinary, nullable=True),
    sa.Column("conversation_ref_key_id", sa.BigInteger, nullable=True),
    sa.CheckConstraint("start_utc < end_utc", name="ck_interviews_interval"),
    sa.Index("ix_interviews_organizer", "tenant_id", "organizer_oid", "start_utc"),
    sa.Index("ix_interviews_status_created", "status", "created_at"),
)

loops: Final = sa.Table(
    "loops",
    metadata,
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
    sa.Index("ix_loops_organizer", "tenant_id", "organizer_oid"),
    sa.Index("ix_loops_status_created", "status", "created_at"),
)

interview_mailboxes: Final = sa.Table(
    "interview_mailboxes",
    metadata,
    sa.Column(
        "interview_id",
        sa.String(36),
        sa.ForeignKey("interviews.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("mailbox", sa.String(320), primary_key=True),
    sa.Index("ix_interview_mailboxes_mailbox", "mailbox"),
)

offers: Final = sa.Table(
    "offers",
    metadata,
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
    sa.Column("loop_template", sa.JSON, nullable=True),  # a loop link's template (rooms resolved)
    sa.Column("loop_id", sa.String(36), nullable=True),  # a loop link's booked loop
    sa.Index("ix_offers_organizer", "tenant_id", "organizer_oid"),
)

archived_users: Final = sa.Table(
    "archived_users",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("oid", sa.String(64), primary_key=True),
    sa.Column("archived_at", UTCDateTime, nullable=False),
)


# Interviewer pools (issue 18; r0005). Addresses are stored lower-cased.
pools: Final = sa.Table(
    "pools",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("role", sa.String(128), nullable=False),
    sa.Column("owner", sa.String(320), nullable=True),
    sa.Column("default_weekly_cap", sa.Integer, nullable=False),
    sa.Column("default_daily_cap", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("group_id", sa.String(36), nullable=True),  # an Entra group: members read live (r0011)
    sa.Column("auto_repair", sa.Boolean, nullable=False, server_default=sa.false()),  # r0013
    sa.UniqueConstraint("tenant_id", "name", name="uq_pools_tenant_name"),
)

pool_members: Final = sa.Table(
    "pool_members",
    metadata,
    sa.Column("pool_id", sa.String(36), sa.ForeignKey("pools.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("address", sa.String(320), primary_key=True),
    sa.Column("zone", sa.String(64), nullable=False),
    sa.Column("week_start", sa.Integer, nullable=False),
    sa.Column("weekly_cap", sa.Integer, nullable=True),  # NULL: the pool's default
    sa.Column("daily_cap", sa.Integer, nullable=True),
    sa.Column("hot_hours", sa.JSON, nullable=False),
    sa.Column("added_at", UTCDateTime, nullable=False),
    sa.Index("ix_pool_members_address", "address"),
)

pool_trainees: Final = sa.Table(
    "pool_trainees",
    metadata,
    sa.Column("pool_id", sa.String(36), sa.ForeignKey("pools.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("address", sa.String(320), primary_key=True),
    sa.Column("zone", sa.String(64), nullable=False),
    sa.Column("week_start", sa.Integer, nullable=False),
    sa.Column("shadow_required", sa.Integer, nullable=False),
    sa.Column("reverse_shadow_required", sa.Integer, nullable=False),
    sa.Column("shadow_done", sa.Integer, nullable=False),
    sa.Column("reverse_shadow_done", sa.Integer, nullable=False),
    sa.Column("weekly_cap", sa.Integer, nullable=False),  # training caps, counted separately
    sa.Column("daily_cap", sa.Integer, nullable=False),
    sa.Column("added_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("graduated_at", UTCDateTime, nullable=True),
)

# Who of an interview was drawn from a pool, and as what (member / shadow / reverse_shadow).
pool_assignments: Final = sa.Table(
    "pool_assignments",
    metadata,
    sa.Column(
        "interview_id", sa.String(36), sa.ForeignKey("interviews.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("mailbox", sa.String(320), primary_key=True),
    sa.Column("pool_id", sa.String(36), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.Index("ix_pool_assignments_mailbox", "mailbox"),
)

pool_cap_overrides: Final = sa.Table(
    "pool_cap_overrides",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("pool_id", sa.String(36), nullable=False),
    sa.Column("address", sa.String(320), nullable=False),
    sa.Column("interview_id", sa.String(36), nullable=True),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(512), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_pool_cap_overrides_tenant_address", "tenant_id", "address"),
)


def now_utc(now: datetime | None) -> datetime:
    """``now`` in UTC, or the current time when ``None``."""
    return datetime.now(UTC) if now is None else now.astimezone(UTC)


def require_aware(*values: datetime) -> None:
    """Raise ``ValueError`` if any value is a naive ``datetime``."""
    for value in values:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime; use an aware UTC datetime")
