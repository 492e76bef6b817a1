"""Interviewer pools: pools, members, trainees' progress, who was drawn from a pool, cap overrides.

The pure rules are in :mod:`calendar_backend.pools` (load, weeks), :mod:`calendar_backend.pools_selection`
and :mod:`calendar_backend.pools_training`; this module stores them and enforces the caps at booking
time: :func:`reserve_pool_seats` runs in the booking's own transaction, after
:func:`calendar_backend.storage.insert_pending`, under the same per-tenant booking lock (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: the advisory lock), so parallel bookings drawing from one pool
cannot both take a member's last seat of a week.

What counts as load here is what :func:`calendar_backend.pools.count_load` counts, restricted to what
is stored: pending and confirmed interviews (not move holds, unless the hold carries the seats of the
interview it moves: `pool_moves.move_pool_seats`) of the tenant with the person as an attendee, at
their current start; sessions attended as a trainee count only as training load.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.errors import CapReachedError
from calendar_backend.pools import (
    HotWindow,
    Member,
    MemberLoad,
    Pool,
    day_bounds,
    load_of,
    normalize_address,
    week_bounds,
)
from calendar_backend.pools_selection import CapOverride
from calendar_backend.pools_training import Trainee, TrainingEvent, TrainingStage, record_session
from calendar_backend.storage.interviews import lock_booking
from calendar_backend.storage.schema import (
    InterviewSource,
    InterviewStatus,
    interview_mailboxes,
    interviews,
    now_utc,
    pool_assignments,
    pool_cap_overrides,
    pool_members,
    pool_trainees,
    pools,
    require_aware,
)

_COUNTING: Final = (InterviewStatus.PENDING.value, InterviewStatus.CONFIRMED.value)


class SeatRole(StrEnum):
    """How a person drawn from a pool attends an interview."""

    MEMBER = "member"
    SHADOW = "shadow"
    REVERSE_SHADOW = "reverse_shadow"


_TRAINEE_ROLES: Final = (SeatRole.SHADOW.value, SeatRole.REVERSE_SHADOW.value)


@dataclass(frozen=True, slots=True)
class PoolRecord:
    """A stored pool: its id, the pure :class:`Pool` (with members), owner and trainees."""

    id: str
    tenant_id: str
    pool: Pool
    owner: str | None
    trainees: tuple[Trainee, ...]
    created_at: datetime
    updated_at: datetime
    group_id: str | None = None  # an Entra group whose members are drawn too (read live, never stored)


def _member(row: Any) -> Member:
    return Member(
        address=row.address,
        zone=row.zone,
        week_start=row.week_start,
        weekly_cap=row.weekly_cap,
        daily_cap=row.daily_cap,
        hot_hours=tuple(HotWindow.from_json(h) for h in row.hot_hours),
    )


def _trainee(row: Any) -> Trainee:
    return Trainee(
        address=row.address,
        zone=row.zone,
        week_start=row.week_start,
        shadow_required=row.shadow_required,
        reverse_shadow_required=row.reverse_shadow_required,
        shadow_done=row.shadow_done,
        reverse_shadow_done=row.reverse_shadow_done,
        weekly_cap=row.weekly_cap,
        daily_cap=row.daily_cap,
    )


async def _record(tx: AsyncConnection, row: Any) -> PoolRecord:
    members = await tx.execute(
        sa.select(pool_members).where(pool_members.c.pool_id == row.id).order_by(pool_members.c.address)
    )
    trainees = await tx.execute(
        sa.select(pool_trainees).where(pool_trainees.c.pool_id == row.id).order_by(pool_trainees.c.address)
    )
    pool = Pool(
        name=row.name,
        role=row.role,
        default_weekly_cap=row.default_weekly_cap,
        default_daily_cap=row.default_daily_cap,
        members=tuple(_member(m) for m in members),
    )
    return PoolRecord(
        row.id,
        row.tenant_id,
        pool,
        row.owner,
        tuple(_trainee(t) for t in trainees),
        row.created_at,
        row.updated_at,
        row.group_id,
    )


def _member_values(member: Member) -> dict[str, object]:
    return {
        "address": member.address,
        "zone": member.zone,
        "week_start": member.week_start,
        "weekly_cap": member.weekly_cap,
        "daily_cap": member.daily_cap,
        "hot_hours": [h.to_json() for h in member.hot_hours],
    }


async def create_pool(
    tx: AsyncConnection,
    tenant_id: str,
    pool: Pool,
    *,
    owner: str | None = None,
    now: datetime | None = None,
    group_id: str | None = None,
) -> str | None:
    """Store a new pool with its members (and Entra group, ``group_id``); its id, or ``None`` if the
    tenant has a pool of that name."""
    if await get_pool(tx, tenant_id, pool.name) is not None:
        return None
    at, pool_id = now_utc(now), str(uuid.uuid4())
    await tx.execute(
        sa.insert(pools).values(
            id=pool_id,
            tenant_id=tenant_id,
            name=pool.name,
            role=pool.role,
            owner=None if owner is None else normalize_address(owner),
            default_weekly_cap=pool.default_weekly_cap,
            default_daily_cap=pool.default_daily_cap,
            created_at=at,
            updated_at=at,
            group_id=group_id,
        )
    )
    for member in pool.members:
        await add_pool_member(tx, pool_id, member, now=at)
    return pool_id


async def get_pool(tx: AsyncConnection, tenant_id: str, name: str) -> PoolRecord | None:
    """The tenant's pool called ``name``, or ``None``."""
    query = sa.select(pools).where(pools.c.tenant_id == tenant_id, pools.c.name == name)
    row = (await tx.execute(query)).first()
    return None if row is None else await _record(tx, row)


