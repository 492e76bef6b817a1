"""Oracles for the fast panel engine (issue 8): ranking and blocker reports vs. plain definitions.

The engine computes panel free time as shared working time minus the union of everyone's blocking
time, ranks with binary searches and explains empty results with prefix/suffix intersections. The
oracles below restate each rule directly with per-person ``Interval`` arithmetic, quadratically.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from calendar_backend.availability import (
    BUSY_HOUR_PENALTY,
    DAY_PENALTY,
    FRAGMENT_PENALTY,
    MEETING_PENALTY,
    BlockReason,
    BusyRules,
    PersonAvailability,
    ShowAs,
    SlotQuery,
    explain_empty,
    find_panel_slots,
    free_time,
    local_days,
    working_windows,
)
from calendar_backend.slots import Interval, find_slots, intersect_all, merge
from tests.unit.test_slots_properties import PROPERTY_SETTINGS, panel_queries

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


def _explain_oracle(
    people: Sequence[PersonAvailability], query: SlotQuery
) -> tuple[tuple[str, BlockReason], ...]:
    rules = BusyRules()
    free = [free_time(p, query, rules) for p in people]
    alone = []
    for person, own in zip(people, free, strict=True):
        if not _has_slot(working_windows(person.hours, query.window), query):
            alone.append((person.mailbox, BlockReason.NO_WORKING_HOURS))
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
    from datetime import UTC, datetime, time

    from calendar_backend.availability import BusyBlock, WorkingHours

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
    from datetime import UTC, datetime, time

    from calendar_backend.availability import BusyBlock, WorkingHours, rank_slots

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
