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

import re
from dataclasses import replace
from datetime import date
from typing import Final

from botbuilder.core import MessageFactory
from botbuilder.dialogs import ComponentDialog
from botbuilder.dialogs.choices import Choice, ListStyle
from botbuilder.dialogs.prompts import (
    ChoicePrompt,
    PromptOptions,
    PromptValidatorContext,
    TextPrompt,
)

from calendar_backend import errors
from calendar_backend.contract import PersonCheckOut, PersonOut
from cards.people_picker import PICKER_INPUT, PICKER_MARKER, TYPED_INPUT, build_people_picker
from cards.reconnect import build_reconnect
from dialogs import dates, parse
from dialogs.flow_search import show_slots
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


_OBJECT_ID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
MAX_PICKED = 20


def picked_people_text(value: object) -> str | None:
    """The people-picker submit ``value`` as a typed answer.

    Picked people come as Entra object ids (GUIDs): ``"id1, id2"`` (lower-case). Names typed into
    the picker's box (a client without the people picker, e.g. the Agents Playground, submits the
    text) or into the card's ``typed`` box count as typed names: ``"Megan, adelev@x.com"``; both
    boxes may be used at once. Returns ``None`` when ``value`` is not a picker submit, and ``""``
    (the dialog then asks again) when nothing usable was given, more than ``MAX_PICKED`` people,
    or a part that is neither an id, a name nor an e-mail.
    """
    if not isinstance(value, dict) or value.get("picker") != PICKER_MARKER:
        return None
    parts: list[str] = []
    for key in (PICKER_INPUT, TYPED_INPUT):
        raw = value.get(key)
        if raw is not None and not isinstance(raw, str):
            return ""
        parts.extend(parse.split_people(raw or "", limit=None))
    if not parts or len(parts) > MAX_PICKED:
        return ""
    usable = [
        part.lower() if _OBJECT_ID_RE.fullmatch(part) else parse.parse_email(part) or parse.parse_name(part)
        for part in parts
    ]
    if not all(usable):
        return ""
    return ", ".join(dict.fromkeys(str(u) for u in usable))


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


FIXING_PANEL: Final = "fixing_panel"  # draft.extras flag: the panel is being corrected
DONE_WORDS: Final = frozenset(
    {"done", "ok", "okay", "skip", "go on", "continue", "no", "none", "that's it", "thats it"}
)
_PROBLEM_TEXT: Final = {
    "not_found": "I couldn't find \u201c{query}\u201d in your directory. Check the spelling or "
    "use an e-mail address.",
    "disabled": "{name}'s account is switched off, so they can't interview.",
    "no_mailbox": "{name} has no mailbox, so they can't get an invite.",
    "unreadable": "I can't see {name}'s free/busy time (their calendar isn't shared with you).",
    "not_allowed": "Your organisation doesn't let OpenSlot read {name}'s calendar.",
}


def problem_text(check: PersonCheckOut) -> str:
    """What is wrong with one typed name, by display name (the typed text when not found)."""
    name = check.person.display_name if check.person else check.query
    template = _PROBLEM_TEXT.get(check.status, "I can't use \u201c{query}\u201d ({status}).")
    return template.format(name=name, query=check.query[:60], status=check.status)


def panel_text(draft: ScheduleDraft) -> str:
    """The panel shown back: people by display name, then rooms."""
    people = [f"{m.display_name} (optional)" if m.optional else m.display_name for m in draft.interviewers]
    rooms = [m.display_name for m in draft.rooms]
    text = "Panel: " + (", ".join(people) if people else "nobody yet")
    return text + (f"; room: {', '.join(rooms)}." if rooms else ".")


def _names(member: Member, typed: str) -> bool:
    """True when ``typed`` names ``member``: the address, or the start of the name or a word."""
    t = " ".join(typed.lower().split())
    name = member.display_name.lower()
    return bool(t) and (
        member.address == t or name.startswith(t) or any(word.startswith(t) for word in name.split())
    )


def _today(services: DialogServices, zone: str) -> date:
    return services.clock().astimezone(zone_or_utc(zone)).date()


def _fixing(draft: ScheduleDraft) -> bool:
    return bool(draft.extras.get(FIXING_PANEL))


def _fix_panel(draft: ScheduleDraft) -> ScheduleDraft:
    return draft.evolve(extras={**draft.extras, FIXING_PANEL: "1"})


def _member(person: PersonOut) -> Member:
    return Member(person.address, person.display_name, person.time_zone, person.is_room)


# ---- the states' questions --------------------------------------------------------------------
async def _ask_name(_turn: FlowTurn, _draft: ScheduleDraft) -> PromptOptions:
    return _ask("What is the candidate's name?")


