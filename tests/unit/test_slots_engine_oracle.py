"""Oracles for the fast panel engine (issue 8): ranking and blocker reports vs. plain definitions.

The engine computes panel free time as shared working time minus the union of everyone's blocking
time, ranks with binary searches and explains empty results with prefix/suffix intersections. The
oracles below restate each rule directly with per-person ``Interval`` arithmetic, quadratically.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import example, given
from hypothesis import strategies as st

from calendar_backend.availability import (
    BUSY_HOUR_PENALTY,
    DAY_PENALTY,
    FRAGMENT_PENALTY,
    MEETING_PENALTY,
    BlockReason,
    BusyBlock,
    BusyRules,
    PersonAvailability,
    ShowAs,
    SlotQuery,
    WorkingHours,
    explain_empty,
    find_panel_slots,
    free_time,
    local_days,
    rank_slots,
    working_windows,
)
from calendar_backend.slots import Interval, find_slots, intersect_all, merge
from calendar_backend.timezones import localize
from tests.unit.test_slots_properties import (
    PROPERTY_SETTINGS,
    hours_and_windows,
    panel_people,
    panel_queries,
    query_windows,
    working_hours,
    zone_instants,
)

_DAY = timedelta(days=1)


def _items(person: PersonAvailability, rules: BusyRules) -> list[Interval]:
    timed = [b.interval for b in person.blocks if b.status in rules.blocking]
    zone = person.hours.zone
    return timed + [
        local_days(b.first_day, b.end_day_exclusive, zone)
        for b in person.all_day
        if b.status in rules.blocking
    ]


def _score_oracle(
    day: date, first: date, day_slots: list[Interval], people: Sequence[PersonAvailability], zone: ZoneInfo
) -> int:
    bounds = local_days(day, day + _DAY, zone)
    meetings, busy = 0, timedelta(0)
    for person in people:
        on_day = [i for i in _items(person, BusyRules()) if i.overlaps(bounds)]
        meetings += len(on_day)
        clipped = [Interval(max(i.start, bounds.start), min(i.end, bounds.end)) for i in on_day]
        busy += sum((i.length for i in merge(clipped)), timedelta(0))
    return (
        DAY_PENALTY * (day - first).days
        + FRAGMENT_PENALTY * (len(merge(day_slots)) - 1)
        + MEETING_PENALTY * meetings
        + BUSY_HOUR_PENALTY * (busy // timedelta(hours=1))
    )


def _rank_oracle(
    slots: Sequence[Interval], people: Sequence[PersonAvailability], zone: ZoneInfo
) -> list[Interval]:
    def day_of(slot: Interval) -> date:
        return slot.start.astimezone(zone).date()

    days = {day_of(s) for s in slots}
    first = min(days)
    score = {d: _score_oracle(d, first, [s for s in slots if day_of(s) == d], people, zone) for d in days}
    return sorted(slots, key=lambda s: (score[day_of(s)], s.start))


def _has_slot(free: Sequence[Interval], query: SlotQuery) -> bool:
    found = find_slots(free, (), duration=query.duration, step=query.step, not_before=query.not_before)
    return bool(found)


def _works_some_day(person: PersonAvailability, query: SlotQuery) -> bool:
    """Walk the window minute by minute: is any instant on one of the person's working days?"""
    instant = max(query.window.start, query.not_before)
    if instant >= query.window.end:
        return True
    while instant < query.window.end:
        if instant.astimezone(person.hours.zone).weekday() in person.hours.days:
            return True
        instant += timedelta(minutes=15)
    return False


def _explain_oracle(
    people: Sequence[PersonAvailability], query: SlotQuery
) -> tuple[tuple[str, BlockReason], ...]:
    rules = BusyRules()
    free = [free_time(p, query, rules) for p in people]
    alone = []
    for person, own in zip(people, free, strict=True):
        if not _has_slot(working_windows(person.hours, query.window), query):
            alone.append(
                (
                    person.mailbox,
                    BlockReason.NO_WORKING_HOURS
                    if _works_some_day(person, query)
                    else BlockReason.NOT_WORKING_DAYS,
                )
            )
        elif not _has_slot(own, query):
            alone.append((person.mailbox, BlockReason.FULLY_BUSY))
    if alone:
        return tuple(alone)
    if _has_slot(intersect_all(free), query):
        return ()
    culprits = [
        p.mailbox
        for i, p in enumerate(people)
        if len(people) > 1 and _has_slot(intersect_all(free[:i] + free[i + 1 :]), query)
    ]
    return tuple((m, BlockReason.NO_COMMON_TIME) for m in (culprits or [p.mailbox for p in people]))


