"""Hypothesis properties of calendar_backend.slots (DESIGN.md slot semantics, security §7 #30)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from calendar_backend.availability import (
    AllDayBlock,
    BusyBlock,
    BusyRules,
    PersonAvailability,
    ShowAs,
    SlotQuery,
    WorkingHours,
    blocking_intervals,
    find_panel_slots,
    person_slots,
    working_windows,
)
from calendar_backend.slots import (
    EPOCH,
    Interval,
    find_slots,
    intersect,
    merge,
    subtract,
)

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)
LOW = datetime(2026, 3, 25)
HIGH = datetime(2026, 4, 2)
LOW_UTC = LOW.replace(tzinfo=UTC)

SAMPLE_ZONES = tuple(
    ZoneInfo(key)
    for key in (
        "UTC",
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",
        "Asia/Kathmandu",
        "Asia/Kolkata",
        "Pacific/Chatham",
        "America/St_Johns",
    )
)
instants = st.builds(
    lambda seconds, zone: (LOW_UTC + timedelta(seconds=seconds)).astimezone(zone),
    st.integers(min_value=0, max_value=int((HIGH - LOW).total_seconds())),
    st.sampled_from(SAMPLE_ZONES),
)
"""Aware instants in assorted zones (cheap to draw; any zone is covered by the round-trip test)."""
any_zone_instants = st.datetimes(min_value=LOW, max_value=HIGH, timezones=st.timezones())


@st.composite
def intervals(draw: st.DrawFn) -> Interval:
    """An interval starting at an aware instant, 1 s .. 12 h long."""
    start = draw(instants).astimezone(UTC)
    seconds = draw(st.integers(min_value=1, max_value=12 * 3600))
    return Interval(start, start + timedelta(seconds=seconds))


interval_lists = st.lists(intervals(), max_size=8)
durations = st.integers(min_value=1, max_value=36).map(lambda n: timedelta(minutes=5 * n))
steps = st.sampled_from([5, 10, 15, 30, 60]).map(lambda n: timedelta(minutes=n))


def covered(span: Interval, pieces: Sequence[Interval]) -> bool:
    """Naive oracle: is ``span`` covered by the union of ``pieces``? (no use of merge)."""
    cursor = span.start
    progressed = True
    while cursor < span.end and progressed:
        progressed = False
        for piece in pieces:
            if piece.start <= cursor < piece.end:
                cursor = piece.end
                progressed = True
    return cursor >= span.end


def slots_of(
    windows: Sequence[Interval],
    busy: Sequence[Interval],
    duration: timedelta,
    step: timedelta,
    not_before: datetime,
) -> tuple[Interval, ...]:
    return find_slots(windows, busy, duration=duration, step=step, not_before=not_before)


@PROPERTY_SETTINGS
@given(interval_lists, interval_lists, durations, steps, instants)
def test_find_slots_output_invariants(windows, busy, duration, step, not_before) -> None:
    slots = slots_of(windows, busy, duration, step, not_before)
    for slot in slots:
        assert slot.start.tzinfo is UTC
        assert slot.length == duration
        assert (slot.start - EPOCH) % step == timedelta(0)
        assert slot.start >= not_before
        assert covered(slot, windows)
        assert not any(slot.overlaps(b) for b in busy)
    starts = [s.start for s in slots]
    assert starts == sorted(set(starts))


@PROPERTY_SETTINGS
@given(interval_lists, interval_lists, durations, steps, instants)
def test_find_slots_is_complete_against_brute_force(windows, busy, duration, step, not_before):
    found = set(slots_of(windows, busy, duration, step, not_before))
    if not windows:
        assert found == set()
        return
    candidate = EPOCH + step * -(-(min(w.start for w in windows) - EPOCH) // step)
    last_end = max(w.end for w in windows)
    expected = set()
    while candidate + duration <= last_end:
        slot = Interval(candidate, candidate + duration)
        if candidate >= not_before and covered(slot, windows) and not any(slot.overlaps(b) for b in busy):
            expected.add(slot)
        candidate += step
    assert found == expected


@PROPERTY_SETTINGS
@given(interval_lists, interval_lists, interval_lists, durations, steps, instants)
def test_adding_busy_never_adds_a_slot(windows, busy, extra, duration, step, not_before) -> None:
    before = set(slots_of(windows, busy, duration, step, not_before))
    after = set(slots_of(windows, busy + extra, duration, step, not_before))
    assert after <= before


@PROPERTY_SETTINGS
@given(interval_lists, intervals(), interval_lists, durations, steps, instants, st.integers(0, 600))
def test_widening_a_window_never_removes_a_slot(
    windows, window, busy, duration, step, not_before, grow_min
) -> None:
    before = set(slots_of([*windows, window], busy, duration, step, not_before))
    wider = window.widened(timedelta(minutes=grow_min))
    after = set(slots_of([*windows, wider], busy, duration, step, not_before))
    assert before <= after


@PROPERTY_SETTINGS
@given(interval_lists, interval_lists)
def test_subtract_is_idempotent(windows, busy) -> None:
    once = subtract(windows, busy)
    assert subtract(once, busy) == once


@PROPERTY_SETTINGS
@given(interval_lists)
def test_subtract_nothing_is_merge(windows) -> None:
    assert subtract(windows, []) == merge(windows)


@PROPERTY_SETTINGS
@given(interval_lists, interval_lists)
def test_subtract_leaves_only_uncovered_time(windows, busy) -> None:
    free = subtract(windows, busy)
    for piece in free:
        assert covered(piece, windows)
        assert not any(piece.overlaps(b) for b in busy)
    for window in windows:
        assert covered(window, [*free, *busy])


@PROPERTY_SETTINGS
@given(interval_lists)
def test_merge_is_disjoint_sorted_and_same_union(items) -> None:
    merged = merge(items)
    for left, right in itertools.pairwise(merged):
        assert left.end < right.start
    for item in items:
        assert covered(item, merged)
    for piece in merged:
        assert covered(piece, items)
    assert merge(merged) == merged


@PROPERTY_SETTINGS
@given(interval_lists, interval_lists)
def test_intersect_is_commutative_and_inside_both(a, b) -> None:
    common = intersect(a, b)
    assert common == intersect(b, a)
    for piece in common:
        assert covered(piece, a)
        assert covered(piece, b)
    assert subtract(merge(a), common) == subtract(a, b)


@PROPERTY_SETTINGS
@given(any_zone_instants, st.integers(min_value=1, max_value=10**9))
def test_interval_round_trip_preserves_instants(start, micros) -> None:
    end = start.astimezone(UTC) + timedelta(microseconds=micros)
    interval = Interval(start, end)
    assert interval.start.tzinfo is UTC
    assert interval.start == start.astimezone(UTC)
    assert interval.length == timedelta(microseconds=micros)
    assert interval.start.astimezone(start.tzinfo).astimezone(UTC) == interval.start


# ---- working_windows (availability) over arbitrary zones, including imaginary times ------------

zone_instants = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2037, 12, 31),
    timezones=st.timezones(),
    allow_imaginary=True,
)
dst_season_instants = st.builds(
    lambda year, month, day, second: datetime(year, month, day, tzinfo=UTC) + timedelta(seconds=second),
    st.integers(min_value=2000, max_value=2037),
    st.sampled_from([3, 4, 9, 10, 11]),
    st.integers(min_value=1, max_value=28),
    st.integers(min_value=0, max_value=86_399),
)
"""UTC instants in the months where most zones change offset (cheap to draw, DST-heavy)."""


any_zones = st.timezones()
"""Built once: constructing ``st.timezones()`` scans the tz database (~20 ms a time)."""
clock_times = st.integers(min_value=0, max_value=86_399).map(
    lambda second: time(second // 3600, second // 60 % 60, second % 60)
)


@st.composite
def working_hours(draw: st.DrawFn, *, same_day: bool) -> WorkingHours:
    """Weekly hours in any zone; ``same_day`` forces start < end (no overnight shift)."""
    first, second = draw(clock_times), draw(clock_times)
    if same_day:
        assume(first != second)
        first, second = sorted((first, second))
    days = draw(st.frozensets(st.integers(min_value=0, max_value=6)))
    return WorkingHours(days, first, second, draw(any_zones))


@st.composite
def query_windows(draw: st.DrawFn, starts: st.SearchStrategy[datetime] = dst_season_instants) -> Interval:
    start = draw(starts).astimezone(UTC)
    return Interval(start, start + timedelta(minutes=draw(st.integers(1, 8 * 24 * 60))))


DST_ZONES = (
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Pacific/Chatham",
    "America/Santiago",
    "Asia/Tehran",
    "Africa/Casablanca",
)


@functools.cache
def offset_changes(key: str, year: int) -> tuple[datetime, ...]:
    """Every instant in ``year`` where ``key``'s UTC offset changes (hour scan + bisection)."""
    zone = ZoneInfo(key)
    found = []
    probe = datetime(year, 1, 1, tzinfo=UTC)
    while probe.year == year:
        nxt = probe + timedelta(hours=1)
        if zone.utcoffset(probe) != zone.utcoffset(nxt):
            low, high = probe, nxt
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if zone.utcoffset(middle) == zone.utcoffset(probe):
                    low = middle
                else:
                    high = middle
            found.append(high)
        probe = nxt
    return tuple(found)


