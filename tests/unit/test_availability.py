"""Example tests for calendar_backend.availability, pinned to explicit dates across DST."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from calendar_backend.availability import (
    AllDayBlock,
    Blocker,
    BlockReason,
    BusyBlock,
    BusyRules,
    PersonAvailability,
    ShowAs,
    SlotQuery,
    WorkingHours,
    blocking_intervals,
    explain_empty,
    find_panel_slots,
    person_slots,
    rank_slots,
    working_windows,
)
from calendar_backend.slots import Interval
from calendar_backend.timezones import resolve_zone

MIN = timedelta(minutes=1)
WEEKDAYS = frozenset(range(5))
SUNDAY = frozenset({6})
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def z(text: str) -> datetime:
    """An explicit UTC instant, e.g. z("2026-06-01T09:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def span(start: str, end: str) -> Interval:
    return Interval(z(start), z(end))


def hours(zone: str, start: str, end: str, days: frozenset[int] = WEEKDAYS) -> WorkingHours:
    return WorkingHours(days, time.fromisoformat(start), time.fromisoformat(end), resolve_zone(zone))


def person(
    mailbox: str,
    working: WorkingHours,
    blocks: tuple[BusyBlock, ...] = (),
    all_day: tuple[AllDayBlock, ...] = (),
) -> PersonAvailability:
    return PersonAvailability(mailbox, working, blocks, all_day)


def query(
    window: Interval,
    duration_min: int = 60,
    step_min: int = 15,
    not_before: datetime = LONG_AGO,
    buffer_min: int = 0,
) -> SlotQuery:
    return SlotQuery(window, duration_min * MIN, step_min * MIN, not_before, buffer=buffer_min * MIN)


# ---- working windows across DST and odd offsets ----------------------------------------------


def test_working_windows_new_york_fall_back_sunday_is_four_hours() -> None:
    sunday = hours("America/New_York", "00:00", "03:00", SUNDAY)
    windows = working_windows(sunday, span("2026-10-31T00:00", "2026-11-03T00:00"))
    assert windows == (span("2026-11-01T04:00", "2026-11-01T08:00"),)


def test_working_windows_new_york_end_in_fold_uses_first_occurrence() -> None:
    sunday = hours("America/New_York", "00:00", "01:30", SUNDAY)
    windows = working_windows(sunday, span("2026-11-01T00:00", "2026-11-02T00:00"))
    assert windows == (span("2026-11-01T04:00", "2026-11-01T05:30"),)


def test_working_windows_new_york_offsets_change_between_friday_and_monday() -> None:
    weekdays = hours("Eastern Standard Time", "09:00", "17:00")
    windows = working_windows(weekdays, span("2026-10-30T00:00", "2026-11-03T00:00"))
    assert windows == (
        span("2026-10-30T13:00", "2026-10-30T21:00"),
        span("2026-11-02T14:00", "2026-11-02T22:00"),
    )


def test_working_windows_london_spring_forward_sunday_is_three_hours() -> None:
    sunday = hours("Europe/London", "00:00", "04:00", SUNDAY)
    windows = working_windows(sunday, span("2026-03-28T00:00", "2026-03-30T00:00"))
    assert windows == (span("2026-03-29T00:00", "2026-03-29T03:00"),)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("01:30", "05:00", span("2026-03-29T01:00", "2026-03-29T04:00")),  # start in the gap
        ("00:00", "01:30", span("2026-03-29T00:00", "2026-03-29T01:00")),  # end in the gap
    ],
)
def test_working_windows_london_gap_edges_move_to_first_valid_instant(
    start: str, end: str, expected: Interval
) -> None:
    sunday = hours("GMT Standard Time", start, end, SUNDAY)
    assert working_windows(sunday, span("2026-03-29T00:00", "2026-03-30T00:00")) == (expected,)


def test_working_windows_shift_entirely_inside_gap_is_skipped() -> None:
    sunday = hours("Europe/London", "01:10", "01:50", SUNDAY)
    assert working_windows(sunday, span("2026-03-28T00:00", "2026-03-30T00:00")) == ()


