"""Loop sessions whose panel is drawn from an interviewer pool (issues 17 and 18).

A template session may say ``"pool": {"name": "Backend", "count": 2}``. This module is the glue
between the loop engine and the pool rules:

- search: each pooled session gets one *seat mailbox* (``pool-s<index>@pool.invalid``) whose
  free time is where at least ``count`` members of the pool are free (:func:`seat_free`), so the
  loop engine (`loops.find_loops`) treats the seats as "any N of these free" in the same single
  pass as everyone else; then, on the top candidates only, :func:`assign` runs
  `pools_selection.select_for_sessions` (free, under weekly/daily caps in the member's own zone and
  week, least loaded first, hot hours preferred, deterministic) and
  `pools_training.pick_trainees` (one trainee per session when one is eligible). A candidate whose
  pool cannot fill a session is dropped and explained (:func:`shortfall_text`);
- booking: the request names, per pooled session, who was picked (``pool_members``) and any
  trainee (``trainees``); :func:`effective_template` puts them on the session's panel (so the gate,
  the "still offered" check and the events see them), and :func:`reserve_seats` draws them from
  the pool in the loop's own reservation transaction (caps checked under the booking lock:
  `CapReachedError` rolls the whole loop back). A manager's ``cap_override`` (address and reason)
  lets that one member pass a cap, audited (`pools_booking.reserve_from_pool`);
- groups: a pool with an Entra group (``PoolRecord.group_id``) gets its members read live by the
  caller (`pool_groups.PoolGroups.live`) and handed to :func:`load_pools` / :func:`reserve_seats`
  as ``live``; a pool whose group is missing there is unreadable (`PoolData.short` explains it;
  booking refuses it). `PoolData.without` drops the members the gate refused for one search.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend import storage
from calendar_backend.errors import CapReachedError, InvalidTemplateError, ValidationError
from calendar_backend.loop_templates import MAX_INTERVIEWERS, LoopTemplate
from calendar_backend.loops import LoopSchedule, LoopSpec, find_loops
from calendar_backend.pools import Member, MemberLoad, Pool, day_bounds, week_bounds
from calendar_backend.pools_booking import reserve_from_pool
from calendar_backend.pools_selection import (
    DEFAULT_WINDOW,
    CapOverride,
    Selection,
    SessionNeed,
    select_members,
)
from calendar_backend.pools_training import pick_trainees
from calendar_backend.slots import Interval, subtract

SEAT_DOMAIN: Final = "pool.invalid"
_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LOAD_MARGIN: Final = DEFAULT_WINDOW + timedelta(days=8)  # the rolling window and any local week


def seat_mailbox(index: int) -> str:
    """The pseudo mailbox standing for session ``index``'s pool seats in the loop engine."""
    return f"pool-s{index}@{SEAT_DOMAIN}"


def pooled(template: LoopTemplate) -> dict[int, tuple[str, int]]:
    """``{session index: (pool name, count)}`` of the template's pooled sessions."""
    return {i: (s.pool.name, s.pool.count) for i, s in enumerate(template.sessions) if s.pool is not None}


