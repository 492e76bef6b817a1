"""Loop templates (issue 17): a tenant's saved interview loops, shared by its hiring managers.

One row per (tenant, name): the template's JSON exactly as `loop_templates.to_json` wrote it, who
saved it last (``owner_oid``) and when. No calendar data is stored here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.storage.schema import UTCDateTime, metadata, now_utc

loop_templates: Final = sa.Table(
    "loop_templates",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(120), primary_key=True),
    sa.Column("template_json", sa.Text, nullable=False),
    sa.Column("owner_oid", sa.String(64), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


@dataclass(frozen=True, slots=True)
class LoopTemplateRow:
    """A saved template: ``template`` is its JSON document."""

    tenant_id: str
    name: str
    template: dict[str, Any]
    owner_oid: str
    updated_at: datetime


def _row(row: sa.Row[Any]) -> LoopTemplateRow:
    m = row._mapping  # noqa: SLF001  (SQLAlchemy's public Row API)
    return LoopTemplateRow(
        m["tenant_id"], m["name"], json.loads(m["template_json"]), m["owner_oid"], m["updated_at"]
    )


async def list_loop_templates(tx: AsyncConnection, tenant_id: str) -> list[LoopTemplateRow]:
    """The tenant's templates by name."""
    rows = await tx.execute(
        sa.select(loop_templates)
        .where(loop_templates.c.tenant_id == tenant_id)
        .order_by(loop_templates.c.name)
    )
    return [_row(r) for r in rows]


async def get_loop_template(tx: AsyncConnection, tenant_id: str, name: str) -> LoopTemplateRow | None:
    """The template saved under ``name``, if any."""
    row = (
        await tx.execute(
            sa.select(loop_templates).where(
                loop_templates.c.tenant_id == tenant_id, loop_templates.c.name == name
            )
        )
    ).first()
    return None if row is None else _row(row)


async def put_loop_template(
    tx: AsyncConnection,
    tenant_id: str,
    name: str,
    template: dict[str, Any],
    owner_oid: str,
    now: datetime | None = None,
) -> LoopTemplateRow:
    """Create or replace the template ``name`` of the tenant."""
    values = {
        "template_json": json.dumps(template, sort_keys=True, separators=(",", ":")),
        "owner_oid": owner_oid,
        "updated_at": now_utc(now),
    }
    where = (loop_templates.c.tenant_id == tenant_id, loop_templates.c.name == name)
    updated = await tx.execute(sa.update(loop_templates).where(*where).values(**values))
    if not updated.rowcount:
        await tx.execute(sa.insert(loop_templates).values(tenant_id=tenant_id, name=name, **values))
    return LoopTemplateRow(tenant_id, name, template, owner_oid, values["updated_at"])  # type: ignore[arg-type]


async def delete_loop_template(tx: AsyncConnection, tenant_id: str, name: str) -> bool:
    """Delete the template ``name``; ``False`` when there was none."""
    result = await tx.execute(
        sa.delete(loop_templates).where(
            loop_templates.c.tenant_id == tenant_id, loop_templates.c.name == name
        )
    )
    return bool(result.rowcount)
