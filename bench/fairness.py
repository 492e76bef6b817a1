"""Fairness benchmark (issue 18): a simulated month of bookings drawn from one interviewer pool.

Workload (seeded, deterministic): a pool of ``MEMBERS`` interviewers, two in each of five zones
(America/Los_Angeles, America/New_York, Europe/London, Europe/Berlin, Asia/Kathmandu), each with a
random first day of week (Sunday or Monday), random weekly (8-12) and daily (3-4) caps, some with
declared hot hours, working 08:00-18:00 local Monday-Friday, and a random calendar (0-3 busy blocks
of 30-120 minutes per working day). Three trainees (London, New York, Berlin) need 3 shadow
and 3 reverse-shadow sessions each, at most 1 training session a day and 3 a week; a session takes
at most ``TRAINEES_PER_SESSION`` trainees. The month starts on
Monday 19 October 2026, so it spans Europe's (25 Oct) and the US's (1 Nov) DST changes.

``SESSIONS`` sessions are requested: singles (1 interviewer from the pool) and loops of 2-3
back-to-back sessions (2 interviewers each, none twice in one loop). A session's time is a random
working hour on a random working day in the zone of the next member in turn (so demand follows where
the members are). Each is
booked in time order the way the Calendar Service will: read the pool and the members' stored loads
(:func:`calendar_backend.storage.load_people`), ask who is free (their calendar, and nothing else
booked then), :func:`calendar_backend.pools_selection.select_members`, add trainees with
:func:`calendar_backend.pools_training.pick_trainees`, then ``insert_pending`` +
``pools_booking.reserve_from_pool`` in one transaction (SQLite in a temp dir), confirm, and once
the session is held record each trainee's completed session (``pools_booking.complete_training``:
graduations are audited). No override is ever passed:
a session the pool cannot fill within caps stays unfilled and is counted.

Figures: ``max_min`` is the largest over the smallest monthly load among the eligible members
(every member the pool starts the month with: all are free for part of every working day; a trainee
who graduates joins the pool as a member and is picked from then on, but is not compared);
``cap_breaches`` counts member-weeks and member-days over a cap, in the member's own zone and week,
from the stored bookings, that have no override on record; ``trainee_coverage`` is the share of
sessions a trainee was eligible for (free, under their training caps, not yet graduated) that they
joined.
Last line: ``fairness max_min=<x> cap_breaches=<n> trainee_coverage=<p>``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from calendar_backend import audit, storage
from calendar_backend.pools import HotWindow, Member, Pool, local_day, local_week
from calendar_backend.pools_booking import complete_training, reserve_from_pool
from calendar_backend.pools_selection import select_members
from calendar_backend.pools_training import Trainee, TrainingStage, pick_trainees

_ = audit  # registers the audit tables on storage.metadata
TENANT = "0f5e2c1a-0000-4000-8000-000000000018"
MONTH_START = datetime(2026, 10, 19, tzinfo=UTC)  # a Monday
ZONES = ("America/Los_Angeles", "America/New_York", "Europe/London", "Europe/Berlin", "Asia/Kathmandu")
MEMBERS = 10
SESSIONS = 200
WEEKS = 4
TRAINEES_PER_SESSION = 2
WORK = (time(8), time(18))


@dataclass
class FairnessResult:
    """The month's figures (module docstring)."""

    max_min: float
    cap_breaches: int
    trainee_coverage: float
    sessions: int
    unfilled: int
    loads: dict[str, int]
    graduated: list[str]
    eligible_trainee_sessions: int
    joined_trainee_sessions: int


@dataclass
class _World:
    rng: random.Random
    members: list[Member]
    trainees: list[Trainee]
    busy: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)
    booked: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)


def _working(person: Member | Trainee, start: datetime, end: datetime) -> bool:
    tz = ZoneInfo(person.zone)
    a, b = start.astimezone(tz), end.astimezone(tz)
    return a.weekday() < 5 and a.date() == b.date() and WORK[0] <= a.time() and b.time() <= WORK[1]


def _is_free(world: _World, person: Member | Trainee, start: datetime, end: datetime) -> bool:
    taken = world.busy.get(person.address, []) + world.booked.get(person.address, [])
    return _working(person, start, end) and all(e <= start or end <= s for s, e in taken)