@PROPERTY_SETTINGS
@given(panel_queries(), st.sampled_from(["UTC", "Asia/Kathmandu", "America/Los_Angeles"]))
def test_ranking_matches_the_per_day_definition(case, zone_name: str) -> None:
    people, query = case
    zone = ZoneInfo(zone_name)
    result = find_panel_slots(people, query, zone_for_days=zone)
    if result.slots:
        assert list(result.ranked) == _rank_oracle(result.slots, people, zone)


@PROPERTY_SETTINGS
@given(panel_queries())
def test_blockers_match_the_leave_one_out_definition(case) -> None:
    people, query = case
    got = tuple((b.mailbox, b.reason) for b in explain_empty(people, query, BusyRules()))
    assert got == _explain_oracle(people, query)


def test_explain_empty_names_the_one_person_whose_removal_helps() -> None:
    people, query = _disjoint_panel(5)
    result = find_panel_slots(people, query)
    assert result.slots == ()
    assert [(b.mailbox, b.reason) for b in result.blockers] == [("p0@x.test", BlockReason.NO_COMMON_TIME)]


def _disjoint_panel(size: int) -> tuple[list[PersonAvailability], SlotQuery]:
    """Everyone but p0 is free 10:00-11:00 UTC; p0 is busy then but free the rest of the day."""
    day = datetime(2026, 6, 1, tzinfo=UTC)
    window = Interval(day, day + _DAY)
    hours = WorkingHours(frozenset(range(7)), time(9), time(12), ZoneInfo("UTC"))
    p0_busy = BusyBlock(Interval(day + timedelta(hours=10), day + timedelta(hours=11)), ShowAs.BUSY)
    others_busy = (
        BusyBlock(Interval(day + timedelta(hours=9), day + timedelta(hours=10)), ShowAs.BUSY),
        BusyBlock(Interval(day + timedelta(hours=11), day + timedelta(hours=12)), ShowAs.OOF),
    )
    people = [PersonAvailability("p0@x.test", hours, (p0_busy,))]
    people += [PersonAvailability(f"p{i}@x.test", hours, others_busy) for i in range(1, size)]
    return people, SlotQuery(window, timedelta(minutes=30), timedelta(minutes=15), day)


def test_a_meeting_ending_at_local_midnight_does_not_load_the_next_day() -> None:
    """Day 1: two items, 6 busy hours (score 3*2 + 6 = 12); day 2: nothing (score 10), so day 2 wins.

    Counting the item that ends exactly at day 2's midnight as a day-2 meeting would make it 13.
    """
    day1 = datetime(2026, 6, 1, tzinfo=UTC)
    hours = WorkingHours(frozenset(range(7)), time(0), time(0), ZoneInfo("UTC"))
    blocks = (
        BusyBlock(Interval(day1 + timedelta(hours=8), day1 + timedelta(hours=12)), ShowAs.BUSY),
        BusyBlock(Interval(day1 + timedelta(hours=22), day1 + _DAY), ShowAs.BUSY),
    )
    person = PersonAvailability("p@x.test", hours, blocks)
    a = Interval(day1 + timedelta(hours=13), day1 + timedelta(hours=14))
    b = Interval(a.start + _DAY, a.end + _DAY)
    assert rank_slots([a, b], [person], ZoneInfo("UTC")) == (b, a)
    assert _rank_oracle([a, b], [person], ZoneInfo("UTC")) == [b, a]


# ---- issue 8 (second pass): per-day offset arithmetic, per-person subtraction ----------------------


def _working_windows_oracle(hours: WorkingHours, window: Interval) -> tuple[Interval, ...]:
    """The documented rule, one ``localize`` round trip per shift edge (the engine uses offsets)."""
    zone = hours.zone
    pieces = []
    day = window.start.astimezone(zone).date() - _DAY
    while day <= window.end.astimezone(zone).date():
        if day.weekday() in hours.days:
            end_day = day + _DAY if hours.end <= hours.start else day
            start = localize(datetime.combine(day, hours.start), zone)
            end = localize(datetime.combine(end_day, hours.end), zone)
            if start < end and start < window.end and window.start < end:
                pieces.append(Interval(max(start, window.start), min(end, window.end)))
        day += _DAY
    return merge(pieces)


