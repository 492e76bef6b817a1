"""The loop engine against a brute-force enumerator (issue 17).

The oracle restates every rule of :mod:`calendar_backend.loops` directly: it tries every grid start of
every session one by one (coverage checked against the raw free intervals), builds the local windows
day by day with :func:`calendar_backend.timezones.localize` (the engine's DST rule), enumerates the full
product of the sessions' starts, checks order, overlap, breaks and days on each combination, sorts all
feasible schedules by the documented key and keeps the first K. The engine must return exactly those.

Calendars are small and random, in DST weeks (America/Los_Angeles, Europe/London, Australia/Lord_Howe)
and half-hour / 45-minute zones (Asia/Kolkata, Asia/Kathmandu). ``OPENSLOT_HYPOTHESIS_PROFILE=thorough``
runs 10,000 examples per property; the default keeps this file fast for CI.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calendar_backend.availability import (
    BusyBlock,
    BusyRules,
    PersonAvailability,
    ShowAs,
    SlotQuery,
    WorkingHours,
    free_time,
)
from calendar_backend.loops import LocalWindow, LoopSpec, Session, find_loops
from calendar_backend.slots import EPOCH, Interval
from calendar_backend.timezones import localize
from tests.unit.test_slots_properties import covered, offset_changes

THOROUGH = os.environ.get("OPENSLOT_HYPOTHESIS_PROFILE") == "thorough"
LOOP_SETTINGS = settings(
    max_examples=10_000 if THOROUGH else 150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ZONES = tuple(
    ZoneInfo(k)
    for k in ("America/Los_Angeles", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "Asia/Kathmandu")
)
DST_KEYS = ("America/Los_Angeles", "Europe/London", "Australia/Lord_Howe")
TRANSITIONS = tuple(sorted(c for key in DST_KEYS for c in offset_changes(key, 2026)))
PLAIN_WEEK = datetime(2026, 6, 15, tzinfo=UTC)
PEOPLE = ("ann@x.example", "bob@x.example", "cat@x.example")
ROOMS = ("room1@x.example", "room2@x.example")
_DAY = timedelta(days=1)
_MIN = timedelta(minutes=1)


# ---- the oracle ----------------------------------------------------------------------------------


def _local_spans(window: LocalWindow, zone: ZoneInfo, span: Interval) -> list[Interval]:
    zone = window.zone or zone
    first = span.start.astimezone(zone).date() - _DAY
    last = span.end.astimezone(zone).date() + _DAY
    found = []
    day = first
    while day <= last:
        start = localize(datetime.combine(day, window.start), zone)
        end = localize(datetime.combine(day, window.end), zone)
        if start < end:
            found.append(Interval(start, end))
        day += _DAY
    return found


def _grid(spec: LoopSpec, duration: timedelta) -> list[datetime]:
    step = spec.step
    first = max(spec.window.start, spec.not_before)
    start = EPOCH + -(-(first - EPOCH) // step) * step
    found = []
    while start + duration <= spec.window.end:
        found.append(start)
        start += step
    return found


def _oracle_starts(
    spec: LoopSpec, session: Session, free: Mapping[str, Sequence[Interval]]
) -> list[tuple[datetime, str | None]]:
    local = _local_spans(session.window, spec.zone, spec.window) if session.window else None
    found = []
    for start in _grid(spec, session.duration):
        span = Interval(start, start + session.duration)
        if local is not None and not any(w.contains(span) for w in local):
            continue
        if not all(covered(span, list(free.get(m, ()))) for m in session.interviewers):
            continue
        if session.rooms:
            room = next((r for r in session.rooms if covered(span, list(free.get(r, ())))), None)
            if room is None:
                continue
            found.append((start, room))
        else:
            found.append((start, None))
    return found


def _outside(span: Interval, spec: LoopSpec) -> timedelta:
    day_spans = _local_spans(spec.candidate_day, spec.candidate_zone or spec.zone, spec.window)
    inside = timedelta(0)
    for day in day_spans:
        low, high = max(day.start, span.start), min(day.end, span.end)
        if low < high:
            inside += high - low
    return span.length - inside


def oracle(spec: LoopSpec, free: Mapping[str, Sequence[Interval]], k: int) -> list[tuple]:
    """Every feasible schedule's (key, rooms by session), sorted, first ``k``."""
    per_session = [_oracle_starts(spec, s, free) for s in spec.sessions]
    order = spec.precedence()
    feasible = []
    for combo in itertools.product(*per_session):
        pairs = zip(combo, spec.sessions, strict=True)
        spans = [Interval(start, start + s.duration) for (start, _), s in pairs]
        chrono = sorted(range(len(spans)), key=lambda i: spans[i].start)
        if any(spans[a].overlaps(spans[b]) for a, b in itertools.combinations(range(len(spans)), 2)):
            continue
        rank = {session: position for position, session in enumerate(chrono)}
        if any(rank[a] > rank[b] for a, b in order):
            continue
        days = [spans[i].start.astimezone(spec.zone).date() for i in chrono]
        ok, idle = True, timedelta(0)
        for before, after, d0, d1 in zip(chrono, chrono[1:], days, days[1:], strict=False):
            gap = spans[after].start - spans[before].end
            if d0 == d1:
                if not spec.min_break <= gap <= spec.max_break:
                    ok = False
                idle += gap
        if not ok or len(set(days)) > spec.max_days:
            continue
        outside = sum((_outside(s, spec) for s in spans), timedelta(0))
        key = (len(set(days)), idle, outside, spans[chrono[0]].start, tuple(s.start for s in spans))
        feasible.append((key, tuple(room for _, room in combo)))
    feasible.sort()
    return feasible[:k]


# ---- random small calendars ----------------------------------------------------------------------