@st.composite
def shifts_around_transitions(draw: st.DrawFn, *, same_day: bool) -> tuple[WorkingHours, Interval]:
    """Hours whose edges sit within 90 minutes of a real offset change (gaps and folds)."""
    key = draw(st.sampled_from(DST_ZONES))
    changes = offset_changes(key, draw(st.integers(min_value=2000, max_value=2037)))
    assume(changes)
    change = draw(st.sampled_from(changes))
    zone = ZoneInfo(key)
    wall_before = (change + zone.utcoffset(change - timedelta(seconds=1))).replace(tzinfo=None)
    edges = [(wall_before + timedelta(minutes=draw(st.integers(-90, 150)))).time() for _ in range(2)]
    assume(edges[0] != edges[1])
    first, second = sorted(edges) if same_day else edges
    window = Interval(change - timedelta(days=2), change + timedelta(days=2))
    return WorkingHours(frozenset(range(7)), first, second, zone), window


def hours_and_windows(*, same_day: bool) -> st.SearchStrategy[tuple[WorkingHours, Interval]]:
    return st.one_of(
        st.tuples(working_hours(same_day=same_day), query_windows()),
        shifts_around_transitions(same_day=same_day),
    )


def wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def steady_offset(zone: ZoneInfo, instant: datetime, around: timedelta) -> bool:
    """No offset change is visible at ``instant`` and ``around`` either side (hour samples)."""
    hours = int(around / timedelta(hours=1))
    offsets = {zone.utcoffset(instant + timedelta(hours=h)) for h in range(-hours, hours + 1)}
    return len(offsets) == 1


