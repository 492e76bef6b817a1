"""Interview loops: a loop row and its sessions (interview rows with ``loop_id``), reserved at once.

A loop is all or nothing: `reserve_loop` inserts the loop (``pending``) and one ``pending``
interview per session in the caller's transaction, under the per-tenant booking lock, after the
same overlap check a single booking runs (every session's mailboxes, the candidate included).
The loop becomes ``confirmed`` only when every session is (`confirm_loop`); ``failed`` or
``cancelled`` when none is live any more (`mark_loop`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.errors import SlotTakenError
from calendar_backend.storage.interviews import (
    InterviewRow,
    blocked_mailboxes,
    find_conflicts,
    insert_row,
    interview_row,
    lock_booking,
)
from calendar_backend.storage.schema import InterviewSource, interviews, loops, now_utc, require_aware

LOOP_STATUSES = ("pending", "confirmed", "cancelled", "failed")


@dataclass(frozen=True, slots=True)
class LoopRow:
    """A loop OpenSlot booked (or is booking); its sessions are interview rows."""

    id: str
    tenant_id: str
    organizer_oid: str
    organizer_upn: str
    transaction_id: str
    status: str
    title: str
    candidate_name: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SessionReservation:
    """One session to reserve: ``index`` in the template, its span and every attendee."""

    index: int
    start: datetime
    end: datetime
    attendees: tuple[str, ...]
    subject: str


def _loop_row(row: sa.Row[Any]) -> LoopRow:
    m = row._mapping  # noqa: SLF001  (SQLAlchemy's public Row API)
    return LoopRow(**{k: m[k] for k in LoopRow.__dataclass_fields__})


async def reserve_loop(
    tx: AsyncConnection,
    *,
    tenant_id: str,
    organizer_oid: str,
    organizer_upn: str,
    transaction_id: str,
    title: str,
    candidate_name: str,
    sessions: Sequence[SessionReservation],
    session_transaction_id: Any,
) -> tuple[LoopRow, list[InterviewRow]]:
    """Insert the ``pending`` loop and one ``pending`` interview per session, all or none.

    Under the booking lock every session is checked against the pending/confirmed interviews of
    its mailboxes (`find_conflicts`); any overlap raises ``SlotTakenError`` (the caller's
    transaction then rolls back: nothing is reserved). ``session_transaction_id(index)`` is each
    session's Graph ``transactionId``.
    """
    for s in sessions:
        require_aware(s.start, s.end)
        if s.start >= s.end:
            raise ValueError("start must be before end")
    await lock_booking(tx, tenant_id)
    for s in sessions:
        if await find_conflicts(tx, tenant_id, blocked_mailboxes(s.attendees), s.start, s.end):
            raise SlotTakenError()
    at = now_utc(None)
    loop_id = str(uuid.uuid4())
    await tx.execute(
        sa.insert(loops).values(
            id=loop_id,
            tenant_id=tenant_id,
            organizer_oid=organizer_oid,
            organizer_upn=organizer_upn,
            transaction_id=transaction_id,
            status="pending",
            title=title,
            candidate_name=candidate_name,
            created_at=at,
            updated_at=at,
        )
    )
    rows = []
    for s in sessions:
        row = await insert_row(
            tx,
            tenant_id=tenant_id,
            organizer_oid=organizer_oid,
            organizer_upn=organizer_upn,
            transaction_id=session_transaction_id(s.index),
            start=s.start,
            end=s.end,
            attendees=s.attendees,
            candidate_name=candidate_name,
            subject=s.subject,
            source=InterviewSource.BOT,
            offer_id=None,
            now=at,
        )
        await tx.execute(
            sa.update(interviews)
            .where(interviews.c.id == row.id)
            .values(loop_id=loop_id, session_index=s.index)
        )
        rows.append(row)
    loop = await get_loop(tx, loop_id)
    assert loop is not None  # noqa: S101  (inserted just above)
    return loop, await loop_sessions(tx, loop_id)


async def get_loop(tx: AsyncConnection, loop_id: str) -> LoopRow | None:
    """The loop with this id, or ``None``."""
    row = (await tx.execute(sa.select(loops).where(loops.c.id == loop_id))).first()
    return None if row is None else _loop_row(row)


async def get_loop_by_transaction(tx: AsyncConnection, transaction_id: str) -> LoopRow | None:
    """The loop booked under this transaction id, or ``None``."""
    row = (await tx.execute(sa.select(loops).where(loops.c.transaction_id == transaction_id))).first()
    return None if row is None else _loop_row(row)


async def loop_sessions(tx: AsyncConnection, loop_id: str) -> list[InterviewRow]:
    """The loop's session rows (not the holds of a move), by session index."""
    query = (
        sa.select(interviews)
        .where(interviews.c.loop_id == loop_id, interviews.c.source != InterviewSource.MOVE.value)
        .order_by(interviews.c.session_index)
    )
    return [interview_row(r) for r in await tx.execute(query)]


async def list_loops(
    tx: AsyncConnection, tenant_id: str, organizer_oid: str, statuses: Sequence[str]
) -> list[LoopRow]:
    """The organizer's loops in ``statuses``, oldest first."""
    query = (
        sa.select(loops)
        .where(
            loops.c.tenant_id == tenant_id,
            loops.c.organizer_oid == organizer_oid,
            loops.c.status.in_(list(statuses)),
        )
        .order_by(loops.c.created_at, loops.c.id)
    )
    return [_loop_row(r) for r in await tx.execute(query)]


async def list_stale_pending_loops(tx: AsyncConnection, older_than: datetime) -> list[LoopRow]:
    """``pending`` loops created before ``older_than`` (crash recovery), oldest first."""
    require_aware(older_than)
    query = (
        sa.select(loops)
        .where(loops.c.status == "pending", loops.c.created_at < older_than)
        .order_by(loops.c.created_at, loops.c.id)
    )
    return [_loop_row(r) for r in await tx.execute(query)]


async def mark_loop(tx: AsyncConnection, loop_id: str, status: str, *, expected: str = "pending") -> bool:
    """Move the loop from ``expected`` to ``status``; ``False`` if it was not ``expected``."""
    if status not in LOOP_STATUSES:
        raise ValueError(f"unknown loop status {status!r}")
    result = await tx.execute(
        sa.update(loops)
        .where(loops.c.id == loop_id, loops.c.status == expected)
        .values(status=status, updated_at=now_utc(None))
    )
    return result.rowcount == 1


async def confirm_loop(tx: AsyncConnection, loop_id: str) -> bool:
    """``pending`` → ``confirmed``, only when every session is confirmed; else ``False``."""
    sessions = await loop_sessions(tx, loop_id)
    if not sessions or any(s.status != "confirmed" for s in sessions):
        return False
    return await mark_loop(tx, loop_id, "confirmed")
