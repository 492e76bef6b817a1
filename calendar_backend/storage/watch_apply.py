"""Drift-row helpers of the issue 19 polish (split from :mod:`calendar_backend.storage.watch`,
which is near its size limit): the planned-first record check, the reconciler's hands-off test for
a rebook being applied, and the newcomers a manager cannot read (``passed_over``, r0016)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.errors import CapReachedError
from calendar_backend.pools import Member
from calendar_backend.pools_training import Trainee
from calendar_backend.storage.pools import SeatRole, check_cap, get_pool_by_id
from calendar_backend.storage.schema import interviews, pool_assignments
from calendar_backend.storage.watch import watch_drift


async def drift_recorded(tx: AsyncConnection, fingerprint: str) -> bool:
    """Whether a drift row with ``fingerprint`` exists (the watcher plans only new ones)."""
    query = sa.select(watch_drift.c.id).where(watch_drift.c.fingerprint == fingerprint[:400])
    return (await tx.execute(query)).first() is not None


async def applying_owns(tx: AsyncConnection, transaction_id: str) -> bool:
    """Whether a drift row being applied (``applying``) owns the booking with ``transaction_id``
    (a rebook's new row, ``apply_ref``): the watcher's recovery settles it, not the reconciler."""
    query = sa.select(watch_drift.c.id).where(
        watch_drift.c.apply_ref == transaction_id, watch_drift.c.status == "applying"
    )
    return (await tx.execute(query)).first() is not None


async def pass_over(tx: AsyncConnection, drift_id: str, address: str) -> tuple[str, ...]:
    """Remember ``address`` on the drift row as never to be offered again; returns the list."""
    found = (
        await tx.execute(sa.select(watch_drift.c.passed_over).where(watch_drift.c.id == drift_id))
    ).first()
    current = [str(a) for a in (found[0] if found is not None and found[0] else [])]
    if address.lower() not in current:
        current.append(address.lower())
        await tx.execute(
            sa.update(watch_drift).where(watch_drift.c.id == drift_id).values(passed_over=current)
        )
    return tuple(current)


async def recheck_seat_caps(tx: AsyncConnection, tenant_id: str, interview_id: str, start: datetime) -> None:
    """The caps of the people interview ``interview_id`` drew from pools, for booking it again at
    ``start`` (a deleted event's ``time-N``: `watch_rebook`), the interview itself not counted; the
    rules of :func:`calendar_backend.storage.pool_moves.move_pool_seats` (a member drawn from a
    pool's Entra group: the pool's default caps; trainees: their training caps). Call it under
    the tenant's booking lock, before the new row is inserted. Raises :class:`CapReachedError`."""
    seats = await tx.execute(
        sa.select(pool_assignments.c.mailbox, pool_assignments.c.pool_id, pool_assignments.c.role)
        .where(pool_assignments.c.interview_id == interview_id)
        .order_by(pool_assignments.c.pool_id, pool_assignments.c.mailbox)
    )
    for mailbox, pool_id, role in list(seats):
        record = await get_pool_by_id(tx, pool_id)
        if record is None:
            continue
        person: Member | Trainee | None
        if role == SeatRole.MEMBER.value:
            person = record.pool.member(mailbox) or (Member(mailbox) if record.group_id is not None else None)
            caps = (record.pool.weekly_cap(person), record.pool.daily_cap(person)) if person else (0, 0)
        else:
            person = next((t for t in record.trainees if t.address == mailbox), None)
            caps = (person.weekly_cap, person.daily_cap) if isinstance(person, Trainee) else (0, 0)
        if person is None:
            continue
        training = role != SeatRole.MEMBER.value
        breach = await check_cap(
            tx, tenant_id, person, caps, start, training=training, exclude_interview=interview_id
        )
        if breach is not None:
            raise CapReachedError(person.address, breach)


async def set_join_url(tx: AsyncConnection, interview_id: str, join_url: str) -> None:
    """A loop session's Teams join link, after the loop's meeting moved to a rebooked session."""
    await tx.execute(sa.update(interviews).where(interviews.c.id == interview_id).values(join_url=join_url))