@dataclass(frozen=True, slots=True)
class PoolData:
    """What the search knows of the template's pools: their records (a group's members read
    live, `pool_groups`) and members' loads; ``unreadable``: pools whose group cannot be read."""

    records: Mapping[str, storage.PoolRecord]
    loads: Mapping[str, MemberLoad]
    training: Mapping[str, MemberLoad]
    unreadable: frozenset[str] = frozenset()

    def members(self) -> list[str]:
        """Every member and trainee of every usable pool, each once (their calendars are read)."""
        usable = [r for name, r in self.records.items() if name not in self.unreadable]
        found = [m.address for r in usable for m in r.pool.members]
        found += [t.address for r in usable for t in r.trainees]
        return list(dict.fromkeys(found))

    def without(self, refused: Iterable[str]) -> PoolData:
        """The pools without the ``refused`` members and trainees (skipped for this search)."""
        gone = {a.lower() for a in refused}
        records = {
            name: replace(
                r,
                pool=replace(r.pool, members=tuple(m for m in r.pool.members if m.address not in gone)),
                trainees=tuple(t for t in r.trainees if t.address not in gone),
            )
            for name, r in self.records.items()
        }
        return replace(self, records=records)

    def short(self, template: LoopTemplate) -> list[tuple[int, str]]:
        """``(session, text)`` for each pooled session its pool cannot fill: its group cannot be
        read, or fewer members than it needs are usable (named by count, never by address)."""
        out = []
        for index, (name, count) in sorted(pooled(template).items()):
            if name in self.unreadable:
                out.append((index, unreadable_text(name)))
                continue
            fixed = set(template.sessions[index].interviewers)
            usable = sum(1 for m in self.records[name].pool.members if m.address not in fixed)
            if usable < count:
                out.append((index, _usable_sentence(name, usable, count)))
        return out


def _usable_sentence(pool: str, usable: int, needed: int) -> str:
    if usable == 0:
        return f"{pool}: none of the pool's members can be used now ({needed} needed)"
    return f"{pool}: only {usable} of the pool's members can be used now ({needed} needed)"


def unreadable_text(pool: str) -> str:
    """What a session drawn from ``pool`` says when the pool's Entra group cannot be read."""
    return (
        f"{pool}: OpenSlot could not read the pool's Entra group, so nobody can be drawn from it. "
        "Ask your admin to grant GroupMember.Read.All or to check the pool's group."
    )


async def pool_records(
    tx: AsyncConnection, tenant_id: str, template: LoopTemplate
) -> list[storage.PoolRecord]:
    """The stored pools the template's sessions name (those that exist), each once."""
    found = []
    for name in dict.fromkeys(n for n, _c in pooled(template).values()):
        record = await storage.get_pool(tx, tenant_id, name)
        if record is not None:
            found.append(record)
    return found


async def load_pools(
    tx: AsyncConnection,
    tenant_id: str,
    template: LoopTemplate,
    window: Interval,
    live: Mapping[str, storage.PoolRecord | None] | None = None,
) -> PoolData:
    """The template's pools and their members' (and trainees') loads around ``window``.

    ``live``: by name, the pools with an Entra group as read just now (`pool_groups.PoolGroups.live`;
    ``None``: the group cannot be read). A pool with a group missing from ``live`` is unreadable.

    Raises:
        InvalidTemplateError: a session names a pool the tenant does not have (named), or a pool
        without a group has fewer listed members than a session draws.
    """
    needs = pooled(template)
    records: dict[str, storage.PoolRecord] = {}
    unreadable: set[str] = set()
    problems = []
    for index, (name, _count) in sorted(needs.items()):
        if name in records:
            continue
        record = await storage.get_pool(tx, tenant_id, name)
        if record is None:
            title = template.sessions[index].title
            problems.append(f'Session {index + 1} "{title}": there is no interviewer pool named "{name}"')
            continue
        if record.group_id is not None:
            current = (live or {}).get(name)
            if current is None:
                unreadable.add(name)
            record = current or record
        records[name] = record
    for index, (name, count) in sorted(needs.items()):
        fixed = set(template.sessions[index].interviewers)
        grouped = name in records and records[name].group_id is not None  # its size: `PoolData.short`
        size = (
            sum(1 for m in records[name].pool.members if m.address not in fixed)
            if name in records and not grouped
            else count
        )
        if size < count:
            where = f'Session {index + 1} "{template.sessions[index].title}"'
            problems.append(f'{where}: the pool "{name}" has only {size} members to draw {count} from')
    if problems:
        raise InvalidTemplateError(tuple(problems))
    lo, hi = window.start - LOAD_MARGIN, window.end + LOAD_MARGIN
    usable = [r for name, r in records.items() if name not in unreadable]
    members = list({m.address: m for r in usable for m in r.pool.members}.values())
    trainees = list({t.address: t for r in usable for t in r.trainees}.values())
    loads = await storage.load_people(tx, tenant_id, members, lo, hi)
    training = await storage.load_people(tx, tenant_id, trainees, lo, hi, training=True)
    return PoolData(records, loads, training, frozenset(unreadable))


