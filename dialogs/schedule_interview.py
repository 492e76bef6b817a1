"""ScheduleInterviewDialog: collect candidate, panel, duration, dates, zone, buffer; show slots.

The conversation is ``SCHEDULE_TABLE``: states, each with its question and the handler of **its own**
answer, and the transitions between them (``dialogs.state_table``; dialogs/conversation.mmd draws
it). It is restartable: its options are the draft's JSON and every state skips what the draft
already has, so an edit or a one-message command asks only what is missing. Input is validated by the pure
parsers in ``dialogs.parse`` (dates: ``dialogs.dates``); a bad answer gets a specific reply and the
same question again. The panel is checked when named (Calendar Service ``directory/check``): what is
wrong is said by name and the panel is fixed in place (add, "remove <name>", "optional <name>",
"done") before any search.
"""

from __future__ import annotations

from datetime import date
from typing import Final

from botbuilder.core import MessageFactory
from botbuilder.dialogs import ComponentDialog
from botbuilder.dialogs.choices import Choice, FoundChoice, ListStyle
from botbuilder.dialogs.prompts import (
    ChoicePrompt,
    PromptOptions,
    PromptValidatorContext,
    TextPrompt,
)

from calendar_backend import errors
from cards.people_picker import build_people_picker
from cards.reconnect import build_reconnect
from dialogs import dates, parse
from dialogs.flow_search import show_slots
from dialogs.panel import apply_checks, edit_panel, fix_panel, is_fixing, panel_text
from dialogs.services import DialogServices, card_activity
from dialogs.sso import require_user_token
from dialogs.state import Member, ScheduleDraft
from dialogs.state_table import END, FlowTurn, State, StateTableDialog, Transition
from dialogs.views import CANDIDATE_DAY_KEY, zone_or_utc

# The states; a state that asks a question asks it with the prompt dialog of the same id.
NAME, EMAIL, PEOPLE, RESOLVE, PICK, PANEL = "name", "email", "people", "resolve", "pick", "panel"
DURATION, RANGE, ZONE, BUFFER, SEARCH = "duration", "range", "zone", "buffer", "search"
SLOTS_SHOWN: Final = "slots_shown"  # the exit: the slot picker card (a card state of the diagram)
_CHOICES: Final = "choices"  # dialog values: the ambiguous name's candidates, as JSON lists
_AMBIGUOUS: Final = "ambiguous"  # dialog values: the name being picked
_ZONE_OF_TODAY: Final = "zone"  # the range prompt's validations: the manager's zone


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


async def _valid_people(ctx: PromptValidatorContext) -> bool:
    return bool(parse.split_people(_text(ctx))) or await _reject(
        ctx, 'Please name at least one interviewer, e.g. "Megan, adelev@contoso.com".'
    )


async def _valid_duration(ctx: PromptValidatorContext) -> bool:
    minutes = parse.parse_duration(_text(ctx))
    if minutes is None:
        return await _reject(ctx, 'Please give a length like "45 min" or "1 hour".')
    problem = parse.check_duration(minutes)
    return problem is None or await _reject(ctx, problem)


async def _valid_zone(ctx: PromptValidatorContext) -> bool:
    return parse.parse_zone_and_day(_text(ctx)) is not None or await _reject(
        ctx,
        'I don\'t know that time zone. Try an IANA name like Asia/Kolkata, or "London" '
        '(hours like "India 09:00-18:00" must start before they end).',
    )


async def _valid_buffer(ctx: PromptValidatorContext) -> bool:
    return parse.parse_buffer(_text(ctx)) is not None or await _reject(
        ctx, f'Please give 0 to {parse.MAX_BUFFER_MIN} minutes, or "none".'
    )


def _today(services: DialogServices, zone: str) -> date:
    return services.clock().astimezone(zone_or_utc(zone)).date()


# ---- the states' questions --------------------------------------------------------------------
async def _ask_name(_turn: FlowTurn, _draft: ScheduleDraft) -> PromptOptions:
    return _ask("What is the candidate's name?")


async def _ask_email(_turn: FlowTurn, draft: ScheduleDraft) -> PromptOptions:
    return _ask(f"What is {draft.candidate_name}'s e-mail?")


async def _ask_people(turn: FlowTurn, draft: ScheduleDraft) -> PromptOptions:
    if is_fixing(draft):
        return _ask(
            'Type a name to add or replace, "remove <name>" to take someone off, '
            '"optional <name>" to invite them without checking their calendar, or '
            '"done" to go on with this panel.'
        )
    await turn.context.send_activity(card_activity(build_people_picker(draft.flow)))
    return _ask("Who should interview? Names or e-mails, separated by commas (rooms too).")


