"""Loop cards (options timeline, builder): golden JSON, structure, button data round trips, the
official 1.5 schema and the official renderer, as tests/unit/test_cards.py does for the others.

Golden files live in tests/golden/loops/<case>.json; run with UPDATE_GOLDEN=1 to rewrite them after
an intended change (then review the diff).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from calendar_backend.loop_templates import parse_template
from calendar_backend.loops import Change
from cards.actions import Verb, parse_action
from cards.loop_actions import (
    BUILDER_ROWS,
    BuilderSession,
    LoopAction,
    LoopBuilderInput,
    LoopVerb,
    is_loop_verb,
    parse_loop_action,
)
from cards.loop_booked import build_loop_booked, build_loop_notice
from cards.loop_builder import build_loop_builder
from cards.loop_confirm import BOOKING_TEXT, build_loop_confirmation
from cards.loop_options import PAGE_SIZE, build_loop_options
from cards.loop_views import (
    LoopFix,
    LoopFixView,
    LoopOptionsView,
    LoopOptionView,
    LoopPerson,
    LoopProblemView,
    LoopSessionView,
    PlacedSessionView,
    TemplateView,
)
from cards.views import Person
from tests.unit.test_cards import (
    CANDIDATE,
    FLOW,
    MRI,
    TEAMS_MAX_BYTES,
    ZONES,
    ZONES_NPT,
    _actions,
    _dump,
    _render_folder,
    _texts,
    _walk,
    card_validator,  # noqa: F401 - a pytest fixture, used by name
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "loops"

MEGAN = LoopPerson("Megan Bowen", "pk-megan")
ADELE = LoopPerson("Adele Vance", "pk-adele")
LEE = LoopPerson("Lee Chen", "pk-lee")
SESSIONS = (
    LoopSessionView(0, "Intro", 30, (MEGAN,)),
    LoopSessionView(1, "System design", 60, (MEGAN, ADELE)),
    LoopSessionView(2, "Lunch", 45),
    LoopSessionView(3, "Values", 45, (LEE,)),
)


def _utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 12, day, hour, minute, tzinfo=UTC)


def _option(
    option_id: str, start: datetime, *, gap: int = 0, split: bool = False, outside: int = 0
) -> LoopOptionView:
    placements = []
    cursor = start
    for session in SESSIONS:
        if split and session.index == 2:
            cursor = start + timedelta(days=1)
        room = "Room 4.12 (Harbour)" if session.index in (1, 3) else None
        end = cursor + timedelta(minutes=session.minutes)
        placements.append(PlacedSessionView(session.index, cursor, end, room))
        cursor = end + timedelta(minutes=gap)
    return LoopOptionView(option_id, tuple(placements), outside)


def _view(**changes: object) -> LoopOptionsView:
    base: dict[str, object] = {
        "flow": FLOW,
        "loop_name": "Backend engineer onsite",
        "candidate": CANDIDATE,
        "zones": ZONES,
        "sessions": SESSIONS,
        "options": (
            _option("lo-1", _utc(2, 17)),
            _option("lo-2", _utc(2, 18), gap=15, outside=45),
        ),
        "user_ids": (MRI,),
    }
    base.update(changes)
    return LoopOptionsView(**base)  # type: ignore[arg-type]


PROBLEMS = (
    LoopProblemView(
        "System design: no 60 minutes where Megan Bowen and Adele Vance are both free on Tue-Thu",
        (
            LoopFixView(LoopFix.SHORTEN, "shorten System design to 45 minutes", 45, 1),
            LoopFixView(LoopFix.DROP_PERSON, "drop Adele Vance from System design", "pk-adele", 1),
            LoopFixView(LoopFix.LONGER_WINDOW, "look until Mon 8 Dec", 3),
        ),
    ),
    LoopProblemView(
        "each session fits alone on Tue-Thu, but not all 4 with breaks of 0 to 15 minutes",
        (
            LoopFixView(LoopFix.ADD_DAY, "allow the loop to span 2 days", 2),
            LoopFixView(LoopFix.LONGER_BREAK, "allow breaks of up to 30 minutes", 30),
            LoopFixView(LoopFix.FREE_ORDER, "let the sessions run in any order", "free"),
        ),
    ),
)
TEMPLATES = (
    TemplateView("tpl-backend", "Backend engineer onsite", "4 sessions · 3 h"),
    TemplateView("tpl-pm", "Product manager loop", "3 sessions · 2 h 15 min"),
)
DRAFT = LoopBuilderInput(
    name="Backend engineer onsite",
    order="free",
    max_break=30,
    max_days=2,
    lunch=True,
    sessions=(
        BuilderSession("Intro", 30, ("Megan Bowen",)),
        BuilderSession("System design", 60, ("Megan Bowen", "adele@contoso.example")),
    ),
)

CASES: dict[str, Callable[[], dict[str, object]]] = {
    "loop_options": lambda: build_loop_options(_view()),
    "loop_options_two_days_npt": lambda: build_loop_options(
        _view(zones=ZONES_NPT, options=(_option("lo-9", _utc(2, 17), split=True),), max_days=2, user_ids=())
    ),
    "loop_options_page2": lambda: build_loop_options(
        _view(options=tuple(_option(f"lo-{i}", _utc(2 + i, 17)) for i in range(7)), page=2)
    ),
    "loop_options_empty": lambda: build_loop_options(_view(options=(), problems=PROBLEMS, user_ids=())),
    "loop_options_over_cap": lambda: build_loop_options(
        _view(
            options=(),
            problems=(
                LoopProblemView(
                    'Session 2 "System design": the pool "Backend" has someone free only past their cap.',
                    (LoopFixView(LoopFix.CAP_OVERRIDE, "Over cap: use Adam Smith anyway", "pk-adam", 1),),
                ),
            ),
            notice="Give a reason (1 to 200 characters, no line breaks) to use them past their cap.",
            user_ids=(),
        )
    ),
    "loop_booked_over_cap": lambda: build_loop_booked(
        _view(override="Over cap: Adam Smith for \u201cSystem design\u201d, with your reason."),
        _view().options[0],
        None,
    ),
    "loop_confirmation": lambda: build_loop_confirmation(_view(), "lo-2"),
    "loop_confirmation_two_days": lambda: build_loop_confirmation(
        _view(zones=ZONES_NPT, options=(_option("lo-9", _utc(2, 17), split=True),), user_ids=()), "lo-9"
    ),
    "loop_booked": lambda: build_loop_booked(
        _view(), _view().options[0], "https://teams.microsoft.com/l/meetup-join/loop"
    ),
    "loop_booked_no_link": lambda: build_loop_booked(_view(zones=ZONES_NPT), _view().options[1], None),
    "loop_notice": lambda: build_loop_notice("Interview loop", "Interview loops are not available yet."),
    "loop_builder": lambda: build_loop_builder(FLOW, TEMPLATES, user_ids=(MRI,)),
    "loop_builder_new": lambda: build_loop_builder(FLOW),
    "loop_builder_edit": lambda: build_loop_builder(
        FLOW,
        TEMPLATES,
        draft=DRAFT,
        problems=('Session 2 "System design": adele@contoso.example is listed twice',),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_loop_cards_match_golden(name: str) -> None:
    text = _dump(CASES[name]())
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path.name}: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_loop_cards_golden_folder_has_no_orphans() -> None:
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(CASES)


# The booked loop (a stale copy must never book again) and a plain notice carry no Action.Execute.
NO_EXECUTE_BY_DESIGN = frozenset(
    {"loop_booked", "loop_booked_no_link", "loop_booked_over_cap", "loop_notice"}
)


@pytest.mark.parametrize("name", sorted(CASES))
def test_loop_cards_structure(name: str) -> None:
    card = CASES[name]()
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.5")
    assert len(json.dumps(card).encode()) < TEAMS_MAX_BYTES
    refresh = card.get("refresh")
    refresh_action = refresh.get("action") if isinstance(refresh, dict) else None
    buttons = [e for e in _actions(card, "Action.Execute") if e is not refresh_action]
    assert bool(buttons) != (name in NO_EXECUTE_BY_DESIGN)
    for execute in buttons:
        data = execute["data"]
        assert isinstance(data, dict)
        assert data["verb"] == execute["verb"]
        assert data["flow"] == FLOW
        invoke = {
            "action": {"type": "Action.Execute", "verb": data["verb"], "data": data},
            "trigger": "manual",
        }
        parsed = parse_loop_action(invoke)
        assert parsed.to_data() == data
        assert parse_loop_action(data) == parsed
        assert execute["fallback"] == {"type": "Action.Submit", "title": execute["title"], "data": data}
    assert len(_actions(card, "Action.Submit")) == len(buttons)


def test_loop_cards_never_show_addresses_or_markdown() -> None:
    evil = LoopPerson("[Click me](https://evil.example) **boss**", "pk-evil")
    sessions = (LoopSessionView(0, "Intro", 30, (evil, MEGAN)),)
    view = _view(
        sessions=sessions,
        options=(LoopOptionView("lo-1", (PlacedSessionView(0, _utc(2, 17), _utc(2, 18)),)),),
    )
    card = build_loop_options(view)
    assert all("evil.example" not in str(n["text"]) for n in _walk(card) if n.get("type") == "TextBlock")
    assert "evil.example" in _texts(card)
    for build in CASES.values():
        assert CANDIDATE.address not in json.dumps(build())


def test_loop_options_show_both_zones_people_rooms_and_pick() -> None:
    card = build_loop_options(_view())
    text = _texts(card)
    assert (
        "Option 1: Tue 2 Dec, 09:00\u201312:00 PST · Tue 2 Dec, 22:30 IST \u2013 Wed 3 Dec, 01:30 IST" in text
    )
    assert "09:00\u201309:30 PST\n22:30\u201323:00 IST\nIntro\nMegan Bowen\n" in text
    assert "Megan Bowen and Adele Vance · Room 4.12 (Harbour)" in text
    assert OUTSIDE in text
    picks = [a for a in _actions(card, "Action.Execute") if a["verb"] == LoopVerb.CHOOSE]
    assert [a["data"]["option_id"] for a in picks] == ["lo-1", "lo-2"]  # type: ignore[index]


OUTSIDE = "Partly outside the candidate's day"


def test_loop_options_two_days_name_each_day() -> None:
    text = _texts(CASES["loop_options_two_days_npt"]())
    assert "Option 1, day 1: " in text
    assert "Option 1, day 2: " in text
    verbs = [a["verb"] for a in _actions(CASES["loop_options_two_days_npt"](), "Action.Execute")]
    assert "loop_days" in verbs  # max_days 2 < 4 sessions: "Allow 3 days"


def test_loop_options_page_and_more_button() -> None:
    many = tuple(_option(f"lo-{i}", _utc(2 + i, 17)) for i in range(7))
    first = build_loop_options(_view(options=many))
    picks = [
        a["data"]["option_id"] for a in _actions(first, "Action.Execute") if a["verb"] == LoopVerb.CHOOSE
    ]  # type: ignore[index]
    assert len(picks) == PAGE_SIZE
    assert any(a["verb"] == LoopVerb.MORE for a in _actions(first, "Action.Execute"))
    past = build_loop_options(_view(options=many, page=9))
    assert "Option 6:" in _texts(past)
    assert "Option 1:" not in _texts(past)


def test_loop_options_edits_lengths_people_and_days() -> None:
    card = build_loop_options(_view())
    data = [a["data"] for a in _actions(card, "Action.Execute")]
    lengths = {(d["session"], d["duration_min"]) for d in data if d["verb"] == "loop_length"}  # type: ignore[index]
    assert {length for session, length in lengths if session == 0} == {15, 45, 60}
    drops = {(d["session"], d["person"]) for d in data if d["verb"] == "loop_drop_person"}  # type: ignore[index]
    assert drops == {(1, "pk-megan"), (1, "pk-adele")}  # never the only interviewer of a session
    swaps = {(d["session"], d["person"]) for d in data if d["verb"] == "loop_replace_person"}  # type: ignore[index]
    assert swaps == {(0, "pk-megan"), (1, "pk-megan"), (1, "pk-adele"), (3, "pk-lee")}
    assert {"verb": "loop_days", "flow": FLOW, "days": 2} in data
    no_day = build_loop_options(_view(can_add_day=False))
    assert all(a["verb"] != "loop_days" for a in _actions(no_day, "Action.Execute"))


def test_loop_options_empty_offers_each_fix_as_a_button() -> None:
    card = CASES["loop_options_empty"]()
    assert "No loop fits yet" in _texts(card)
    data = [a["data"] for a in _actions(card, "Action.Execute")]
    assert {"verb": "loop_length", "flow": FLOW, "session": 1, "duration_min": 45} in data
    assert {"verb": "loop_drop_person", "flow": FLOW, "session": 1, "person": "pk-adele"} in data
    assert {"verb": "loop_widen", "flow": FLOW, "days": 3} in data
    assert {"verb": "loop_break", "flow": FLOW, "break_min": 30} in data
    assert {"verb": "loop_free_order", "flow": FLOW} in data
    titles = [a["title"] for a in _actions(card, "Action.Execute")]
    assert "Shorten System design to 45 minutes" in titles


def test_loop_builder_lists_templates_and_hides_the_form_in_a_show_card() -> None:
    card = CASES["loop_builder"]()
    root = _actions(card, "Action.Execute")
    uses = [a["data"] for a in root if a["verb"] == "loop_use_template"]
    assert uses == [
        {"verb": "loop_use_template", "flow": FLOW, "template_id": t.template_id} for t in TEMPLATES
    ]
    (show,) = _actions(card, "Action.ShowCard")
    inputs = [n["id"] for n in _walk(show["card"]) if str(n.get("type", "")).startswith("Input.")]
    assert inputs[0] == "name"
    assert f"s{BUILDER_ROWS - 1}_people" in inputs
    top = dict(card)
    top["body"] = [b for b in card["body"] if b.get("type") != "ActionSet"]  # type: ignore[union-attr]
    assert not [n for n in _walk(top) if str(n.get("type", "")).startswith("Input.")]


def test_loop_builder_round_trip_into_a_template() -> None:
    """What the builder sends back becomes a valid loop template once the bot resolves the people."""
    submitted: dict[str, object] = {
        "verb": "loop_find",
        "flow": FLOW,
        "name": "Backend engineer onsite",
        "order": "fixed",
        "max_break": "15",
        "max_days": "1",
        "lunch": "true",
        "save": "false",
        "s0_title": "Intro",
        "s0_minutes": "30",
        "s0_people": "Megan Bowen",
        "s1_title": "System design",
        "s1_minutes": "60",
        "s1_people": "Megan Bowen; adele@contoso.example",
        "s2_title": "",
        "s2_minutes": "45",
        "s2_people": "",
        "s3_title": "Values",
        "s3_minutes": "45",
        "s3_people": "Lee Chen",
    }
    action = parse_loop_action(submitted)
    assert action.builder is not None
    raw = action.builder.template_json()
    directory = {"Megan Bowen": "megan@contoso.example", "Lee Chen": "lee@contoso.example"}
    for item in raw["sessions"]:  # type: ignore[attr-defined]
        item["interviewers"] = [directory.get(p, p) for p in item.get("interviewers", [])]
    template = parse_template(raw)
    assert [s.title for s in template.sessions] == ["Intro", "System design", "Lunch", "Values"]
    assert template.sessions[1].interviewers == ("megan@contoso.example", "adele@contoso.example")
    assert template.sessions[2].window is not None


@pytest.mark.parametrize(
    "data",
    [
        {"verb": "loop_nope", "flow": FLOW},
        {"verb": "loop_choose", "flow": FLOW},
        {"verb": "loop_choose", "flow": FLOW, "option_id": "a b"},
        {"verb": "loop_length", "flow": FLOW, "session": 8, "duration_min": 30},
        {"verb": "loop_length", "flow": FLOW, "session": 0, "duration_min": "30"},
        {"verb": "loop_days", "flow": FLOW, "days": True},
        {"verb": "loop_use_template", "flow": FLOW, "template_id": "t", "s0_title": "x"},
        {"verb": "loop_find", "flow": FLOW, "s9_title": "x"},
        {"verb": "loop_find", "flow": FLOW, "s0_title": "<script>"},
        {"verb": "loop_find", "flow": FLOW, "s0_title": "Intro", "s0_minutes": "sixty"},
        {"verb": "loop_find", "flow": FLOW, "order": "random"},
        {"verb": "loop_free_order", "flow": "bad flow"},
        {
            "action": {
                "type": "Action.Execute",
                "verb": "loop_more",
                "data": {"verb": "loop_days", "flow": FLOW, "days": 2},
            }
        },
    ],
)
def test_loop_actions_refuse_anything_the_cards_do_not_emit(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        parse_loop_action(data)


def test_loop_verbs_are_routable_and_distinct_from_card_verbs() -> None:
    assert all(is_loop_verb(v.value) and v.value.startswith("loop_") for v in LoopVerb)
    assert not any(is_loop_verb(v.value) for v in Verb)
    assert not is_loop_verb(None)
    with pytest.raises(ValueError, match="unknown verb"):
        parse_action({"verb": "loop_free_order", "flow": FLOW})  # the bot routes loop verbs first


def test_loop_fixes_mirror_the_engines_changes() -> None:
    """The dialog layer maps ``Change`` onto ``LoopFix`` by value (cards cannot import the engine)."""
    # cap_override comes from the pool layer (issue 18: a pool_cap explanation), not the engine
    assert {c.value for c in Change} == {f.value for f in LoopFix if f is not LoopFix.CAP_OVERRIDE}
    with pytest.raises(ValueError, match="only loop_find"):
        LoopAction(LoopVerb.CHOOSE, FLOW, option_id="x", builder=LoopBuilderInput())


@pytest.mark.parametrize("name", sorted(CASES))
def test_loop_cards_validate_against_official_schema(
    name: str, card_validator: jsonschema.Draft6Validator
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in card_validator.iter_errors(CASES[name]())]
    assert errors == []


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, object]]:
    return _render_folder(GOLDEN)


@pytest.mark.parametrize("name", sorted(CASES))
def test_loop_cards_render_with_official_renderer(name: str, rendered: dict[str, dict[str, object]]) -> None:
    result = rendered[f"{name}.json"]
    assert result.get("error") is None
    assert result["rendered"] is True
    assert [*result["parseEvents"], *result["validationEvents"]] == []  # type: ignore[misc]
    card = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    for show in _actions(card, "Action.ShowCard"):
        show.pop("card")  # a ShowCard's own card is rendered only once it is opened
    refresh_actions = 1 if "refresh" in card else 0
    assert result["executeActions"] == len(_actions(card, "Action.Execute")) - refresh_actions
    for run in (n for n in _walk(card) if n.get("type") in {"TextRun", "TextBlock"}):
        assert str(run["text"]) in str(result["text"])


def test_loop_views_reject_invalid_input() -> None:
    with pytest.raises(ValueError, match="chronological"):
        LoopOptionView(
            "x",
            (PlacedSessionView(0, _utc(2, 18), _utc(2, 19)), PlacedSessionView(1, _utc(2, 17), _utc(2, 18))),
        )
    with pytest.raises(ValueError, match="unknown session"):
        _view(options=(LoopOptionView("x", (PlacedSessionView(7, _utc(2, 17), _utc(2, 18)),)),))
    with pytest.raises(ValueError, match="timezone-aware"):
        PlacedSessionView(0, datetime(2025, 12, 2, 9), _utc(2, 18))
    with pytest.raises(ValueError, match="display name"):
        LoopPerson(" ", "k")
    assert Person  # the candidate stays a cards.views.Person


def test_loop_confirmation_books_the_chosen_option_or_goes_back() -> None:
    card = build_loop_confirmation(_view(), "lo-2")
    text = _texts(card)
    assert "Loop: Tue 2 Dec, 10:00\u201313:45 PST" in text
    assert BOOKING_TEXT in text
    assert OUTSIDE in text
    data = [a["data"] for a in _actions(card, "Action.Execute") if a is not card["refresh"]["action"]]  # type: ignore[index]
    assert data == [
        {"verb": "loop_confirm", "flow": FLOW, "option_id": "lo-2"},
        {"verb": "loop_back", "flow": FLOW},
    ]
    with pytest.raises(ValueError, match="option_id"):
        build_loop_confirmation(_view(), "lo-404")
