"""ScheduleLoopDialog: "schedule a loop" → the builder card; a template (used, or built on the card)
→ the candidate, the dates and their zone → the loop options card.

The conversation is ``LOOP_TABLE`` (``dialogs.state_table``; dialogs/conversation.mmd draws it next
to ``SCHEDULE_TABLE``). Its options are a ``LoopDraft``'s JSON and every question is skipped when the
draft already has its answer, so the one-message form ("loop Backend onsite for Dana Scully
(dana@x.com) next week") asks only for what it did not say. The cards' buttons are handled by
``dialogs.loop_actions``; the ones that need an answer typed (a template to use, a person to
replace) start this dialog again on their flow.
"""

from __future__ import annotations

from datetime import date
from typing import Final

from botbuilder.core import MessageFactory
from botbuilder.dialogs import ComponentDialog
from botbuilder.dialogs.prompts import PromptOptions, PromptValidatorContext, TextPrompt

from calendar_backend import errors
from cards.reconnect import build_reconnect
from dialogs import dates, parse
from dialogs.loop_search import USABLE, Shown, builder_card, find_template, options_card, saved_templates
from dialogs.loop_state import LoopDraft, save_loop
from dialogs.loop_views import name_of
from dialogs.panel import problem_text
from dialogs.services import DialogServices, card_activity
from dialogs.sso import require_user_token
from dialogs.state_table import END, FlowTurn, State, StateTableDialog, Transition
from dialogs.views import zone_or_utc

START, NAME, EMAIL, RANGE = "loop_start", "loop_name", "loop_email", "loop_range"
ZONE, REPLACE, SEARCH = "loop_zone", "loop_replace", "loop_search"
BUILDER_CARD: Final = "loop_builder_card"  # exits: the cards the dialog leaves behind
OPTIONS_CARD: Final = "loop_options_card"
_TODAY_ZONE: Final = "zone"


def _ask(text: str) -> PromptOptions:
    return PromptOptions(prompt=MessageFactory.text(text))


async def _reject(ctx: PromptValidatorContext, message: str) -> bool:
    await ctx.context.send_activity(message)
    return False


def _text(ctx: PromptValidatorContext) -> str:
    return str(ctx.recognized.value or "") if ctx.recognized.succeeded else ""


async def _valid_name(ctx: PromptValidatorContext) -> bool:
    return parse.parse_name(_text(ctx)) is not None or await _reject(
        ctx, "Please type the candidate's name (letters, up to 120 characters)."
    )


async def _valid_email(ctx: PromptValidatorContext) -> bool:
    return parse.parse_email(_text(ctx)) is not None or await _reject(
        ctx, "That doesn't look like an e-mail address. Try e.g. dana@example.com."
    )


async def _valid_zone(ctx: PromptValidatorContext) -> bool:
    return parse.parse_time_zone(_text(ctx)) is not None or await _reject(
        ctx, 'I don\'t know that time zone. Try an IANA name like Asia/Kolkata, or "London".'
    )


async def _valid_person(ctx: PromptValidatorContext) -> bool:
    text = _text(ctx)
    return (parse.parse_email(text) or parse.parse_name(text)) is not None or await _reject(
        ctx, "Please type one name or e-mail address."
    )


def today_of(services: DialogServices, zone: str) -> date:
    """The manager's today."""
    return services.clock().astimezone(zone_or_utc(zone)).date()


# ---- questions ------------------------------------------------------------------------------------
async def _ask_name(_turn: FlowTurn, _draft: LoopDraft) -> PromptOptions:
    return _ask("What is the candidate's name?")


async def _ask_email(_turn: FlowTurn, draft: LoopDraft) -> PromptOptions:
    return _ask(f"What is {draft.candidate_name}'s e-mail?")