def test_working_windows_lord_howe_half_hour_shifts() -> None:
    sunday = hours("Australia/Lord_Howe", "01:00", "04:00", SUNDAY)
    spring = working_windows(sunday, span("2026-10-03T00:00", "2026-10-05T00:00"))
    assert spring == (span("2026-10-03T14:30", "2026-10-03T17:00"),)  # +10:30 -> +11:00
    autumn_shift = hours("Australia/Lord_Howe", "00:00", "03:00", SUNDAY)
    autumn = working_windows(autumn_shift, span("2026-04-04T00:00", "2026-04-06T00:00"))
    assert autumn == (span("2026-04-04T13:00", "2026-04-04T16:30"),)  # +11:00 -> +10:30
    assert autumn[0].length == timedelta(hours=3, minutes=30)


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Nepal Standard Time", span("2026-06-01T03:15", "2026-06-01T11:15")),
        ("Asia/Kathmandu", span("2026-06-01T03:15", "2026-06-01T11:15")),
        ("India Standard Time", span("2026-06-01T03:30", "2026-06-01T11:30")),
        ("Asia/Kolkata", span("2026-06-01T03:30", "2026-06-01T11:30")),
        ("Pacific Standard Time", span("2026-06-01T16:00", "2026-06-02T00:00")),
        ("W. Europe Standard Time", span("2026-06-01T07:00", "2026-06-01T15:00")),
    ],
)
def test_working_windows_windows_and_iana_names_on_a_monday(zone: str, expected: Interval) -> None:
    monday = hours(zone, "09:00", "17:00", frozenset({0}))
    assert working_windows(monday, span("2026-05-31T00:00", "2026-06-03T00:00")) == (expected,)


def test_working_windows_overnight_shift_runs_into_next_day() -> None:
    night = hours("W. Europe Standard Time", "22:00", "06:00", frozenset({0}))
    windows = working_windows(night, span("2026-05-31T00:00", "2026-06-03T00:00"))
    assert windows == (span("2026-06-01T20:00", "2026-06-02T04:00"),)


def test_working_windows_equal_start_and_end_is_round_the_clock() -> None:
    always = hours("UTC", "00:00", "00:00", frozenset(range(7)))
    window = span("2026-06-01T05:07", "2026-06-09T00:00")
    assert working_windows(always, window) == (window,)


def test_working_windows_clip_to_the_window() -> None:
    weekdays = hours("UTC", "09:00", "17:00")
    windows = working_windows(weekdays, span("2026-06-01T12:00", "2026-06-02T10:00"))
    assert windows == (
        span("2026-06-01T12:00", "2026-06-01T17:00"),
        span("2026-06-02T09:00", "2026-06-02T10:00"),
    )


def test_working_hours_reject_bad_days_and_aware_times() -> None:
    with pytest.raises(ValueError, match="0 \\(Monday\\)"):
        WorkingHours(frozenset({7}), time(9), time(17), ZoneInfo("UTC"))
    with pytest.raises(ValueError, match="naive"):
        WorkingHours(WEEKDAYS, time(9, tzinfo=UTC), time(17), ZoneInfo("UTC"))


# ---- all-day blocks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        ("America/New_York", date(2026, 11, 1), span("2026-11-01T04:00", "2026-11-02T05:00")),
        ("Europe/London", date(2026, 3, 29), span("2026-03-29T00:00", "2026-03-29T23:00")),
        ("India Standard Time", date(2026, 6, 2), span("2026-06-01T18:30", "2026-06-02T18:30")),
    ],
)
def test_all_day_block_covers_the_local_day_in_the_owner_zone(
    zone: str, day: date, expected: Interval
) -> None:
    owner = person(
        "a@x.test",
        hours(zone, "09:00", "17:00"),
        all_day=(AllDayBlock(day, day + timedelta(days=1), ShowAs.OOF),),
    )
    assert blocking_intervals(owner, BusyRules()) == (expected,)


def test_all_day_block_rejects_empty_range() -> None:
    with pytest.raises(ValueError, match="at least one day"):
        AllDayBlock(date(2026, 6, 2), date(2026, 6, 2), ShowAs.BUSY)