def _covers(free: Sequence[Interval], start: datetime, end: datetime) -> bool:
    return any(i.start <= start and end <= i.end for i in free)


def seat_free(
    free: Mapping[str, Sequence[Interval]], members: Sequence[str], count: int
) -> tuple[Interval, ...]:
    """The spans where at least ``count`` of ``members`` are free (a sweep over their free time)."""
    events: list[tuple[datetime, int]] = []
    for address in dict.fromkeys(members):
        for i in free.get(address, ()):
            events += [(i.start, 1), (i.end, -1)]
    events.sort()
    out: list[Interval] = []
    level, opened = 0, None
    for at, delta in events:
        level += delta
        if level >= count and opened is None:
            opened = at
        elif level < count and opened is not None:
            if opened < at:
                out.append(Interval(opened, at))
            opened = None
    return tuple(out)


def seat_spec(spec: LoopSpec, template: LoopTemplate) -> LoopSpec:
    """``spec`` with each pooled session's seat mailbox among its interviewers."""
    needs = pooled(template)
    sessions = tuple(
        replace(s, interviewers=(*s.interviewers, seat_mailbox(i))) if i in needs else s
        for i, s in enumerate(spec.sessions)
    )
    return replace(spec, sessions=sessions)


def under_cap(
    free: Sequence[Interval], pool: Pool, member: Member, load: MemberLoad | None
) -> tuple[Interval, ...]:
    """``free`` without the member's local days and weeks already at their daily / weekly cap
    (the load as read; the loop's own other sessions are checked by `assign`)."""
    if load is None or not free:
        return tuple(free)
    full: list[Interval] = []
    for week, n in load.weeks.items():
        if n >= pool.weekly_cap(member):
            full.append(Interval(*week_bounds(_noon(week, member.zone), member.zone, member.week_start)))
    for day, n in load.days.items():
        if n >= pool.daily_cap(member):
            full.append(Interval(*day_bounds(_noon(day, member.zone), member.zone)))
    return subtract(free, full) if full else tuple(free)


def _noon(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(12), tzinfo=ZoneInfo(zone))


def seat_free_time(
    free: Mapping[str, Sequence[Interval]],
    template: LoopTemplate,
    data: PoolData,
    overrides: Collection[tuple[int, str]] = (),
    *,
    ignore_caps: bool = False,
) -> dict[str, tuple[Interval, ...]]:
    """The seat mailboxes' free time, for the loop engine: where ``count`` members are free and
    not yet at a cap that day or week (`under_cap`); ``overrides``: ``(session, address)`` whose
    caps are not applied for that session (``ignore_caps``: nobody's)."""
    out = {}
    for index, (name, count) in pooled(template).items():
        fixed = set(template.sessions[index].interviewers)
        pool = data.records[name].pool
        usable = {
            m.address: (
                tuple(free.get(m.address, ()))
                if ignore_caps or (index, m.address) in overrides
                else under_cap(free.get(m.address, ()), pool, m, data.loads.get(m.address))
            )
            for m in pool.members
            if m.address not in fixed
        }
        out[seat_mailbox(index)] = seat_free(usable, list(usable), count)
    return out


@dataclass(frozen=True, slots=True)
class SeatPick:
    """Who a pooled session got: the pool, its members picked (best first) and any trainee."""

    pool: str
    members: tuple[str, ...]
    trainees: tuple[str, ...] = ()
    over_cap: tuple[str, ...] = ()  # members picked past a cap (only under an override)