def in_hours_by_wall_clock(local: datetime, hours: WorkingHours) -> bool:
    """Oracle from the definition, using only the local wall clock (valid away from DST)."""
    today, yesterday = local.weekday(), (local.weekday() - 1) % 7
    clock = local.time()
    if hours.start < hours.end:
        return today in hours.days and hours.start <= clock < hours.end
    return (today in hours.days and clock >= hours.start) or (yesterday in hours.days and clock < hours.end)


@PROPERTY_SETTINGS
@given(
    st.one_of(
        st.tuples(working_hours(same_day=True), query_windows(zone_instants)),
        st.tuples(working_hours(same_day=False), query_windows(zone_instants)),
        shifts_around_transitions(same_day=True),
        shifts_around_transitions(same_day=False),
    )
)
def test_working_windows_are_merged_utc_and_inside_the_query(case) -> None:
    hours, window = case
    windows = working_windows(hours, window)
    for piece in windows:
        assert piece.start.tzinfo is UTC
        assert window.contains(piece)
    for left, right in itertools.pairwise(windows):
        assert left.end < right.start


@PROPERTY_SETTINGS
@given(hours_and_windows(same_day=True))
def test_working_windows_stay_within_one_local_working_day(case) -> None:
    hours, window = case
    for piece in working_windows(hours, window):
        first = wall(piece.start, hours.zone)
        last = wall(piece.end - timedelta(microseconds=1), hours.zone)
        assert first.date() == last.date()
        assert first.weekday() in hours.days
        assert piece.start == window.start or first.time() >= hours.start
        assert last.time() < hours.end


@PROPERTY_SETTINGS
@given(hours_and_windows(same_day=True))
def test_working_window_edges_are_the_first_valid_instants(case) -> None:
    """Start: the earliest instant at/after the start wall time (gap -> transition, fold -> first).

    End: likewise for the end wall time, so the instant at ``end`` is no longer in hours.
    """
    hours, window = case
    tick = timedelta(microseconds=1)
    for piece in working_windows(hours, window):
        day = wall(piece.start, hours.zone).date()
        if piece.start != window.start:
            for minutes in range(181):  # earlier the same day, incl. a fold's first pass
                before = wall(piece.start - tick - timedelta(minutes=minutes), hours.zone)
                assert (before.date(), before.time()) < (day, hours.start)
        if piece.end != window.end:
            at_end = wall(piece.end, hours.zone)
            assert (at_end.date(), at_end.time()) >= (day, hours.end)


@PROPERTY_SETTINGS
@given(hours_and_windows(same_day=True))
def test_working_window_length_matches_wall_clock_away_from_dst(case) -> None:
    hours, window = case
    for piece in working_windows(hours, window):
        clipped = piece.start == window.start or piece.end == window.end
        if clipped or not steady_offset(hours.zone, piece.start, timedelta(hours=26)):
            continue
        day = wall(piece.start, hours.zone).date()
        expected = datetime.combine(day, hours.end) - datetime.combine(day, hours.start)
        assert piece.length == expected


