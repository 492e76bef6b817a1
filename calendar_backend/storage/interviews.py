"""Interview rows: record pending, confirm, mark, look up, find conflicts, list stale pending.

Moves and the holds that reserve a move's new time are in :mod:`calendar_backend.storage.moves`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.errors import SlotTakenError
from calendar_backend.storage.schema import (
    InterviewSource,
    InterviewStatus,
    interview_mailboxes,
    interviews,
    now_utc,
    require_aware,
)

_BOOKING_LOCK_CLASS: Final = 0x4F53_0002  # first int4 of pg_advisory_xact_lock(int4, int4)
_BLOCKING: Final = (InterviewStatus.PENDING.value, InterviewStatus.CONFIRMED.value)
_TRANSITIONS: Final[dict[InterviewStatus, tuple[str, ...]]] = {
    InterviewStatus.FAILED: (InterviewStatus.PENDING.value,),
    InterviewStatus.CANCELLED: _BLOCKING,
}


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
    loop_id: str | None = None  # a session of this interview loop (storage.loops)
    session_index: int | None = None

    @property
    def start(self) -> datetime:
        """Alias of ``start_utc``."""
        return self.start_utc

    @property
    def end(self) -> datetime:
        """Alias of ``end_utc``."""
        return self.end_utc


def interview_row(row: sa.Row[Any]) -> InterviewRow:
    m = row._mapping  # noqa: SLF001  (SQLAlchemy's public Row API)
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
                "loop_id",
                "session_index",
            )
        },
        status=InterviewStatus(m["status"]),
        attendees=tuple(m["attendees"]),
        source=InterviewSource(m["source"]),
    )


def blocked_mailboxes(attendees: Iterable[str]) -> list[str]:
    """The mailboxes an interview blocks: its attendees only. The organizer is not an attendee
    unless they are on the panel, so their other interviews do not block them (issue 13)."""
    return sorted({a.strip().lower() for a in attendees})


def _attends(row: InterviewRow, wanted: Iterable[str]) -> bool:
    return not {a.strip().lower() for a in row.attendees}.isdisjoint(wanted)


async def lock_booking(tx: AsyncConnection, tenant_id: str) -> None:
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
    require_aware(start, end)
    if start >= end:
        raise ValueError("start must be before end")
    mailboxes = blocked_mailboxes(attendees)
    await lock_booking(tx, tenant_id)
    if await find_conflicts(tx, tenant_id, mailboxes, start, end):
        raise SlotTakenError()
    return await insert_row(
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


async def insert_row(
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
    mailboxes = blocked_mailboxes(attendees)
    at = now_utc(now)
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
            updated_at=now_utc(now),
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
        .values(status=status.value, updated_at=now_utc(now), version=interviews.c.version + 1)
    )
    return result.rowcount == 1


async def get_interview(tx: AsyncConnection, interview_id: str) -> InterviewRow | None:
    """The interview with this id, or ``None``."""
    row = (await tx.execute(sa.select(interviews).where(interviews.c.id == interview_id))).first()
    return None if row is None else interview_row(row)


async def get_interview_by_transaction(tx: AsyncConnection, transaction_id: str) -> InterviewRow | None:
    """The interview recorded under this Graph ``transactionId``, or ``None``."""
    query = sa.select(interviews).where(interviews.c.transaction_id == transaction_id)
    row = (await tx.execute(query)).first()
    return None if row is None else interview_row(row)


async def list_interviews(
    tx: AsyncConnection, tenant_id: str, organizer_oid: str, upcoming_after: datetime
) -> list[InterviewRow]:
    """The organizer's pending/confirmed interviews ending after ``upcoming_after``, by start."""
    require_aware(upcoming_after)
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
    return [interview_row(r) for r in await tx.execute(query)]


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
    require_aware(start, end)
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
    rows = [interview_row(r) for r in await tx.execute(query)]
    return [r for r in rows if _attends(r, wanted)]


async def list_stale_pending(tx: AsyncConnection, older_than: datetime) -> list[InterviewRow]:
    """``pending`` interviews created before ``older_than`` (crash recovery), oldest first."""
    require_aware(older_than)
    query = (
        sa.select(interviews)
        .where(
            interviews.c.status == InterviewStatus.PENDING.value,
            interviews.c.created_at < older_than,
        )
        .order_by(interviews.c.created_at, interviews.c.id)
    )
    return [interview_row(r) for r in await tx.execute(query)]