def _kolkata_and_new_york(status: ShowAs) -> list[PersonAvailability]:
    kolkata = person(
        "priya@x.test",
        hours("India Standard Time", "09:00", "23:00"),
        all_day=(AllDayBlock(date(2026, 6, 2), date(2026, 6, 3), status),),
    )
    new_york = person("nick@x.test", hours("Eastern Standard Time", "09:00", "17:00"))
    return [kolkata, new_york]


def test_all_day_event_in_other_zone_blocks_only_that_local_day() -> None:
    result = find_panel_slots(
        _kolkata_and_new_york(ShowAs.BUSY),
        query(span("2026-06-01T00:00", "2026-06-04T00:00"), step_min=30),
    )
    # Common time is 13:00-17:30Z daily; Priya's Tuesday runs 2026-06-01T18:30Z..06-02T18:30Z.
    assert {s.start.date() for s in result.slots} == {date(2026, 6, 1), date(2026, 6, 3)}
    assert result.slots[0] == span("2026-06-01T13:00", "2026-06-01T14:00")
    assert result.slots[-1] == span("2026-06-03T16:30", "2026-06-03T17:30")
    assert len(result.slots) == 2 * 8


@pytest.mark.parametrize("status", [ShowAs.FREE, ShowAs.WORKING_ELSEWHERE])
def test_all_day_free_or_working_elsewhere_does_not_block(status: ShowAs) -> None:
    result = find_panel_slots(
        _kolkata_and_new_york(status),
        query(span("2026-06-01T00:00", "2026-06-04T00:00"), step_min=30),
    )
    assert {s.start.date() for s in result.slots} == {date(2026, 6, d) for d in (1, 2, 3)}


# ---- statuses, buffers, notice ------------------------------------------------------------------

STATUS_DAY = tuple(
    BusyBlock(span(f"2026-06-01T{9 + i:02d}:00", f"2026-06-01T{10 + i:02d}:00"), status)
    for i, status in enumerate(
        [
            ShowAs.FREE,
            ShowAs.WORKING_ELSEWHERE,
            ShowAs.TENTATIVE,
            ShowAs.BUSY,
            ShowAs.OOF,
            ShowAs.UNKNOWN,
        ]
    )
)


@pytest.mark.parametrize(
    ("rules", "free_hours"),
    [
        (BusyRules(), [9, 10, 15, 16]),
        (BusyRules(frozenset({ShowAs.BUSY, ShowAs.OOF})), [9, 10, 11, 14, 15, 16]),
        (BusyRules(frozenset({ShowAs.BUSY, ShowAs.OOF, ShowAs.UNKNOWN})), [9, 10, 11, 15, 16]),
    ],
)
def test_statuses_block_per_rules_and_unknown_fails_closed(rules: BusyRules, free_hours: list[int]) -> None:
    alice = person("alice@x.test", hours("UTC", "09:00", "17:00"), STATUS_DAY)
    result = find_panel_slots(
        [alice], query(span("2026-06-01T00:00", "2026-06-02T00:00"), step_min=60), rules
    )
    assert [s.start.hour for s in result.slots] == free_hours


def test_buffer_widens_busy_time_on_both_sides() -> None:
    blocks = (
        BusyBlock(span("2026-06-01T08:50", "2026-06-01T09:05"), ShowAs.BUSY),
        BusyBlock(span("2026-06-01T12:00", "2026-06-01T13:00"), ShowAs.BUSY),
    )
    alice = person("alice@x.test", hours("UTC", "09:00", "17:00"), blocks)
    window = span("2026-06-01T00:00", "2026-06-02T00:00")
    slots = find_panel_slots([alice], query(window, duration_min=30, buffer_min=15)).slots
    assert slots[0] == span("2026-06-01T09:30", "2026-06-01T10:00")
    assert span("2026-06-01T11:15", "2026-06-01T11:45") in slots
    assert span("2026-06-01T11:30", "2026-06-01T12:00") not in slots
    after = [s for s in slots if s.start >= z("2026-06-01T12:00")]
    assert after[0] == span("2026-06-01T13:15", "2026-06-01T13:45")
    unbuffered = find_panel_slots([alice], query(window, duration_min=30)).slots
    assert set(slots) < set(unbuffered)