async def get_pool_by_id(tx: AsyncConnection, pool_id: str) -> PoolRecord | None:
    """The pool with this id, or ``None``."""
    row = (await tx.execute(sa.select(pools).where(pools.c.id == pool_id))).first()
    return None if row is None else await _record(tx, row)


async def list_pools(tx: AsyncConnection, tenant_id: str) -> list[PoolRecord]:
    """The tenant's pools, by name."""
    rows = await tx.execute(sa.select(pools).where(pools.c.tenant_id == tenant_id).order_by(pools.c.name))
    return [await _record(tx, r) for r in rows.all()]


async def _touch(tx: AsyncConnection, pool_id: str, now: datetime | None) -> None:
    await tx.execute(sa.update(pools).where(pools.c.id == pool_id).values(updated_at=now_utc(now)))


async def set_pool_group(
    tx: AsyncConnection, pool_id: str, group_id: str | None, *, now: datetime | None = None
) -> bool:
    """Set (or, with ``None``, clear) the pool's Entra group; ``False`` if it was that already."""
    current = (await tx.execute(sa.select(pools.c.group_id).where(pools.c.id == pool_id))).first()
    if current is None or current.group_id == group_id:
        return False
    await tx.execute(
        sa.update(pools).where(pools.c.id == pool_id).values(group_id=group_id, updated_at=now_utc(now))
    )
    return True


async def add_pool_member(
    tx: AsyncConnection, pool_id: str, member: Member, *, now: datetime | None = None
) -> bool:
    """Add a member; ``False`` (nothing changed) if they are one already."""
    exists = sa.select(sa.literal(1)).where(
        pool_members.c.pool_id == pool_id, pool_members.c.address == member.address
    )
    if (await tx.execute(exists)).first() is not None:
        return False
    await tx.execute(
        sa.insert(pool_members).values(pool_id=pool_id, added_at=now_utc(now), **_member_values(member))
    )
    await _touch(tx, pool_id, now)
    return True


async def remove_pool_member(
    tx: AsyncConnection, pool_id: str, address: str, *, now: datetime | None = None
) -> bool:
    """Remove a member (their past interviews keep counting as their load); ``False`` if not one."""
    result = await tx.execute(
        sa.delete(pool_members).where(
            pool_members.c.pool_id == pool_id, pool_members.c.address == normalize_address(address)
        )
    )
    if result.rowcount == 1:
        await _touch(tx, pool_id, now)
    return result.rowcount == 1


