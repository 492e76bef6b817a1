"""Moving a confirmed interview: the hold that reserves the new time, then the move itself.

A hold is a ``pending`` interview row (source ``move``) whose transactionId names the interview it
moves and the version it was taken at; it blocks the new time like a booking until
:func:`complete_move` gives the interview that time, or :func:`release_hold` drops it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.errors import SlotTakenError
from calendar_backend.storage.interviews import (
    InterviewRow,
    blocked_mailboxes,
    find_conflicts,
    get_interview,
    insert_row,
    lock_booking,
)
from calendar_backend.storage.schema import (
    InterviewSource,
    InterviewStatus,
    interview_mailboxes,
    interviews,
    now_utc,
    require_aware,
)

_HOLD_PREFIX: Final = "move:"


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
    require_aware(start, end)
    if start >= end:
        raise ValueError("start must be before end")
    current = await get_interview(tx, interview_id)
    if current is None or current.status is not InterviewStatus.CONFIRMED:
        return False
    await lock_booking(tx, current.tenant_id)
    mailboxes = blocked_mailboxes(current.attendees)
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
            updated_at=now_utc(now),
            version=interviews.c.version + 1,
        )
    )
    return result.rowcount == 1


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
    require_aware(start, end)
    if start >= end:
        raise ValueError("start must be before end")
    await lock_booking(tx, interview.tenant_id)
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
    clashes = await find_conflicts(tx, interview.tenant_id, blocked_mailboxes(current.attendees), start, end)
    if any(c.id != interview.id for c in clashes):
        raise SlotTakenError()
    return await insert_row(
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
