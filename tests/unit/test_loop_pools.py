"""loop_pools: "any N of these free", picks on a candidate loop, shortfall sentences, booking picks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from calendar_backend.errors import ValidationError
from calendar_backend.loop_pools import (
    PoolData,
    Shortfall,
    assign,
    effective_template,
    seat_free,
    seat_mailbox,
    shortfall_text,
    under_cap,
)
from calendar_backend.loop_templates import parse_template, to_json
from calendar_backend.loops import LoopSchedule, Placement
from calendar_backend.pools import Member, Pool, day_bounds, load_of, week_bounds
from calendar_backend.pools_training import Trainee
from calendar_backend.slots import Interval
from calendar_backend.storage import PoolRecord

T0 = datetime(2026, 12, 8, 9, tzinfo=UTC)  # a Tuesday
H = timedelta(hours=1)
A, B, C, D = (f"{x}@contoso.example" for x in "abcd")
TEMPLATE = parse_template(
    {
        "name": "Pooled",
        "sessions": [
            {"title": "Intro", "minutes": 60, "interviewers": [D]},
            {"title": "Coding", "minutes": 60, "pool": {"name": "Backend", "count": 2}},
        ],
    }
)


def record(weekly: int = 5, trainees: tuple[Trainee, ...] = ()) -> PoolRecord:
    pool = Pool("Backend", "backend", weekly, 2, (Member(A), Member(B), Member(C)))
    return PoolRecord("p1", "t1", pool, None, trainees, T0, T0)


def schedule() -> LoopSchedule:
    return LoopSchedule(
        (Placement(0, "Intro", T0, T0 + H, None), Placement(1, "Coding", T0 + H, T0 + 2 * H, None)),
        1,
        timedelta(0),
        timedelta(0),
    )


def test_the_template_pool_round_trips_and_is_checked() -> None:
    assert parse_template(to_json(TEMPLATE)) == TEMPLATE
    assert TEMPLATE.sessions[1].pool is not None
    assert TEMPLATE.sessions[1].pool.count == 2
    with pytest.raises(ValueError, match=r"pool count must be a whole number from 1 to 10"):
        parse_template(
            {"name": "x", "sessions": [{"title": "a", "minutes": 30, "pool": {"name": "B", "count": 0}}]}
        )
    with pytest.raises(ValueError, match=r"unknown field 'size'"):
        parse_template(
            {"name": "x", "sessions": [{"title": "a", "minutes": 30, "pool": {"name": "B", "size": 1}}]}
        )


def test_seat_free_is_where_at_least_n_are_free() -> None:
    free = {
        A: (Interval(T0, T0 + 3 * H),),
        B: (Interval(T0 + H, T0 + 4 * H),),
        C: (Interval(T0 + 2 * H, T0 + 5 * H),),
    }
    assert seat_free(free, [A, B, C], 2) == (Interval(T0 + H, T0 + 4 * H),)
    assert seat_free(free, [A, B, C], 3) == (Interval(T0 + 2 * H, T0 + 3 * H),)
    assert seat_free(free, [A, B, C], 1) == (Interval(T0, T0 + 5 * H),)
    assert seat_mailbox(1) == "pool-s1@pool.invalid"


def test_assign_picks_the_least_loaded_free_members_and_a_trainee() -> None:
    everyone = (Interval(T0 - 24 * H, T0 + 24 * H),)
    trainee = Trainee(D.replace("d@", "t@"))
    free = {A: everyone, B: everyone, C: everyone, trainee.address: everyone}
    loads = {A: load_of(A, "UTC", 0, [T0 - 48 * H]), B: load_of(B, "UTC", 0, []), C: load_of(C, "UTC", 0, [])}
    data = PoolData({"Backend": record(trainees=(trainee,))}, loads, {})
    picks, short = assign(schedule(), TEMPLATE, data, free)
    assert short == ()
    assert set(picks[1].members) == {B, C}
    assert picks[1].trainees == (trainee.address,)
    assert assign(schedule(), TEMPLATE, data, free) == (picks, short)  # deterministic


def test_assign_explains_a_pool_that_cannot_fill_the_session() -> None:
    everyone = (Interval(T0 - 24 * H, T0 + 24 * H),)
    loads = {B: load_of(B, "UTC", 0, [T0 - 24 * H])}  # B has reached a weekly cap of 1
    data = PoolData({"Backend": record(weekly=1)}, loads, {})
    picks, short = assign(schedule(), TEMPLATE, data, {A: everyone, B: everyone})
    assert picks == {}
    assert short == (Shortfall("Backend", 1, 1, 2, T0 + H),)
    more = [*short, Shortfall("Backend", 1, 0, 2, T0 + 25 * H), Shortfall("Backend", 1, 1, 2, T0 + 49 * H)]
    [(pool, session, text)] = shortfall_text(more, ZoneInfo("UTC"))
    assert (pool, session) == ("Backend", 1)
    assert text == "Backend: only 1 of the 2 needed is free and under cap on Tue\u2013Thu"
    nobody = [Shortfall("Backend", 1, 0, 2, T0 + H)]
    assert shortfall_text(nobody, ZoneInfo("UTC"))[0][2] == (
        "Backend: nobody is free and under their cap on Tue (2 needed)"
    )
    two = [Shortfall("Backend", 1, 2, 3, T0 + H)]
    assert (
        shortfall_text(two, ZoneInfo("UTC"))[0][2]
        == "Backend: only 2 of the 3 needed are free and under cap on Tue"
    )


def test_booking_picks_go_on_the_panel_and_are_checked() -> None:
    done = effective_template(TEMPLATE, {1: ((A, B), ("t@contoso.example",))})
    assert done.sessions[1].interviewers == (A, B, "t@contoso.example")
    assert done.sessions[0].interviewers == (D,)
    for wrong in ({1: ((A,), ())}, {1: ((A, A), ())}, {0: ((A,), ()), 1: ((A, B), ())}):
        with pytest.raises(ValidationError):
            effective_template(TEMPLATE, wrong)


def test_seats_leave_out_the_days_and_weeks_a_member_is_at_a_cap() -> None:
    pool = Pool("Backend", "backend", 2, 1, (Member(A, "America/Los_Angeles"), Member(B)))
    west = pool.members[0]
    free = (Interval(T0 - 48 * H, T0 + 24 * 9 * H),)
    # one session on Tuesday (Los Angeles): that local day is at the daily cap of 1
    load = load_of(A, west.zone, 0, [T0 + 8 * H])
    kept = under_cap(free, pool, west, load)
    day_lo, day_hi = day_bounds(T0 + 8 * H, west.zone)
    assert not any(i.start < day_hi and day_lo < i.end for i in kept)
    assert any(i.start <= day_lo - H for i in kept)
    # two sessions that week: the whole local week is at the weekly cap of 2
    load = load_of(A, west.zone, 0, [T0 + 8 * H, T0 + 32 * H])
    week_lo, week_hi = week_bounds(T0 + 8 * H, west.zone, 0)
    kept = under_cap(free, pool, west, load)
    assert not any(i.start < week_hi and week_lo < i.end for i in kept)
    assert any(i.end > week_hi for i in kept)
    assert under_cap(free, pool, pool.members[1], None) == free
