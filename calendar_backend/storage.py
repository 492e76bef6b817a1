"""The Calendar Service's SQL store: SQLAlchemy Core (async) over SQLite (default) or PostgreSQL.

What is stored (and nothing else; calendar data never is):

- ``tenants``: consented tenants with their *encrypted* app credential (opaque bytes + ``key_id``);
- ``token_caches``: per (tenant, user oid) *encrypted* MSAL token-cache blobs;
- ``interviews`` (+ ``interview_mailboxes``, an index of who is in each one): invites OpenSlot
  created;
- ``offers``: candidate booking offers; the capability token is stored only as its SHA-256 hash;
- ``archived_users``; ``bot_state`` (created here, used only by the bot process);
- ``audit_log`` / ``audit_checkpoints`` (tables defined in :mod:`calendar_backend.audit`).

Invariants:

- Every ``datetime`` is bound and returned tz-aware in UTC (:class:`UTCDateTime`); naive values
  raise ``ValueError``.
- One :meth:`Store.transaction` is one database transaction. On SQLite every transaction starts
  with ``BEGIN IMMEDIATE``, so writers serialise; on PostgreSQL the few read-then-write operations
  take an advisory transaction lock (:func:`insert_pending`, :func:`move_interview`,
  :func:`calendar_backend.audit.append_audit`).
- Repository functions take the transaction's ``AsyncConnection`` (``tx``) so that a state change
  and its audit row commit together. They never commit themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from calendar_backend.errors import SlotTakenError

metadata: Final = sa.MetaData()

_WAL_ATTEMPTS: Final = 20  # brand-new-file race only; ~2 s in all
_MIGRATION_LOCK: Final = 0x4F70656E536C0001  # pg_advisory_lock key for migrate()
_BOOKING_LOCK_CLASS: Final = 0x4F53_0002  # first int4 of pg_advisory_xact_lock(int4, int4)


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


_BLOCKING: Final = (InterviewStatus.PENDING.value, InterviewStatus.CONFIRMED.value)
_TRANSITIONS: Final[dict[InterviewStatus, tuple[str, ...]]] = {
    InterviewStatus.FAILED: (InterviewStatus.PENDING.value,),
    InterviewStatus.CANCELLED: _BLOCKING,
}

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
    sa.CheckConstraint("start_utc < end_utc", name="ck_interviews_interval"),
    sa.Index("ix_interviews_organizer", "tenant_id", "organizer_oid", "start_utc"),
    sa.Index("ix_interviews_status_created", "status", "created_at"),
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
    sa.Index("ix_offers_organizer", "tenant_id", "organizer_oid"),
)

archived_users: Final = sa.Table(
    "archived_users",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("oid", sa.String(64), primary_key=True),
    sa.Column("archived_at", UTCDateTime, nullable=False),
)

bot_state: Final = sa.Table(
    "bot_state",
    metadata,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


# --------------------------------------------------------------------------------------------
# Engine, migrations, transactions
# --------------------------------------------------------------------------------------------


def create_engine(url: str) -> AsyncEngine:
    """Create the async engine for ``sqlite+aiosqlite:///...`` or ``postgresql+asyncpg://...``.

    SQLite: creates the database's parent directory; every connection gets WAL, ``foreign_keys=ON``
    and ``busy_timeout=5000`` (ms); every transaction begins with ``BEGIN IMMEDIATE`` (SQLAlchemy's
    documented aiosqlite recipe), so two writers never both read-then-write. Raises ``ValueError``
    for other dialects.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return create_async_engine(url, pool_pre_ping=True)
    if backend != "sqlite":
        raise ValueError(f"unsupported database backend: {backend}")
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    _install_sqlite_hooks(engine)
    return engine


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        for pragma in ("busy_timeout=5000", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        enable_wal(cursor)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def enable_wal(cursor: Any) -> None:
    """Switch a database to WAL (persistent in the file, so only a brand-new database really switches).

    Two connections opening a brand-new file at once can both hold a shared lock and both want the
    exclusive one; SQLite then answers one of them "database is locked" at once, without the busy
    handler (its deadlock rule). That race lasts as long as the other's switch, so retry briefly.
    """
    for attempt in range(_WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except Exception as exc:  # the driver's OperationalError, as adapted by SQLAlchemy
            if "locked" not in str(exc) or attempt == _WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
    restrict_sqlite_files(cursor)


def restrict_sqlite_files(cursor: Any) -> None:
    """Make the connection's database file and its -wal/-shm/-journal files 0600 (owner only).

    Every SQLite connection of both apps passes here as it opens (``enable_wal``), so a database
    created under a loose umask, or left 0644 by an older version, is tightened at once. SQLite
    creates later -wal/-shm files with the database file's own mode.
    """
    cursor.execute("PRAGMA database_list")  # the driver cursor: execute, then fetch
    for row in cursor.fetchall():
        path = row[2]
        if row[1] != "main" or not path:
            continue  # in-memory database
        for name in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(name).chmod(0o600)


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the schema to Alembic ``head`` (``calendar_backend/migrations``). Idempotent.

    The whole upgrade is one transaction. On PostgreSQL it first takes ``pg_advisory_xact_lock``,
    so concurrent callers (several processes starting at once) run one after another and the later
    ones find nothing to do; on SQLite the ``BEGIN IMMEDIATE`` write lock serialises them.
    """
    async with engine.connect() as conn:
        await conn.run_sync(_upgrade_locked)
        await conn.commit()


def _upgrade_locked(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
    else:
        conn.exec_driver_sql("SELECT 1")  # autobegin: BEGIN IMMEDIATE takes the write lock now
    config = AlembicConfig()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    config.attributes["connection"] = conn
    alembic_command.upgrade(config, "head")


class Store:
    """The engine plus a transaction scope. ``async with store.transaction() as tx: ...``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # SQLite has a single writer and every transaction takes it (BEGIN IMMEDIATE). Queue this
        # process's transactions in FIFO order instead of letting them spin in SQLite's busy
        # handler, which is unfair and starves some past busy_timeout under load.
        self._sqlite_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One database transaction: committed on normal exit, rolled back if the block raises.

        Transactions never nest (on SQLite a nested one would wait for its own outer one).
        """
        if self._sqlite_writer is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._sqlite_writer, self.engine.begin() as conn:
            yield conn

    async def close(self) -> None:
        """Dispose of the connection pool."""
        await self.engine.dispose()


def _now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else now.astimezone(UTC)


def _require_aware(*values: datetime) -> None:
    for value in values:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime; use an aware UTC datetime")


# --------------------------------------------------------------------------------------------
# Tenants
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TenantRow:
    """A consented tenant. ``credential_blob`` is ciphertext sealed under ``key_id``."""

    tenant_id: str
    credential_blob: bytes
    key_id: int
    consented_scopes: tuple[str, ...]
    status: TenantStatus
    created_at: datetime
    updated_at: datetime


async def put_tenant(
    tx: AsyncConnection,
    tenant_id: str,
    credential_blob: bytes,
    key_id: int,
    consented_scopes: Sequence[str],
    *,
    now: datetime | None = None,
) -> None:
    """Insert or replace a tenant's consent (status becomes ``active``)."""
    at = _now(now)
    values = {
        "credential_blob": credential_blob,
        "key_id": key_id,
        "consented_scopes": list(consented_scopes),
        "status": TenantStatus.ACTIVE.value,
        "updated_at": at,
    }
    updated = await tx.execute(sa.update(tenants).where(tenants.c.tenant_id == tenant_id).values(**values))
    if updated.rowcount == 0:
        await tx.execute(sa.insert(tenants).values(tenant_id=tenant_id, created_at=at, **values))


async def get_tenant(tx: AsyncConnection, tenant_id: str) -> TenantRow | None:
    """Return the tenant, or ``None`` if it never consented (disconnected tenants are returned)."""
    row = (await tx.execute(sa.select(tenants).where(tenants.c.tenant_id == tenant_id))).first()
    if row is None:
        return None
    return TenantRow(
        tenant_id=row.tenant_id,
        credential_blob=bytes(row.credential_blob),
        key_id=row.key_id,
        consented_scopes=tuple(row.consented_scopes),
        status=TenantStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def list_tenant_ids(tx: AsyncConnection, *, only_active: bool = True) -> list[str]:
    """Tenant ids, sorted; by default only ``active`` ones (the consented-tenant list)."""
    query = sa.select(tenants.c.tenant_id).order_by(tenants.c.tenant_id)
    if only_active:
        query = query.where(tenants.c.status == TenantStatus.ACTIVE.value)
    return list((await tx.execute(query)).scalars())


async def set_tenant_status(
    tx: AsyncConnection, tenant_id: str, status: TenantStatus, *, now: datetime | None = None
) -> bool:
    """Set a tenant's status; returns ``False`` if there is no such tenant."""
    result = await tx.execute(
        sa.update(tenants)
        .where(tenants.c.tenant_id == tenant_id)
        .values(status=status.value, updated_at=_now(now))
    )
    return result.rowcount == 1


async def delete_tenant(tx: AsyncConnection, tenant_id: str) -> bool:
    """Delete a tenant's credential and (by cascade) all its users' token caches."""
    await tx.execute(sa.delete(token_caches).where(token_caches.c.tenant_id == tenant_id))
    result = await tx.execute(sa.delete(tenants).where(tenants.c.tenant_id == tenant_id))
    return result.rowcount == 1


# --------------------------------------------------------------------------------------------
# Token caches
# --------------------------------------------------------------------------------------------


async def get_token_cache(tx: AsyncConnection, tenant_id: str, user_oid: str) -> tuple[bytes, int] | None:
    """Return ``(encrypted_blob, key_id)`` for the user's MSAL cache, or ``None``."""
    row = (
        await tx.execute(
            sa.select(token_caches.c.blob, token_caches.c.key_id).where(
                token_caches.c.tenant_id == tenant_id, token_caches.c.user_oid == user_oid
            )
        )
    ).first()
    return None if row is None else (bytes(row.blob), row.key_id)


async def put_token_cache(
    tx: AsyncConnection,
    tenant_id: str,
    user_oid: str,
    blob: bytes,
    key_id: int,
    *,
    now: datetime | None = None,
) -> None:
    """Insert or replace the user's encrypted cache. The tenant row must exist (foreign key)."""
    values = {"blob": blob, "key_id": key_id, "updated_at": _now(now)}
    if tx.dialect.name == "postgresql":  # two first requests of one user may race: upsert
        stmt = postgresql.insert(token_caches).values(tenant_id=tenant_id, user_oid=user_oid, **values)
        await tx.execute(
            stmt.on_conflict_do_update(
                index_elements=[token_caches.c.tenant_id, token_caches.c.user_oid], set_=values
            )
        )
        return
    updated = await tx.execute(
        sa.update(token_caches)
        .where(token_caches.c.tenant_id == tenant_id, token_caches.c.user_oid == user_oid)
        .values(**values)
    )
    if updated.rowcount == 0:
        await tx.execute(sa.insert(token_caches).values(tenant_id=tenant_id, user_oid=user_oid, **values))


async def delete_token_cache(tx: AsyncConnection, tenant_id: str, user_oid: str) -> bool:
    """Delete the user's cache; returns whether a row existed."""
    result = await tx.execute(
        sa.delete(token_caches).where(
            token_caches.c.tenant_id == tenant_id, token_caches.c.user_oid == user_oid
        )
    )
    return result.rowcount == 1


# --------------------------------------------------------------------------------------------
# Key rotation over every encrypted blob
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EncryptedBlob:
    """One encrypted value.

    ``ident`` is (tenant_id,), (tenant_id, oid) or (offer_id, tenant_id, token_hash as hex).
    """

    kind: BlobKind
    ident: tuple[str, ...]
    blob: bytes
    key_id: int


async def iter_encrypted(
    tx: AsyncConnection, *, exclude_key_id: int | None = None
) -> AsyncIterator[EncryptedBlob]:
    """Yield every encrypted blob (optionally only those not sealed under ``exclude_key_id``).

    The rows are read up front, so the caller may :func:`replace_blob` while iterating.
    """
    found: list[EncryptedBlob] = []
    for kind, query in _encrypted_queries(exclude_key_id):
        for row in await tx.execute(query):
            *ident, blob, key_id = row
            names = tuple(
                v.hex() if isinstance(v, bytes | memoryview) else str(v)
                for v in (bytes(i) if isinstance(i, memoryview) else i for i in ident)
            )
            found.append(EncryptedBlob(kind, names, bytes(blob), key_id))
    for item in found:
        yield item


def _encrypted_queries(exclude: int | None) -> list[tuple[BlobKind, sa.Select[Any]]]:
    t, c, o = tenants.c, token_caches.c, offers.c
    queries: list[tuple[BlobKind, sa.Select[Any]]] = [
        (BlobKind.TENANT_CREDENTIAL, sa.select(t.tenant_id, t.credential_blob, t.key_id)),
        (BlobKind.TOKEN_CACHE, sa.select(c.tenant_id, c.user_oid, c.blob, c.key_id)),
        (
            BlobKind.OFFER_CONVERSATION_REF,
            sa.select(o.id, o.tenant_id, o.token_hash, o.conversation_ref, o.conversation_ref_key_id).where(
                o.conversation_ref.is_not(None)
            ),
        ),
    ]
    if exclude is None:
        return queries
    key_cols = (t.key_id, c.key_id, o.conversation_ref_key_id)
    return [(k, q.where(col != exclude)) for (k, q), col in zip(queries, key_cols, strict=True)]


async def replace_blob(tx: AsyncConnection, old: EncryptedBlob, new_blob: bytes, new_key_id: int) -> bool:
    """Swap ``old`` for a re-encrypted blob, only if the row still holds exactly ``old``.

    Returns ``False`` (nothing written) when the row changed or vanished meanwhile.
    """
    if old.kind is BlobKind.TENANT_CREDENTIAL:
        t = tenants.c
        stmt = (
            sa.update(tenants)
            .where(t.tenant_id == old.ident[0], t.credential_blob == old.blob, t.key_id == old.key_id)
            .values(credential_blob=new_blob, key_id=new_key_id)
        )
    elif old.kind is BlobKind.TOKEN_CACHE:
        c = token_caches.c
        stmt = (
            sa.update(token_caches)
            .where(
                c.tenant_id == old.ident[0],
                c.user_oid == old.ident[1],
                c.blob == old.blob,
                c.key_id == old.key_id,
            )
            .values(blob=new_blob, key_id=new_key_id)
        )
    else:
        o = offers.c
        stmt = (
            sa.update(offers)
            .where(
                o.id == old.ident[0],
                o.conversation_ref == old.blob,
                o.conversation_ref_key_id == old.key_id,
            )
            .values(conversation_ref=new_blob, conversation_ref_key_id=new_key_id)
        )
    return (await tx.execute(stmt)).rowcount == 1


# --------------------------------------------------------------------------------------------
# Interviews
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InterviewRow:
    """An interview OpenSlot created; aware UTC times, interval ``[start_utc, end_utc)``."""

    id: str
    tenant_id: str
    organizer_oid: str
    organizer_upn: str
    transaction_id: str
    status: InterviewStatus
    start_utc: datetime
    end_utc: datetime
    attendees: tuple[str, ...]
    candidate_name: str
    subject: str
    event_id: str | None
    join_url: str | None
    source: InterviewSource
    offer_id: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    candidate_event_id: str | None = None  # the candidate's own invite (see booking.py)

    @property
    def start(self) -> datetime:
        """Alias of ``start_utc``."""
        return self.start_utc

    @property
    def end(self) -> datetime:
        """Alias of ``end_utc``."""
        return self.end_utc


def _interview(row: sa.Row[Any]) -> InterviewRow:
    m = row._mapping
    return InterviewRow(
        **{
            k: m[k]
            for k in (
                "id",
                "tenant_id",
                "organizer_oid",
                "organizer_upn",
                "transaction_id",
                "start_utc",
                "end_utc",
                "candidate_name",
                "subject",
                "event_id",
                "join_url",
                "offer_id",
                "created_at",
                "updated_at",
                "version",
                "candidate_event_id",
            )
        },
        status=InterviewStatus(m["status"]),
        attendees=tuple(m["attendees"]),
        source=InterviewSource(m["source"]),
    )


def _mailboxes(attendees: Iterable[str]) -> list[str]:
    """The mailboxes an interview blocks: its attendees only. The organizer is not an attendee
    unless they are on the panel, so their other interviews do not block them (issue 13)."""
    return sorted({a.strip().lower() for a in attendees})


def _attends(row: InterviewRow, wanted: Iterable[str]) -> bool:
    return not {a.strip().lower() for a in row.attendees}.isdisjoint(wanted)


async def _lock_booking(tx: AsyncConnection, tenant_id: str) -> None:
    if tx.dialect.name == "postgresql":
        await tx.execute(
            sa.select(sa.func.pg_advisory_xact_lock(_BOOKING_LOCK_CLASS, sa.func.hashtext(tenant_id)))
        )


async def insert_pending(
    tx: AsyncConnection,
    *,
    tenant_id: str,
    organizer_oid: str,
    organizer_upn: str,
    transaction_id: str,
    start: datetime,
    end: datetime,
    attendees: Sequence[str],
    candidate_name: str,
    subject: str,
    source: InterviewSource | str,
    offer_id: str | None = None,
    now: datetime | None = None,
) -> InterviewRow:
    """Record a ``pending`` interview before the Graph POST (the durable idempotency guard).

    ``attendees`` are mailbox addresses (including the candidate's); the interval is
    ``[start, end)``. Race-safe against double booking: under the transaction's write lock (SQLite)
    or a per-tenant advisory lock (PostgreSQL) it checks :func:`find_conflicts` for every attendee
    (the organizer only when they are one). Raises ``SlotTakenError`` on overlap, ``ValueError``
    on naive times or ``start >= end``, and ``sqlalchemy.exc.IntegrityError`` if
    ``transaction_id`` was used before.
    """
    _require_aware(start, end)
    if start >= end:
        raise ValueError("start must be before end")
    mailboxes = _mailboxes(attendees)
    await _lock_booking(tx, tenant_id)
    if await find_conflicts(tx, tenant_id, mailboxes, start, end):
        raise SlotTakenError()
    return await _insert(
        tx,
        tenant_id=tenant_id,
        organizer_oid=organizer_oid,
        organizer_upn=organizer_upn,
        transaction_id=transaction_id,
        start=start,
        end=end,
        attendees=attendees,
        candidate_name=candidate_name,
        subject=subject,
        source=source,
        offer_id=offer_id,
        now=now,
    )


async def _insert(
    tx: AsyncConnection,
    *,
    tenant_id: str,
    organizer_oid: str,
    organizer_upn: str,
    transaction_id: str,
    start: datetime,
    end: datetime,
    attendees: Sequence[str],
    candidate_name: str,
    subject: str,
    source: InterviewSource | str,
    offer_id: str | None,
    now: datetime | None,
) -> InterviewRow:
    mailboxes = _mailboxes(attendees)
    at = _now(now)
    interview_id = str(uuid.uuid4())
    await tx.execute(
        sa.insert(interviews).values(
            id=interview_id,
            tenant_id=tenant_id,
            organizer_oid=organizer_oid,
            organizer_upn=organizer_upn,
            transaction_id=transaction_id,
            status=InterviewStatus.PENDING.value,
            start_utc=start,
            end_utc=end,
            attendees=list(attendees),
            candidate_name=candidate_name,
            subject=subject,
            source=InterviewSource(source).value,
            offer_id=offer_id,
            created_at=at,
            updated_at=at,
            version=1,
        )
    )
    await tx.execute(
        sa.insert(interview_mailboxes),
        [{"interview_id": interview_id, "mailbox": m} for m in mailboxes],
    )
    row = await get_interview(tx, interview_id)
    assert row is not None  # noqa: S101  (inserted just above, same transaction)
    return row


async def confirm_interview(
    tx: AsyncConnection,
    interview_id: str,
    event_id: str,
    join_url: str | None,
    *,
    candidate_event_id: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Move ``pending`` → ``confirmed`` with Graph's event id (and the candidate's own event's,
    when the booking has one); ``False`` if it was not pending."""
    result = await tx.execute(
        sa.update(interviews)
        .where(interviews.c.id == interview_id, interviews.c.status == InterviewStatus.PENDING.value)
        .values(
            status=InterviewStatus.CONFIRMED.value,
            event_id=event_id,
            join_url=join_url,
            candidate_event_id=candidate_event_id,
            updated_at=_now(now),
            version=interviews.c.version + 1,
        )
    )
    return result.rowcount == 1


async def mark_interview(
    tx: AsyncConnection,
    interview_id: str,
    status: InterviewStatus | str,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> bool:
    """Transition an interview: pending→failed, pending→cancelled, confirmed→cancelled.

    With ``expected_version`` the update also requires that version (optimistic concurrency).
    Returns ``False`` (nothing changed) when the transition is not allowed or the version moved.
    Raises ``ValueError`` for ``confirmed``/``pending`` (use :func:`confirm_interview`).
    """
    status = InterviewStatus(status)
    allowed_from = _TRANSITIONS.get(status)
    if allowed_from is None:
        raise ValueError(f"cannot mark an interview {status.value!r}")
    where = [interviews.c.id == interview_id, interviews.c.status.in_(allowed_from)]
    if expected_version is not None:
        where.append(interviews.c.version == expected_version)
    result = await tx.execute(
        sa.update(interviews)
        .where(*where)
        .values(status=status.value, updated_at=_now(now), version=interviews.c.version + 1)
    )
    return result.rowcount == 1


async def move_interview(
    tx: AsyncConnection,
    interview_id: str,
    start: datetime,
    end: datetime,
    *,
    expected_version: int | None = None,
    ignore_ids: Iterable[str] = (),
    now: datetime | None = None,
) -> bool:
    """Reschedule a ``confirmed`` interview to ``[start, end)`` (after Graph accepted the move).

    Race-safe like :func:`insert_pending`: raises ``SlotTakenError`` if the new time overlaps
    another pending/confirmed interview of any of its mailboxes (except ``ignore_ids``: the
    move's own hold, see :func:`complete_move`). Returns ``False`` (nothing
    changed) if the interview is not confirmed or ``expected_version`` no longer matches.
    """
    _require_aware(start, end)
    if start >= end:
        raise ValueError("start must be before end")
    current = await get_interview(tx, interview_id)
    if current is None or current.status is not InterviewStatus.CONFIRMED:
        return False
    await _lock_booking(tx, current.tenant_id)
    mailboxes = _mailboxes(current.attendees)
    clashes = await find_conflicts(tx, current.tenant_id, mailboxes, start, end)
    if any(c.id != interview_id and c.id not in set(ignore_ids) for c in clashes):
        raise SlotTakenError()
    where = [
        interviews.c.id == interview_id,
        interviews.c.status == InterviewStatus.CONFIRMED.value,
    ]
    if expected_version is not None:
        where.append(interviews.c.version == expected_version)
    result = await tx.execute(
        sa.update(interviews)
        .where(*where)
        .values(
            start_utc=start,
            end_utc=end,
            updated_at=_now(now),
            version=interviews.c.version + 1,
        )
    )
    return result.rowcount == 1


_HOLD_PREFIX: Final = "move:"


def hold_target(row: InterviewRow) -> tuple[str, int] | None:
    """For a hold row: the id and version of the interview it moves; ``None`` for any other row."""
    if row.source is not InterviewSource.MOVE or not row.transaction_id.startswith(_HOLD_PREFIX):
        return None
    target, version, _ = row.transaction_id[len(_HOLD_PREFIX) :].split(":", 2)
    return target, int(version)


async def insert_hold(
    tx: AsyncConnection,
    interview: InterviewRow,
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
) -> InterviewRow | None:
    """Reserve ``[start, end)`` for moving ``interview`` there, before Graph is asked to move it.

    The hold is a ``pending`` row (source ``move``) with the interview's attendees, so it blocks
    the new time for every attendee exactly like a booking (:func:`find_conflicts`); the
    interview itself keeps blocking its old time until :func:`complete_move`. Its transactionId
    (never sent to Graph) names the interview and the version it was taken at.

    Returns ``None`` when ``interview`` is no longer confirmed at that version or another move of
    it is in flight (one move at a time). Raises ``SlotTakenError`` if ``[start, end)`` overlaps
    another pending/confirmed interview of its attendees (its own old time does not count).
    """
    _require_aware(start, end)
    if start >= end:
        raise ValueError("start must be before end")
    await _lock_booking(tx, interview.tenant_id)
    current = await get_interview(tx, interview.id)
    if (
        current is None
        or current.status is not InterviewStatus.CONFIRMED
        or current.version != interview.version
    ):
        return None
    in_flight = sa.select(interviews.c.id).where(
        interviews.c.status == InterviewStatus.PENDING.value,
        interviews.c.transaction_id.startswith(f"{_HOLD_PREFIX}{interview.id}:"),
    )
    if (await tx.execute(in_flight)).first() is not None:
        return None
    clashes = await find_conflicts(tx, interview.tenant_id, _mailboxes(current.attendees), start, end)
    if any(c.id != interview.id for c in clashes):
        raise SlotTakenError()
    return await _insert(
        tx,
        tenant_id=current.tenant_id,
        organizer_oid=current.organizer_oid,
        organizer_upn=current.organizer_upn,
        transaction_id=f"{_HOLD_PREFIX}{current.id}:{current.version}:{uuid.uuid4().hex}",
        start=start,
        end=end,
        attendees=current.attendees,
        candidate_name=current.candidate_name,
        subject=current.subject,
        source=InterviewSource.MOVE,
        offer_id=current.offer_id,
        now=now,
    )


async def complete_move(
    tx: AsyncConnection, hold_id: str, *, now: datetime | None = None
) -> InterviewRow | None:
    """Graph moved the event: give the interview the hold's time and drop the hold, atomically.

    Returns the moved interview, or ``None`` (nothing changed but the hold is gone) when the hold
    or its interview is gone, or the interview changed since the hold was taken.
    """
    hold = await get_interview(tx, hold_id)
    target = hold_target(hold) if hold is not None else None
    if hold is None or target is None or hold.status is not InterviewStatus.PENDING:
        return None
    moved = await move_interview(
        tx, target[0], hold.start, hold.end, expected_version=target[1], ignore_ids=(hold.id,), now=now
    )
    await release_hold(tx, hold.id)
    return await get_interview(tx, target[0]) if moved else None


async def release_hold(tx: AsyncConnection, hold_id: str) -> bool:
    """Withdraw a hold (the move failed or was undone): its time is free again."""
    await tx.execute(sa.delete(interview_mailboxes).where(interview_mailboxes.c.interview_id == hold_id))
    result = await tx.execute(
        sa.delete(interviews).where(
            interviews.c.id == hold_id, interviews.c.source == InterviewSource.MOVE.value
        )
    )
    return result.rowcount == 1


async def get_interview(tx: AsyncConnection, interview_id: str) -> InterviewRow | None:
    """The interview with this id, or ``None``."""
    row = (await tx.execute(sa.select(interviews).where(interviews.c.id == interview_id))).first()
    return None if row is None else _interview(row)


async def get_interview_by_transaction(tx: AsyncConnection, transaction_id: str) -> InterviewRow | None:
    """The interview recorded under this Graph ``transactionId``, or ``None``."""
    query = sa.select(interviews).where(interviews.c.transaction_id == transaction_id)
    row = (await tx.execute(query)).first()
    return None if row is None else _interview(row)


async def list_interviews(
    tx: AsyncConnection, tenant_id: str, organizer_oid: str, upcoming_after: datetime
) -> list[InterviewRow]:
    """The organizer's pending/confirmed interviews ending after ``upcoming_after``, by start."""
    _require_aware(upcoming_after)
    query = (
        sa.select(interviews)
        .where(
            interviews.c.tenant_id == tenant_id,
            interviews.c.organizer_oid == organizer_oid,
            interviews.c.status.in_(_BLOCKING),
            interviews.c.end_utc > upcoming_after,
            interviews.c.source != InterviewSource.MOVE.value,
        )
        .order_by(interviews.c.start_utc, interviews.c.id)
    )
    return [_interview(r) for r in await tx.execute(query)]


async def find_conflicts(
    tx: AsyncConnection,
    tenant_id: str,
    mailboxes: Iterable[str],
    start: datetime,
    end: datetime,
) -> list[InterviewRow]:
    """Pending/confirmed interviews of ``tenant_id`` overlapping ``[start, end)`` for ``mailboxes``.

    A mailbox matches as an attendee, case-insensitively; an organizer who is not an attendee is
    not blocked (rows written before that rule indexed the organizer too: they are filtered here).
    Touching intervals do not overlap. Raises ``ValueError`` on naive times.
    """
    _require_aware(start, end)
    wanted = sorted({m.strip().lower() for m in mailboxes})
    if not wanted:
        return []
    ids = sa.select(interview_mailboxes.c.interview_id).where(interview_mailboxes.c.mailbox.in_(wanted))
    query = (
        sa.select(interviews)
        .where(
            interviews.c.tenant_id == tenant_id,
            interviews.c.status.in_(_BLOCKING),
            interviews.c.start_utc < end,
            interviews.c.end_utc > start,
            interviews.c.id.in_(ids),
        )
        .order_by(interviews.c.start_utc, interviews.c.id)
    )
    rows = [_interview(r) for r in await tx.execute(query)]
    return [r for r in rows if _attends(r, wanted)]


async def list_stale_pending(tx: AsyncConnection, older_than: datetime) -> list[InterviewRow]:
    """``pending`` interviews created before ``older_than`` (crash recovery), oldest first."""
    _require_aware(older_than)
    query = (
        sa.select(interviews)
        .where(
            interviews.c.status == InterviewStatus.PENDING.value,
            interviews.c.created_at < older_than,
        )
        .order_by(interviews.c.created_at, interviews.c.id)
    )
    return [_interview(r) for r in await tx.execute(query)]


# --------------------------------------------------------------------------------------------
# Offers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferRow:
    """A candidate booking offer. ``token_hash`` is SHA-256 of the capability token (32 bytes)."""

    id: str
    tenant_id: str
    organizer_oid: str
    organizer_upn: str
    token_hash: bytes
    interviewers: tuple[str, ...]
    display_names: tuple[str, ...]
    duration_min: int
    window_start: datetime
    window_end: datetime
    candidate_time_zone: str
    expires_at: datetime
    status: OfferStatus
    interview_id: str | None
    conversation_ref: bytes | None
    conversation_ref_key_id: int | None
    reschedules_used: int
    created_at: datetime


def _offer(row: sa.Row[Any]) -> OfferRow:
    m = dict(row._mapping)
    ref = m.pop("conversation_ref")
    return OfferRow(
        **{
            **m,
            "token_hash": bytes(m["token_hash"]),
            "interviewers": tuple(m["interviewers"]),
            "display_names": tuple(m["display_names"]),
            "status": OfferStatus(m["status"]),
        },
        conversation_ref=None if ref is None else bytes(ref),
    )


async def create_offer(
    tx: AsyncConnection,
    *,
    tenant_id: str,
    organizer_oid: str,
    organizer_upn: str,
    token_hash: bytes,
    interviewers: Sequence[str],
    display_names: Sequence[str],
    duration_min: int,
    window_start: datetime,
    window_end: datetime,
    candidate_time_zone: str,
    expires_at: datetime,
    conversation_ref: tuple[bytes, int] | None = None,
    now: datetime | None = None,
) -> OfferRow:
    """Store an ``open`` offer. ``token_hash`` must be a 32-byte SHA-256 digest (never the token).

    ``conversation_ref`` is ``(encrypted_blob, key_id)``. Raises ``ValueError`` on a wrong hash
    length, naive times or an empty window.
    """
    if len(token_hash) != 32:
        raise ValueError("token_hash must be a 32-byte SHA-256 digest")
    _require_aware(window_start, window_end, expires_at)
    if window_start >= window_end:
        raise ValueError("window_start must be before window_end")
    offer_id = str(uuid.uuid4())
    ref, ref_key = conversation_ref if conversation_ref is not None else (None, None)
    await tx.execute(
        sa.insert(offers).values(
            id=offer_id,
            tenant_id=tenant_id,
            organizer_oid=organizer_oid,
            organizer_upn=organizer_upn,
            token_hash=token_hash,
            interviewers=list(interviewers),
            display_names=list(display_names),
            duration_min=duration_min,
            window_start=window_start,
            window_end=window_end,
            candidate_time_zone=candidate_time_zone,
            expires_at=expires_at,
            status=OfferStatus.OPEN.value,
            interview_id=None,
            conversation_ref=ref,
            conversation_ref_key_id=ref_key,
            reschedules_used=0,
            created_at=_now(now),
        )
    )
    row = await get_offer(tx, offer_id)
    assert row is not None  # noqa: S101  (inserted just above, same transaction)
    return row


async def get_offer(tx: AsyncConnection, offer_id: str) -> OfferRow | None:
    """The offer with this id, or ``None``."""
    row = (await tx.execute(sa.select(offers).where(offers.c.id == offer_id))).first()
    return None if row is None else _offer(row)


async def get_offer_by_token_hash(tx: AsyncConnection, token_hash: bytes) -> OfferRow | None:
    """The offer whose capability token hashes to ``token_hash``, or ``None``. Callers still check
    ``status`` and ``expires_at``.
    """
    row = (await tx.execute(sa.select(offers).where(offers.c.token_hash == token_hash))).first()
    return None if row is None else _offer(row)


async def mark_offer_booked(tx: AsyncConnection, offer_id: str, interview_id: str) -> bool:
    """``open`` → ``booked``, race-safe (``UPDATE … WHERE status='open'``): exactly one of several
    concurrent callers gets ``True``.
    """
    result = await tx.execute(
        sa.update(offers)
        .where(offers.c.id == offer_id, offers.c.status == OfferStatus.OPEN.value)
        .values(status=OfferStatus.BOOKED.value, interview_id=interview_id)
    )
    return result.rowcount == 1


async def reopen_offer(tx: AsyncConnection, offer_id: str, *, interview_id: str | None = None) -> bool:
    """``booked`` → ``open`` (the link books again), race-safe (``UPDATE … WHERE status='booked'``).

    With ``interview_id`` the offer must still point at that interview, so a late reopen for a
    failed attempt never releases a newer booking. ``reschedules_used`` is kept. Returns ``False``
    (nothing changed) when the offer is not booked, points elsewhere, or does not exist.
    """
    where = [offers.c.id == offer_id, offers.c.status == OfferStatus.BOOKED.value]
    if interview_id is not None:
        where.append(offers.c.interview_id == interview_id)
    result = await tx.execute(
        sa.update(offers).where(*where).values(status=OfferStatus.OPEN.value, interview_id=None)
    )
    return result.rowcount == 1


async def count_reschedule(tx: AsyncConnection, offer_id: str, *, limit: int | None = None) -> bool:
    """Count one candidate change (reschedule or cancel) of a ``booked`` offer, race-safe.

    With ``limit`` the increment happens only while ``reschedules_used < limit`` (one atomic
    ``UPDATE … WHERE``), so concurrent changes can never exceed it. Returns ``False`` (nothing
    counted) when the offer is not booked, the limit is reached, or it does not exist.
    """
    where = [offers.c.id == offer_id, offers.c.status == OfferStatus.BOOKED.value]
    if limit is not None:
        where.append(offers.c.reschedules_used < limit)
    result = await tx.execute(
        sa.update(offers).where(*where).values(reschedules_used=offers.c.reschedules_used + 1)
    )
    return result.rowcount == 1


async def revoke_offer(tx: AsyncConnection, offer_id: str) -> bool:
    """``open`` → ``revoked``; ``False`` if the offer is not open (or does not exist)."""
    result = await tx.execute(
        sa.update(offers)
        .where(offers.c.id == offer_id, offers.c.status == OfferStatus.OPEN.value)
        .values(status=OfferStatus.REVOKED.value)
    )
    return result.rowcount == 1


async def revoke_offers_for_user(tx: AsyncConnection, tenant_id: str, organizer_oid: str) -> int:
    """Revoke every open offer the user made (archive/disconnect); returns how many."""
    result = await tx.execute(
        sa.update(offers)
        .where(
            offers.c.tenant_id == tenant_id,
            offers.c.organizer_oid == organizer_oid,
            offers.c.status == OfferStatus.OPEN.value,
        )
        .values(status=OfferStatus.REVOKED.value)
    )
    return result.rowcount


async def expire_offers(tx: AsyncConnection, now: datetime) -> int:
    """Mark open offers with ``expires_at <= now`` as ``expired``. Returns how many changed."""
    _require_aware(now)
    result = await tx.execute(
        sa.update(offers)
        .where(offers.c.status == OfferStatus.OPEN.value, offers.c.expires_at <= now)
        .values(status=OfferStatus.EXPIRED.value)
    )
    return result.rowcount


async def list_offers(tx: AsyncConnection, tenant_id: str, organizer_oid: str) -> list[OfferRow]:
    """The organizer's offers, newest first."""
    query = (
        sa.select(offers)
        .where(offers.c.tenant_id == tenant_id, offers.c.organizer_oid == organizer_oid)
        .order_by(offers.c.created_at.desc(), offers.c.id)
    )
    return [_offer(r) for r in await tx.execute(query)]


# --------------------------------------------------------------------------------------------
# Archived users
# --------------------------------------------------------------------------------------------


async def archive_user(tx: AsyncConnection, tenant_id: str, oid: str, at: datetime) -> bool:
    """Record that the user left the tenant. Idempotent: returns ``False`` if already archived.

    Deleting their token cache and revoking their offers are separate calls the caller makes in the
    same transaction (:func:`delete_token_cache`, :func:`revoke_offers_for_user`).
    """
    _require_aware(at)
    if await is_archived(tx, tenant_id, oid):
        return False
    await tx.execute(sa.insert(archived_users).values(tenant_id=tenant_id, oid=oid, archived_at=at))
    return True


async def is_archived(tx: AsyncConnection, tenant_id: str, oid: str) -> bool:
    """Whether the (tenant, oid) pair was archived."""
    query = sa.select(sa.literal(1)).where(
        archived_users.c.tenant_id == tenant_id, archived_users.c.oid == oid
    )
    return (await tx.execute(query)).first() is not None


confirm = confirm_interview  # the names in the storage brief
mark = mark_interview
