"""dialogs/conversation.mmd matches the code: MainDialog's steps, ScheduleInterviewDialog's declared
state table (states and every transition, derived from the table), global commands, edits, card verbs."""

from __future__ import annotations

import re
from pathlib import Path

from botbuilder.core import ConversationState
from botbuilder.dialogs import WaterfallDialog

from cards.actions import Verb
from cards.loop_actions import LoopVerb
from dialogs.edits import ASKED_BY, EditField
from dialogs.main_dialog import CANCEL_WORDS, GLOBAL_WORDS, HELP_WORDS, MainDialog
from dialogs.schedule_interview import SCHEDULE_TABLE
from dialogs.schedule_loop import LOOP_TABLE
from dialogs.services import DialogServices
from dialogs.sql_storage import SqlStorage
from dialogs.state_table import END, edges
from tests.bot.conftest import CONNECTION, FakeCalendarService

DIAGRAM = Path(__file__).resolve().parents[2] / "dialogs" / "conversation.mmd"
_EDGE = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)(?:\s*:\s*(.*))?$")


def _lines() -> list[str]:
    return [
        line for line in DIAGRAM.read_text(encoding="utf-8").splitlines() if not line.strip().startswith("%%")
    ]


def _classes() -> dict[str, set[str]]:
    """Class name -> the states a ``class a, b, c name`` line puts in it."""
    groups: dict[str, set[str]] = {}
    for line in _lines():
        match = re.match(r"^\s*class\s+(.+?)\s+(\w+)\s*$", line)
        if match:
            groups.setdefault(match.group(2), set()).update(s.strip() for s in match.group(1).split(","))
    return groups


def _edges() -> list[tuple[str, str, str]]:
    return [(m.group(1), m.group(2), m.group(3) or "") for line in _lines() if (m := _EDGE.match(line))]


async def _main_steps(storage: SqlStorage) -> set[str]:
    main = MainDialog(DialogServices(FakeCalendarService(), CONNECTION, ConversationState(storage)))
    waterfall = await main.find_dialog(main.initial_dialog_id)
    assert isinstance(waterfall, WaterfallDialog)
    return {step.__name__.removesuffix("_step") for step in waterfall._steps}


async def test_main_dialog_states_are_its_waterfall_steps(storage: SqlStorage) -> None:
    assert await _main_steps(storage) == _classes()["mainDialog"]


def test_schedule_dialog_states_are_the_table() -> None:
    assert {state.name for state in SCHEDULE_TABLE} == _classes()["scheduleDialog"]


def test_every_transition_of_the_table_is_drawn_and_nothing_else() -> None:
    """The edges leaving the schedule states are the table's transitions, label for label."""
    states = {state.name for state in SCHEDULE_TABLE}
    drawn = sorted((src, dst, label) for src, dst, label in _edges() if src in states)
    assert drawn == sorted(edges(SCHEDULE_TABLE))


def test_every_transition_goes_to_a_drawn_state() -> None:
    drawn = {s for src, dst, _ in _edges() for s in (src, dst)}
    for src, dst, _label in edges(SCHEDULE_TABLE):
        assert dst == END or dst in drawn, (src, dst)


def test_every_state_belongs_to_a_dialog_or_is_a_card() -> None:
    states = {s for src, dst, _ in _edges() for s in (src, dst) if s != "[*]"}
    classed = set().union(*_classes().values())
    assert states == classed, (states - classed, classed - states)


def test_every_global_command_is_drawn() -> None:
    text = DIAGRAM.read_text(encoding="utf-8")
    for word in sorted(GLOBAL_WORDS | CANCEL_WORDS | HELP_WORDS | {"schedule"}):
        assert re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text), word


def test_every_edit_button_returns_to_the_step_that_asks_for_it() -> None:
    verbs = {
        EditField.DURATION: Verb.EDIT_DURATION,
        EditField.WINDOW: Verb.EDIT_WINDOW,
        EditField.PANEL: Verb.EDIT_PANEL,
        EditField.ZONE: Verb.EDIT_ZONE,
    }
    edges = _edges()
    for field in EditField:
        assert any(
            src == "slots_shown" and dst == ASKED_BY[field] and f"({verbs[field].value})" in label
            for src, dst, label in edges
        ), field
    assert any(src == "slots_shown" and "typed edit" in label for src, _, label in edges)


def test_every_card_verb_is_drawn() -> None:
    labels = " ".join(label for _, _, label in _edges())
    command_titles = {
        Verb.SCHEDULE: "schedule",
        Verb.MY_INTERVIEWS: "my_interviews",
        Verb.HELP: "Help",
        Verb.SIGN_IN: "sign_in",
    }
    for verb in Verb:
        word = command_titles.get(verb, verb.value)
        assert re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", labels), verb.value


def test_loop_dialog_states_are_its_table() -> None:
    assert {state.name for state in LOOP_TABLE} == _classes()["loopDialog"]


def test_every_transition_of_the_loop_table_is_drawn_and_nothing_else() -> None:
    states = {state.name for state in LOOP_TABLE}
    drawn = sorted((src, dst, label) for src, dst, label in _edges() if src in states)
    assert drawn == sorted(edges(LOOP_TABLE))
    shown = {s for src, dst, _ in _edges() for s in (src, dst)}
    for src, dst, _label in edges(LOOP_TABLE):
        assert dst == END or dst in shown, (src, dst)


def test_every_loop_card_verb_is_drawn() -> None:
    labels = " ".join(label for _, _, label in _edges())
    for verb in LoopVerb:
        assert re.search(rf"(?<![\w-]){re.escape(verb.value)}(?![\w-])", labels), verb.value