def _people(rng: random.Random, n: int) -> tuple[list[Member], list[Trainee]]:
    members = []
    for i in range(n):
        hot = (HotWindow(time(9), time(12)),) if rng.random() < 0.5 else ()
        members.append(
            Member(
                f"member{i:02d}@contoso.example",
                zone=ZONES[i % len(ZONES)],
                week_start=rng.choice([0, 6]),
                weekly_cap=rng.randint(8, 12),
                daily_cap=rng.randint(3, 4),
                hot_hours=hot,
            )
        )
    trainees = [
        Trainee("trainee-a@contoso.example", "Europe/London", 0, 3, 3, weekly_cap=3, daily_cap=1),
        Trainee("trainee-b@contoso.example", "America/New_York", 6, 3, 3, weekly_cap=3, daily_cap=1),
        Trainee("trainee-c@contoso.example", "Europe/Berlin", 0, 3, 3, weekly_cap=3, daily_cap=1),
    ]
    return members, trainees


def _calendars(world: _World, days: int) -> None:
    people: list[Member | Trainee] = [*world.members, *world.trainees]
    for person in people:
        tz = ZoneInfo(person.zone)
        blocks = []
        for d in range(days):
            day = (MONTH_START + timedelta(days=d)).date()
            for _ in range(world.rng.randint(0, 3)):
                local = datetime.combine(day, time(world.rng.randint(8, 16), world.rng.choice([0, 30])), tz)
                start = local.astimezone(UTC)
                blocks.append((start, start + timedelta(minutes=world.rng.choice([30, 60, 90, 120]))))
        world.busy[person.address] = blocks


def _requests(world: _World, sessions: int, days: int) -> list[list[tuple[datetime, int]]]:
    """Groups of (start, interviewers wanted): a single, or a loop of back-to-back sessions."""
    groups: list[list[tuple[datetime, int]]] = []
    total = 0
    while total < sessions:
        zone = ZoneInfo(world.members[len(groups) % len(world.members)].zone)  # demand follows members
        day = (MONTH_START + timedelta(days=world.rng.randrange(days))).date()
        while day.weekday() >= 5:
            day = (MONTH_START + timedelta(days=world.rng.randrange(days))).date()
        size = 1 if world.rng.random() < 0.6 else min(world.rng.randint(2, 3), sessions - total)
        hour = world.rng.randint(8, 17 - size)
        first = datetime.combine(day, time(hour, world.rng.choice([0, 30]) if hour < 17 - size else 0), zone)
        start = first.astimezone(UTC)
        groups.append([(start + timedelta(hours=k), 1 if size == 1 else 2) for k in range(size)])
        total += size
    return sorted(groups, key=lambda g: g[0][0])


async def _book_session(
    store: storage.Store,
    world: _World,
    pool_id: str,
    n: int,
    start: datetime,
    want: int,
    exclude: Sequence[str],
) -> tuple[list[str], list[str], int]:
    """Select, reserve and complete one session; (members, trainees joined, trainees eligible)."""
    end = start + timedelta(hours=1)
    window = (start - timedelta(days=21), start + timedelta(days=21))
    async with store.transaction() as tx:
        record = await storage.get_pool_by_id(tx, pool_id)
        assert record is not None
        loads = await storage.load_people(tx, TENANT, record.pool.members, *window)
        training = await storage.load_people(tx, TENANT, record.trainees, *window, training=True)
    free = [m.address for m in record.pool.members if _is_free(world, m, start, end)]
    pick = select_members(record.pool, loads, start=start, end=end, count=want, free=free, exclude=exclude)
    if not pick.is_complete:
        return [], [], 0
    free_trainees = [t.address for t in record.trainees if _is_free(world, t, start, end)]
    eligible = pick_trainees(
        record.trainees, training, start=start, end=end, free=free_trainees, limit=len(record.trainees)
    )
    joined = eligible[:TRAINEES_PER_SESSION]
    async with store.transaction() as tx:
        row = await storage.insert_pending(
            tx,
            tenant_id=TENANT,
            organizer_oid="hiring-manager",
            organizer_upn="hm@contoso.example",
            transaction_id=f"fairness-{n}",
            start=start,
            end=end,
            attendees=[*pick.addresses, *(t.address for t in joined), f"candidate{n}@example.com"],
            candidate_name="Candidate",
            subject="Interview",
            source=storage.InterviewSource.BOT,
        )
        await reserve_from_pool(
            tx,
            tenant_id=TENANT,
            pool_id=pool_id,
            interview_id=row.id,
            start=start,
            members=pick.addresses,
            trainees=[(t.address, t.stage) for t in joined],
            request_id=f"fairness-{n}",
        )
        await storage.confirm_interview(tx, row.id, f"event-{n}", None)
    async with store.transaction() as tx:  # the session is held: credit the trainees (audited)
        await complete_training(
            tx,
            tenant_id=TENANT,
            interview_id=row.id,
            trainees=[t.address for t in joined],
            actor="openslot",
            request_id=f"fairness-{n}",
            now=end,
        )
    for address in [*pick.addresses, *(t.address for t in joined)]:
        world.booked.setdefault(address, []).append((start, end))
    return list(pick.addresses), [t.address for t in joined], len(eligible)


