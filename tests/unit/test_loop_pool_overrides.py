"""loop_pools with the manager's cap overrides (issue 18): a member past their cap is usable for
the one session the override names, only when nobody under cap can fill it, and said so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from calendar_backend.loop_pools import PoolData, assign, seat_free_time, seat_mailbox
from calendar_backend.loop_templates import parse_template
from calendar_backend.loops import LoopSchedule, Placement
from calendar_backend.pools import Member, Pool, load_of
from calendar_backend.slots import Interval
from calendar_backend.storage import PoolRecord

T0 = datetime(2026, 12, 8, 9, tzinfo=UTC)  # a Tuesday
H = timedelta(hours=1)
A, B = "a@contoso.example", "b@contoso.example"
TEMPLATE = parse_template(
    {
        "name": "Two pooled",
        "sessions": [
            {"title": "Coding", "minutes": 60, "pool": {"name": "Backend", "count": 1}},
            {"title": "Design", "minutes": 60, "pool": {"name": "Backend", "count": 1}},
        ],
    }
)


def _data(at_cap: tuple[str, ...]) -> PoolData:
    pool = Pool("Backend", "backend", 1, 5, (Member(A), Member(B)))
    record = PoolRecord("p1", "t1", pool, None, (), T0, T0)
    loads = {a: load_of(a, "UTC", 0, [T0 - 20 * H]) for a in at_cap}  # Monday: this week's one
    return PoolData({"Backend": record}, loads, {})


def _schedule() -> LoopSchedule:
    placements = (Placement(0, "Coding", T0, T0 + H, None), Placement(1, "Design", T0 + H, T0 + 2 * H, None))
    return LoopSchedule(placements, 1, timedelta(0), timedelta(0))


FREE = {A: (Interval(T0, T0 + 8 * H),), B: ()}  # only A is free


def test_without_an_override_a_member_at_cap_fills_nothing() -> None:
    picks, short = assign(_schedule(), TEMPLATE, _data((A,)), FREE)
    assert picks == {}
    assert {s.session for s in short} == {0, 1}
    assert seat_free_time(FREE, TEMPLATE, _data((A,)))[seat_mailbox(0)] == ()


def test_an_override_is_for_its_session_only() -> None:
    data = _data((A,))
    seats = seat_free_time(FREE, TEMPLATE, data, [(0, A)])
    assert seats[seat_mailbox(0)] == FREE[A]
    assert seats[seat_mailbox(1)] == ()
    picks, short = assign(_schedule(), TEMPLATE, data, FREE, [(0, A)])
    assert picks[0].members == (A,)
    assert picks[0].over_cap == (A,)
    assert [s.session for s in short] == [1]  # session 1 may not use A past the cap


def test_an_override_is_used_only_when_nobody_under_cap_can_fill_it() -> None:
    free = {A: FREE[A], B: FREE[A]}
    picks, _short = assign(_schedule(), TEMPLATE, _data((A,)), free, [(0, A)])
    assert picks[0].members == (B,)  # B is under cap: the override is not used
    assert picks[0].over_cap == ()