async def _ask_range(turn: FlowTurn, draft: LoopDraft) -> PromptOptions:
    today = today_of(turn.services, draft.manager_zone)
    options = _ask(f'When? e.g. {dates.examples(today)}, or "default" for the next 5 working days.')
    options.validations = {_TODAY_ZONE: draft.manager_zone}
    return options


async def _ask_zone(_turn: FlowTurn, _draft: LoopDraft) -> PromptOptions:
    return _ask("Which time zone is the candidate in? (e.g. India, London, America/New_York)")


async def _ask_replace(_turn: FlowTurn, draft: LoopDraft) -> PromptOptions:
    index, address = draft.replacing or (0, "")
    sessions = draft.sessions()
    title = sessions[index].get("title", "") if index < len(sessions) else ""
    return _ask(f"Who should replace {name_of(draft, address)} in {title}? A name or an e-mail.")


# ---- handlers: each takes its own answer ---------------------------------------------------------
async def _on_start(turn: FlowTurn, draft: LoopDraft, _answer: object) -> tuple[LoopDraft, str]:
    if draft.template is not None:
        return draft, NAME
    problems: tuple[str, ...] = ()
    if draft.template_name:
        try:
            found = find_template(await saved_templates(turn.context, turn.services), draft.template_name)
        except errors.ReconnectRequiredError:
            await turn.context.send_activity(card_activity(build_reconnect(draft.flow)))
            return draft, END
        except errors.CalendarError as err:
            await turn.context.send_activity(err.message)
            return draft, END
        if found is not None:
            draft = draft.evolve(template=dict(found.template), template_name=None)
            await save_loop(turn.context, turn.services, draft)
            return draft, NAME
        wanted = (draft.template_name or "")[:80]
        problems = (f"No saved loop is called \u201c{wanted}\u201d. Pick one below or build it.",)
        draft = draft.evolve(template_name=None)
    await save_loop(turn.context, turn.services, draft)
    card = await builder_card(turn.context, turn.services, draft, problems)
    await turn.context.send_activity(card_activity(card))
    return draft, BUILDER_CARD


async def _on_name(_turn: FlowTurn, draft: LoopDraft, answer: object) -> tuple[LoopDraft, str]:
    return draft.evolve(candidate_name=parse.parse_name(str(answer))), EMAIL


async def _on_email(_turn: FlowTurn, draft: LoopDraft, answer: object) -> tuple[LoopDraft, str]:
    return draft.evolve(candidate_email=parse.parse_email(str(answer))), RANGE


async def _on_range(turn: FlowTurn, draft: LoopDraft, answer: object) -> tuple[LoopDraft, str]:
    today = today_of(turn.services, draft.manager_zone)
    first, last = dates.read_dates(str(answer), today).span or (None, None)
    return draft.evolve(range_start=first, range_end=last), ZONE


async def _on_zone(_turn: FlowTurn, draft: LoopDraft, answer: object) -> tuple[LoopDraft, str]:
    return draft.evolve(candidate_zone=parse.parse_time_zone(str(answer))), REPLACE


async def _on_replace(turn: FlowTurn, draft: LoopDraft, answer: object) -> tuple[LoopDraft, str]:
    index, address = draft.replacing or (0, "")
    typed = str(answer).strip()
    try:
        token = await require_user_token(turn.context, turn.services.connection)
        [check] = await turn.services.calendar.check_people(token, [typed])
    except errors.ReconnectRequiredError:
        await turn.context.send_activity(card_activity(build_reconnect(draft.flow)))
        return draft, END
    if check.status == "ambiguous" and check.choices:
        found = ", ".join(f"{c.display_name} ({c.address})" for c in check.choices[:5])
        await turn.context.send_activity(
            f"\u201c{typed[:60]}\u201d could be {found}. Please type the e-mail."
        )
        return draft, REPLACE
    person = check.person
    if person is None or check.status not in USABLE or person.is_room:
        await turn.context.send_activity(problem_text(check))
        return draft, REPLACE
    sessions = draft.sessions()
    new = person.address.lower()
    people = list(sessions[index].get("interviewers") or []) if index < len(sessions) else []
    if new in people:
        await turn.context.send_activity(f"{person.display_name} is already on that session.")
        return draft, REPLACE
    if index < len(sessions):
        sessions[index]["interviewers"] = [new if p == address else p for p in people]
    names = {**draft.names, new: person.display_name}
    return draft.with_template(sessions=sessions).evolve(replacing=None, names=names), SEARCH