@st.composite
def windows(draw: st.DrawFn) -> Interval:
    anchor = draw(st.sampled_from((*TRANSITIONS, PLAIN_WEEK)))
    start = anchor + timedelta(minutes=draw(st.integers(-36 * 60, 12 * 60)))
    return Interval(start, start + timedelta(hours=draw(st.integers(6, 30))))


@st.composite
def person_free(draw: st.DrawFn, window: Interval, mailbox: str, *, room: bool) -> tuple[Interval, ...]:
    zone = draw(st.sampled_from(ZONES))
    if room:
        hours = WorkingHours(frozenset(range(7)), time(0), time(0), zone)
    else:
        first = draw(st.integers(0, 47)) * 30
        length = draw(st.integers(8, 24)) * 30
        end = (first + length) % (24 * 60)
        days = draw(st.frozensets(st.integers(0, 6), min_size=5))
        hours = WorkingHours(days, time(first // 60, first % 60), time(end // 60, end % 60), zone)
    blocks = []
    for _ in range(draw(st.integers(0, 4))):
        start = window.start + timedelta(minutes=15 * draw(st.integers(-4, 4 * 30)))
        blocks.append(
            BusyBlock(Interval(start, start + timedelta(minutes=15 * draw(st.integers(1, 12)))), ShowAs.BUSY)
        )
    person = PersonAvailability(mailbox, hours, tuple(blocks))
    query = SlotQuery(window, timedelta(minutes=15), timedelta(minutes=15), window.start)
    return free_time(person, query, BusyRules())


@st.composite
def loop_cases(draw: st.DrawFn) -> tuple[LoopSpec, dict[str, tuple[Interval, ...]], int]:
    window = draw(windows())
    free = {m: draw(person_free(window, m, room=False)) for m in PEOPLE}
    free |= {r: draw(person_free(window, r, room=True)) for r in ROOMS}
    step = timedelta(minutes=draw(st.sampled_from((15, 30, 60))))
    count = draw(st.integers(1, 3))
    sessions = []
    for i in range(count):
        people = tuple(draw(st.lists(st.sampled_from(PEOPLE), max_size=2, unique=True)))
        rooms = tuple(draw(st.lists(st.sampled_from(ROOMS), max_size=2, unique=True)))
        lunch = None
        if draw(st.integers(0, 3)) == 0:
            first = draw(st.integers(18, 28)) * 30
            last = first + draw(st.integers(2, 6)) * 30
            zone = draw(st.none() | st.sampled_from(ZONES))
            lunch = LocalWindow(time(first // 60, first % 60), time(last // 60, last % 60), zone)
        duration = timedelta(minutes=15 * draw(st.integers(1, 8)))
        sessions.append(Session(f"s{i}", duration, people, rooms, lunch))
    min_break = timedelta(minutes=draw(st.sampled_from((0, 0, 15, 30))))
    max_break = min_break + timedelta(minutes=draw(st.sampled_from((0, 15, 30, 60, 120))))
    fixed = draw(st.booleans())
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, count - 1), st.integers(0, count - 1)).filter(lambda p: p[0] != p[1]),
            max_size=2,
        )
    )
    spec = LoopSpec(
        tuple(sessions),
        zone=draw(st.sampled_from(ZONES)),
        window=window,
        not_before=window.start + timedelta(minutes=draw(st.integers(0, 6 * 60))),
        step=step,
        min_break=min_break,
        max_break=max_break,
        fixed_order=fixed,
        before=frozenset(pairs),
        max_days=draw(st.integers(1, 3)),
        candidate_zone=draw(st.none() | st.sampled_from(ZONES)),
    )
    return spec, free, draw(st.integers(1, 6))


def _engine(spec: LoopSpec, free: Mapping[str, Sequence[Interval]], k: int) -> list[tuple]:
    result = find_loops(spec, free, k)
    found = []
    for schedule in result.schedules:
        rooms = tuple(p.room for p in sorted(schedule.placements, key=lambda p: p.session))
        found.append((schedule.key(), rooms))
    return found


@LOOP_SETTINGS
@given(loop_cases())
def test_engine_returns_exactly_the_oracles_first_k(case) -> None:
    spec, free, k = case
    expected = oracle(spec, free, k)
    result = find_loops(spec, free, k)
    assert _engine(spec, free, k) == expected
    assert bool(result.explanations) == (not expected)


@LOOP_SETTINGS
@given(loop_cases())
def test_every_returned_schedule_is_feasible_and_sorted(case) -> None:
    spec, free, k = case
    result = find_loops(spec, free, k)
    keys = [s.key() for s in result.schedules]
    assert keys == sorted(set(keys))
    for schedule in result.schedules:
        starts = dict(_oracle_starts_by_index(spec, free))
        for placement in schedule.placements:
            assert (placement.start, placement.room) in starts[placement.session]
            assert placement.end - placement.start == spec.sessions[placement.session].duration
            assert placement.start.tzinfo is UTC


def _oracle_starts_by_index(spec: LoopSpec, free: Mapping[str, Sequence[Interval]]):
    for index, session in enumerate(spec.sessions):
        yield index, set(_oracle_starts(spec, session, free))


def test_oracle_sees_lord_howe_half_hour_shift() -> None:
    """Sanity of the strategy's anchors: the DST list holds Lord Howe's 30-minute change."""
    zone = ZoneInfo("Australia/Lord_Howe")
    changes = [c for c in TRANSITIONS if zone.utcoffset(c) != zone.utcoffset(c - _MIN)]
    assert changes
    assert {abs(zone.utcoffset(c) - zone.utcoffset(c - _MIN)) for c in changes} == {timedelta(minutes=30)}
    assert date(2026, 1, 1) < changes[0].date()