def test_notice_is_applied_through_not_before() -> None:
    alice = person("alice@x.test", hours("UTC", "09:00", "17:00"))
    window = span("2026-06-01T00:00", "2026-06-02T00:00")
    slots = find_panel_slots([alice], query(window, not_before=z("2026-06-01T10:07"))).slots
    assert slots[0] == span("2026-06-01T10:15", "2026-06-01T11:15")


def test_panel_needs_everyone_in_hours() -> None:
    kolkata = person("priya@x.test", hours("Asia/Kolkata", "09:00", "21:00"))
    new_york = person("nick@x.test", hours("America/New_York", "09:00", "17:00"))
    result = find_panel_slots([kolkata, new_york], query(span("2026-06-01T00:00", "2026-06-02T00:00")))
    assert result.slots[0] == span("2026-06-01T13:00", "2026-06-01T14:00")
    assert result.slots[-1] == span("2026-06-01T14:30", "2026-06-01T15:30")
    assert result.blockers == ()


# ---- blockers ---------------------------------------------------------------------------------


def test_blockers_name_people_outside_hours_and_fully_busy() -> None:
    window = span("2026-06-01T00:00", "2026-06-02T00:00")
    weekend = person("wendy@x.test", hours("UTC", "09:00", "17:00", frozenset({5, 6})))
    away = person(
        "oscar@x.test",
        hours("UTC", "09:00", "17:00"),
        all_day=(AllDayBlock(date(2026, 6, 1), date(2026, 6, 2), ShowAs.OOF),),
    )
    fine = person("fiona@x.test", hours("UTC", "09:00", "17:00"))
    result = find_panel_slots([weekend, away, fine], query(window))
    assert result.slots == ()
    assert result.ranked == ()
    assert result.blockers == (
        Blocker("wendy@x.test", BlockReason.NOT_WORKING_DAYS),  # works weekends, window is Monday
        Blocker("oscar@x.test", BlockReason.FULLY_BUSY),
    )


def test_blockers_name_only_those_whose_removal_helps() -> None:
    window = span("2026-06-01T00:00", "2026-06-02T00:00")
    a = person("a@x.test", hours("UTC", "09:00", "12:00"))
    b = person("b@x.test", hours("UTC", "11:00", "14:00"))
    c = person("c@x.test", hours("UTC", "11:30", "15:00"))
    result = find_panel_slots([a, b, c], query(window))
    assert result.blockers == (
        Blocker("a@x.test", BlockReason.NO_COMMON_TIME),
        Blocker("c@x.test", BlockReason.NO_COMMON_TIME),
    )
    outsider = person("k@x.test", hours("Asia/Kolkata", "09:00", "12:00"))
    result = find_panel_slots([a, b, outsider], query(window))
    assert result.blockers == (Blocker("k@x.test", BlockReason.NO_COMMON_TIME),)


def test_blockers_name_everyone_when_no_single_removal_helps() -> None:
    window = span("2026-06-01T00:00", "2026-06-02T00:00")
    people = [
        person(f"{n}@x.test", hours("UTC", f"{h:02d}:00", f"{h + 1:02d}:00"))
        for n, h in [("a", 9), ("b", 10), ("c", 11)]
    ]
    result = find_panel_slots(people, query(window))
    assert [b.mailbox for b in result.blockers] == ["a@x.test", "b@x.test", "c@x.test"]
    assert {b.reason for b in result.blockers} == {BlockReason.NO_COMMON_TIME}
    assert explain_empty(people[:1], query(window), BusyRules()) == ()


def test_window_too_short_after_notice_is_reported_without_blaming_anyone() -> None:
    alice = person("alice@x.test", hours("UTC", "09:00", "17:00"))
    window = span("2026-06-01T09:00", "2026-06-01T12:00")
    result = find_panel_slots([alice], query(window, not_before=z("2026-06-01T11:30")))
    assert result.is_window_too_short
    assert result.blockers == ()


def test_blocker_carries_only_mailbox_and_reason() -> None:
    assert {f.name for f in fields(Blocker)} == {"mailbox", "reason"}


