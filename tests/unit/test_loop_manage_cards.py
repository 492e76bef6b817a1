"""Booked-loop cards ("My interviews" entry, detail, cancel, move): golden JSON, the official 1.5
schema, button data round trips, both zones, and no addresses.

Golden files live in tests/golden/loop_manage/<case>.json; UPDATE_GOLDEN=1 rewrites them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from cards.actions import Verb, parse_action
from cards.loop_actions import is_loop_verb, parse_loop_action
from cards.loop_manage import (
    ManagedLoop,
    ManagedSession,
    MoveOption,
    build_loop_cancel_question,
    build_loop_cancel_session,
    build_loop_cancelled,
    build_loop_detail,
    build_loop_move_options,
    build_loop_moved,
)
from cards.my_interviews import build_my_interviews
from tests.unit.test_cards import (
    FLOW,
    TEAMS_MAX_BYTES,
    ZONES,
    _actions,
    _dump,
    _texts,
    card_validator,  # noqa: F401 - a pytest fixture, used by name
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "loop_manage"
START = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)  # Wed 09:00 PST, 22:30 IST


def _at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


INTRO = ManagedSession(0, "Intro", _at(0), _at(30), ("Megan Bowen",), "Room 4.12 (Harbour)")
DESIGN = ManagedSession(1, "System design", _at(30), _at(90), ("Megan Bowen", "Adele Vance"))
LOOP = ManagedLoop("lp-42", "Backend onsite", "Dana Scully", (INTRO, DESIGN), ZONES, 2)
MOVES = (
    MoveOption("0-1a.1-1b", (ManagedSession(0, "Intro", _at(120), _at(150)), DESIGN)),
    MoveOption("0-2a.1-2b", (ManagedSession(0, "Intro", _at(180), _at(210)), DESIGN)),
)

CASES: dict[str, Callable[[], dict[str, object]]] = {
    "my_interviews_loops": lambda: build_my_interviews(FLOW, [], loops=[LOOP]),
    "loop_detail": lambda: build_loop_detail(FLOW, LOOP),
    "loop_cancel_question": lambda: build_loop_cancel_question(FLOW, LOOP),
    "loop_cancel_session": lambda: build_loop_cancel_session(FLOW, LOOP, INTRO),
    "loop_cancelled": lambda: build_loop_cancelled(FLOW, LOOP),
    "loop_cancelled_already": lambda: build_loop_cancelled(FLOW, LOOP, already=True),
    "loop_move_options": lambda: build_loop_move_options(FLOW, LOOP, MOVES),
    "loop_move_session_taken": lambda: build_loop_move_options(
        FLOW, LOOP, MOVES[:1], session=INTRO, problem="Sorry, that time was just taken."
    ),
    "loop_move_none": lambda: build_loop_move_options(FLOW, LOOP, (), session=INTRO),
    "loop_moved": lambda: build_loop_moved(FLOW, LOOP),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_loop_manage_cards_match_golden(name: str) -> None:
    text = _dump(CASES[name]())
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path.name}: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_loop_manage_golden_folder_has_no_orphans() -> None:
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_loop_manage_cards_structure_and_schema(
    name: str, card_validator: jsonschema.Draft6Validator
) -> None:
    card = CASES[name]()
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.5")
    assert len(json.dumps(card).encode()) < TEAMS_MAX_BYTES
    assert [f"{list(e.absolute_path)}: {e.message}" for e in card_validator.iter_errors(card)] == []
    buttons = _actions(card, "Action.Execute")
    assert buttons
    for execute in buttons:
        data = execute["data"]
        assert isinstance(data, dict)
        assert data["flow"] == FLOW
        if is_loop_verb(data["verb"]):
            assert parse_loop_action(data).to_data() == data
        else:
            assert parse_action(data).verb is Verb.MY_INTERVIEWS
        assert execute["fallback"] == {"type": "Action.Submit", "title": execute["title"], "data": data}


def test_the_list_entry_shows_both_zones_and_the_count() -> None:
    text = _texts(CASES["my_interviews_loops"]())
    assert "Interview loop: Dana Scully" in text
    assert "Wed 2 Dec, 09:00\u201310:30 PST · Wed 2 Dec, 22:30 IST \u2013 Thu 3 Dec, 00:00 IST" in text
    assert "2 sessions" in text
    verbs = [a["verb"] for a in _actions(CASES["my_interviews_loops"](), "Action.Execute")]
    assert verbs == ["loop_manage", "loop_move", "loop_cancel"]


def test_cancel_question_says_who_is_told() -> None:
    assert "The candidate and 2 interviewers get a cancellation" in _texts(CASES["loop_cancel_question"]())


def test_each_session_can_be_moved_on_the_detail_card() -> None:
    data = [a["data"] for a in _actions(CASES["loop_detail"](), "Action.Execute")]
    assert {"verb": "loop_move_session", "flow": FLOW, "loop_id": "lp-42", "session": 1} in data
    assert {"verb": "loop_cancel_session", "flow": FLOW, "loop_id": "lp-42", "session": 0} in data


def test_loop_manage_cards_show_names_not_addresses() -> None:
    for build in CASES.values():
        assert "@" not in json.dumps(build())
