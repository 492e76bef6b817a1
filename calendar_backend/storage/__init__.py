"""The Calendar Service's SQL store: SQLAlchemy Core (async) over SQLite (default) or PostgreSQL.

What is stored (and nothing else; calendar data never is):

- ``tenants``: consented tenants with their *encrypted* app credential (opaque bytes + ``key_id``);
- ``token_caches``: per (tenant, user oid) *encrypted* MSAL token-cache blobs;
- ``interviews`` (+ ``interview_mailboxes``, an index of who is in each one): invites OpenSlot
  created;
- ``offers``: candidate booking offers; the capability token is stored only as its SHA-256 hash;
- ``archived_users``;
- ``audit_log`` / ``audit_checkpoints`` (tables defined in :mod:`calendar_backend.audit`).

The bot's ``bot_state`` table may share the database, but the bot owns it (dialogs/sql_storage.py);
it is not in :data:`metadata`.

Modules, one per aggregate (this package re-exports their public names, so callers write
``storage.get_interview``): ``schema`` (metadata, tables, enums, :class:`UTCDateTime`), ``engine``
(engine, SQLite hooks, migrations, :class:`Store`), ``tenants`` (tenants, token caches, archived
users), ``blobs`` (every encrypted value, for key rotation), ``interviews`` (bookings, conflicts),
``moves`` (holds and moves), ``offers``, ``watch`` (the drift watcher: ``storage.watch.*``).

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

from calendar_backend.storage import watch as watch  # the drift watcher's tables (watch.py)
from calendar_backend.storage.blobs import EncryptedBlob, iter_encrypted, replace_blob
from calendar_backend.storage.engine import (
    MIGRATIONS,
    Store,
    create_engine,
    enable_wal,
    migrate,
    restrict_sqlite_files,
)
from calendar_backend.storage.interviews import (
    InterviewRow,
    confirm_interview,
    find_conflicts,
    get_interview,
    get_interview_by_transaction,
    insert_pending,
    interview_row,
    list_interviews,
    list_stale_pending,
    mark_interview,
)
from calendar_backend.storage.moves import (
    complete_move,
    hold_target,
    insert_hold,
    move_interview,
    release_hold,
)
from calendar_backend.storage.offers import (
    OfferRow,
    count_reschedule,
    create_offer,
    expire_offers,
    get_offer,
    get_offer_by_token_hash,
    list_offers,
    mark_offer_booked,
    reopen_offer,
    revoke_offer,
    revoke_offers_for_user,
)
from calendar_backend.storage.schema import (
    BlobKind,
    InterviewSource,
    InterviewStatus,
    OfferStatus,
    TenantStatus,
    UTCDateTime,
    archived_users,
    interview_mailboxes,
    interviews,
    metadata,
    offers,
    tenants,
    token_caches,
)
from calendar_backend.storage.tenants import (
    TenantRow,
    archive_user,
    delete_tenant,
    delete_token_cache,
    get_tenant,
    get_token_cache,
    is_archived,
    list_tenant_ids,
    put_tenant,
    put_token_cache,
    set_tenant_status,
)

confirm = confirm_interview  # the names in the storage brief
mark = mark_interview

__all__ = [
    "MIGRATIONS",
    "BlobKind",
    "EncryptedBlob",
    "InterviewRow",
    "InterviewSource",
    "InterviewStatus",
    "OfferRow",
    "OfferStatus",
    "Store",
    "TenantRow",
    "TenantStatus",
    "UTCDateTime",
    "archive_user",
    "archived_users",
    "complete_move",
    "confirm",
    "confirm_interview",
    "count_reschedule",
    "create_engine",
    "create_offer",
    "delete_tenant",
    "delete_token_cache",
    "enable_wal",
    "expire_offers",
    "find_conflicts",
    "get_interview",
    "get_interview_by_transaction",
    "get_offer",
    "get_offer_by_token_hash",
    "get_tenant",
    "get_token_cache",
    "hold_target",
    "insert_hold",
    "insert_pending",
    "interview_mailboxes",
    "interview_row",
    "interviews",
    "is_archived",
    "iter_encrypted",
    "list_interviews",
    "list_offers",
    "list_stale_pending",
    "list_tenant_ids",
    "mark",
    "mark_interview",
    "mark_offer_booked",
    "metadata",
    "migrate",
    "move_interview",
    "offers",
    "put_tenant",
    "put_token_cache",
    "release_hold",
    "reopen_offer",
    "replace_blob",
    "restrict_sqlite_files",
    "revoke_offer",
    "revoke_offers_for_user",
    "set_tenant_status",
    "tenants",
    "token_caches",
]