async def set_pool_caps(
    tx: AsyncConnection,
    pool_id: str,
    *,
    address: str | None = None,
    weekly_cap: int | None = None,
    daily_cap: int | None = None,
    now: datetime | None = None,
) -> bool:
    """Set the pool's default caps (``address`` ``None``) or one member's caps; ``None`` leaves a
    default as it is and resets a member's cap to the pool default. ``False`` if no such row."""
    if address is None:
        values = {
            k: v
            for k, v in (("default_weekly_cap", weekly_cap), ("default_daily_cap", daily_cap))
            if v is not None
        }
        result = await tx.execute(
            sa.update(pools).where(pools.c.id == pool_id).values(updated_at=now_utc(now), **values)
        )
        return result.rowcount == 1
    result = await tx.execute(
        sa.update(pool_members)
        .where(pool_members.c.pool_id == pool_id, pool_members.c.address == normalize_address(address))
        .values(weekly_cap=weekly_cap, daily_cap=daily_cap)
    )
    if result.rowcount == 1:
        await _touch(tx, pool_id, now)
    return result.rowcount == 1


async def add_trainee(
    tx: AsyncConnection, pool_id: str, trainee: Trainee, *, now: datetime | None = None
) -> bool:
    """Add a trainee (with their required counts and training caps); ``False`` if already one."""
    exists = sa.select(sa.literal(1)).where(
        pool_trainees.c.pool_id == pool_id, pool_trainees.c.address == trainee.address
    )
    if (await tx.execute(exists)).first() is not None:
        return False
    at = now_utc(now)
    await tx.execute(
        sa.insert(pool_trainees).values(
            pool_id=pool_id,
            address=trainee.address,
            zone=trainee.zone,
            week_start=trainee.week_start,
            shadow_required=trainee.shadow_required,
            reverse_shadow_required=trainee.reverse_shadow_required,
            shadow_done=trainee.shadow_done,
            reverse_shadow_done=trainee.reverse_shadow_done,
            weekly_cap=trainee.weekly_cap,
            daily_cap=trainee.daily_cap,
            added_at=at,
            updated_at=at,
            graduated_at=at if trainee.stage is TrainingStage.GRADUATED else None,
        )
    )
    await _touch(tx, pool_id, now)
    return True


async def counted_starts(
    tx: AsyncConnection,
    tenant_id: str,
    addresses: Iterable[str],
    start: datetime,
    end: datetime,
    *,
    training: bool = False,
    exclude_interview: str | None = None,
) -> dict[str, list[datetime]]:
    """Start instants of each person's counted interviews starting in ``[start, end)``.

    Interviewer load by default (sessions attended as a trainee left out); ``training=True``:
    only those sessions. Pending and confirmed interviews of ``tenant_id``, not move holds (but a
    hold carrying pool seats counts for those people: a move racing a booking, `move_pool_seats`)."""
    require_aware(start, end)
    wanted = sorted({a.strip().lower() for a in addresses})
    out: dict[str, list[datetime]] = {a: [] for a in wanted}
    if not wanted:
        return out
    seat = sa.and_(
        pool_assignments.c.interview_id == interview_mailboxes.c.interview_id,
        pool_assignments.c.mailbox == interview_mailboxes.c.mailbox,
    )
    as_trainee = pool_assignments.c.role.in_(_TRAINEE_ROLES)
    query = (
        sa.select(interview_mailboxes.c.mailbox, interviews.c.start_utc)
        .select_from(
            interview_mailboxes.join(interviews, interviews.c.id == interview_mailboxes.c.interview_id)
        )
        .outerjoin(pool_assignments, seat)
        .where(
            interview_mailboxes.c.mailbox.in_(wanted),
            interviews.c.tenant_id == tenant_id,
            interviews.c.status.in_(_COUNTING),
            # a move hold counts when it carries the seats of the interview it moves (move_pool_seats)
            sa.or_(interviews.c.source != InterviewSource.MOVE.value, pool_assignments.c.role.is_not(None)),
            interviews.c.start_utc >= start,
            interviews.c.start_utc < end,
            as_trainee if training else sa.or_(pool_assignments.c.role.is_(None), sa.not_(as_trainee)),
        )
    )
    if exclude_interview is not None:
        query = query.where(interviews.c.id != exclude_interview)
    for mailbox, at in await tx.execute(query):
        out[mailbox].append(at)
    return out