@PROPERTY_SETTINGS
@given(
    st.one_of(working_hours(same_day=True), working_hours(same_day=False)),
    query_windows(),
    st.lists(st.floats(min_value=0, max_value=1, exclude_max=True), min_size=1, max_size=8),
)
def test_working_windows_agree_with_the_wall_clock_oracle(hours, window, fractions) -> None:
    windows = working_windows(hours, window)
    for fraction in fractions:
        micros = window.length // timedelta(microseconds=1)
        offset = min(int(micros * fraction), micros - 1)
        instant = window.start + timedelta(microseconds=offset)
        if not steady_offset(hours.zone, instant, timedelta(hours=50)):
            continue
        expected = in_hours_by_wall_clock(wall(instant, hours.zone), hours)
        assert any(p.start <= instant < p.end for p in windows) == expected


# ---- find_panel_slots (availability) ---------------------------------------------------------------

statuses = st.sampled_from(list(ShowAs))


@st.composite
def panel_people(draw: st.DrawFn, window: Interval) -> PersonAvailability:
    """A person whose blocks and all-day items fall around ``window``."""
    start_min = draw(st.integers(0, 95)) * 15
    end_min = (start_min + draw(st.integers(6 * 4, 20 * 4)) * 15) % (24 * 60)
    days = frozenset(range(7)) - {draw(st.integers(0, 10))}  # usually a six-day week
    clock = [time(m // 60, m % 60) for m in (start_min, end_min)]
    hours = WorkingHours(days, clock[0], clock[1], draw(any_zones))
    minute = st.integers(min_value=-24 * 60, max_value=int(window.length / timedelta(minutes=1)))

    def block(offset: int, length: int, status: ShowAs) -> BusyBlock:
        start = window.start + timedelta(minutes=offset)
        return BusyBlock(Interval(start, start + timedelta(minutes=length)), status)

    blocks = draw(st.lists(st.builds(block, minute, st.integers(5, 180), statuses), max_size=5))
    first_day = window.start.astimezone(hours.zone).date()
    all_day = draw(
        st.lists(
            st.builds(
                lambda d, n, status: AllDayBlock(
                    first_day + timedelta(days=d), first_day + timedelta(days=d + n), status
                ),
                st.integers(-1, 3),
                st.integers(1, 2),
                statuses,
            ),
            max_size=2,
        )
    )
    name = draw(st.text("abcdefgh", min_size=1, max_size=6))
    return PersonAvailability(f"{name}@x.test", hours, tuple(blocks), tuple(all_day))


@st.composite
def panel_queries(draw: st.DrawFn) -> tuple[list[PersonAvailability], SlotQuery]:
    start = draw(dst_season_instants)
    window = Interval(start, start + timedelta(minutes=draw(st.integers(60, 3 * 24 * 60))))
    people = draw(st.lists(panel_people(window), min_size=1, max_size=3))
    query = SlotQuery(
        window,
        draw(durations),
        draw(steps),
        window.start + timedelta(minutes=draw(st.integers(0, 12 * 60))),
        buffer=timedelta(minutes=draw(st.sampled_from([0, 5, 10, 30]))),
    )
    return people, query


@PROPERTY_SETTINGS
@given(panel_queries())
def test_panel_slots_respect_every_rule_for_every_person(case) -> None:
    people, query = case
    rules = BusyRules()
    result = find_panel_slots(people, query, rules)
    for slot in result.slots:
        assert slot.start >= query.not_before
        assert query.window.contains(slot)
        for member in people:
            assert covered(slot, working_windows(member.hours, query.window))
            busy = blocking_intervals(member, rules, query.buffer)
            assert not any(slot.overlaps(b) for b in busy)
    alone = [set(person_slots(member, query, rules)) for member in people]
    assert set(result.slots) == set.intersection(*alone)
    assert sorted(result.ranked, key=lambda s: s.start) == list(result.slots)
    if result.slots:
        assert result.blockers == ()
    else:
        assert result.is_window_too_short or result.blockers


@PROPERTY_SETTINGS
@given(panel_queries(), st.sampled_from([5, 15, 60]))
def test_panel_larger_buffer_never_adds_a_slot(case, extra_min) -> None:
    people, query = case
    wider = SlotQuery(
        query.window,
        query.duration,
        query.step,
        query.not_before,
        buffer=query.buffer + timedelta(minutes=extra_min),
    )
    assert set(find_panel_slots(people, wider).slots) <= set(find_panel_slots(people, query).slots)