def test_query_and_panel_validation() -> None:
    window = span("2026-06-01T09:00", "2026-06-01T12:00")
    with pytest.raises(ValueError, match="positive"):
        query(window, duration_min=0)
    with pytest.raises(ValueError, match="positive"):
        query(window, step_min=0)
    with pytest.raises(ValueError, match="negative"):
        query(window, buffer_min=-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        SlotQuery(window, MIN, MIN, datetime(2026, 6, 1))
    with pytest.raises(ValueError, match="at least one person"):
        find_panel_slots([], query(window))


# ---- ranking ----------------------------------------------------------------------------------


def _two_day_result(monday_blocks: tuple[BusyBlock, ...]) -> tuple[Interval, ...]:
    alice = person("alice@x.test", hours("UTC", "09:00", "17:00"), monday_blocks)
    window = span("2026-06-01T00:00", "2026-06-03T00:00")
    result = find_panel_slots([alice], query(window, step_min=60), zone_for_days=ZoneInfo("UTC"))
    assert sorted(result.ranked, key=lambda s: s.start) == list(result.slots)
    return result.ranked


def test_rank_prefers_earliest_day_when_load_is_equal() -> None:
    ranked = _two_day_result(())
    assert [s.start for s in ranked] == sorted(s.start for s in ranked)


def test_rank_prefers_a_calmer_unfragmented_day_over_a_busy_earlier_one() -> None:
    monday = (
        BusyBlock(span("2026-06-01T09:00", "2026-06-01T10:00"), ShowAs.BUSY),
        BusyBlock(span("2026-06-01T11:00", "2026-06-01T12:00"), ShowAs.TENTATIVE),
        BusyBlock(span("2026-06-01T13:00", "2026-06-01T13:30"), ShowAs.FREE),
    )
    ranked = _two_day_result(monday)
    # Monday: 5 * (2 ranges - 1) + 3 * 2 meetings + 1 * 2 busy hours = 13.
    # Tuesday: 10 * 1 day = 10, so all of Tuesday ranks first.
    expected_tuesday = [z(f"2026-06-02T{h:02d}:00") for h in range(9, 17)]
    expected_monday = [z(f"2026-06-01T{h:02d}:00") for h in (10, 12, 13, 14, 15, 16)]
    assert [s.start for s in ranked] == expected_tuesday + expected_monday


def test_rank_groups_days_in_the_given_zone() -> None:
    a = span("2026-06-01T20:00", "2026-06-01T21:00")
    b = span("2026-06-02T06:00", "2026-06-02T07:00")
    loaded = person(
        "l@x.test",
        hours("UTC", "00:00", "00:00", frozenset(range(7))),
        (
            BusyBlock(span("2026-06-01T08:00", "2026-06-01T14:00"), ShowAs.BUSY),
            BusyBlock(span("2026-06-01T15:00", "2026-06-01T17:00"), ShowAs.OOF),
        ),
    )
    # UTC days: June 1 scores 3 * 2 meetings + 8 busy hours = 14, June 2 scores 10: b first.
    assert rank_slots([a, b], [loaded], ZoneInfo("UTC")) == (b, a)
    # Kiritimati (+14): both slots are on June 2 local, so the order is chronological.
    assert rank_slots([b, a], [loaded], ZoneInfo("Pacific/Kiritimati")) == (a, b)


def test_rank_of_nothing_is_empty() -> None:
    assert rank_slots([], [], ZoneInfo("UTC")) == ()


def test_panel_slots_are_exactly_the_slots_everyone_has_alone() -> None:
    people = [
        *_kolkata_and_new_york(ShowAs.OOF),
        person("alice@x.test", hours("UTC", "12:00", "20:00"), STATUS_DAY),
    ]
    q = query(span("2026-06-01T00:00", "2026-06-04T00:00"), duration_min=45, buffer_min=10)
    alone = [set(person_slots(p, q, BusyRules())) for p in people]
    panel = find_panel_slots(people, q).slots
    assert panel
    assert list(panel) == sorted(set.intersection(*alone), key=lambda s: s.start)