async def _ask_pick(turn: FlowTurn, _draft: ScheduleDraft) -> PromptOptions:
    choices = [Choice(f"{name} ({address})") for address, name, _, _ in turn.values[_CHOICES]]
    return PromptOptions(
        prompt=MessageFactory.text(f'Which "{turn.values[_AMBIGUOUS]}" did you mean?'),
        retry_prompt=MessageFactory.text("Please pick one of the options."),
        choices=choices,
        style=ListStyle.list_style,
    )


async def _ask_duration(_turn: FlowTurn, _draft: ScheduleDraft) -> PromptOptions:
    return _ask("How long is the interview? (15-240 minutes)")


async def _ask_range(turn: FlowTurn, draft: ScheduleDraft) -> PromptOptions:
    today = _today(turn.services, draft.manager_zone)
    options = _ask(f'When? e.g. {dates.examples(today)}, or "default" for the next 5 working days.')
    options.validations = {_ZONE_OF_TODAY: draft.manager_zone}  # the validator's "today"
    return options


async def _ask_zone(_turn: FlowTurn, _draft: ScheduleDraft) -> PromptOptions:
    return _ask(
        "Which time zone is the candidate in? (e.g. India, London, America/New_York; "
        'I rank times inside their 08:00-20:00 first; say e.g. "India 09:00-18:00" for '
        "other hours)"
    )


async def _ask_buffer(_turn: FlowTurn, _draft: ScheduleDraft) -> PromptOptions:
    return _ask('Any buffer between meetings, in minutes? Say "none" for no buffer.')


# ---- the states' handlers: each takes its own answer -------------------------------------------
async def _on_name(_turn: FlowTurn, draft: ScheduleDraft, answer: object) -> tuple[ScheduleDraft, str]:
    return draft.evolve(candidate_name=parse.parse_name(str(answer))), EMAIL


async def _on_email(_turn: FlowTurn, draft: ScheduleDraft, answer: object) -> tuple[ScheduleDraft, str]:
    return draft.evolve(candidate_email=parse.parse_email(str(answer))), PEOPLE


async def _on_people(turn: FlowTurn, draft: ScheduleDraft, answer: object) -> tuple[ScheduleDraft, str]:
    names = str(answer)
    if is_fixing(draft):
        edit = edit_panel(draft, names)
        if edit.reply:
            await turn.context.send_activity(edit.reply)
        if is_fixing(edit.draft):  # still fixing: ask again
            return edit.draft, PEOPLE
        draft, names = edit.draft, edit.names
    return draft.evolve(pending_people=parse.split_people(names)), RESOLVE


async def _on_resolve(turn: FlowTurn, draft: ScheduleDraft, _answer: object) -> tuple[ScheduleDraft, str]:
    """Check the typed names (Calendar Service ``directory/check``) and add who is usable."""
    try:
        token = await require_user_token(turn.context, turn.services.connection)
    except errors.ReconnectRequiredError:
        await turn.context.send_activity(card_activity(build_reconnect(draft.flow)))
        return draft, END
    checked = apply_checks(
        draft, await turn.services.calendar.check_people(token, list(draft.pending_people))
    )
    draft = checked.draft
    if checked.ambiguous:
        query, choices = checked.ambiguous
        turn.values[_AMBIGUOUS] = query
        turn.values[_CHOICES] = [[p.address, p.display_name, p.time_zone, p.is_room] for p in choices]
        return draft, PICK
    if checked.problems:
        summary = panel_text(draft) if draft.members else "Nobody is on the panel yet."
        await turn.context.send_activity("\n\n".join([*checked.problems, summary]))
        return fix_panel(draft), PEOPLE
    return draft, PANEL


async def _on_pick(turn: FlowTurn, draft: ScheduleDraft, answer: object) -> tuple[ScheduleDraft, str]:
    index = answer.index if isinstance(answer, FoundChoice) else 0
    address, name, zone, is_room = turn.values[_CHOICES][index]
    return draft.evolve(members=(*draft.members, Member(address, name, zone, is_room))), RESOLVE


async def _on_panel(turn: FlowTurn, draft: ScheduleDraft, _answer: object) -> tuple[ScheduleDraft, str]:
    if not draft.required:
        await turn.context.send_activity(
            "An interview needs at least one required interviewer, not only rooms or optional people."
        )
        return fix_panel(draft), PEOPLE
    await turn.context.send_activity(panel_text(draft))  # the panel shown back, by name
    return draft, DURATION


async def _on_duration(_turn: FlowTurn, draft: ScheduleDraft, answer: object) -> tuple[ScheduleDraft, str]:
    return draft.evolve(duration_min=parse.parse_duration(str(answer))), RANGE


async def _on_range(turn: FlowTurn, draft: ScheduleDraft, answer: object) -> tuple[ScheduleDraft, str]:
    today = _today(turn.services, draft.manager_zone)
    first, last = dates.read_dates(str(answer), today).span or (None, None)
    return draft.evolve(range_start=first, range_end=last), ZONE


