"""The Calendar Service's SQL store: SQLAlchemy Core (async) over SQLite (default) or PostgreSQL.

What is stored (and nothing else; calendar data never is):

- ``tenants``: consented tenants with their *encrypted* app credential (opaque bytes + ``key_id``);
- ``token_caches``: per (tenant, user oid) *encrypted* MSAL token-cache blobs;
- ``interviews`` (+ ``interview_mailboxes``, an index of who is in each one): invites OpenSlot
  created;
- ``offers``: candidate booking offers; the capability token is stored only as its SHA-256 hash;
- ``loops``: interview loops; their sessions are ``interviews`` rows with ``loop_id``/``session_index``;
- ``archived_users``;
- ``pools`` (+ ``pool_members``, ``pool_trainees``, ``pool_assignments``: who of an interview was
  drawn from a pool and as what, ``pool_cap_overrides``: who allowed a cap to be exceeded and why);
- ``loop_templates``: a tenant's saved interview loop templates (JSON, no calendar data);
- ``audit_log`` / ``audit_checkpoints`` (tables defined in :mod:`calendar_backend.audit`).

The bot's ``bot_state`` table may share the database, but the bot owns it (dialogs/sql_storage.py);
it is not in :data:`metadata`.

Modules, one per aggregate (this package re-exports their public names, so callers write
``storage.get_interview``): ``schema`` (metadata, tables, enums, :class:`UTCDateTime`), ``engine``
(engine, SQLite hooks, migrations, :class:`Store`), ``tenants`` (tenants, token caches, archived
users), ``blobs`` (every encrypted value, for key rotation), ``interviews`` (bookings, conflicts),
``moves`` (holds and moves), ``offers``, ``pools`` (interviewer pools, caps, trainees),
``loop_templates`` (saved interview loops), ``loops`` (interview loops), ``watch`` (the drift
watcher: ``storage.watch.*``).

Invariants:

- Every ``datetime`` is bound and returned tz-aware in UTC (:class:`UTCDateTime`); naive values
  raise ``ValueError``.
- One :meth:`Store.transaction` is one database transaction. On SQLite every transaction starts
  with ``BEGIN IMMEDIATE``, so writers serialise; on PostgreSQL the few read-then-write operations
  take an advisory transaction lock (:func:`insert_pending`, :func:`reserve_loop`, :func:`move_interview`,
  :func:`reserve_pool_seats`, :func:`calendar_backend.audit.append_audit`).
- Repository functions take the transaction's ``AsyncConnection`` (``tx``) so that a state change
  and its audit row commit together. They never commit themselves.
"""

from __future__ import annotations

from calendar_backend.errors import CapReachedError  # raised by storage.pools
from calendar_backend.storage import pool_completion as pool_completion  # trainee seats due (issue 18)
from calendar_backend.storage import tenant_settings as tenant_settings  # per-tenant settings (r0012)
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
from calendar_backend.storage.loop_templates import (
    LoopTemplateRow,
    delete_loop_template,
    get_loop_template,
    list_loop_templates,
    loop_templates,
    put_loop_template,
)
from calendar_backend.storage.loops import (
    LoopRow,
    SessionReservation,
    confirm_loop,
    get_loop,
    get_loop_by_transaction,
    list_loops,
    list_stale_pending_loops,
    loop_sessions,
    mark_loop,
    reserve_loop,
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
    claim_loop_offer,
    count_reschedule,
    create_offer,
    expire_offers,
    get_offer,
    get_offer_by_token_hash,
    list_offers,
    mark_offer_booked,
    reopen_loop_offer,
    reopen_offer,
    revoke_offer,
    revoke_offers_for_user,
    set_offer_loop,
)
from calendar_backend.storage.pool_moves import move_pool_seats
from calendar_backend.storage.pools import (
    PoolRecord,
    SeatRole,
    add_pool_member,
    add_trainee,
    counted_starts,
    create_pool,
    get_pool,
    get_pool_by_id,
    list_cap_overrides,
    list_pools,
    load_people,
    record_training_session,
    remove_pool_member,
    reserve_pool_seats,
    set_pool_caps,
    set_pool_group,
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
    loops,
    metadata,
    offers,
    pool_assignments,
    pool_cap_overrides,
    pool_members,
    pool_trainees,
    pools,
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
    "CapReachedError",
    "EncryptedBlob",
    "InterviewRow",
    "InterviewSource",
    "InterviewStatus",
    "LoopRow",
    "LoopTemplateRow",
    "OfferRow",
    "OfferStatus",
    "PoolRecord",
    "SeatRole",
    "SessionReservation",
    "Store",
    "TenantRow",
    "TenantStatus",
    "UTCDateTime",
    "add_pool_member",
    "add_trainee",
    "archive_user",
    "archived_users",
    "claim_loop_offer",
    "complete_move",
    "confirm",
    "confirm_interview",
    "confirm_loop",
    "count_reschedule",
    "counted_starts",
    "create_engine",
    "create_offer",
    "create_pool",
    "delete_loop_template",
    "delete_tenant",
    "delete_token_cache",
    "enable_wal",
    "expire_offers",
    "find_conflicts",
    "get_interview",
    "get_interview_by_transaction",
    "get_loop",
    "get_loop_by_transaction",
    "get_loop_template",
    "get_offer",
    "get_offer_by_token_hash",
    "get_pool",
    "get_pool_by_id",
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
    "list_cap_overrides",
    "list_interviews",
    "list_loop_templates",
    "list_loops",
    "list_offers",
    "list_pools",
    "list_stale_pending",
    "list_stale_pending_loops",
    "list_tenant_ids",
    "load_people",
    "loop_sessions",
    "loop_templates",
    "loops",
    "mark",
    "mark_interview",
    "mark_loop",
    "mark_offer_booked",
    "metadata",
    "migrate",
    "move_interview",
    "move_pool_seats",
    "offers",
    "pool_assignments",
    "pool_cap_overrides",
    "pool_members",
    "pool_trainees",
    "pools",
    "put_loop_template",
    "put_tenant",
    "put_token_cache",
    "record_training_session",
    "release_hold",
    "remove_pool_member",
    "reopen_loop_offer",
    "reopen_offer",
    "replace_blob",
    "reserve_loop",
    "reserve_pool_seats",
    "restrict_sqlite_files",
    "revoke_offer",
    "revoke_offers_for_user",
    "set_offer_loop",
    "set_pool_caps",
    "set_pool_group",
    "set_tenant_status",
    "tenants",
    "token_caches",
]
