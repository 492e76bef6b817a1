"""Tenants (their sealed app credential), per-user token caches and archived users."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.storage.schema import (
    TenantStatus,
    archived_users,
    now_utc,
    require_aware,
    tenants,
    token_caches,
)


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
    at = now_utc(now)
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
        .values(status=status.value, updated_at=now_utc(now))
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
    values = {"blob": blob, "key_id": key_id, "updated_at": now_utc(now)}
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
# Archived users
# --------------------------------------------------------------------------------------------


async def archive_user(tx: AsyncConnection, tenant_id: str, oid: str, at: datetime) -> bool:
    """Record that the user left the tenant. Idempotent: returns ``False`` if already archived.

    Deleting their token cache and revoking their offers are separate calls the caller makes in the
    same transaction (:func:`delete_token_cache`, :func:`revoke_offers_for_user`).
    """
    require_aware(at)
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
