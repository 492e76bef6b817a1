"""The candidate's working day (issue 13 defect 7): slots inside it first, the rest marked."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calendar_backend.slots import CandidateDay, Interval, candidate_first

KOLKATA = ZoneInfo("Asia/Kolkata")  # UTC+05:30
KATHMANDU = ZoneInfo("Asia/Kathmandu")  # UTC+05:45


def slot(hour: int, minute: int = 0, length: int = 60) -> Interval:
    start = datetime(2026, 12, 14, hour, minute, tzinfo=UTC)
    return Interval(start, start + timedelta(minutes=length))


def test_india_evening_slots_go_last() -> None:
    # 16:00 UTC = 21:30 IST (the slot), 09:00 UTC = 14:30 IST, 14:30 UTC = 20:00 IST.
    late, fine, edge = slot(16), slot(9), slot(13, 30, 60)
    inside, outside = candidate_first([late, fine, edge], CandidateDay(KOLKATA))
    assert inside == (fine, edge)  # 19:00-20:00 IST ends exactly at 20:00: inside
    assert outside == (late,)


def test_india_across_midnight_is_outside() -> None:
    # 17:00-19:30 UTC = 22:30-01:00 IST (the other panel).
    night = Interval(datetime(2026, 12, 14, 17, tzinfo=UTC), datetime(2026, 12, 14, 19, 30, tzinfo=UTC))
    assert candidate_first([night], CandidateDay(KOLKATA)) == ((), (night,))


@pytest.mark.parametrize(
    ("utc", "inside"),
    [
        (time(2, 15), True),  # 08:00 NPT: opens exactly
        (time(2, 0), False),  # 07:45 NPT
        (time(13, 15), True),  # 19:00-20:00 NPT
        (time(13, 30), False),  # 19:15-20:15 NPT
    ],
)
def test_kathmandu_quarter_hour_offset(utc: time, inside: bool) -> None:
    s = slot(utc.hour, utc.minute)
    assert CandidateDay(KATHMANDU).contains(s) is inside


def test_configurable_day() -> None:
    day = CandidateDay(KOLKATA, time(10), time(18))
    assert not day.contains(slot(4))  # 09:30 IST
    assert day.contains(slot(5))  # 10:30 IST
    assert CandidateDay(KOLKATA, time(18), time(0)).contains(slot(17, 30))  # 23:00-24:00 IST
    with pytest.raises(ValueError, match="start before"):
        CandidateDay(KOLKATA, time(20), time(8))


@given(
    st.lists(st.integers(min_value=0, max_value=24 * 4 * 3), max_size=40, unique=True),
    st.sampled_from([KOLKATA, KATHMANDU, ZoneInfo("America/Los_Angeles")]),
)
def test_partition_is_stable_and_complete(quarters: list[int], zone: ZoneInfo) -> None:
    base = datetime(2026, 3, 6, tzinfo=UTC)  # spans the US DST change
    slots = [
        Interval(base + timedelta(minutes=15 * q), base + timedelta(minutes=15 * q + 45)) for q in quarters
    ]
    day = CandidateDay(zone)
    inside, outside = candidate_first(slots, day)
    assert sorted(inside + outside, key=slots.index) == slots
    assert [s for s in slots if day.contains(s)] == list(inside)
    for s in inside:
        local = s.start.astimezone(zone)
        assert time(8) <= local.time()
        assert (s.end.astimezone(zone) - local.replace(hour=20, minute=0)) <= timedelta(0)
