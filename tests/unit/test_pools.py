"""Pools (issue 18): weeks and days in each member's own zone and week, load, selection, training."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from calendar_backend.pools import (
    Booked,
    BookedStatus,
    HotWindow,
    Member,
    OutsideEvent,
    Pool,
    count_load,
    day_bounds,
    local_day,
    local_week,
    parse_hot_window,
    week_bounds,
)
from calendar_backend.pools_selection import CapOverride, Skip, select_members, tie_hash
from calendar_backend.pools_training import Trainee, TrainingStage, pick_trainees, record_session

LA = "America/Los_Angeles"  # UTC-8 in winter
KTM = "Asia/Kathmandu"  # UTC+05:45
SUN, MON = 6, 0
A, B, C = "a@contoso.example", "b@contoso.example", "c@contoso.example"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def booked(start: datetime, *who: str, minutes: int = 60, **kw) -> Booked:
    return Booked(start, start + timedelta(minutes=minutes), frozenset(who), **kw)


# --- weeks and days in the member's zone -------------------------------------------------------


def test_week_of_a_member_in_utc_minus_8_starting_sunday() -> None:
    # Sunday 2026-12-13 00:00 in Los Angeles is 08:00 UTC.
    assert local_week(utc(2026, 12, 13, 7, 59), LA, SUN) == date(2026, 12, 6)
    assert local_week(utc(2026, 12, 13, 8, 0), LA, SUN) == date(2026, 12, 13)
    # The same instants in a Monday-first week: both in the week of Monday 7 December.
    assert local_week(utc(2026, 12, 13, 8, 0), LA, MON) == date(2026, 12, 7)
    assert local_week(utc(2026, 12, 14, 7, 59), LA, MON) == date(2026, 12, 7)
    assert local_week(utc(2026, 12, 14, 8, 0), LA, MON) == date(2026, 12, 14)


def test_week_of_a_member_in_utc_plus_0545_starting_monday() -> None:
    # Monday 2026-12-14 00:00 in Kathmandu is Sunday 18:15 UTC.
    assert local_week(utc(2026, 12, 13, 18, 14), KTM, MON) == date(2026, 12, 7)
    assert local_week(utc(2026, 12, 13, 18, 15), KTM, MON) == date(2026, 12, 14)
    assert local_day(utc(2026, 12, 13, 18, 15), KTM) == date(2026, 12, 14)
    assert week_bounds(utc(2026, 12, 15), KTM, MON) == (utc(2026, 12, 13, 18, 15), utc(2026, 12, 20, 18, 15))


def test_one_interview_counts_in_different_weeks_for_each_attendee() -> None:
    # Sunday 13 Dec 20:00 UTC: Sunday 12:00 in LA (week from Sunday 13),
    # Monday 01:45 in Kathmandu (week from Monday 14).
    la, ktm = Member(A, LA, SUN), Member(B, KTM, MON)
    load = count_load([la, ktm], [booked(utc(2026, 12, 13, 20), A, B)])
    assert dict(load[A].weeks) == {date(2026, 12, 13): 1}
    assert dict(load[A].days) == {date(2026, 12, 13): 1}
    assert dict(load[B].weeks) == {date(2026, 12, 14): 1}
    assert dict(load[B].days) == {date(2026, 12, 14): 1}


def test_week_bounds_follow_dst() -> None:
    # LA falls back on Sunday 1 November 2026: that Sunday-first week is 7 days + 1 hour long.
    lo, hi = week_bounds(utc(2026, 11, 3), LA, SUN)
    assert (lo, hi) == (utc(2026, 11, 1, 7), utc(2026, 11, 8, 8))
    assert day_bounds(utc(2026, 11, 1, 12), LA) == (utc(2026, 11, 1, 7), utc(2026, 11, 2, 8))
    # An interview at 23:30 local on Saturday 31 October (PDT, UTC-7) is in the previous week.
    assert local_week(utc(2026, 11, 1, 6, 30), LA, SUN) == date(2026, 10, 25)


def test_cancelled_do_not_count_moved_count_in_the_new_week_trainees_and_outside_events() -> None:
    m = Member(A, LA, MON)
    moved_to = utc(2026, 12, 16, 18)  # moved from the week of 7 Dec: given with its new time
    load = count_load(
        [m],
        [
            booked(utc(2026, 12, 8, 18), A, status=BookedStatus.CANCELLED),
            booked(utc(2026, 12, 8, 19), A, status=BookedStatus.FAILED),
            booked(moved_to, A, status=BookedStatus.PENDING),
            booked(utc(2026, 12, 9, 18), A, "x@contoso.example", trainees=frozenset({A})),
        ],
        [OutsideEvent(A, utc(2026, 12, 17, 18), utc(2026, 12, 17, 19))],
    )
    assert dict(load[A].weeks) == {date(2026, 12, 14): 2}
    training = count_load([m], [booked(utc(2026, 12, 9, 18), A, trainees=frozenset({A}))], training=True)
    assert dict(training[A].weeks) == {date(2026, 12, 7): 1}


def test_hot_hours_are_local_and_whole_session() -> None:
    m = Member(A, KTM, MON, hot_hours=(parse_hot_window("09:00-12:00@0,1,2,3,4"),))
    nine_local = utc(2026, 12, 8, 3, 15)  # Tuesday 09:00 in Kathmandu
    assert m.is_hot(nine_local, nine_local + timedelta(hours=1))
    assert not m.is_hot(nine_local, nine_local + timedelta(hours=3, minutes=1))
    assert not m.is_hot(nine_local - timedelta(minutes=15), nine_local + timedelta(minutes=30))
    saturday = nine_local + timedelta(days=4)
    assert not m.is_hot(saturday, saturday + timedelta(hours=1))
    assert HotWindow.from_json(m.hot_hours[0].to_json()) == m.hot_hours[0]


@pytest.mark.parametrize("bad", ["9-12", "12:00-09:00", "09:00-12:00@7"])
def test_bad_hot_windows_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r".+"):
        parse_hot_window(bad)


def test_bad_members_and_pools_are_refused() -> None:
    with pytest.raises(ValueError, match="zone"):
        Member(A, "Mars/Olympus")
    with pytest.raises(ValueError, match="week_start"):
        Member(A, week_start=7)
    with pytest.raises(ValueError, match="cap"):
        Member(A, weekly_cap=-1)
    with pytest.raises(ValueError, match="twice"):
        Pool("Backend", members=(Member(A), Member(A.upper())))
    with pytest.raises(ValueError, match="name"):
        Pool("")
    with pytest.raises(ValueError, match="naive"):
        Booked(datetime(2026, 12, 7), datetime(2026, 12, 7, 1), frozenset({A}))


# --- selection ---------------------------------------------------------------------------------


def test_selection_prefers_least_loaded_then_hot_hours() -> None:
    start = utc(2026, 12, 9, 17)  # Wednesday 09:00 in LA
    hot = (HotWindow(time(9), time(12)),)
    pool = Pool("Backend", members=(Member(A, LA), Member(B, LA, hot_hours=hot), Member(C, LA)))
    loads = count_load(pool.members, [booked(utc(2026, 12, 8, 17), A)])
    pick = select_members(pool, loads, start=start, end=start + timedelta(hours=1), count=2, free=[A, B, C])
    assert pick.addresses == (B, C)  # B and C have no load; B is in hot hours; A is most loaded
    assert pick.skipped == ((A, Skip.NOT_NEEDED),)
    assert pick.is_complete


def test_selection_never_exceeds_a_cap_without_an_override() -> None:
    start = utc(2026, 12, 10, 17)
    pool = Pool("Backend", default_weekly_cap=1, default_daily_cap=1, members=(Member(A, LA), Member(B, LA)))
    loads = count_load(pool.members, [booked(utc(2026, 12, 8, 17), A), booked(start - timedelta(hours=3), B)])
    refused = select_members(pool, loads, start=start, end=start + timedelta(hours=1), count=1, free=[A, B])
    assert refused.picks == ()
    assert refused.missing == 1
    assert refused.skipped == ((A, Skip.WEEKLY_CAP), (B, Skip.WEEKLY_CAP))
    override = CapOverride(B, "os:admin@host", "only one who knows Rust")
    allowed = select_members(
        pool, loads, start=start, end=start + timedelta(hours=1), count=1, free=[A, B], overrides=[override]
    )
    assert allowed.addresses == (B,)
    assert allowed.overrides[0].override == override
    assert allowed.picks[0].is_over_cap


def test_daily_cap_is_the_members_local_day() -> None:
    # Kathmandu member, daily cap 1: 18:00 UTC Monday (23:45 local Monday) and 18:30 UTC (00:15 Tuesday).
    pool = Pool("Backend", default_daily_cap=1, members=(Member(B, KTM),))
    loads = count_load(pool.members, [booked(utc(2026, 12, 7, 18), B, minutes=15)])
    later = utc(2026, 12, 7, 18, 30)
    assert select_members(
        pool, loads, start=later, end=later + timedelta(minutes=30), count=1, free=[B]
    ).is_complete
    same_day = utc(2026, 12, 7, 12)
    refused = select_members(
        pool, loads, start=same_day, end=same_day + timedelta(hours=1), count=1, free=[B]
    )
    assert refused.skipped == ((B, Skip.DAILY_CAP),)


def test_busy_and_excluded_members_are_skipped_with_the_reason() -> None:
    start = utc(2026, 12, 9, 17)
    pool = Pool("Backend", members=(Member(A), Member(B), Member(C)))
    pick = select_members(
        pool, {}, start=start, end=start + timedelta(hours=1), count=3, free=[A, B], exclude=[A]
    )
    assert pick.addresses == (B,)
    assert pick.skipped == ((A, Skip.EXCLUDED), (C, Skip.BUSY))


def test_ties_are_broken_by_the_documented_hash_not_the_alphabet() -> None:
    pool = Pool("Backend", members=tuple(Member(f"p{i}@contoso.example") for i in range(6)))
    firsts = set()
    for hour in range(12):
        start = utc(2026, 12, 9, hour)
        pick = select_members(
            pool,
            {},
            start=start,
            end=start + timedelta(hours=1),
            count=1,
            free=[m.address for m in pool.members],
        )
        expected = min(pool.members, key=lambda m: tie_hash(start, m.address)).address
        assert pick.addresses == (expected,)
        firsts.add(expected)
    assert len(firsts) > 1


# --- training ----------------------------------------------------------------------------------


def test_trainee_is_picked_when_free_and_under_training_caps() -> None:
    start = utc(2026, 12, 9, 17)
    t1, t2 = Trainee("t1@contoso.example", daily_cap=1), Trainee("t2@contoso.example")
    loads = count_load([], [])  # nobody has trained yet
    picks = pick_trainees(
        [t1, t2], loads, start=start, end=start + timedelta(hours=1), free=[t1.address], limit=2
    )
    assert [(p.address, p.stage) for p in picks] == [(t1.address, TrainingStage.SHADOW)]
    trained = {
        t1.address: count_load(
            [Member(t1.address)], [booked(start - timedelta(hours=4), t1.address)], training=False
        )[t1.address]
    }
    assert pick_trainees([t1], trained, start=start, end=start + timedelta(hours=1), free=[t1.address]) == ()
    graduated = Trainee("g@contoso.example", shadow_done=3, reverse_shadow_done=3)
    assert graduated.stage is TrainingStage.GRADUATED
    assert (
        pick_trainees([graduated], {}, start=start, end=start + timedelta(hours=1), free=[graduated.address])
        == ()
    )


def test_trainee_graduates_automatically_with_events() -> None:
    t = Trainee(A, shadow_required=2, reverse_shadow_required=1)
    t, events = record_session(t, TrainingStage.SHADOW)
    assert (t.stage, events) == (TrainingStage.SHADOW, ())
    t, events = record_session(t, TrainingStage.SHADOW)
    assert [e.to_stage for e in events] == [TrainingStage.REVERSE_SHADOW]
    t, events = record_session(t, TrainingStage.REVERSE_SHADOW)
    assert [e.is_graduation for e in events] == [True]
    assert t.remaining == 0
    with pytest.raises(ValueError, match="attended"):
        record_session(t, TrainingStage.GRADUATED)
    # Nothing to shadow: a trainee who needs no shadowing starts at reverse-shadow.
    assert Trainee(B, shadow_required=0).stage is TrainingStage.REVERSE_SHADOW
