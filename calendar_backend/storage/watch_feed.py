"""The drift feed's rows (r0009): an interview's sealed conversation reference, and the drift rows
not yet posted to the manager's chat, leased to one bot poller at a time (r0014)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.storage.schema import interviews
from calendar_backend.storage.watch import watch_drift


@dataclass(frozen=True, slots=True)
class FeedRow:
    """An undelivered open drift row with what the card shows of its interview."""

    drift_id: str
    tenant_id: str
    interview_id: str
    kind: str
    who: str
    repairs: tuple[dict[str, Any], ...]
    subject: str
    start: datetime
    end: datetime
    conversation_ref: bytes
    applied_repair: str | None = None  # r0013: set when the watcher applied it itself (auto_applied)
    detected_at: datetime | None = None
    organizer_oid: str = ""  # the card's "your time" is the organizer's mailbox zone
    organizer_upn: str = ""


async def set_conversation_ref(
    tx: AsyncConnection, interview_id: str, tenant_id: str, sealed: bytes, key_id: int
) -> bool:
    """Store the sealed reference on the interview's row (the caller's tenant only)."""
    i = interviews.c
    stmt = (
        sa.update(interviews)
        .where(i.id == interview_id, i.tenant_id == tenant_id)
        .values(conversation_ref=sealed, conversation_ref_key_id=key_id)
    )
    return (await tx.execute(stmt)).rowcount == 1


async def undelivered(
    tx: AsyncConnection, limit: int = 50, extra: sa.ColumnElement[bool] | None = None
) -> list[FeedRow]:
    """Open (or auto-applied, r0013) drift rows not yet posted whose interview has a conversation
    reference (and that match ``extra``), oldest first."""
    d, i = watch_drift.c, interviews.c
    query = (
        sa.select(
            d.id,
            d.tenant_id,
            d.interview_id,
            d.kind,
            d.who,
            d.repairs,
            i.subject,
            i.start_utc,
            i.end_utc,
            i.conversation_ref,
            d.status,
            d.applied_repair,
            d.detected_at,
            i.organizer_oid,
            i.organizer_upn,
        )
        .join(interviews, sa.and_(i.id == d.interview_id, i.tenant_id == d.tenant_id))
        .where(
            d.delivered_at.is_(None), d.status.in_(("open", "auto_applied")), i.conversation_ref.is_not(None)
        )
        .where(extra if extra is not None else sa.true())
        .order_by(d.detected_at, d.id)
        .limit(limit)
    )
    return [
        FeedRow(
            r.id,
            r.tenant_id,
            r.interview_id,
            r.kind,
            r.who,
            tuple(r.repairs or ()),
            r.subject,
            r.start_utc,
            r.end_utc,
            bytes(r.conversation_ref),
            r.applied_repair if r.status == "auto_applied" else None,
            r.detected_at,
            r.organizer_oid,
            r.organizer_upn,
        )
        for r in await tx.execute(query)
    ]


async def claim(
    tx: AsyncConnection,
    poller: str,
    now: datetime,
    until: datetime,
    limit: int = 50,
    planned_before: datetime | None = None,
) -> list[FeedRow]:
    """Lease the undelivered rows to ``poller`` until ``until``: those no one holds, whose lease ran
    out, or that ``poller`` already holds (its own retry). One conditional UPDATE: on PostgreSQL a
    concurrent claimer of the same row waits for this transaction and then finds the row held, so two
    pollers never get the same row at once. Returns the rows won, oldest first.

    The watcher commits a drift row first and stores its repairs after planning them: a row without
    repairs is left alone until it was detected before ``planned_before`` (planning found none, or
    failed), so the one card shown carries the repair buttons."""
    d = watch_drift.c
    free = sa.or_(d.claimed_until.is_(None), d.claimed_until <= now, d.claimed_by == poller)
    candidates = [
        r
        for r in await undelivered(tx, limit, free)
        if r.drift_id
        and (
            r.repairs
            or planned_before is None
            or (r.detected_at is not None and r.detected_at <= planned_before)
        )
    ]
    if not candidates:
        return []
    stmt = (
        sa.update(watch_drift)
        .where(d.id.in_([r.drift_id for r in candidates]), d.delivered_at.is_(None), free)
        .values(claimed_by=poller, claimed_until=until)
        .returning(d.id)
    )
    won = {row.id for row in await tx.execute(stmt)}
    return [r for r in candidates if r.drift_id in won]


async def mark_delivered(tx: AsyncConnection, ids: list[str], now: datetime) -> int:
    """Mark drift rows delivered (idempotent); the number newly marked."""
    d = watch_drift.c
    stmt = sa.update(watch_drift).where(d.id.in_(ids), d.delivered_at.is_(None)).values(delivered_at=now)
    return (await tx.execute(stmt)).rowcount
