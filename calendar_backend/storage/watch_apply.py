"""Drift-row helpers of the issue 19 polish (split from :mod:`calendar_backend.storage.watch`,
which is near its size limit): the planned-first record check, the reconciler's hands-off test for
a rebook being applied, and the newcomers a manager cannot read (``passed_over``, r0016)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.storage.pool_moves import recheck_seats
from calendar_backend.storage.schema import interviews
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
    ``start`` (a deleted event's ``time-N``: `watch_rebook`), the interview itself not counted: the
    move's own check (`pool_moves.recheck_seats`), with no override. Call it under the tenant's
    booking lock, before the new row is inserted. Raises :class:`CapReachedError`."""
    await recheck_seats(tx, tenant_id, interview_id, start)


async def set_join_url(tx: AsyncConnection, interview_id: str, join_url: str) -> None:
    """A loop session's Teams join link, after the loop's meeting moved to a rebooked session."""
    await tx.execute(sa.update(interviews).where(interviews.c.id == interview_id).values(join_url=join_url))