@dataclass(frozen=True, slots=True)
class Shortfall:
    """A pool that could not fill a session of a candidate loop: ``found`` of ``wanted``."""

    pool: str
    session: int
    found: int
    wanted: int
    start: datetime


def _select(
    pool: Pool,
    loads: Mapping[str, MemberLoad],
    indexes: Sequence[int],
    needs: Sequence[SessionNeed],
    allow: Callable[[int, str], bool],
) -> list[Selection]:
    """`pools_selection.select_for_sessions` (chronological, each seeing the earlier seats, nobody
    twice), with a member past a cap allowed only where ``allow(session index, address)``."""
    current = dict(loads)
    taken: set[str] = set()
    out: dict[int, Selection] = {}
    for k in sorted(range(len(needs)), key=lambda k: (needs[k].start, k)):
        need, index = needs[k], indexes[k]
        allowed = [
            CapOverride(m.address, "search", "search") for m in pool.members if allow(index, m.address)
        ]
        sel = select_members(
            pool, current, start=need.start, end=need.end, count=need.count, free=need.free,
            exclude=need.exclude | taken, overrides=allowed,
        )  # fmt: skip
        for p in sel.picks:
            member = pool.member(p.address)
            if member is not None:
                base = current.get(p.address) or MemberLoad(member.address, member.zone, member.week_start)
                current[p.address] = base.plus(need.start)
            taken.add(p.address)
        out[k] = sel
    return [out[k] for k in range(len(needs))]


def assign(
    schedule: LoopSchedule,
    template: LoopTemplate,
    data: PoolData,
    free: Mapping[str, Sequence[Interval]],
    overrides: Collection[tuple[int, str]] = (),
    *,
    ignore_caps: bool = False,
) -> tuple[dict[int, SeatPick], tuple[Shortfall, ...]]:
    """Pick the members (and trainees) of every pooled session of ``schedule``; ``overrides``:
    ``(session, address)`` who may go past a cap for that session only (``ignore_caps``: anyone),
    picked only when the session cannot be filled otherwise (`SeatPick.over_cap` names them).

    Returns the picks by session index and the shortfalls (empty when the loop is bookable)."""
    needs = pooled(template)
    spans = {p.session: (p.start, p.end) for p in schedule.placements}
    picks: dict[int, SeatPick] = {}
    short: list[Shortfall] = []
    taken: set[str] = {a for s in template.sessions for a in s.interviewers}
    for name in sorted({n for n, _ in needs.values()}):
        record = data.records[name]
        indexes = [i for i in sorted(needs) if needs[i][0] == name]
        session_needs = []
        for i in indexes:
            start, end = spans[i]
            free_then = frozenset(
                m.address for m in record.pool.members if _covers(free.get(m.address, ()), start, end)
            )
            session_needs.append(SessionNeed(start, end, needs[i][1], free_then, frozenset(taken)))
        selections = _select(
            record.pool, data.loads, indexes, session_needs, lambda i, a: ignore_caps or (i, a) in overrides
        )
        training = dict(data.training)
        for i, need, sel in zip(indexes, session_needs, selections, strict=True):
            if not sel.is_complete:
                short.append(Shortfall(name, i, len(sel.picks), sel.wanted, need.start))
                continue
            taken.update(sel.addresses)
            free_trainees = [
                t.address for t in record.trainees if _covers(free.get(t.address, ()), need.start, need.end)
            ]
            room = MAX_INTERVIEWERS - len(template.sessions[i].interviewers) - len(sel.picks)
            extra = pick_trainees(
                record.trainees, training, start=need.start, end=need.end, free=free_trainees,
                exclude=taken, limit=min(1, room),
            )  # fmt: skip
            for t in extra:
                taken.add(t.address)
                trainee = next(x for x in record.trainees if x.address == t.address)
                base = training.get(t.address) or MemberLoad(t.address, trainee.zone, trainee.week_start)
                training[t.address] = base.plus(need.start)
            over = tuple(p.address for p in sel.picks if p.is_over_cap)
            picks[i] = SeatPick(name, sel.addresses, tuple(t.address for t in extra), over)
    return picks, tuple(short)


