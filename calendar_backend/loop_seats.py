"""Pooled loop options, shared by the manager's loop search and a candidate's loop link (issue 18).

Both ask the same questions of a template whose sessions draw from a pool:

- :func:`gate_skipping`: the mailbox gate for everyone, pool members (and trainees) it refuses as
  not allowed, left or unreadable *skipped* (each refusal audited once by the gate, the rest asked
  again); a refused fixed interviewer or room stays a refusal;
- :func:`pooled_loops`: the loop engine with each pooled session's seats as "any N of these free
  and under cap" (`loop_pools.seat_free_time`), then the members picked on the best candidates only
  (`loop_pools.assign`: free, under caps, least loaded first, deterministic) until ``limit``
  options name everyone; the shortfalls of the candidates dropped are kept for explanations;
- :func:`session_times`: an option with its picks as the sessions a booking names
  (`loop_contract.SessionTime` with ``pool_members`` and ``trainees``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from calendar_backend.auth import Principal
from calendar_backend.gate import Refusal
from calendar_backend.loop_contract import SessionTime
from calendar_backend.loop_pools import PoolData, SeatPick, Shortfall, assign, seat_free_time, seat_spec
from calendar_backend.loop_templates import LoopTemplate
from calendar_backend.loops import MAX_OPTIONS, Explanation, LoopSchedule, LoopSpec, find_loops
from calendar_backend.slots import Interval
from calendar_backend.tenancy import Tenancy, TenantContext

POOL_CANDIDATES: Final = 4  # candidates tried per wanted option before a pool's shortfall is explained
SKIPPABLE: Final = frozenset({"archived", "not_allowed", "unreadable"})  # rules a pool member is skipped for


@dataclass(frozen=True, slots=True)
class PooledLoops:
    """The options whose every pooled session is filled (best first, with who was picked), the
    engine's explanations (seat mailboxes still named) and the candidates' shortfalls."""

    options: tuple[tuple[LoopSchedule, dict[int, SeatPick]], ...]
    explanations: tuple[Explanation, ...]
    short: tuple[Shortfall, ...]


def pooled_loops(
    spec: LoopSpec,
    free: Mapping[str, Sequence[Interval]],
    template: LoopTemplate,
    pools: PoolData,
    limit: int,
    horizon: Interval,
    overrides: Collection[tuple[int, str]] = (),
) -> PooledLoops:
    """The loop engine with each pooled session's seats as "any N of these free", then the picks
    on the best candidates only (`loop_pools.assign`) until ``limit`` options name everyone.
    ``overrides``: ``(session, member)`` searched and picked as if under cap there."""
    seats = seat_free_time(free, template, pools, overrides)
    wanted = min(MAX_OPTIONS, limit * POOL_CANDIDATES)
    found = find_loops(seat_spec(spec, template), {**free, **seats}, wanted, horizon=horizon)
    options: list[tuple[LoopSchedule, dict[int, SeatPick]]] = []
    short: list[Shortfall] = []
    for schedule in found.schedules:
        picks, missing = assign(schedule, template, pools, free, overrides)
        if missing:
            short.extend(missing)
            continue
        options.append((schedule, picks))
        if len(options) == limit:
            break
    return PooledLoops(tuple(options), tuple(found.explanations), tuple(short))


async def gate_skipping(
    tenancy: Tenancy,
    principal: Principal | None,
    ctx: TenantContext,
    operation: str,
    request_id: str,
    people: list[str],
    rooms: list[str],
    fixed: Collection[str],
    pools: PoolData | None,
    *,
    actor_oid: str | None = None,
) -> tuple[Refusal | None, list[str], PoolData | None]:
    """The mailbox gate for everyone; pool members (and trainees) it refuses as not allowed, left
    or unreadable are skipped (each refusal audited once by the gate) and the rest asked again.

    Returns the refusal left (a ``fixed`` person or a room), who may be read, the pools without
    the skipped."""
    while True:
        refusal = await tenancy.check_mailboxes(
            principal, ctx, operation, request_id, people, rooms, actor_oid=actor_oid
        )
        drawn = set(pools.members()) - set(fixed) if pools is not None else set()
        if (
            refusal is None
            or pools is None
            or refusal.rule.value not in SKIPPABLE
            or not refusal.mailboxes
            or not set(refusal.mailboxes) <= drawn
        ):
            return refusal, people, pools
        skipped = set(refusal.mailboxes)
        pools = pools.without(skipped)
        people = [p for p in people if p not in skipped]


def session_times(schedule: LoopSchedule, picks: Mapping[int, SeatPick]) -> tuple[SessionTime, ...]:
    """``schedule`` as the sessions a booking names, by index, each pooled one with its picks."""
    out = []
    for p in sorted(schedule.placements, key=lambda p: p.session):
        pick = picks.get(p.session)
        members, trainees = (pick.members, pick.trainees) if pick is not None else ((), ())
        out.append(SessionTime(p.session, p.start, p.end, p.room, members, trainees))
    return tuple(out)
