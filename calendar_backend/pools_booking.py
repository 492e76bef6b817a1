"""Drawing interviewers from a pool inside a booking, audited by construction (issue 18).

The booking code (single interviews and loops) calls these inside the transaction that reserves the
interview (after :func:`calendar_backend.storage.insert_pending`), so the seat, the cap check, any
cap override and their audit rows commit or roll back together:

- :func:`reserve_from_pool` records who was drawn from the pool (and trainees added), refuses a
  cap breach (:class:`calendar_backend.storage.CapReachedError`, roll back) unless a manager's
  :class:`calendar_backend.pools_selection.CapOverride` names that member, and appends one
  ``pool.cap_override`` audit row per override (actor: who allowed it; targets: pool, member,
  override id, interview; the reason itself is in ``pool_cap_overrides``, since audit rows carry no
  free text);
- :func:`complete_training` credits the trainees of a held session and appends one
  ``pool.training`` audit row per stage change (result ``reverse_shadow`` or ``graduated``).

I/O module (storage, audit); the rules are in the pure modules ``pools*``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend import storage
from calendar_backend.audit import AuditEvent, append_audit
from calendar_backend.pools import Pool
from calendar_backend.pools_selection import CapOverride as CapOverride  # re-exported for booking.move
from calendar_backend.pools_training import TrainingEvent, TrainingStage


async def reserve_from_pool(
    tx: AsyncConnection,
    *,
    tenant_id: str,
    pool_id: str,
    interview_id: str,
    start: datetime,
    members: Sequence[str],
    trainees: Sequence[tuple[str, TrainingStage]] = (),
    overrides: Sequence[CapOverride] = (),
    outside: Mapping[str, Sequence[datetime]] | None = None,
    request_id: str,
    now: datetime | None = None,
    live: Pool | None = None,
) -> tuple[tuple[str, str], ...]:
    """:func:`calendar_backend.storage.reserve_pool_seats` plus an audit row per cap override.

    Returns the ``(address, override id)`` pairs used. Raises what ``reserve_pool_seats`` raises.
    """
    used = await storage.reserve_pool_seats(
        tx,
        tenant_id=tenant_id,
        pool_id=pool_id,
        interview_id=interview_id,
        start=start,
        members=members,
        trainees=trainees,
        overrides=overrides,
        outside=outside,
        now=now,
        live=live,
    )
    actors = {o.address: o.actor for o in overrides}
    for address, override_id in used:
        await append_audit(
            tx,
            AuditEvent(
                tenant_id=tenant_id,
                actor_oid=actors[address][:64],
                operation="pool.cap_override",
                targets=(pool_id, address, override_id, interview_id),
                result="overridden",
                at=now or datetime.now(UTC),
                request_id=request_id,
            ),
        )
    return used


async def move_seats(
    tx: AsyncConnection,
    *,
    tenant_id: str,
    interview_id: str,
    hold_id: str,
    start: datetime,
    overrides: Sequence[CapOverride] = (),
    request_id: str,
    now: datetime | None = None,
) -> tuple[tuple[str, str], ...]:
    """:func:`calendar_backend.storage.move_pool_seats` (a move's cap recheck, in the hold's
    transaction) plus one ``pool.cap_override`` audit row per override used.

    Raises what ``move_pool_seats`` raises (``CapReachedError``: roll the hold back)."""
    used = await storage.move_pool_seats(
        tx, tenant_id=tenant_id, interview_id=interview_id, hold_id=hold_id, start=start,
        overrides=overrides, now=now,
    )  # fmt: skip
    actors = {o.address: o.actor for o in overrides}
    for address, override_id in used:
        await append_audit(
            tx,
            AuditEvent(
                tenant_id=tenant_id, actor_oid=actors[address][:64], operation="pool.cap_override",
                targets=("move", address, override_id, interview_id), result="overridden",
                at=now or datetime.now(UTC), request_id=request_id,
            ),
        )  # fmt: skip
    return used


async def hold_with_seats(
    tx: AsyncConnection,
    row: storage.InterviewRow,
    start: datetime,
    end: datetime,
    overrides: Sequence[CapOverride],
    request_id: str,
) -> storage.InterviewRow | None:
    """`storage.insert_hold` for moving ``row`` to ``[start, end)``, then :func:`move_seats` (the
    caps of the people ``row`` drew from pools, in the new local week/day) in the same transaction.

    Returns the hold, or ``None`` as ``insert_hold`` does. Raises ``SlotTakenError`` or
    ``CapReachedError`` (roll the transaction back: the hold goes with it)."""
    hold = await storage.insert_hold(tx, row, start, end)
    if hold is not None:
        await move_seats(
            tx, tenant_id=row.tenant_id, interview_id=row.id, hold_id=hold.id, start=start,
            overrides=overrides, request_id=request_id,
        )  # fmt: skip
    return hold


async def complete_training(
    tx: AsyncConnection,
    *,
    tenant_id: str,
    interview_id: str,
    trainees: Sequence[str],
    actor: str,
    request_id: str,
    now: datetime | None = None,
) -> tuple[TrainingEvent, ...]:
    """Credit each trainee's completed session of ``interview_id``; audit every stage change.

    Idempotent (a seat is credited once). Returns the stage changes, graduations included.
    """
    changes: list[TrainingEvent] = []
    for address in trainees:
        for event in await storage.record_training_session(tx, interview_id, address, now=now):
            await append_audit(
                tx,
                AuditEvent(
                    tenant_id=tenant_id,
                    actor_oid=actor,
                    operation="pool.training",
                    targets=(interview_id, event.address),
                    result=event.to_stage.value,
                    at=now or datetime.now(UTC),
                    request_id=request_id,
                ),
            )
            changes.append(event)
    return tuple(changes)