def _around(zone: str, start: time, end: time, day: date) -> tuple[WorkingHours, Interval]:
    """Daily hours in ``zone`` and a window of two days either side of ``day`` (UTC midnight)."""
    middle = datetime.combine(day, time(), UTC)
    return WorkingHours(frozenset(range(7)), start, end, ZoneInfo(zone)), Interval(
        middle - 2 * _DAY, middle + 2 * _DAY
    )


@PROPERTY_SETTINGS
@given(
    st.one_of(
        hours_and_windows(same_day=True),
        hours_and_windows(same_day=False),
        st.tuples(working_hours(same_day=False), query_windows(zone_instants)),
    ),
    st.booleans(),
)
# Fixed cases, so that every run covers them: a start inside London's spring-forward gap, both edges
# inside Lord_Howe's 30-minute gap or straddling it, an overnight shift ending in New York's fold.
@example(_around("Europe/London", time(1, 30), time(9), date(2026, 3, 29)), False)
@example(_around("Australia/Lord_Howe", time(2, 5), time(2, 25), date(2026, 10, 4)), False)
@example(_around("Australia/Lord_Howe", time(1, 50), time(2, 40), date(2026, 10, 4)), True)
@example(_around("America/New_York", time(22), time(1, 30), date(2026, 11, 1)), True)
def test_working_windows_match_one_localize_per_edge(case, folded: bool) -> None:
    """Gaps, folds, Lord_Howe's 30-minute shift, Kathmandu's :45 offset, any zone, any clock time.

    ``folded`` gives the wall clock ``fold=1``, which must not change anything (fold is resolved by
    the localize rule, not by the caller's time object).
    """
    hours, window = case
    if folded:
        hours = WorkingHours(hours.days, hours.start.replace(fold=1), hours.end.replace(fold=1), hours.zone)
    assert working_windows(hours, window) == _working_windows_oracle(hours, window)


def test_working_windows_skip_the_day_samoa_dropped() -> None:
    """Pacific/Apia skipped 2011-12-30: both shift edges fall in the gap, so that day has no window."""
    zone = ZoneInfo("Pacific/Apia")
    hours = WorkingHours(frozenset(range(7)), time(9), time(17), zone)
    window = Interval(datetime(2011, 12, 28, tzinfo=UTC), datetime(2012, 1, 2, tzinfo=UTC))
    got = working_windows(hours, window)
    assert got == _working_windows_oracle(hours, window)
    assert date(2011, 12, 30) not in {piece.start.astimezone(zone).date() for piece in got}


@st.composite
def shared_panels(draw: st.DrawFn) -> tuple[list[PersonAvailability], SlotQuery]:
    """Four to eight people who share most of their blocks (a team calendar) in assorted zones."""
    people, query = draw(panel_queries())
    window = query.window
    team = [b for p in people for b in p.blocks]
    more = draw(st.lists(panel_people(window), min_size=4 - len(people), max_size=8 - len(people)))
    panel = []
    for person in people + more:
        chosen = draw(st.lists(st.sampled_from(team), max_size=len(team))) if team else []
        blocks = list(person.blocks) + chosen
        panel.append(
            PersonAvailability(
                person.mailbox, person.hours, tuple(draw(st.permutations(blocks))), person.all_day
            )
        )
    return panel, query


def _person_slots_oracle(person: PersonAvailability, query: SlotQuery) -> set[Interval]:
    """One person's slots from the raw items with the plain interval functions (no engine code but
    ``working_windows``, which has its own oracle above)."""
    widened = [item.widened(query.buffer) for item in _items(person, BusyRules())]
    return set(
        find_slots(
            working_windows(person.hours, query.window),
            widened,
            duration=query.duration,
            step=query.step,
            not_before=query.not_before,
        )
    )


