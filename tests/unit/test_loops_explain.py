"""Why nothing fits: the "look further" suggestion, and (hypothesis) every suggestion helps."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from calendar_backend.loops import (
    Change,
    Explanation,
    LoopSpec,
    Reason,
    Session,
    Suggestion,
    explain,
    find_loops,
    has_loop,
)
from calendar_backend.slots import Interval

TUE = datetime(2026, 12, 8, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")
MEGAN, ADELE, LEE, ROOM = "megan@x.example", "adele@x.example", "lee@x.example", "room@x.example"
NAMES = {MEGAN: "Megan", ADELE: "Adele", LEE: "Lee"}


def hours(a: float, b: float, day: int = 0) -> Interval:
    base = TUE + timedelta(days=day)
    return Interval(base + timedelta(minutes=round(a * 60)), base + timedelta(minutes=round(b * 60)))


def loop(*sessions: Session, days: int = 1, **kw: object) -> LoopSpec:
    return LoopSpec(
        sessions, zone=LONDON, window=Interval(TUE, TUE + timedelta(days=days)), not_before=TUE, **kw
    )  # type: ignore[arg-type]


def test_a_wider_horizon_suggests_the_fewest_extra_days() -> None:
    free = {MEGAN: (hours(9, 10, 2),), ADELE: (hours(9, 17), hours(9, 17, 2))}
    spec = loop(Session("System design", timedelta(minutes=60), (MEGAN, ADELE)))
    horizon = Interval(TUE, TUE + timedelta(days=5))
    [why] = find_loops(spec, free, names=NAMES, horizon=horizon).explanations
    assert why.reason is Reason.NOT_FREE
    assert why.text == "System design: no 60 minutes where Megan is free on Tue 08 Dec"
    assert why.suggestions == (Suggestion(Change.LONGER_WINDOW, 2, "look until Thu 10 Dec"),)
    assert explain(spec, free, names=NAMES) == (replace(why, suggestions=()),)


def test_a_horizon_that_does_not_help_or_does_not_contain_the_window_is_silent() -> None:
    free = {MEGAN: (hours(9, 9.5), hours(9, 9.5, 2))}
    spec = loop(Session("Intro", timedelta(minutes=60), (MEGAN,)))
    [why] = explain(spec, free, horizon=Interval(TUE, TUE + timedelta(days=5)))
    assert [s.kind for s in why.suggestions] == [Change.SHORTEN]
    [why] = explain(spec, free, horizon=Interval(TUE + timedelta(hours=1), TUE + timedelta(days=5)))
    assert [s.kind for s in why.suggestions] == [Change.SHORTEN]


def test_the_combination_can_be_helped_by_looking_further() -> None:
    free = {MEGAN: (hours(9, 10), hours(9, 11, 1))}
    spec = loop(
        Session("Intro", timedelta(minutes=60), (MEGAN,)),
        Session("Design", timedelta(minutes=60), (MEGAN,)),
        max_days=1,
    )
    [why] = explain(spec, free, horizon=Interval(TUE, TUE + timedelta(days=3)))
    assert why.reason is Reason.NO_COMBINATION
    assert [s.kind for s in why.suggestions] == [Change.LONGER_WINDOW]  # Wed alone has two hours
    assert why.suggestions[-1].text == "look until Wed 09 Dec"


def test_explanations_name_people_never_addresses_when_names_are_given() -> None:
    free = {MEGAN: (hours(9, 10),), ADELE: (hours(10, 11),), LEE: (hours(9, 11),)}
    spec = loop(Session("Design", timedelta(minutes=60), (MEGAN, ADELE, LEE)))
    [why] = explain(spec, free, names=NAMES)
    assert why.text == "Design: no 60 minutes where Megan, Adele and Lee are all free on Tue 08 Dec"
    assert "@" not in why.text + " ".join(s.text for s in why.suggestions)


# ---- every suggestion is checked to help -------------------------------------------------------------


def _apply(spec: LoopSpec, why: Explanation, hint: Suggestion) -> LoopSpec:
    if hint.kind is Change.ADD_DAY:
        return replace(spec, max_days=int(hint.value))
    if hint.kind is Change.LONGER_BREAK:
        return replace(spec, max_break=timedelta(minutes=int(hint.value)))
    if hint.kind is Change.FREE_ORDER:
        return replace(spec, fixed_order=False, before=frozenset())
    if hint.kind is Change.LONGER_WINDOW:
        end = spec.window.end + timedelta(days=int(hint.value))
        return replace(spec, window=Interval(spec.window.start, end))
    assert why.session is not None
    sessions = list(spec.sessions)
    old = sessions[why.session]
    if hint.kind is Change.SHORTEN:
        sessions[why.session] = replace(old, duration=timedelta(minutes=int(hint.value)))
    else:
        assert hint.kind is Change.DROP_PERSON
        sessions[why.session] = replace(
            old, interviewers=tuple(m for m in old.interviewers if m != hint.value)
        )
    return replace(spec, sessions=tuple(sessions))


_PEOPLE = (MEGAN, ADELE, LEE)


@st.composite
def _free(draw: st.DrawFn) -> dict[str, tuple[Interval, ...]]:
    free: dict[str, tuple[Interval, ...]] = {}
    for mailbox in (*_PEOPLE, ROOM):
        spans = []
        for day in range(3):
            if draw(st.booleans()):
                start = draw(st.integers(32, 66)) / 4
                spans.append(hours(start, start + draw(st.integers(1, 12)) / 4, day))
        free[mailbox] = tuple(spans)
    return free


@st.composite
def _specs(draw: st.DrawFn) -> LoopSpec:
    sessions = []
    for index in range(draw(st.integers(1, 3))):
        people = tuple(draw(st.lists(st.sampled_from(_PEOPLE), min_size=1, max_size=3, unique=True)))
        rooms = (ROOM,) if draw(st.booleans()) else ()
        minutes = draw(st.sampled_from([30, 45, 60, 90]))
        sessions.append(Session(f"S{index}", timedelta(minutes=minutes), people, rooms))
    return loop(
        *sessions,
        days=draw(st.integers(1, 2)),
        fixed_order=draw(st.booleans()),
        max_break=timedelta(minutes=draw(st.sampled_from([0, 15]))),
    )


@settings(max_examples=300, deadline=None)
@given(_specs(), _free())
def test_every_suggestion_makes_its_part_fit(spec: LoopSpec, free: dict[str, tuple[Interval, ...]]) -> None:
    horizon = Interval(TUE, TUE + timedelta(days=3))
    result = find_loops(spec, free, horizon=horizon)
    if result.schedules:
        assert result.explanations == ()
        return
    assert result.explanations
    for why in result.explanations:
        for hint in why.suggestions:
            helped = _apply(spec, why, hint)
            if why.session is None:
                assert has_loop(helped, free), hint
            else:
                alone = replace(helped, sessions=(helped.sessions[why.session],), fixed_order=True)
                assert has_loop(alone, free), hint
