"""dialogs/conversation.mmd matches the code: dialog steps, global commands, edits, card verbs."""

from __future__ import annotations

import re
from pathlib import Path

from botbuilder.dialogs import WaterfallDialog

from cards.actions import Verb
from dialogs.edits import ASKED_BY, EditField
from dialogs.main_dialog import CANCEL_WORDS, GLOBAL_WORDS, HELP_WORDS, MainDialog
from dialogs.schedule_interview import ScheduleInterviewDialog
from dialogs.sql_storage import SqlStorage
from tests.bot.conftest import FakeCalendarService, make_bot

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


async def _steps(dialog_type: type, storage: SqlStorage) -> set[str]:
    bot = make_bot(storage, FakeCalendarService())
    main = bot._dialog
    owner = main if dialog_type is MainDialog else await main.find_dialog(dialog_type.__name__)
    waterfall = await owner.find_dialog(owner.initial_dialog_id)
    assert isinstance(waterfall, WaterfallDialog)
    return {step.__name__.removesuffix("_step") for step in waterfall._steps}


async def test_dialog_states_are_the_waterfall_steps(storage: SqlStorage) -> None:
    groups = _classes()
    assert await _steps(MainDialog, storage) == groups["mainDialog"]
    assert await _steps(ScheduleInterviewDialog, storage) == groups["scheduleDialog"]


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
