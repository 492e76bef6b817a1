"""A conversation declared as a table of states and transitions (python-telegram-bot's
``ConversationHandler`` habit: state → handler → next state), run as one botbuilder ``Dialog``.

A ``State`` either asks a question (``prompt``: the id of a prompt dialog of the same component;
``ask`` builds its options) and then ``handle`` takes **its own** answer, or is an action
(``prompt is None``) whose ``handle`` runs at once with no answer. ``handle`` returns the draft and the
name of the next state, which must be one of the state's declared ``goes_to`` targets. A state whose
``needed(draft)`` is False is passed through to its first target (a draft that already has the
field skips the question). A target that is not a state of the table ends the dialog (``END``, or a
card the dialog leaves behind) with ``FlowTurn.result``.

Between turns the dialog keeps only the current state's name and the draft's JSON
(``to_json``/``from_json``, once per question asked and once per answer); within a turn the draft
is a value.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from botbuilder.core import TurnContext
from botbuilder.dialogs import Dialog, DialogContext, DialogReason, DialogTurnResult
from botbuilder.dialogs.prompts import PromptOptions

from dialogs.services import DialogServices
from dialogs.state import ScheduleDraft

END: Final = "[*]"
MAX_MOVES: Final = 64  # state changes in one turn; more is a loop in the table
_AT: Final = "at"
_DRAFT: Final = "draft"
_LEGACY_OPTIONS: Final = "options"  # where a WaterfallDialog kept its options (the draft's JSON)


@dataclass
class FlowTurn:
    """What a handler works with in this turn: the context, the services, the dialog's own
    values (JSON, kept between turns) and the result to end with."""

    context: TurnContext
    services: DialogServices
    values: dict[str, Any]
    result: object = None


# The draft is a ScheduleDraft for SCHEDULE_TABLE, a LoopDraft for LOOP_TABLE (the dialog's codec).
Handler = Callable[[FlowTurn, Any, Any], Awaitable[tuple[Any, str]]]
Asker = Callable[[FlowTurn, Any], Awaitable[PromptOptions]]
Codec = tuple[Callable[[dict[str, Any]], Any], Callable[[Any], dict[str, Any]]]
SCHEDULE_CODEC: Final[Codec] = (ScheduleDraft.from_json, ScheduleDraft.to_json)


@dataclass(frozen=True, slots=True)
class Transition:
    """An edge of the table: to ``to`` (a state, ``END`` or a card), drawn with label ``when``."""

    to: str
    when: str


def _always(_draft: Any) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class State:
    """One state: the question it asks (or none), its handler and where it may go next."""

    name: str
    handle: Handler
    goes_to: tuple[Transition, ...]
    prompt: str | None = None
    ask: Asker | None = None
    needed: Callable[[Any], bool] = field(default=_always)


class StateTableDialog(Dialog):
    """Runs a table of ``State``s; options: the draft's JSON (read and written by ``codec``, a
    ``ScheduleDraft``'s by default). Starts at the table's first state."""

    def __init__(
        self,
        dialog_id: str,
        table: tuple[State, ...],
        services: DialogServices,
        codec: Codec = SCHEDULE_CODEC,
    ) -> None:
        super().__init__(dialog_id)
        self._load, self._dump = codec
        self._states: Mapping[str, State] = {s.name: s for s in table}
        self._start = table[0].name
        self._services = services

    async def begin_dialog(self, dialog_context: DialogContext, options: object = None) -> DialogTurnResult:
        draft = self._load(options if isinstance(options, dict) else {})
        return await self._run(dialog_context, draft, self._start)

    async def continue_dialog(self, dialog_context: DialogContext) -> DialogTurnResult:  # noqa: ARG002
        return Dialog.end_of_turn  # the question's prompt answers; nothing to do here

    async def resume_dialog(
        self,
        dialog_context: DialogContext,
        reason: DialogReason,  # noqa: ARG002 - botbuilder's signature
        result: object = None,
    ) -> DialogTurnResult:
        """The current state's question was answered: its handler takes the answer.

        A dialog stored by an older version (a waterfall's ``options``, no current state) starts
        again from the table's first state with the draft it began with; the questions it has
        answers for are skipped."""
        values = dialog_context.active_dialog.state
        state = self._states.get(str(values.get(_AT)))
        try:
            draft = self._load(values.get(_DRAFT) or values.get(_LEGACY_OPTIONS) or {})
        except (KeyError, TypeError, ValueError):
            return await dialog_context.end_dialog(None)
        if state is None:
            return await self._run(dialog_context, draft, self._start)
        turn = FlowTurn(dialog_context.context, self._services, values)
        draft, target = await state.handle(turn, draft, result)
        return await self._run(dialog_context, draft, self._check(state, target), turn)

    def _check(self, state: State, target: str) -> str:
        if all(t.to != target for t in state.goes_to):
            raise RuntimeError(f"state {state.name} has no transition to {target}")
        return target

    async def _run(
        self, dc: DialogContext, draft: Any, at: str, turn: FlowTurn | None = None
    ) -> DialogTurnResult:
        values = dc.active_dialog.state
        turn = turn or FlowTurn(dc.context, self._services, values)
        for _ in range(MAX_MOVES):
            state = self._states.get(at)
            if state is None:  # an exit of the table
                return await dc.end_dialog(turn.result)
            if not state.needed(draft):
                at = state.goes_to[0].to
            elif state.prompt is None or state.ask is None:
                draft, target = await state.handle(turn, draft, None)
                at = self._check(state, target)
            else:
                values[_AT], values[_DRAFT] = at, self._dump(draft)
                return await dc.begin_dialog(state.prompt, await state.ask(turn, draft))
        raise RuntimeError("the conversation table loops")


def edges(table: tuple[State, ...]) -> list[tuple[str, str, str]]:
    """Every transition of ``table`` as ``(from, to, label)`` (dialogs/conversation.mmd draws them)."""
    return [(s.name, t.to, t.when) for s in table for t in s.goes_to]