async def load_people(
    tx: AsyncConnection,
    tenant_id: str,
    people: Sequence[Member | Trainee],
    start: datetime,
    end: datetime,
    *,
    training: bool = False,
) -> dict[str, MemberLoad]:
    """Each person's stored load over ``[start, end)`` (choose it to cover the selection's rolling
    window and the session's local week), for :func:`calendar_backend.pools_selection.select_members`."""
    starts = await counted_starts(tx, tenant_id, [p.address for p in people], start, end, training=training)
    return {p.address: load_of(p.address, p.zone, p.week_start, starts[p.address]) for p in people}


async def check_cap(
    tx: AsyncConnection,
    tenant_id: str,
    person: Member | Trainee,
    caps: tuple[int, int],
    at: datetime,
    *,
    training: bool,
    exclude_interview: str,
    outside: Sequence[datetime] = (),
) -> str | None:
    """The cap ``person`` would pass with one more interview at ``at`` (``"weekly"``, ``"daily"``,
    ``training_``-prefixed for training caps), or ``None``; ``exclude_interview`` is not counted."""
    week_lo, week_hi = week_bounds(at, person.zone, person.week_start)
    day_lo, day_hi = day_bounds(at, person.zone)
    found = await counted_starts(
        tx,
        tenant_id,
        [person.address],
        week_lo,
        week_hi,
        training=training,
        exclude_interview=exclude_interview,
    )
    starts = found[person.address] + [s for s in outside if week_lo <= s < week_hi]
    prefix = "training_" if training else ""
    if len(starts) + 1 > caps[0]:
        return f"{prefix}weekly"
    if sum(1 for s in starts if day_lo <= s < day_hi) + 1 > caps[1]:
        return f"{prefix}daily"
    return None


async def reserve_pool_seats(
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
    now: datetime | None = None,
    live: Pool | None = None,
) -> tuple[tuple[str, str], ...]:
    """Record who of interview ``interview_id`` (already inserted in this transaction, starting at
    ``start``) was drawn from the pool, refusing any cap it would break.

    For each member, their interviews in their local week and local day holding ``start`` (this one
    excluded) plus one must stay within their weekly and daily caps, unless ``overrides`` names them
    (the override is stored with who allowed it and why; ``(address, override id)`` pairs are
    returned, for the caller's audit rows: :func:`calendar_backend.pools_booking.reserve_from_pool`).
    ``outside`` (tenants that opted in) gives, per member, the start instants of their Outlook events
    carrying the "Interview" category, read just in time and never stored (leave out the events
    OpenSlot itself created); they count like interviews. Trainees are checked against their
    training caps and never overridden. Takes the tenant's
    booking lock first. Raises :class:`CapReachedError` (roll the transaction back: the pending
    interview goes with it) or ``ValueError`` if someone is not a member / trainee of the pool.
    ``live``: the pool as read just now (a pool with an Entra group: its members read live from
    Graph, `calendar_backend.pool_groups`); the stored one otherwise.
    """
    require_aware(start)
    await lock_booking(tx, tenant_id)
    record = await get_pool_by_id(tx, pool_id)
    if record is None or record.tenant_id != tenant_id:
        raise ValueError("no such pool")
    pool = live or record.pool
    allowed = {o.address: o for o in overrides}
    seats: list[tuple[str, SeatRole]] = []
    override_ids: list[tuple[str, str]] = []
    for address in members:
        member = pool.member(address)
        if member is None:
            raise ValueError("not a member of the pool")
        caps = (pool.weekly_cap(member), pool.daily_cap(member))
        breach = await check_cap(
            tx,
            tenant_id,
            member,
            caps,
            start,
            training=False,
            exclude_interview=interview_id,
            outside=(outside or {}).get(member.address, ()),
        )
        if breach is not None and member.address not in allowed:
            raise CapReachedError(member.address, breach)
        if breach is not None:
            override = allowed[member.address]
            override_ids.append(
                (member.address, await store_override(tx, tenant_id, pool_id, interview_id, override, now))
            )
        seats.append((member.address, SeatRole.MEMBER))
    by_address = {t.address: t for t in record.trainees}
    for address, stage in trainees:
        trainee = by_address.get(address.strip().lower())
        if trainee is None or stage is TrainingStage.GRADUATED:
            raise ValueError("not a trainee of the pool")
        caps = (trainee.weekly_cap, trainee.daily_cap)
        breach = await check_cap(
            tx, tenant_id, trainee, caps, start, training=True, exclude_interview=interview_id
        )
        if breach is not None:
            raise CapReachedError(trainee.address, breach)
        seats.append((trainee.address, SeatRole(stage.value)))
    if seats:
        await tx.execute(
            sa.insert(pool_assignments),
            [
                {"interview_id": interview_id, "mailbox": a, "pool_id": pool_id, "role": r.value}
                for a, r in seats
            ],
        )
    return tuple(override_ids)


