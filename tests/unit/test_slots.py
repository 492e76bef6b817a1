"""Example tests for calendar_backend.slots, pinned to explicit dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from calendar_backend.slots import (
    Interval,
    align_up,
    find_slots,
    intersect,
    intersect_all,
    merge,
    subtract,
)

MIN = timedelta(minutes=1)


def at(hhmm: str, day: str = "2026-06-01") -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}:00+00:00")


def iv(start: str, end: str, day: str = "2026-06-01") -> Interval:
    return Interval(at(start, day), at(end, day))


def test_interval_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Interval(datetime(2026, 6, 1, 9), at("10:00"))
    with pytest.raises(ValueError, match="timezone-aware"):
        Interval(at("09:00"), datetime(2026, 6, 1, 10))


@pytest.mark.parametrize(("start", "end"), [("10:00", "10:00"), ("10:00", "09:59")])
def test_interval_rejects_empty_or_reversed(start: str, end: str) -> None:
    with pytest.raises(ValueError, match="not before"):
        iv(start, end)


def test_interval_normalises_to_utc() -> None:
    kathmandu = ZoneInfo("Asia/Kathmandu")
    local = Interval(datetime(2026, 6, 1, 9, tzinfo=kathmandu), datetime(2026, 6, 1, 10, tzinfo=kathmandu))
    assert local.start.tzinfo is UTC
    assert local.end.tzinfo is UTC
    assert local == iv("03:15", "04:15")
    assert local.length == timedelta(hours=1)


def test_interval_widened_and_negative_margin() -> None:
    assert iv("10:00", "11:00").widened(15 * MIN) == iv("09:45", "11:15")
    with pytest.raises(ValueError, match="negative"):
        iv("10:00", "11:00").widened(-MIN)


def test_merge_coalesces_overlapping_and_touching_and_sorts() -> None:
    merged = merge([iv("13:00", "14:00"), iv("09:00", "10:00"), iv("10:00", "11:00"), iv("09:30", "09:45")])
    assert merged == (iv("09:00", "11:00"), iv("13:00", "14:00"))


def test_merge_of_nothing_is_empty() -> None:
    assert merge([]) == ()


def test_subtract_cuts_holes_and_spans_windows() -> None:
    windows = [iv("09:00", "12:00"), iv("13:00", "17:00")]
    busy = [iv("08:00", "09:30"), iv("10:00", "10:30"), iv("11:30", "13:30"), iv("16:00", "18:00")]
    assert subtract(windows, busy) == (
        iv("09:30", "10:00"),
        iv("10:30", "11:30"),
        iv("13:30", "16:00"),
    )


def test_subtract_fully_covered_window_is_empty() -> None:
    assert subtract([iv("09:00", "10:00")], [iv("08:00", "11:00")]) == ()


def test_intersect_keeps_common_parts() -> None:
    a = [iv("09:00", "12:00"), iv("14:00", "18:00")]
    b = [iv("11:00", "15:00"), iv("17:00", "17:30")]
    assert intersect(a, b) == (iv("11:00", "12:00"), iv("14:00", "15:00"), iv("17:00", "17:30"))
    assert intersect(a, []) == ()


def test_intersect_all_folds_and_rejects_empty() -> None:
    sets = [
        [iv("09:00", "17:00")],
        [iv("10:00", "18:00")],
        [iv("08:00", "11:00"), iv("16:00", "20:00")],
    ]
    assert intersect_all(sets) == (iv("10:00", "11:00"), iv("16:00", "17:00"))
    with pytest.raises(ValueError, match="at least one"):
        intersect_all([])


def test_align_up_uses_utc_epoch_grid() -> None:
    assert align_up(at("09:07"), 15 * MIN) == at("09:15")
    assert align_up(at("09:15"), 15 * MIN) == at("09:15")
    assert align_up(at("09:15") + timedelta(microseconds=1), 15 * MIN) == at("09:30")
    with pytest.raises(ValueError, match="positive"):
        align_up(at("09:00"), timedelta(0))


def test_find_slots_walks_free_ranges_on_grid() -> None:
    slots = find_slots(
        [iv("09:07", "11:00")],
        [iv("10:00", "10:20")],
        duration=30 * MIN,
        step=15 * MIN,
        not_before=at("00:00"),
    )
    assert slots == (iv("09:15", "09:45"), iv("09:30", "10:00"), iv("10:30", "11:00"))


def test_find_slots_respects_not_before() -> None:
    slots = find_slots([iv("09:00", "11:00")], [], duration=60 * MIN, step=15 * MIN, not_before=at("09:40"))
    assert slots == (iv("09:45", "10:45"), iv("10:00", "11:00"))


def test_find_slots_grid_is_utc_not_local_in_kathmandu() -> None:
    kathmandu = ZoneInfo("Asia/Kathmandu")
    window = Interval(datetime(2026, 6, 1, 9, tzinfo=kathmandu), datetime(2026, 6, 1, 11, tzinfo=kathmandu))
    slots = find_slots([window], [], duration=60 * MIN, step=30 * MIN, not_before=at("00:00"))
    # 09:00 Kathmandu is 03:15Z, off the 30-minute UTC grid: the first slot starts 03:30Z.
    assert slots == (iv("03:30", "04:30"), iv("04:00", "05:00"))


def test_find_slots_across_touching_windows() -> None:
    slots = find_slots(
        [iv("09:00", "09:30"), iv("09:30", "10:00")],
        [],
        duration=60 * MIN,
        step=15 * MIN,
        not_before=at("00:00"),
    )
    assert slots == (iv("09:00", "10:00"),)


def test_find_slots_too_short_window_gives_nothing() -> None:
    assert (
        find_slots([iv("09:00", "09:29")], [], duration=30 * MIN, step=5 * MIN, not_before=at("00:00")) == ()
    )


def test_find_slots_rejects_bad_parameters() -> None:
    windows = [iv("09:00", "10:00")]
    with pytest.raises(ValueError, match="duration"):
        find_slots(windows, [], duration=timedelta(0), step=15 * MIN, not_before=at("00:00"))
    with pytest.raises(ValueError, match="step"):
        find_slots(windows, [], duration=15 * MIN, step=timedelta(0), not_before=at("00:00"))
    with pytest.raises(ValueError, match="timezone-aware"):
        find_slots(windows, [], duration=15 * MIN, step=15 * MIN, not_before=datetime(2026, 6, 1))
