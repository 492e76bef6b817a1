"""Same-time replacements drawn from an interviewer pool (issue 19, the watcher's repairs).

When the person who declined (or now has a conflict) was drawn from a pool for that interview
(``pool_assignments``), the ``replace-N`` candidates come from the SAME pool, by the pool rules
(`pools_selection.select_members`): free at the interview's time (free/busy with the tenant's
app-only token, the optional attendee's own copy of this very event not counted, and no OpenSlot
booking then), within their weekly and daily caps in their own zone and week, least loaded first,
hot hours preferred, deterministic; never someone already on the panel; members the mailbox gate
refuses are skipped. Applying one moves the pool seat with the attendee in one transaction under
the booking lock (`booking_attendees.swap_seat`), then ONE Outlook update.

Members are read through ONE function, `_pool_members`: listed members plus, for a pool backed by an
Entra group, its members read live (``pool_groups.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from calendar_backend import storage
from calendar_backend.auth import Principal
from calendar_backend.availability import BusyRules
from calendar_backend.calendar_view import schedule_blocks
from calendar_backend.graph import GraphClient, Schedule
from calendar_backend.graph_watch import free_busy
from calendar_backend.loop_pools import LOAD_MARGIN
from calendar_backend.pool_groups import PoolGroups
from calendar_backend.pools import Member
from calendar_backend.pools_selection import select_members
from calendar_backend.slots import Interval
from calendar_backend.storage import watch as store_watch
from calendar_backend.tenancy import Tenancy, TenantContext

MAX_READ = 20  # one getSchedule


async def _pool_members(
    groups: PoolGroups | None, ctx: TenantContext, record: storage.PoolRecord
) -> tuple[Member, ...] | None:
    """The pool's members now: listed ones, plus its Entra group's read live (`pool_groups`);
    ``None`` when its group cannot be read (nobody is drawn from it then)."""
    if record.group_id is None or groups is None:
        return record.pool.members
    live = (await groups.live(ctx, [record])).get(record.pool.name)
    return None if live is None else live.pool.members


def busy_over(
    schedule: Schedule, row: storage.InterviewRow, rules: BusyRules, *, own_copy: bool = True
) -> bool:
    """Busy over the interview, not counting one item exactly at its time when ``own_copy`` (an
    optional attendee's own copy of this very event); an unreadable schedule is busy."""
    if schedule.error:
        return True
    over = [i for i in schedule.items if i.start < row.end and row.start < i.end]
    own = [i for i in over if (i.start, i.end) == (row.start, row.end)]
    if own and own_copy:
        over.remove(own[0])
    return schedule_blocks(Schedule(schedule.address, tuple(over)), Interval(row.start, row.end), rules)


class PoolReplacements:
    """Finds same-pool replacements for a pool-drawn panelist. Safe to use concurrently."""

    def __init__(
        self,
        store: storage.Store,
        graph: GraphClient,
        tenancy: Tenancy,
        rules: BusyRules,
        clock: Callable[[], datetime],
        groups: PoolGroups | None = None,
    ) -> None:
        self._store = store
        self._graph = graph
        self._tenancy = tenancy
        self._rules = rules
        self._clock = clock
        self._groups = groups

    async def seat_pool(self, row: storage.InterviewRow, who: str) -> str | None:
        """The id of the pool ``who`` was drawn from for ``row`` as a member, else None."""
        async with self._store.transaction() as tx:
            seat = await store_watch.pool_seat(tx, row.id, who)
        return seat[0] if seat is not None and seat[1] == storage.SeatRole.MEMBER.value else None

    async def candidates(
        self, row: storage.InterviewRow, pool_id: str, token: str, panel: Sequence[str], count: int
    ) -> list[str]:
        """Up to ``count`` members of the pool who can take the seat at the same time, best first."""
        async with self._store.transaction() as tx:
            record = await storage.get_pool_by_id(tx, pool_id)
        if record is None or record.tenant_id != row.tenant_id:
            return []
        ctx = await self._tenancy.context(Principal(row.tenant_id, row.organizer_oid, frozenset()))
        members = await _pool_members(self._groups, ctx, record)
        if members is None:
            return []
        taken = {p.lower() for p in panel} | {a.lower() for a in row.attendees} | {row.organizer_upn.lower()}
        wanted = [m.address for m in members if m.address not in taken][:MAX_READ]
        if not wanted:
            return []
        refused = await self._tenancy.not_allowed(ctx, wanted)
        wanted = [a for a in wanted if a not in refused]
        if not wanted:
            return []
        schedules = await free_busy(self._graph, token, row.organizer_upn, wanted, row.start, row.end)
        free = [a for a in wanted if not busy_over(schedules[a], row, self._rules, own_copy=False)]
        async with self._store.transaction() as tx:
            booked = {
                a for a in free if await storage.find_conflicts(tx, row.tenant_id, [a], row.start, row.end)
            }
            pool = replace(record.pool, members=tuple(members))
            loads = await storage.load_people(
                tx, row.tenant_id, pool.members, row.start - LOAD_MARGIN, row.end + LOAD_MARGIN
            )
        picked = select_members(
            pool,
            loads,
            start=row.start,
            end=row.end,
            count=count,
            free=[a for a in free if a not in booked],
            exclude=taken,
        )
        return list(picked.addresses)
