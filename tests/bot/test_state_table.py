"""dialogs/state_table.py: each handler takes its own state's answer, a state the draft does not need
is passed through its first transition, and only declared transitions are taken."""

from __future__ import annotations

from typing import Any

import pytest
from botbuilder.core import ConversationState, MemoryStorage, MessageFactory, TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.dialogs import DialogInstance, DialogSet, DialogTurnStatus
from botbuilder.dialogs.prompts import PromptOptions, TextPrompt

from dialogs.schedule_interview import SCHEDULE_TABLE
from dialogs.services import DialogServices
from dialogs.state import ScheduleDraft
from dialogs.state_table import END, FlowTurn, State, StateTableDialog, Transition, edges
from tests.bot.conftest import CONNECTION, FakeCalendarService

Answered = list[tuple[str, object]]


def _question(text: str) -> Any:
    async def ask(_turn: FlowTurn, _draft: ScheduleDraft) -> PromptOptions:
        return PromptOptions(prompt=MessageFactory.text(text))

    return ask


def _table(answered: Answered, *, bad_target: bool = False) -> tuple[State, ...]:
    async def on_name(_turn: FlowTurn, draft: ScheduleDraft, answer: object) -> tuple[ScheduleDraft, str]:
        answered.append(("name", answer))
        return draft.evolve(candidate_name=str(answer)), "nowhere" if bad_target else "email"

    async def on_email(_turn: FlowTurn, draft: ScheduleDraft, answer: object) -> tuple[ScheduleDraft, str]:
        answered.append(("email", answer))
        return draft.evolve(candidate_email=str(answer)), "done"

    async def on_done(turn: FlowTurn, draft: ScheduleDraft, _answer: object) -> tuple[ScheduleDraft, str]:
        answered.append(("done", None))
        turn.result = draft.to_json()
        await turn.context.send_activity(f"{draft.candidate_name} <{draft.candidate_email}>")
        return draft, END

    return (
        State(
            "name",
            on_name,
            (Transition("email", "name"),),
            "text",
            _question("name?"),
            lambda d: not d.candidate_name,
        ),
        State(
            "email",
            on_email,
            (Transition("done", "email"),),
            "text",
            _question("email?"),
            lambda d: not d.candidate_email,
        ),
        State("done", on_done, (Transition(END, "shown"),)),
    )


def _adapter(table: tuple[State, ...], options: dict[str, Any]) -> TestAdapter:
    conversation = ConversationState(MemoryStorage())
    services = DialogServices(FakeCalendarService(), CONNECTION, conversation)
    dialogs = DialogSet(conversation.create_property("dialog"))
    dialogs.add(TextPrompt("text"))
    dialogs.add(StateTableDialog("table", table, services))

    async def logic(context: TurnContext) -> None:
        dc = await dialogs.create_context(context)
        result = await dc.continue_dialog()
        if result.status == DialogTurnStatus.Empty:
            await dc.begin_dialog("table", options)
        await conversation.save_changes(context)

    return TestAdapter(logic)


async def test_each_handler_takes_its_own_answer() -> None:
    answered: Answered = []
    adapter = _adapter(_table(answered), ScheduleDraft(flow="f1").to_json())
    await adapter.receive_activity("hi")
    assert adapter.activity_buffer.pop(0).text == "name?"
    await adapter.receive_activity("Dana")
    assert adapter.activity_buffer.pop(0).text == "email?"
    await adapter.receive_activity("dana@example.com")
    assert adapter.activity_buffer.pop(0).text == "Dana <dana@example.com>"
    assert answered == [("name", "Dana"), ("email", "dana@example.com"), ("done", None)]


async def test_a_state_the_draft_does_not_need_is_passed_through() -> None:
    answered: Answered = []
    draft = ScheduleDraft(flow="f1", candidate_name="Dana")
    adapter = _adapter(_table(answered), draft.to_json())
    await adapter.receive_activity("hi")
    assert adapter.activity_buffer.pop(0).text == "email?"
    await adapter.receive_activity("dana@example.com")
    assert answered == [("email", "dana@example.com"), ("done", None)]


async def test_an_undeclared_transition_is_refused() -> None:
    adapter = _adapter(_table([], bad_target=True), ScheduleDraft(flow="f1").to_json())
    await adapter.receive_activity("hi")
    with pytest.raises(RuntimeError, match="no transition to nowhere"):
        await adapter.receive_activity("Dana")


def test_the_schedule_table_asks_with_a_prompt_and_goes_only_to_known_states() -> None:
    names = {state.name for state in SCHEDULE_TABLE}
    assert len(names) == len(SCHEDULE_TABLE)
    for state in SCHEDULE_TABLE:
        assert (state.prompt is None) == (state.ask is None), state.name
        assert state.goes_to, state.name
    exits = {dst for _src, dst, _label in edges(SCHEDULE_TABLE)} - names
    assert exits == {END, "slots_shown"}


async def test_a_dialog_stored_by_the_old_waterfall_starts_again_from_its_draft() -> None:
    """An in-flight conversation from before the table (a waterfall's instance state) is not lost:
    the table starts again with the draft it began with."""
    answered: Answered = []
    conversation = ConversationState(MemoryStorage())
    services = DialogServices(FakeCalendarService(), CONNECTION, conversation)
    dialogs = DialogSet(conversation.create_property("dialog"))
    dialogs.add(TextPrompt("text"))
    dialogs.add(StateTableDialog("table", _table(answered), services))
    draft = ScheduleDraft(flow="f1", candidate_name="Dana").to_json()

    async def logic(context: TurnContext) -> None:
        dc = await dialogs.create_context(context)
        if context.activity.text == "old":  # what the waterfall left on the stack
            waterfall = DialogInstance()
            waterfall.id, waterfall.state = "table", {"options": draft, "values": {}, "stepIndex": 3}
            dc.stack.append(waterfall)
            await dc.begin_dialog("text", PromptOptions(prompt=MessageFactory.text("old question")))
        else:
            await dc.continue_dialog()
        await conversation.save_changes(context)

    adapter = TestAdapter(logic)
    await adapter.receive_activity("old")
    adapter.activity_buffer.clear()
    await adapter.receive_activity("an answer to the old question")
    assert adapter.activity_buffer.pop(0).text == "email?"
    assert answered == []