async def _on_search(turn: FlowTurn, draft: LoopDraft, _answer: object) -> tuple[LoopDraft, str]:
    await save_loop(turn.context, turn.services, draft)
    card, shown = await options_card(turn.context, turn.services, draft)
    await turn.context.send_activity(card_activity(card))
    return draft, {Shown.OPTIONS: OPTIONS_CARD, Shown.BUILDER: BUILDER_CARD}.get(shown, END)


LOOP_TABLE: Final = (
    State(
        START,
        _on_start,
        (
            Transition(NAME, "a template (used or built on the builder, or named in the message)"),
            Transition(
                BUILDER_CARD,
                "schedule a loop, loop: the builder card (saved templates: use, edit; or the form)",
            ),
            Transition(END, "no token: the reconnect card"),
        ),
    ),
    State(
        NAME,
        _on_name,
        (Transition(EMAIL, "candidate name"),),
        NAME,
        _ask_name,
        lambda d: not d.candidate_name,
    ),
    State(
        EMAIL,
        _on_email,
        (Transition(RANGE, "candidate e-mail"),),
        EMAIL,
        _ask_email,
        lambda d: not d.candidate_email,
    ),
    State(RANGE, _on_range, (Transition(ZONE, "dates"),), RANGE, _ask_range, lambda d: not d.range_start),
    State(
        ZONE,
        _on_zone,
        (Transition(REPLACE, "candidate time zone"),),
        ZONE,
        _ask_zone,
        lambda d: not d.candidate_zone,
    ),
    State(
        REPLACE,
        _on_replace,
        (
            Transition(SEARCH, "the replacement, checked (POST /v1/directory/check)"),
            Transition(REPLACE, "not found, ambiguous or already on the session: said, asked again"),
            Transition(END, "no token: the reconnect card"),
        ),
        REPLACE,
        _ask_replace,
        lambda d: d.replacing is not None,
    ),
    State(
        SEARCH,
        _on_search,
        (
            Transition(OPTIONS_CARD, "loop options card (POST /v1/loops/search), or why nothing fits"),
            Transition(BUILDER_CARD, "the template refused: its problems on the builder"),
            Transition(END, "no token (reconnect card), or loops not available (404)"),
        ),
    ),
)
LOOP_CODEC: Final = (LoopDraft.from_json, LoopDraft.to_json)


class ScheduleLoopDialog(ComponentDialog):
    """Runs ``LOOP_TABLE`` (options: a ``LoopDraft``'s JSON) and leaves a loop card behind."""

    def __init__(self, services: DialogServices) -> None:
        super().__init__(ScheduleLoopDialog.__name__)

        async def valid_range(ctx: PromptValidatorContext) -> bool:
            validations = getattr(ctx.options, "validations", None)
            zone = validations.get(_TODAY_ZONE) if isinstance(validations, dict) else None
            complaint = dates.range_complaint(_text(ctx), today_of(services, str(zone or "UTC")))
            return complaint is None or await _reject(ctx, complaint)

        for prompt_id, validator in (
            (NAME, _valid_name),
            (EMAIL, _valid_email),
            (RANGE, valid_range),
            (ZONE, _valid_zone),
            (REPLACE, _valid_person),
        ):
            self.add_dialog(TextPrompt(prompt_id, validator))
        self.add_dialog(StateTableDialog("loop", LOOP_TABLE, services, LOOP_CODEC))
        self.initial_dialog_id = "loop"