async def _breaches(store: storage.Store, pool: Pool) -> int:
    """Member-weeks and member-days over a cap, in the member's zone and week, without an override."""
    lo, hi = MONTH_START - timedelta(days=7), MONTH_START + timedelta(days=7 * WEEKS + 7)
    async with store.transaction() as tx:
        starts = await storage.counted_starts(tx, TENANT, [m.address for m in pool.members], lo, hi)
        overridden = {o["address"] for o in await storage.list_cap_overrides(tx, TENANT)}
    breaches = 0
    for m in pool.members:
        if m.address in overridden:
            continue
        weeks = Counter(local_week(s, m.zone, m.week_start) for s in starts[m.address])
        days = Counter(local_day(s, m.zone) for s in starts[m.address])
        breaches += sum(1 for c in weeks.values() if c > pool.weekly_cap(m))
        breaches += sum(1 for c in days.values() if c > pool.daily_cap(m))
    return breaches


async def simulate(
    tmp: Path, *, seed: int = 18, sessions: int = SESSIONS, weeks: int = WEEKS
) -> FairnessResult:
    """Run the simulated month on a fresh SQLite database under ``tmp``."""
    rng = random.Random(seed)
    members, trainees = _people(rng, MEMBERS)
    world = _World(rng, members, trainees)
    days = 7 * weeks
    _calendars(world, days)
    engine = storage.create_engine(f"sqlite+aiosqlite:///{tmp / 'fairness.db'}")
    await storage.migrate(engine)
    store = storage.Store(engine)
    try:
        async with store.transaction() as tx:
            pool_id = await storage.create_pool(tx, TENANT, Pool("Backend", "backend", 8, 3, tuple(members)))
            assert pool_id is not None
            for t in trainees:
                await storage.add_trainee(tx, pool_id, t)
        loads: Counter[str] = Counter({m.address: 0 for m in members})
        unfilled = eligible_total = joined_total = n = 0
        for group in _requests(world, sessions, days):
            panel: list[str] = []
            for start, want in group:
                chosen, joined, eligible = await _book_session(store, world, pool_id, n, start, want, panel)
                n += 1
                unfilled += not chosen
                panel += chosen
                loads.update(a for a in chosen if a in loads)  # graduates join later: not compared
                eligible_total += eligible
                joined_total += len(joined)
        async with store.transaction() as tx:
            record = await storage.get_pool_by_id(tx, pool_id)
        assert record is not None
        breaches = await _breaches(store, record.pool)
    finally:
        await store.close()
    low = min(loads.values())
    return FairnessResult(
        max_min=max(loads.values()) / low if low else float("inf"),
        cap_breaches=breaches,
        trainee_coverage=joined_total / eligible_total if eligible_total else 1.0,
        sessions=n,
        unfilled=unfilled,
        loads=dict(sorted(loads.items())),
        graduated=[t.address for t in record.trainees if t.stage is TrainingStage.GRADUATED],
        eligible_trainee_sessions=eligible_total,
        joined_trainee_sessions=joined_total,
    )
