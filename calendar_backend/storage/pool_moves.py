"""Moving an interview that has pool seats: the caps rechecked in the new local week and day (issue 18).

Split from :mod:`calendar_backend.storage.pools` (same rules: :func:`reserve_pool_seats`); the move's
hold is inserted by :func:`calendar_backend.storage.moves.insert_hold` in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.errors import CapReachedError
from calendar_backend.pools import Member
from calendar_backend.pools_selection import CapOverride
from calendar_backend.storage.interviews import lock_booking
from calendar_backend.storage.pools import PoolRecord, SeatRole, check_cap, get_pool_by_id, store_override
from calendar_backend.storage.schema import pool_assignments, require_aware


async def move_pool_seats(
    tx: AsyncConnection,
    *,
    tenant_id: str,
    interview_id: str,
    hold_id: str,
    start: datetime,
    overrides: Sequence[CapOverride] = (),
    now: datetime | None = None,
) -> tuple[tuple[str, str], ...]:
    """Recheck the caps of the people interview ``interview_id`` drew from pools, for its move to
    ``start`` (the move hold ``hold_id``, inserted in this transaction), and copy its seats to the hold.

    Each member's interviews in their local week and day holding ``start`` (the moving interview
    itself left out: moving within a week or day never fails on its own seat) plus one must stay
    within their caps, unless ``overrides`` names them (stored against the interview, returned as
    ``(address, override id)`` for the caller's audit rows). Trainees are checked against their
    training caps. The hold then carries the seats, so it counts as load (`counted_starts`) for any
    booking or move that takes the lock after this one: a move and a booking racing for a member's
    last seat of a week cannot both win. Someone no longer listed in a pool without an Entra group
    is not checked; a member drawn from a pool's group is checked against the pool's default caps. Takes the
    tenant's booking lock. Raises :class:`CapReachedError` (roll the transaction back: the hold
    goes with it).
    """
    require_aware(start)
    await lock_booking(tx, tenant_id)
    seats, used = await recheck_seats(tx, tenant_id, interview_id, start, overrides, now)
    if seats:
        await tx.execute(
            sa.insert(pool_assignments),
            [{"interview_id": hold_id, "mailbox": m, "pool_id": p, "role": r} for m, p, r in seats],
        )
    return used


async def recheck_seats(
    tx: AsyncConnection,
    tenant_id: str,
    interview_id: str,
    start: datetime,
    overrides: Sequence[CapOverride] = (),
    now: datetime | None = None,
) -> tuple[list[tuple[str, str, str]], tuple[tuple[str, str], ...]]:
    """The caps of the people interview ``interview_id`` drew from pools, for it at ``start`` (the
    interview itself not counted), as :func:`move_pool_seats` states them; call it under the
    tenant's booking lock. Returns its seats ``(mailbox, pool id, role)`` and the overrides used
    ``(address, override id)``. Raises :class:`CapReachedError`."""
    seats = list(
        await tx.execute(
            sa.select(pool_assignments.c.mailbox, pool_assignments.c.pool_id, pool_assignments.c.role)
            .where(pool_assignments.c.interview_id == interview_id)
            .order_by(pool_assignments.c.pool_id, pool_assignments.c.mailbox)
        )
    )
    allowed = {o.address: o for o in overrides}
    used: list[tuple[str, str]] = []
    records: dict[str, PoolRecord | None] = {}
    for mailbox, pool_id, role in seats:
        if pool_id not in records:
            records[pool_id] = await get_pool_by_id(tx, pool_id)
        record = records[pool_id]
        if record is None:
            continue
        if role == SeatRole.MEMBER.value:
            member = record.pool.member(mailbox)
            if member is None and record.group_id is not None:
                # drawn from the pool's Entra group (no listed row): the pool's default caps, in a
                # UTC Monday week (the storage reads no mailbox zone); never left unchecked
                member = Member(mailbox)
            if member is None:
                continue
            caps = (record.pool.weekly_cap(member), record.pool.daily_cap(member))
            breach = await check_cap(
                tx, tenant_id, member, caps, start, training=False, exclude_interview=interview_id
            )
            if breach is not None and member.address not in allowed:
                raise CapReachedError(member.address, breach)
            if breach is not None:
                override = allowed[member.address]
                used.append(
                    (
                        member.address,
                        await store_override(tx, tenant_id, pool_id, interview_id, override, now),
                    )
                )
        else:
            trainee = next((t for t in record.trainees if t.address == mailbox), None)
            if trainee is not None:
                caps = (trainee.weekly_cap, trainee.daily_cap)
                breach = await check_cap(
                    tx, tenant_id, trainee, caps, start, training=True, exclude_interview=interview_id
                )
                if breach is not None:
                    raise CapReachedError(trainee.address, breach)
    return [(m, p, r) for m, p, r in seats], tuple(used)
