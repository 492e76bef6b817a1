"""Loop templates: parse/serialise round trips (hypothesis), one test per user-facing error, the
conversion into the loop engine and the edits the options card offers."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calendar_backend.loop_templates import (
    MAX_DAYS,
    LoopTemplate,
    LoopTemplateError,
    Order,
    Position,
    RoomInfo,
    RoomNeed,
    SessionTemplate,
    mailboxes,
    parse_template,
    resolve_rooms,
    to_json,
    to_loop_spec,
)
from calendar_backend.loops import Change, LocalWindow, Suggestion, explain, find_loops
from calendar_backend.loops_edits import (
    apply_change,
    with_free_order,
    with_max_break,
    with_max_days,
    with_person_replaced,
    with_session_minutes,
    without_person,
)
from calendar_backend.slots import Interval

MEGAN, ADELE, LEE = "megan@contoso.example", "adele@contoso.example", "lee@contoso.example"
ROOM_A, ROOM_B = "room-a@contoso.example", "room-b@contoso.example"
LONDON = ZoneInfo("Europe/London")
KOLKATA = ZoneInfo("Asia/Kolkata")
TUE = datetime(2026, 12, 8, tzinfo=UTC)


def onsite(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "name": "Backend engineer onsite",
        "role": "Backend engineer",
        "order": "fixed",
        "breaks": {"min_minutes": 0, "max_minutes": 15},
        "max_days": 1,
        "candidate_day": {"start": "08:00", "end": "20:00"},
        "sessions": [
            {"title": "Intro", "minutes": 30, "interviewers": [MEGAN]},
            {
                "title": "System design",
                "minutes": 60,
                "interviewers": [MEGAN, ADELE],
                "room": {"any_of": [ROOM_A, ROOM_B]},
            },
            {
                "title": "Lunch",
                "minutes": 45,
                "interviewers": [],
                "window": {"start": "11:30", "end": "13:30"},
            },
            {
                "title": "Values",
                "minutes": 45,
                "interviewers": [LEE],
                "room": {"min_capacity": 4, "building": "Harbour"},
            },
        ],
    }
    value.update(changes)
    return value


def problems(raw: object) -> list[tuple[str, str]]:
    with pytest.raises(LoopTemplateError) as caught:
        parse_template(raw)
    assert str(caught.value) == "; ".join(p.message for p in caught.value.problems)
    return [(p.path, p.message) for p in caught.value.problems]


def session(index: int, **changes: Any) -> dict[str, Any]:
    value = onsite()
    value["sessions"][index].update(changes)
    return value


# ---- round trips ------------------------------------------------------------------------------------

_ADDRESSES = st.sampled_from([MEGAN, ADELE, LEE, "kavya@contoso.example", "irvin@contoso.example"])
_ROOMS = st.sampled_from([ROOM_A, ROOM_B, "room-c@contoso.example"])
_TITLE = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters="<>"),
    min_size=1,
    max_size=80,
).map(lambda t: " ".join(t.split()))


@st.composite
def _windows(draw: st.DrawFn, min_minutes: int = 5) -> LocalWindow:
    start = draw(st.integers(0, 23 * 60 + 59 - min_minutes))
    end = draw(st.integers(start + min_minutes, 23 * 60 + 59))
    return LocalWindow(time(start // 60, start % 60), time(end // 60, end % 60))


@st.composite
def _rooms(draw: st.DrawFn) -> RoomNeed:
    if draw(st.booleans()):
        return RoomNeed(tuple(draw(st.lists(_ROOMS, min_size=1, max_size=3, unique=True))))
    capacity = draw(st.none() | st.integers(1, 500))
    building = draw(st.none() | st.sampled_from(["Harbour", "Building 2"]))
    if capacity is None and building is None:
        capacity = 4
    return RoomNeed((), capacity, building)


@st.composite
def _sessions(draw: st.DrawFn, title: str) -> SessionTemplate:
    minutes = draw(st.integers(5, 480))
    window = draw(st.none() | _windows(minutes))
    room = draw(st.none() | _rooms())
    people = tuple(draw(st.lists(_ADDRESSES, max_size=4, unique=True)))
    return SessionTemplate(title, minutes, people, room, window)


@st.composite
def templates(draw: st.DrawFn) -> LoopTemplate:
    titles = draw(st.lists(_TITLE, min_size=1, max_size=8, unique_by=str.casefold).filter(all))
    low = draw(st.integers(0, 240))
    order = draw(st.sampled_from(Order))
    sessions = [draw(_sessions(t)) for t in titles]
    if order is Order.FREE:
        pins = draw(st.lists(st.sampled_from(Position), max_size=len(sessions), unique=True))
        for index, pin in enumerate(pins):
            sessions[index] = replace(sessions[index], position=pin)
    return LoopTemplate(
        name=draw(_TITLE.filter(bool)),
        sessions=tuple(sessions),
        role=draw(st.none() | _TITLE.filter(bool)),
        order=order,
        min_break=low,
        max_break=draw(st.integers(low, 240)),
        max_days=draw(st.integers(1, MAX_DAYS)),
        candidate_day=draw(_windows()),
    )


@settings(max_examples=300, deadline=None)
@given(templates())
def test_template_round_trips_through_json(template: LoopTemplate) -> None:
    value = to_json(template)
    assert parse_template(json.loads(json.dumps(value))) == template
    assert to_json(parse_template(value)) == value


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
def test_template_parse_never_crashes_on_junk(raw: object) -> None:
    found: tuple[object, ...] = ("parsed",)
    try:
        parse_template(raw)
    except LoopTemplateError as error:
        found = error.problems
    assert found


@settings(max_examples=200, deadline=None)
@given(templates(), st.data())
def test_template_field_junk_is_reported_at_its_path(template: LoopTemplate, data: st.DataObject) -> None:
    value = to_json(template)
    sessions = value["sessions"]
    assert isinstance(sessions, list)
    index = data.draw(st.integers(0, len(sessions) - 1))
    field = data.draw(st.sampled_from(["title", "minutes", "interviewers"]))
    sessions[index][field] = data.draw(st.sampled_from([None, 3.5, {}, -1, ""]))
    paths = [p for p, _ in problems(value)]
    assert any(p.startswith(f"sessions[{index}].{field}") for p in paths)


def test_template_defaults() -> None:
    template = parse_template({"name": "Quick", "sessions": [{"title": "Chat", "minutes": 30}]})
    assert template.order is Order.FIXED
    assert (template.min_break, template.max_break, template.max_days) == (0, 15, 1)
    assert template.candidate_day == LocalWindow(time(8), time(20))
    assert template.sessions == (SessionTemplate("Chat", 30),)


def test_template_normalises_text_and_addresses() -> None:
    raw = session(0, title="  Intro \t call ", interviewers=[" Megan@Contoso.example "])
    intro = parse_template(raw).sessions[0]
    assert (intro.title, intro.interviewers) == ("Intro call", (MEGAN,))


# ---- one test per error -------------------------------------------------------------------------------


def test_error_not_an_object() -> None:
    assert problems([]) == [("", "a loop template must be a JSON object")]


def test_error_missing_name() -> None:
    assert problems(onsite(name=" ")) == [("name", "name must be a non-empty text")]


def test_error_long_or_unsafe_text() -> None:
    assert problems(onsite(role="<b>x</b>"))[0][0] == "role"
    assert problems(onsite(name="x" * 81))[0] == (
        "name",
        "name must be at most 80 characters, without < or >",
    )


def test_error_unknown_top_field() -> None:
    assert problems(onsite(colour="red"))[0][0] == "colour"


def test_error_order() -> None:
    assert problems(onsite(order="any")) == [("order", 'order must be "fixed" or "free" (got \'any\')')]


def test_error_breaks() -> None:
    assert problems(onsite(breaks={"min_minutes": 30, "max_minutes": 15})) == [
        ("breaks", "the shortest break (30 min) is longer than the longest (15 min)")
    ]
    assert problems(onsite(breaks={"max_minutes": 241}))[0][0] == "breaks.max_minutes"
    assert problems(onsite(breaks=15))[0][0] == "breaks"


def test_error_max_days() -> None:
    assert problems(onsite(max_days=6)) == [
        ("max_days", "max_days must be a whole number from 1 to 5 (got 6)")
    ]
    assert problems(onsite(max_days=True))[0][0] == "max_days"


def test_error_candidate_day() -> None:
    assert problems(onsite(candidate_day={"start": "20:00", "end": "08:00"})) == [
        ("candidate_day", "candidate_day must start before it ends (20:00-08:00)")
    ]
    assert problems(onsite(candidate_day={"start": "8am", "end": "20:00"})) == [
        ("candidate_day.start", "start must be a time HH:MM (got '8am')")
    ]


def test_error_no_sessions_or_too_many() -> None:
    assert problems(onsite(sessions=[])) == [("sessions", "sessions must be a list of 1 to 8 sessions")]
    many = [{"title": f"S{i}", "minutes": 30} for i in range(9)]
    assert problems(onsite(sessions=many))[0][0] == "sessions"


def test_error_session_minutes_names_the_session() -> None:
    assert problems(session(1, minutes="sixty")) == [
        (
            "sessions[1].minutes",
            "Session 2 \"System design\": minutes must be a whole number from 5 to 480 (got 'sixty')",
        )
    ]


def test_error_session_without_title_is_named_by_number() -> None:
    assert problems(session(0, title="")) == [
        ("sessions[0].title", "Session 1: title must be a non-empty text")
    ]


def test_error_interviewer_address() -> None:
    assert problems(session(1, interviewers=[MEGAN, "Adele"])) == [
        ("sessions[1].interviewers[1]", "Session 2 \"System design\": 'Adele' is not an email address")
    ]


def test_error_interviewer_twice() -> None:
    assert problems(session(1, interviewers=[MEGAN, MEGAN.upper()])) == [
        ("sessions[1].interviewers[1]", f'Session 2 "System design": {MEGAN} is listed twice')
    ]


def test_error_too_many_interviewers() -> None:
    people = [f"p{i}@contoso.example" for i in range(11)]
    assert problems(session(0, interviewers=people)) == [
        ("sessions[0].interviewers", 'Session 1 "Intro": at most 10 interviewers (got 11)')
    ]


def test_error_room_both_list_and_need() -> None:
    assert problems(session(1, room={"any_of": [ROOM_A], "min_capacity": 4})) == [
        (
            "sessions[1].room",
            'Session 2 "System design": room takes either any_of or a need (min_capacity, building), '
            "not both",
        )
    ]


def test_error_room_empty() -> None:
    assert problems(session(1, room={})) == [
        ("sessions[1].room", 'Session 2 "System design": room needs any_of, min_capacity or building')
    ]
    assert problems(session(1, room={"any_of": []})) == [
        ("sessions[1].room.any_of", 'Session 2 "System design": any_of must list at least one room')
    ]


def test_error_room_capacity() -> None:
    assert problems(session(3, room={"min_capacity": 0}))[0] == (
        "sessions[3].room.min_capacity",
        'Session 4 "Values": min_capacity must be a whole number from 1 to 500 (got 0)',
    )


def test_error_window_too_short_for_the_session() -> None:
    assert problems(session(2, window={"start": "11:30", "end": "12:00"})) == [
        ("sessions[2].window", 'Session 3 "Lunch": 45 minutes do not fit in the window 11:30-12:00')
    ]


def test_error_unknown_session_field() -> None:
    assert problems(session(0, colour="red")) == [
        (
            "sessions[0].colour",
            "Session 1 \"Intro\": unknown field 'colour' "
            "(allowed: interviewers, minutes, pool, position, room, title, window)",
        )
    ]


def test_error_duplicate_title() -> None:
    assert problems(session(3, title="intro")) == [
        ("sessions[3].title", 'Session 4 "intro": the title is already used by session 1')
    ]


def test_error_position() -> None:
    assert problems(session(0, position="first")) == [
        ("sessions[0].position", 'Session 1 "Intro": position only applies when the order is "free"')
    ]
    raw = onsite(order="free")
    raw["sessions"][0]["position"] = "first"
    raw["sessions"][3]["position"] = "first"
    assert problems(raw) == [("sessions[3].position", 'Session 4 "Values": session 1 already comes first')]
    raw["sessions"][3]["position"] = "middle"
    assert problems(raw) == [
        ("sessions[3].position", 'Session 4 "Values": position must be "first" or "last" (got \'middle\')')
    ]
    raw["sessions"][3]["position"] = [
        "first"
    ]  # not a string: a problem, never a crash (schemathesis found it)
    assert problems(raw) == [
        ("sessions[3].position", 'Session 4 "Values": position must be "first" or "last" (got [\'first\'])')
    ]


def test_error_every_problem_is_reported() -> None:
    raw = onsite(name="", order="any")
    raw["sessions"][0]["minutes"] = 0
    raw["sessions"][1]["interviewers"] = ["x"]
    assert [p for p, _ in problems(raw)] == [
        "name",
        "order",
        "sessions[0].minutes",
        "sessions[1].interviewers[0]",
    ]


# ---- into the engine ------------------------------------------------------------------------------------

DIRECTORY = (
    RoomInfo("big@contoso.example", 12, "Harbour"),
    RoomInfo("small@contoso.example", 4, "Harbour"),
    RoomInfo("tiny@contoso.example", 2, "Harbour"),
    RoomInfo("other@contoso.example", 6, "Building 2"),
)


def test_room_need_prefers_the_smallest_fitting_room() -> None:
    lists = resolve_rooms(parse_template(onsite()), DIRECTORY)
    assert lists == ((), (ROOM_A, ROOM_B), (), ("small@contoso.example", "big@contoso.example"))


def test_room_need_without_a_match_is_an_error() -> None:
    template = parse_template(session(3, room={"min_capacity": 20, "building": "Harbour"}))
    with pytest.raises(LoopTemplateError) as caught:
        resolve_rooms(template, DIRECTORY)
    assert [(p.path, p.message) for p in caught.value.problems] == [
        ("sessions[3].room", 'Session 4 "Values": no room has 20+ seats in Harbour')
    ]
    template = parse_template(session(3, room={"building": "Annex"}))
    with pytest.raises(LoopTemplateError, match='Session 4 "Values": no room in Annex'):
        resolve_rooms(template, DIRECTORY)


def test_mailboxes_lists_people_then_rooms_once() -> None:
    assert mailboxes(parse_template(onsite()), DIRECTORY) == (
        MEGAN,
        ADELE,
        LEE,
        ROOM_A,
        ROOM_B,
        "small@contoso.example",
        "big@contoso.example",
    )


def test_to_loop_spec_feeds_the_engine() -> None:
    template = parse_template(onsite(order="free", max_days=2, breaks={"min_minutes": 5, "max_minutes": 30}))
    window = Interval(TUE, TUE + timedelta(days=1))
    spec = to_loop_spec(
        template, zone=LONDON, window=window, not_before=TUE, candidate_zone=KOLKATA, rooms=DIRECTORY
    )
    assert [s.title for s in spec.sessions] == ["Intro", "System design", "Lunch", "Values"]
    assert spec.sessions[1].duration == timedelta(minutes=60)
    assert spec.sessions[1].rooms == (ROOM_A, ROOM_B)
    assert spec.sessions[2].window == LocalWindow(time(11, 30), time(13, 30))
    assert (spec.fixed_order, spec.max_days, spec.candidate_zone) == (False, 2, KOLKATA)
    assert (spec.min_break, spec.max_break) == (timedelta(minutes=5), timedelta(minutes=30))
    day = [Interval(TUE + timedelta(hours=9), TUE + timedelta(hours=17))]
    free = dict.fromkeys(mailboxes(template, DIRECTORY), day)
    result = find_loops(spec, free, k=3)
    assert len(result.schedules) == 3
    lunch = next(p for p in result.schedules[0].placements if p.title == "Lunch")
    assert lunch.start >= TUE + timedelta(hours=11, minutes=30)


def test_pinned_sessions_become_before_pairs() -> None:
    raw = onsite(order="free")
    raw["sessions"][0]["position"] = "first"
    raw["sessions"][3]["position"] = "last"
    template = parse_template(raw)
    assert template.sessions[0].position is Position.FIRST
    window = Interval(TUE, TUE + timedelta(days=1))
    spec = to_loop_spec(template, zone=LONDON, window=window, not_before=TUE, rooms=DIRECTORY)
    assert spec.before == {(0, 1), (0, 2), (0, 3), (1, 3), (2, 3)}
    day = (Interval(TUE + timedelta(hours=9), TUE + timedelta(hours=17)),)
    free = dict.fromkeys(mailboxes(template, DIRECTORY), day)
    schedules = find_loops(spec, free, k=5).schedules
    assert len(schedules) == 5
    for schedule in schedules:
        titles = [p.title for p in schedule.placements]
        assert (titles[0], titles[-1]) == ("Intro", "Values")


def test_to_loop_spec_refuses_naive_instants() -> None:
    with pytest.raises(ValueError, match="not_before"):
        to_loop_spec(
            parse_template(onsite()),
            zone=LONDON,
            window=Interval(TUE, TUE + timedelta(days=1)),
            not_before=datetime(2026, 12, 8),  # naive: the point of the test
            rooms=DIRECTORY,
        )


# ---- edits ------------------------------------------------------------------------------------------------


def test_edit_session_length() -> None:
    template = with_session_minutes(parse_template(onsite()), 1, 45)
    assert template.sessions[1].minutes == 45
    with pytest.raises(LoopTemplateError, match="from 5 to 480"):
        with_session_minutes(template, 1, 500)
    with pytest.raises(LoopTemplateError, match=r"Lunch.*do not fit"):
        with_session_minutes(template, 2, 150)
    with pytest.raises(LoopTemplateError, match="no session 9"):
        with_session_minutes(template, 8, 30)


def test_edit_drop_and_replace_person() -> None:
    template = parse_template(onsite())
    assert without_person(template, 1, ADELE).sessions[1].interviewers == (MEGAN,)
    swapped = with_person_replaced(template, 1, ADELE, " Lee@Contoso.example")
    assert swapped.sessions[1].interviewers == (MEGAN, LEE)
    with pytest.raises(LoopTemplateError, match="is listed twice"):
        with_person_replaced(template, 1, ADELE, MEGAN)
    with pytest.raises(LoopTemplateError, match="only interviewer; replace them instead"):
        without_person(template, 0, MEGAN)
    with pytest.raises(LoopTemplateError, match="is not on it"):
        without_person(template, 0, LEE)


def test_edit_allow_a_second_day() -> None:
    assert with_max_days(parse_template(onsite()), 2).max_days == 2
    with pytest.raises(LoopTemplateError, match="max_days"):
        with_max_days(parse_template(onsite()), 6)


def test_edit_breaks_and_order() -> None:
    template = parse_template(onsite())
    assert with_max_break(template, 30).max_break == 30
    assert with_free_order(template).order is Order.FREE
    with pytest.raises(LoopTemplateError, match=r"breaks\.max_minutes"):
        with_max_break(template, 300)


def test_apply_change_maps_every_suggestion() -> None:
    template = parse_template(onsite())
    assert apply_change(template, Suggestion(Change.SHORTEN, 45, "t"), 1).sessions[1].minutes == 45
    assert apply_change(template, Suggestion(Change.DROP_PERSON, ADELE, "t"), 1).sessions[1].interviewers == (
        MEGAN,
    )
    assert apply_change(template, Suggestion(Change.ADD_DAY, 2, "t"), None).max_days == 2
    assert apply_change(template, Suggestion(Change.LONGER_BREAK, 60, "t"), None).max_break == 60
    assert apply_change(template, Suggestion(Change.FREE_ORDER, "free", "t"), None).order is Order.FREE
    assert apply_change(template, Suggestion(Change.LONGER_WINDOW, 3, "t"), None) is None
    with pytest.raises(LoopTemplateError, match="needs a session"):
        apply_change(template, Suggestion(Change.SHORTEN, 45, "t"), None)
    with pytest.raises(LoopTemplateError, match="unexpected value"):
        apply_change(template, Suggestion(Change.DROP_PERSON, 3, "t"), 1)


def test_a_suggestion_applied_to_the_template_gives_a_loop() -> None:
    """From "why nothing fits" to a template edit to options: the path the bot's fix buttons take."""
    raw = onsite(sessions=[{"title": "System design", "minutes": 60, "interviewers": [MEGAN, ADELE]}])
    template = parse_template(raw)
    free = {MEGAN: (Interval(TUE + timedelta(hours=9), TUE + timedelta(hours=10)),)}
    free[ADELE] = (Interval(TUE + timedelta(hours=9, minutes=30), TUE + timedelta(hours=11)),)
    window = Interval(TUE, TUE + timedelta(days=1))
    spec = to_loop_spec(template, zone=LONDON, window=window, not_before=TUE)
    [why] = explain(spec, free)
    for hint in why.suggestions:
        fixed = apply_change(template, hint, why.session)
        assert fixed is not None
        assert find_loops(to_loop_spec(fixed, zone=LONDON, window=window, not_before=TUE), free).schedules
    assert {h.kind for h in why.suggestions} == {Change.SHORTEN, Change.DROP_PERSON}