def shortfall_text(short: Sequence[Shortfall], zone: ZoneInfo) -> list[tuple[str, int, str]]:
    """One sentence per pool and session: ``(pool, session, text)``, e.g.
    ``Backend: only 1 of the 2 needed is free and under cap on Tue-Thu`` (an en dash), or ``Backend: nobody
    is free and under their cap on Tue (2 needed)``; the days are the loop's local days of the candidate loops
    that fell short."""
    grouped: dict[tuple[str, int], list[Shortfall]] = {}
    for s in short:
        grouped.setdefault((s.pool, s.session), []).append(s)
    out = []
    for (pool, session), items in sorted(grouped.items()):
        best = max(s.found for s in items)
        days = sorted({s.start.astimezone(zone).weekday() for s in items})
        out.append((pool, session, _shortfall_sentence(pool, best, items[0].wanted, _days(days))))
    return out


def _shortfall_sentence(pool: str, found: int, wanted: int, days: str) -> str:
    if found == 0:
        return f"{pool}: nobody is free and under their cap on {days} ({wanted} needed)"
    verb = "is" if found == 1 else "are"
    return f"{pool}: only {found} of the {wanted} needed {verb} free and under cap on {days}"


MAX_CAP_BLOCKED = 3  # members offered per session for an override


@dataclass(frozen=True, slots=True)
class CapBlocked:
    """A pooled session that only members at a weekly/daily cap could fill: who (best first)."""

    session: int
    pool: str
    members: tuple[str, ...]

    def text(self, template: LoopTemplate) -> str:
        """The sentence for the options card (no address: the bot names the people)."""
        title = template.sessions[self.session].title
        return (
            f'Session {self.session + 1} "{title}": the pool "{self.pool}" has someone free only past '
            "their weekly or daily cap. Use one anyway, with a reason."
        )


def cap_blocked(
    spec: LoopSpec,
    free: Mapping[str, Sequence[Interval]],
    template: LoopTemplate,
    data: PoolData,
    horizon: Interval,
    overrides: Collection[tuple[int, str]] = (),
    candidates: int = 10,
) -> tuple[CapBlocked, ...]:
    """When no loop fits: the pooled sessions that caps alone keep empty. The loop engine runs
    again as if nobody had caps; the members its best candidates would need past a cap (least
    loaded first) are named per session. ``()`` when caps are not the reason."""
    seats = seat_free_time(free, template, data, overrides, ignore_caps=True)
    found = find_loops(seat_spec(spec, template), {**free, **seats}, candidates, horizon=horizon)
    blocked: dict[int, tuple[str, list[str]]] = {}
    for schedule in found.schedules:
        picks, short = assign(schedule, template, data, free, overrides, ignore_caps=True)
        if short:
            continue
        for index, pick in picks.items():
            names = blocked.setdefault(index, (pick.pool, []))[1]
            names.extend(a for a in pick.over_cap if a not in names)
    return tuple(
        CapBlocked(index, pool, tuple(names[:MAX_CAP_BLOCKED]))
        for index, (pool, names) in sorted(blocked.items())
        if names
    )


def _days(days: Sequence[int]) -> str:
    if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
        return f"{_DAYS[days[0]]}\u2013{_DAYS[days[-1]]}"
    return ", ".join(_DAYS[d] for d in days)


# ---- booking --------------------------------------------------------------------------------------


