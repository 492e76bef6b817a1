"""Per-tenant settings a tenant admin changes with ``python -m calendar_backend tenant-settings``.

One row per tenant that changed a setting; a tenant without a row has the defaults (every opt-in
off). Today: ``count_interview_category`` (issue 18): pool load also counts each member's Outlook
events carrying the "Interview" category (:mod:`calendar_backend.pools_outside`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.storage.schema import UTCDateTime, metadata, now_utc

tenant_settings: Final = sa.Table(
    "tenant_settings",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("count_interview_category", sa.Boolean, nullable=False),
    sa.Column("updated_by", sa.String(64), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


@dataclass(frozen=True, slots=True)
class TenantSettings:
    """A tenant's settings (the defaults when it never changed one)."""

    count_interview_category: bool = False


async def get_tenant_settings(tx: AsyncConnection, tenant_id: str) -> TenantSettings:
    """The tenant's settings; the defaults when there is no row."""
    row = (
        await tx.execute(sa.select(tenant_settings).where(tenant_settings.c.tenant_id == tenant_id))
    ).first()
    return TenantSettings() if row is None else TenantSettings(bool(row.count_interview_category))


async def set_tenant_settings(
    tx: AsyncConnection,
    tenant_id: str,
    settings: TenantSettings,
    *,
    actor: str,
    now: datetime | None = None,
) -> bool:
    """Store the tenant's settings; ``True`` when something changed (the caller audits it)."""
    before = await get_tenant_settings(tx, tenant_id)
    values = {
        "count_interview_category": settings.count_interview_category,
        "updated_by": actor[:64],
        "updated_at": now_utc(now),
    }
    exists = (
        await tx.execute(sa.select(sa.literal(1)).where(tenant_settings.c.tenant_id == tenant_id))
    ).first()
    if exists is None:
        await tx.execute(sa.insert(tenant_settings).values(tenant_id=tenant_id, **values))
    else:
        await tx.execute(
            sa.update(tenant_settings).where(tenant_settings.c.tenant_id == tenant_id).values(**values)
        )
    return before != settings
