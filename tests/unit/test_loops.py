"""Loop engine: hand-made cases for the rules, the ordering and the "why nothing fits" answers."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from calendar_backend.loops import (
    Change,
    LocalWindow,
    LoopSpec,
    Reason,
    Session,
    explain,
    find_loops,
)
from calendar_backend.slots import Interval

TUE = datetime(2026, 12, 8, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")
MEGAN, ADELE, ROOM_A, ROOM_B = "megan@x.example", "adele@x.example", "a@x.example", "b@x.example"
NAMES = {MEGAN: "Megan", ADELE: "Adele"}


def at(hour: float, day: datetime = TUE) -> datetime:
    return day + timedelta(minutes=round(hour * 60))


def span(a: float, b: float, day: datetime = TUE) -> Interval:
    return Interval(at(a, day), at(b, day))


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def spec(*sessions: Session, days: int = 1, window: Interval | None = None, **kw) -> LoopSpec:
    window = window or Interval(TUE, TUE + timedelta(days=days))
    return LoopSpec(tuple(sessions), zone=LONDON, window=window, not_before=window.start, **kw)


def test_a_break_of_exactly_max_break_is_allowed() -> None:
    free = {MEGAN: (span(9, 10), span(10.25, 11))}
    loop = spec(Session("Intro", minutes(60), (MEGAN,)), Session("Design", minutes(45), (MEGAN,)))
    [only] = find_loops(loop, free).schedules
    assert [p.start for p in only.placements] == [at(9), at(10.25)]
    assert only.idle == minutes(15)


def test_fewer_days_beat_less_idle_then_earlier_start() -> None:
    free = {MEGAN: (span(9, 10), span(10.25, 11.25), span(9, 10, TUE + timedelta(days=1)))}
    loop = spec(
        Session("Intro", minutes(60), (MEGAN,)),
        Session("Design", minutes(60), (MEGAN,)),
        days=2,
        max_days=2,
        max_break=minutes(15),
    )
    result = find_loops(loop, free, k=3)
    first = result.schedules[0]
    assert first.days == 1
    assert first.idle == minutes(15)
    assert [s.days for s in result.schedules] == [1, 2, 2]
    assert [s.start for s in result.schedules[1:]] == [at(9), at(10.25)]  # then the earlier start


def test_free_order_and_before_constraints() -> None:
    free = {MEGAN: (span(9, 10),), ADELE: (span(10, 11),)}
    a = Session("Adele first?", minutes(60), (ADELE,))
    m = Session("Megan", minutes(60), (MEGAN,))
    assert not find_loops(spec(a, m), free).schedules  # fixed order: Adele's session first
    [only] = find_loops(spec(a, m, fixed_order=False), free).schedules
    assert [p.title for p in only.placements] == ["Megan", "Adele first?"]
    assert not find_loops(spec(a, m, fixed_order=False, before=frozenset({(0, 1)})), free).schedules


def test_first_free_room_of_the_list_is_chosen() -> None:
    free = {MEGAN: (span(9, 12),), ROOM_A: (span(10, 12),), ROOM_B: (span(9, 12),)}
    loop = spec(Session("Intro", minutes(60), (MEGAN,), (ROOM_A, ROOM_B)))
    schedules = find_loops(loop, free, k=5).schedules
    rooms = {p.start: p.room for s in schedules for p in s.placements}
    assert rooms[at(9)] == ROOM_B
    assert rooms[at(10)] == ROOM_A


def test_lunch_window_in_local_time_on_the_dst_change_day() -> None:
    sunday = datetime(2026, 3, 29, tzinfo=UTC)  # London goes to BST at 01:00 UTC
    free = {MEGAN: (span(0, 23, sunday),)}
    lunch = Session("Lunch", minutes(45), (MEGAN,), window=LocalWindow(time(11, 30), time(13, 30)))
    loop = spec(lunch, window=Interval(sunday, sunday + timedelta(days=1)))
    starts = sorted(p.start for s in find_loops(loop, free, k=50).schedules for p in s.placements)
    assert starts[0] == at(10.5, sunday)
    assert starts[-1] == at(11.75, sunday)


def test_outside_the_candidates_day_ranks_later() -> None:
    free = {MEGAN: (span(11, 15),)}  # 06:00-10:00 in New York; the candidate's day starts at 08:00
    loop = spec(Session("Intro", minutes(60), (MEGAN,)), candidate_zone=ZoneInfo("America/New_York"))
    ranked = find_loops(loop, free, k=8).schedules
    assert [s.start for s in ranked] == [at(h) for h in (13, 13.25, 13.5, 13.75, 14, 12.75, 12.5, 12.25)]
    assert [s.outside_candidate_day for s in ranked[4:]] == [minutes(n) for n in (0, 15, 30, 45)]


def test_why_nothing_fits_names_the_pair_and_suggests_dropping_one() -> None:
    free = {MEGAN: (span(9, 10),), ADELE: (span(10, 11),)}
    loop = spec(Session("System design", minutes(60), (MEGAN, ADELE)), days=3)
    result = find_loops(loop, free, names=NAMES)
    [why] = result.explanations
    assert why.reason is Reason.NO_COMMON_TIME
    assert why.session == 0
    assert why.text == "System design: no 60 minutes where Megan and Adele are both free on Tue-Thu"
    assert [s.kind for s in why.suggestions] == [Change.DROP_PERSON, Change.DROP_PERSON]


def test_why_nothing_fits_suggests_a_shorter_session() -> None:
    free = {MEGAN: (span(9, 10),), ADELE: (span(9.5, 11),)}
    loop = spec(Session("System design", minutes(60), (MEGAN, ADELE)))
    [why] = explain(loop, free, names=NAMES)
    assert why.suggestions[0].kind is Change.SHORTEN
    assert why.suggestions[0].value == 30


def test_why_nothing_fits_names_a_person_never_free_and_a_busy_room() -> None:
    free = {MEGAN: (span(9, 12),), ROOM_A: (span(13, 14),)}
    [nobody] = explain(spec(Session("Intro", minutes(60), (MEGAN, ADELE))), free, names=NAMES)
    assert nobody.reason is Reason.NOT_FREE
    assert nobody.mailboxes == (ADELE,)
    [room] = explain(spec(Session("Intro", minutes(60), (MEGAN,), (ROOM_A,))), free)
    assert room.reason is Reason.NO_ROOM
    assert room.mailboxes == (ROOM_A,)


def test_why_nothing_fits_the_combination_suggests_another_day() -> None:
    free = {MEGAN: (span(9, 10), span(9, 10, TUE + timedelta(days=1)))}
    loop = spec(Session("Intro", minutes(60), (MEGAN,)), Session("Design", minutes(60), (MEGAN,)), days=2)
    [why] = find_loops(loop, free).explanations
    assert why.reason is Reason.NO_COMBINATION
    assert [s.kind for s in why.suggestions] == [Change.ADD_DAY]
    assert find_loops(spec(*loop.sessions, days=2, max_days=2), free).schedules


def test_minimum_notice_and_window_edges() -> None:
    free = {MEGAN: (span(0, 24),)}
    loop = LoopSpec(
        (Session("Intro", minutes(60), (MEGAN,)),), zone=LONDON, window=span(9, 11), not_before=at(9.1)
    )
    assert [s.start for s in find_loops(loop, free, k=9).schedules] == [at(9.25), at(9.5), at(9.75), at(10)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sessions": ()},
        {"min_break": minutes(30), "max_break": minutes(15)},
        {"max_days": 0},
        {"before": frozenset({(0, 3)})},
        {"step": timedelta(seconds=30)},
    ],
)
def test_bad_specs_are_refused(kwargs) -> None:
    fields = {
        "sessions": (Session("Intro", minutes(60)),),
        "zone": LONDON,
        "window": span(9, 11),
        "not_before": at(9),
    } | kwargs
    with pytest.raises(ValueError, match=r"session|break|max_days|before|step"):
        LoopSpec(**fields)


def test_seven_sessions_that_cannot_share_a_day_are_answered_not_searched_forever() -> None:
    """Every order of 7 sessions is tried on every day before "nothing fits": the dead-state memo
    keeps this polynomial (without it this took over a minute)."""
    week = [span(9, 17, TUE + timedelta(days=d)) for d in range(4)]
    sessions = [Session(f"S{i}", minutes(75), (MEGAN,)) for i in range(7)]
    loop = spec(*sessions, days=4, fixed_order=False)
    [why] = find_loops(loop, {MEGAN: tuple(week)}).explanations
    assert why.reason is Reason.NO_COMBINATION
    assert [s.kind for s in why.suggestions] == [Change.ADD_DAY]
    assert find_loops(spec(*sessions, days=4, max_days=2), {MEGAN: tuple(week)}).schedules