async def store_override(
    tx: AsyncConnection, tenant_id: str, pool_id: str, interview_id: str, o: CapOverride, now: datetime | None
) -> str:
    """Store a cap override (who allowed it and why) for ``interview_id``; returns its id."""
    override_id = str(uuid.uuid4())
    await tx.execute(
        sa.insert(pool_cap_overrides).values(
            id=override_id,
            tenant_id=tenant_id,
            pool_id=pool_id,
            address=o.address,
            interview_id=interview_id,
            actor=o.actor[:64],
            reason=o.reason,
            created_at=now_utc(now),
        )
    )
    return override_id


async def list_cap_overrides(tx: AsyncConnection, tenant_id: str) -> list[dict[str, object]]:
    """The tenant's cap overrides, oldest first (id, pool, address, interview, actor, reason, when)."""
    query = (
        sa.select(pool_cap_overrides)
        .where(pool_cap_overrides.c.tenant_id == tenant_id)
        .order_by(pool_cap_overrides.c.created_at, pool_cap_overrides.c.id)
    )
    return [dict(r._mapping) for r in await tx.execute(query)]  # noqa: SLF001  (SQLAlchemy's public Row API)


async def record_training_session(
    tx: AsyncConnection, interview_id: str, address: str, *, now: datetime | None = None
) -> tuple[TrainingEvent, ...]:
    """Credit a trainee's completed session (their seat on ``interview_id``) and apply the stage
    changes it causes; graduation also adds them to the pool as a member (pool default caps).

    Idempotent: a seat already completed, or not a trainee seat, changes nothing and returns ``()``;
    two transactions crediting the same seat at once credit it once (conditional update), and
    two seats of one trainee credited at once both count (the trainee row is locked).
    The caller audits each returned event in the same transaction.
    """
    address = normalize_address(address)
    seat = (
        await tx.execute(
            sa.select(pool_assignments).where(
                pool_assignments.c.interview_id == interview_id,
                pool_assignments.c.mailbox == address,
                pool_assignments.c.role.in_(_TRAINEE_ROLES),
                pool_assignments.c.completed_at.is_(None),
            )
        )
    ).first()
    if seat is None:
        return ()
    at = now_utc(now)
    claimed = await tx.execute(  # conditional: of two racing transactions, one credits the seat
        sa.update(pool_assignments)
        .where(
            pool_assignments.c.interview_id == interview_id,
            pool_assignments.c.mailbox == address,
            pool_assignments.c.completed_at.is_(None),
        )
        .values(completed_at=at)
    )
    if claimed.rowcount != 1:
        return ()
    where = (pool_trainees.c.pool_id == seat.pool_id, pool_trainees.c.address == address)
    # FOR UPDATE (PostgreSQL; SQLite transactions are serialized): no lost update of the counts
    row = (await tx.execute(sa.select(pool_trainees).where(*where).with_for_update())).first()
    if row is None:  # the trainee was removed since
        return ()
    before = _trainee(row)
    after, events = record_session(before, TrainingStage(seat.role))
    after_counts = {"shadow_done": after.shadow_done, "reverse_shadow_done": after.reverse_shadow_done}
    graduated = after.stage is TrainingStage.GRADUATED and before.stage is not TrainingStage.GRADUATED
    await tx.execute(
        sa.update(pool_trainees)
        .where(*where)
        .values(updated_at=at, graduated_at=at if graduated else row.graduated_at, **after_counts)
    )
    if graduated:
        await add_pool_member(
            tx, seat.pool_id, Member(address, zone=after.zone, week_start=after.week_start), now=at
        )
    return events
