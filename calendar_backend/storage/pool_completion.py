"""Trainee seats due to be credited (issue 18): the automatic training sweep's query.

A trainee seat (``pool_assignments`` with role ``shadow`` / ``reverse_shadow``) is *due* once its
interview has ended, is still ``confirmed`` (a cancelled, failed or withdrawn interview never
counts), and the seat is not credited yet (``completed_at`` is NULL). A trainee whose decline the
drift watcher recorded for that interview (a ``watch_drift`` row of kind ``declined`` naming them)
is not due: they did not attend. Nor is a seat whose interview was deleted or moved in Outlook
(an open ``deleted``/``moved`` drift row): it did not take place at the booked time, at least not
until the manager repairs it. Crediting itself is
:func:`calendar_backend.storage.record_training_session` (a conditional update of
``completed_at``: a seat is credited once, whoever races).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.storage.schema import InterviewStatus, interviews, pool_assignments, require_aware
from calendar_backend.storage.watch import watch_drift

_TRAINEE_ROLES: Final = ("shadow", "reverse_shadow")


@dataclass(frozen=True, slots=True)
class DueSeat:
    """A trainee's seat on an interview that ended and is not credited yet."""

    tenant_id: str
    interview_id: str
    mailbox: str
    end: datetime


async def due_training_seats(
    tx: AsyncConnection,
    now: datetime,
    *,
    limit: int = 500,
    seat: tuple[str, str] | None = None,
) -> list[DueSeat]:
    """Up to ``limit`` due trainee seats (module docstring), oldest interview end first.

    ``seat`` (``(interview id, mailbox)``): only that seat, and its row is locked until the
    transaction ends (PostgreSQL ``FOR UPDATE``; SQLite transactions are serialized), so the
    caller that finds it due is the one that credits it."""
    require_aware(now)
    declined = sa.exists().where(
        watch_drift.c.interview_id == pool_assignments.c.interview_id,
        watch_drift.c.kind == "declined",
        sa.func.lower(watch_drift.c.who) == pool_assignments.c.mailbox,
    )
    unrepaired = sa.exists().where(  # deleted or moved in Outlook, not repaired yet: it did not happen then
        watch_drift.c.interview_id == pool_assignments.c.interview_id,
        watch_drift.c.kind.in_(("deleted", "moved")),
        watch_drift.c.status.in_(("open", "applying")),
    )
    query = (
        sa.select(
            interviews.c.tenant_id,
            pool_assignments.c.interview_id,
            pool_assignments.c.mailbox,
            interviews.c.end_utc,
        )
        .select_from(pool_assignments.join(interviews, interviews.c.id == pool_assignments.c.interview_id))
        .where(
            pool_assignments.c.role.in_(_TRAINEE_ROLES),
            pool_assignments.c.completed_at.is_(None),
            interviews.c.status == InterviewStatus.CONFIRMED.value,
            interviews.c.end_utc <= now,
            sa.not_(declined),
            sa.not_(unrepaired),
        )
        .order_by(interviews.c.end_utc, pool_assignments.c.interview_id, pool_assignments.c.mailbox)
        .limit(limit)
    )
    if seat is not None:
        query = query.where(
            pool_assignments.c.interview_id == seat[0], pool_assignments.c.mailbox == seat[1]
        ).with_for_update(of=pool_assignments)
    return [DueSeat(t, i, m, e) for t, i, m, e in await tx.execute(query)]


async def seat_role(tx: AsyncConnection, interview_id: str, mailbox: str) -> str | None:
    """The role of ``mailbox``'s seat on ``interview_id`` (``shadow`` ...), or ``None``."""
    query = sa.select(pool_assignments.c.role).where(
        pool_assignments.c.interview_id == interview_id, pool_assignments.c.mailbox == mailbox
    )
    return (await tx.execute(query)).scalar_one_or_none()