@PROPERTY_SETTINGS
@given(shared_panels(), st.sampled_from(["UTC", "Australia/Lord_Howe", "America/New_York"]))
def test_larger_shared_panels_match_the_per_person_definitions(case, zone_name: str) -> None:
    """Slots are the intersection of every person's own slots, ranking matches its oracle, and the
    order in which a calendar lists its blocks changes nothing."""
    people, query = case
    zone = ZoneInfo(zone_name)
    result = find_panel_slots(people, query, zone_for_days=zone)
    assert set(result.slots) == set.intersection(*(_person_slots_oracle(p, query) for p in people))
    if result.slots:
        assert list(result.ranked) == _rank_oracle(result.slots, people, zone)
    reordered = [PersonAvailability(p.mailbox, p.hours, p.blocks[::-1], p.all_day) for p in people]
    assert find_panel_slots(reordered, query, zone_for_days=zone) == result


def test_a_free_range_exactly_one_slot_long_keeps_its_slot() -> None:
    """The engine drops free ranges shorter than the duration early; one of exactly the duration
    (here 10:00-10:45 once the 15-minute buffer is applied on both sides) must stay."""
    day = datetime(2026, 6, 1, tzinfo=UTC)
    hours = WorkingHours(frozenset(range(7)), time(9), time(17), ZoneInfo("UTC"))

    def busy(start_h: float, end_h: float) -> BusyBlock:
        return BusyBlock(Interval(day + timedelta(hours=start_h), day + timedelta(hours=end_h)), ShowAs.BUSY)

    people = [
        PersonAvailability("a@x.test", hours, (busy(9, 9.75), busy(11, 17))),
        PersonAvailability("b@x.test", hours, (busy(12, 13),)),
    ]
    query = SlotQuery(
        Interval(day, day + _DAY),
        timedelta(minutes=45),
        timedelta(minutes=15),
        day,
        buffer=timedelta(minutes=15),
    )
    slot = Interval(day + timedelta(hours=10), day + timedelta(hours=10.75))
    assert find_panel_slots(people, query).slots == (slot,)


def test_a_block_inside_a_longer_one_leaves_no_hole() -> None:
    """09:00-12:00 contains 10:00-11:00, and 11:30-13:00 follows. Read in start order the ends are
    12:00, 11:00, 13:00; the engine must sort them, or it would see a free 11:00-11:30."""
    day = datetime(2026, 6, 1, tzinfo=UTC)
    hours = WorkingHours(frozenset(range(7)), time(9), time(14), ZoneInfo("UTC"))
    blocks = tuple(
        BusyBlock(Interval(day + timedelta(hours=a), day + timedelta(hours=b)), ShowAs.BUSY)
        for a, b in ((11.5, 13), (9, 12), (10, 11))
    )
    query = SlotQuery(Interval(day, day + _DAY), timedelta(minutes=15), timedelta(minutes=15), day)
    person = PersonAvailability("p@x.test", hours, blocks)
    got = find_panel_slots([person], query).slots
    assert got[0].start == day + timedelta(hours=13)
    assert free_time(person, query, BusyRules()) == (
        Interval(day + timedelta(hours=13), day + timedelta(hours=14)),
    )


def test_a_meeting_starting_at_the_next_local_midnight_does_not_load_the_day() -> None:
    """Day 1: three items (08-14, 15-16, 17-18), 8 busy hours: 3*3 + 8 = 17. Day 2: one item starting
    at its midnight (00-06), 6 hours, 10 for being later: 10 + 3 + 6 = 19, so day 1 ranks first.
    Counting the day-2 item as a day-1 meeting too would give day 1 20 and put day 2 first."""
    day1 = datetime(2026, 6, 1, tzinfo=UTC)
    hours = WorkingHours(frozenset(range(7)), time(0), time(0), ZoneInfo("UTC"))
    blocks = tuple(
        BusyBlock(Interval(day1 + timedelta(hours=a), day1 + timedelta(hours=b)), ShowAs.BUSY)
        for a, b in ((8, 14), (15, 16), (17, 18), (24, 30))
    )
    person = PersonAvailability("p@x.test", hours, blocks)
    a = Interval(day1 + timedelta(hours=20), day1 + timedelta(hours=21))
    b = Interval(a.start + _DAY, a.end + _DAY)
    assert rank_slots([a, b], [person], ZoneInfo("UTC")) == (a, b)
    assert _rank_oracle([a, b], [person], ZoneInfo("UTC")) == [a, b]