def effective_template(
    template: LoopTemplate, picked: Mapping[int, tuple[tuple[str, ...], tuple[str, ...]]]
) -> LoopTemplate:
    """``template`` with each pooled session's picked members and trainees on its panel.

    ``picked``: ``{index: (members, trainees)}`` from the request.

    Raises:
        ValidationError: a pooled session without exactly ``count`` distinct members, a pool
        member for a session without a pool, or someone already on the session's panel.
    """
    needs = pooled(template)
    sessions = list(template.sessions)
    for index, (members, trainees) in picked.items():
        if not 0 <= index < len(sessions):
            continue  # panel_of names it
        if index not in needs and (members or trainees):
            raise ValidationError("sessions", "names pool members for a session without a pool")
    for index, (_name, count) in needs.items():
        members, trainees = picked.get(index, ((), ()))
        people = [*sessions[index].interviewers, *members, *trainees]
        if len(members) != count or len(set(people)) != len(people) or len(people) > MAX_INTERVIEWERS + 1:
            raise ValidationError("sessions", f"session {index + 1} needs {count} distinct pool members")
        sessions[index] = replace(sessions[index], interviewers=tuple(people))
    return replace(template, sessions=tuple(sessions))


async def reserve_seats(
    tx: AsyncConnection,
    *,
    tenant_id: str,
    template: LoopTemplate,
    picked: Mapping[int, tuple[tuple[str, ...], tuple[str, ...]]],
    rows: Sequence[storage.InterviewRow],
    override: tuple[str, str] | None,
    actor: str,
    request_id: str,
    outside: Mapping[str, Sequence[datetime]] | None = None,
    live: Mapping[str, storage.PoolRecord | None] | None = None,
) -> None:
    """Draw every pooled session's members (and trainees) from its pool, in the loop's reservation
    transaction (after `storage.reserve_loop`). ``override``: the manager's ``(address, reason)``;
    ``outside``: members' outside "Interview" events (`pools_outside`, tenants that opted in).
    ``live``: the pools with an Entra group, their members read just now (`load_pools`); a pool
    with a group is refused unless it is there (its group cannot be read: nobody is drawn).

    Raises:
        CapReachedError: a member would pass a cap (roll the whole loop back), with a message
        naming the session, the member and the cap. ValidationError: an unknown pool, someone
        not a member (or trainee) of it, or an override for nobody picked.
    """
    if not pooled(template) and override is None:
        return
    by_index = {r.session_index or 0: r for r in rows}
    overrides = (CapOverride(override[0], actor, override[1]),) if override else ()
    used = False
    for index, (name, _count) in sorted(pooled(template).items()):
        record = await storage.get_pool(tx, tenant_id, name)
        if record is None:
            raise ValidationError("template", f'there is no interviewer pool named "{name}"')
        if record.group_id is not None:
            current = (live or {}).get(name)
            if current is None:
                raise ValidationError("template", unreadable_text(name))
            record = current
        members, trainees = picked.get(index, ((), ()))
        stages = {t.address: t.stage for t in record.trainees}
        if any(t not in stages for t in trainees):
            raise ValidationError("sessions", f'names a trainee who is not in training in the pool "{name}"')
        if any(record.pool.member(m) is None for m in members):
            raise ValidationError("sessions", f'names someone who is not a member of the pool "{name}"')
        row = by_index[index]
        mine = tuple(o for o in overrides if o.address in members)
        used = used or bool(mine)
        try:
            await reserve_from_pool(
                tx, tenant_id=tenant_id, pool_id=record.id, interview_id=row.id, start=row.start,
                members=members, trainees=[(t, stages[t]) for t in trainees], overrides=mine,
                request_id=request_id, outside=outside, live=record.pool,
            )  # fmt: skip
        except CapReachedError as exc:
            cap = exc.cap.replace("training_", "training ")
            title = template.sessions[index].title
            raised = CapReachedError(exc.address, exc.cap)
            raised.message = (
                f'Session {index + 1} "{title}": {exc.address} has reached their {cap} cap in the pool '
                f'"{name}"; pick another option, or override the cap with a reason.'
            )
            raise raised from exc
    if overrides and not used:
        raise ValidationError("cap_override", "names nobody drawn from a pool for this loop")