async def _on_zone(_turn: FlowTurn, draft: ScheduleDraft, answer: object) -> tuple[ScheduleDraft, str]:
    zone, day = parse.parse_zone_and_day(str(answer)) or (None, None)
    extras = {**draft.extras, CANDIDATE_DAY_KEY: "-".join(day)} if day else draft.extras
    return draft.evolve(candidate_zone=zone, extras=extras), BUFFER


async def _on_buffer(_turn: FlowTurn, draft: ScheduleDraft, answer: object) -> tuple[ScheduleDraft, str]:
    return draft.evolve(buffer_min=parse.parse_buffer(str(answer))), SEARCH


async def _on_search(turn: FlowTurn, draft: ScheduleDraft, _answer: object) -> tuple[ScheduleDraft, str]:
    await turn.services.save_flow(turn.context, draft)
    try:
        await show_slots(turn.context, turn.services, draft)
    except errors.CalendarError as err:
        await turn.context.send_activity(err.message)
    turn.result = draft.to_json()
    return draft, SLOTS_SHOWN


# ---- the table (dialogs/conversation.mmd draws it; its first transition is also the skip) ----
SCHEDULE_TABLE: Final = (
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
        (Transition(PEOPLE, "candidate e-mail"),),
        EMAIL,
        _ask_email,
        lambda d: not d.candidate_email,
    ),
    State(
        PEOPLE,
        _on_people,
        (
            Transition(RESOLVE, "names or e-mails (people picker or typed)"),
            Transition(PEOPLE, "fixing the panel: remove <name>, optional <name>, not done yet"),
        ),
        PEOPLE,
        _ask_people,
        lambda d: (is_fixing(d) or not d.interviewers) and not d.pending_people,
    ),
    State(
        RESOLVE,
        _on_resolve,
        (
            Transition(PANEL, "everyone resolved"),
            Transition(PICK, "ambiguous name"),
            Transition(
                PEOPLE,
                "panel checked (POST /v1/directory/check): what is wrong said by name; fix in place "
                "with a name to add or replace, remove <name>, optional <name>, done",
            ),
            Transition(END, "no token: the reconnect card"),
        ),
        needed=lambda d: bool(d.pending_people),
    ),
    State(
        PICK,
        _on_pick,
        (Transition(RESOLVE, "chosen (the other names next)"),),
        PICK,
        _ask_pick,
    ),
    State(
        PANEL,
        _on_panel,
        (
            Transition(DURATION, "the panel shown back, by name"),
            Transition(PEOPLE, "no required interviewer (only rooms or optional people)"),
        ),
    ),
    State(
        DURATION,
        _on_duration,
        (Transition(RANGE, "length"),),
        DURATION,
        _ask_duration,
        lambda d: not d.duration_min,
    ),
    State(RANGE, _on_range, (Transition(ZONE, "dates"),), RANGE, _ask_range, lambda d: not d.range_start),
    State(
        ZONE,
        _on_zone,
        (Transition(BUFFER, "candidate time zone"),),
        ZONE,
        _ask_zone,
        lambda d: not d.candidate_zone,
    ),
    State(
        BUFFER,
        _on_buffer,
        (Transition(SEARCH, "buffer"),),
        BUFFER,
        _ask_buffer,
        lambda d: d.buffer_min is None,
    ),
    State(SEARCH, _on_search, (Transition(SLOTS_SHOWN, "slot picker card (the current search)"),)),
)


class ScheduleInterviewDialog(ComponentDialog):
    """Collects a ``ScheduleDraft`` (options: the draft JSON) and posts the slot picker:
    ``SCHEDULE_TABLE`` run by a ``StateTableDialog``."""

    def __init__(self, services: DialogServices) -> None:
        super().__init__(ScheduleInterviewDialog.__name__)

        async def valid_range(ctx: PromptValidatorContext) -> bool:
            validations = getattr(ctx.options, "validations", None)
            zone = validations.get(_ZONE_OF_TODAY) if isinstance(validations, dict) else None
            complaint = dates.range_complaint(_text(ctx), _today(services, str(zone or "UTC")))
            return complaint is None or await _reject(ctx, complaint)

        for prompt_id, validator in (
            (NAME, _valid_name),
            (EMAIL, _valid_email),
            (PEOPLE, _valid_people),
            (DURATION, _valid_duration),
            (ZONE, _valid_zone),
            (BUFFER, _valid_buffer),
            (RANGE, valid_range),
        ):
            self.add_dialog(TextPrompt(prompt_id, validator))
        self.add_dialog(ChoicePrompt(PICK))
        self.add_dialog(StateTableDialog("schedule", SCHEDULE_TABLE, services))
        self.initial_dialog_id = "schedule"