async def _ask_email(_turn: FlowTurn, draft: ScheduleDraft) -> PromptOptions:
    return _ask(f"What is {draft.candidate_name}'s e-mail?")


async def _ask_people(turn: FlowTurn, draft: ScheduleDraft) -> PromptOptions:
    if _fixing(draft):
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
    text = str(answer)
    if _fixing(draft):
        draft, text = await _panel_edit(turn, draft, text)
        if _fixing(draft):  # still fixing: ask again
            return draft, PEOPLE
    return draft.evolve(pending_people=parse.split_people(text)), RESOLVE


async def _panel_edit(turn: FlowTurn, draft: ScheduleDraft, answer: str) -> tuple[ScheduleDraft, str]:
    """Apply "done", "remove <name>" or "optional <name>" while the panel is being fixed;
    other text is names to add (returned). The draft leaves fixing mode on "done" (with at
    least one required interviewer) or on names to add."""
    command = " ".join(answer.lower().split())
    extras = {k: v for k, v in draft.extras.items() if k != FIXING_PANEL}
    if command in DONE_WORDS:
        if draft.required:
            return draft.evolve(extras=extras), ""
        await turn.context.send_activity(
            "The panel has no required interviewer yet: please name at least one."
        )
        return draft, ""
    optional = re.match(r"^(?:make\s+)?(.+?)\s+optional$", answer.strip(), re.I) or re.match(
        r"^optional\s+(.+)$", answer.strip(), re.I
    )
    if optional:
        named = parse.split_people(optional.group(1))
        members = tuple(
            replace(m, optional=True) if not m.is_room and any(_names(m, n) for n in named) else m
            for m in draft.members
        )
        draft = draft.evolve(members=members)
        await turn.context.send_activity(panel_text(draft))
        return draft, ""
    removal = re.match(r"^(?:remove|drop|without|delete)\s+(.+)$", answer.strip(), re.I)
    if removal:
        gone = parse.split_people(removal.group(1))
        kept = tuple(m for m in draft.members if not any(_names(m, g) for g in gone))
        draft = draft.evolve(members=kept)
        await turn.context.send_activity(panel_text(draft) if kept else "The panel is empty now.")
        return draft, ""
    return draft.evolve(extras=extras), answer


async def _on_resolve(turn: FlowTurn, draft: ScheduleDraft, _answer: object) -> tuple[ScheduleDraft, str]:
    """Check the typed names (Calendar Service ``directory/check``) and add who is usable."""
    try:
        token = await require_user_token(turn.context, turn.services.connection)
    except errors.ReconnectRequiredError:
        await turn.context.send_activity(card_activity(build_reconnect(draft.flow)))
        return draft, END
    checks = await turn.services.calendar.check_people(token, list(draft.pending_people))
    members, problems = list(draft.members), []
    known = {m.address for m in members}
    for check in checks:
        person = check.person
        if check.status == "ambiguous" and check.choices:
            turn.values[_CHOICES] = [
                [p.address, p.display_name, p.time_zone, p.is_room] for p in check.choices[:8]
            ]
            turn.values[_AMBIGUOUS] = check.query
            rest = tuple(q for q in draft.pending_people if q != check.query)
            return draft.evolve(members=tuple(members), pending_people=rest), PICK
        if check.status in {"ok", "duplicate", "unreadable"} and person is not None:
            if person.address not in known:  # unreadable: can still be optional
                known.add(person.address)
                members.append(_member(person))
            if check.status == "unreadable":
                problems.append(
                    problem_text(check) + " Say \u201coptional "
                    f"{person.display_name}\u201d to invite them without checking, "
                    f"or \u201cremove {person.display_name}\u201d."
                )
            continue
        problems.append(problem_text(check))
    draft = draft.evolve(members=tuple(members), pending_people=())
    if problems:
        await turn.context.send_activity(
            "\n\n".join([*problems, panel_text(draft) if members else "Nobody is on the panel yet."])
        )
        return _fix_panel(draft), PEOPLE
    return draft, PANEL


async def _on_pick(turn: FlowTurn, draft: ScheduleDraft, answer: object) -> tuple[ScheduleDraft, str]:
    address, name, zone, is_room = turn.values[_CHOICES][getattr(answer, "index", 0)]
    return draft.evolve(members=(*draft.members, Member(address, name, zone, is_room))), RESOLVE


async def _on_panel(turn: FlowTurn, draft: ScheduleDraft, _answer: object) -> tuple[ScheduleDraft, str]:
    if not draft.required:
        await turn.context.send_activity(
            "An interview needs at least one required interviewer, not only rooms or optional people."
        )
        return _fix_panel(draft), PEOPLE
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
        lambda d: (_fixing(d) or not d.interviewers) and not d.pending_people,
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
