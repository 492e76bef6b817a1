"""ScheduleInterviewDialog: collect candidate, panel, duration, dates, zone, buffer; show slots.

The waterfall is restartable: its options are the draft's JSON, every step skips what the draft
already has, and resolving people loops with ``replace_dialog``. Input is validated by the pure
parsers in ``dialogs.parse`` (dates: ``dialogs.dates``); a bad answer gets a specific reply and the
same question again. The panel is checked when named (Calendar Service ``directory/check``): what is
wrong is said by name and the panel is fixed in place (add, "remove <name>", "optional <name>",
"done") before any search.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Final
from zoneinfo import ZoneInfo

from botbuilder.core import MessageFactory, TurnContext
from botbuilder.dialogs import (
    ComponentDialog,
    DialogTurnResult,
    WaterfallDialog,
    WaterfallStepContext,
)
from botbuilder.dialogs.choices import Choice, ListStyle
from botbuilder.dialogs.prompts import (
    ChoicePrompt,
    PromptOptions,
    PromptValidatorContext,
    TextPrompt,
)

from calendar_backend import errors
from calendar_backend.contract import PersonCheckOut
from cards.people_picker import PICKER_INPUT, PICKER_MARKER, TYPED_INPUT, build_people_picker
from cards.reconnect import build_reconnect
from dialogs import dates, parse
from dialogs.flow_search import show_slots
from dialogs.services import DialogServices, card_activity
from dialogs.sso import fetch_user_token
from dialogs.state import Member, ScheduleDraft
from dialogs.views import CANDIDATE_DAY_KEY, zone_or_utc

NAME, EMAIL, PEOPLE, DURATION, RANGE, ZONE, BUFFER, PICK = (
    "name",
    "email",
    "people",
    "duration",
    "range",
    "zone",
    "buffer",
    "pick",
)


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


_HANDOVER_KEY: Final = "openslot.sign_in_handover"  # a turn_state key, not a secret


def hand_over_token(context: TurnContext, token_response: object) -> None:
    """Let this turn's resolve step use the token the sign-in prompt returned moments ago.

    Asking the token service again in the same turn costs one more round trip (tens of ms against
    the real service). The token goes only into ``turn_state``: memory that lives for this turn,
    is never part of conversation state and is dropped with the turn; the resolve step removes
    it on first use.
    """
    token = getattr(token_response, "token", None)
    if isinstance(token, str) and token:
        context.turn_state[_HANDOVER_KEY] = token


def _handed_over_token(context: TurnContext) -> str | None:
    token = context.turn_state.pop(_HANDOVER_KEY, None)
    return token if isinstance(token, str) else None


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


class ScheduleInterviewDialog(ComponentDialog):
    """Collects a ``ScheduleDraft`` (options: the draft JSON) and posts the slot picker."""

    def __init__(self, services: DialogServices) -> None:
        super().__init__(ScheduleInterviewDialog.__name__)
        self._services = services
        for prompt_id, validator in (
            (NAME, _valid_name),
            (EMAIL, _valid_email),
            (PEOPLE, _valid_people),
            (DURATION, _valid_duration),
            (ZONE, _valid_zone),
            (BUFFER, _valid_buffer),
            (RANGE, self._valid_range),
        ):
            self.add_dialog(TextPrompt(prompt_id, validator))
        self.add_dialog(ChoicePrompt(PICK))
        self.add_dialog(
            WaterfallDialog(
                "schedule",
                [
                    self.name_step,
                    self.email_step,
                    self.people_step,
                    self.resolve_step,
                    self.pick_step,
                    self.duration_step,
                    self.range_step,
                    self.zone_step,
                    self.buffer_step,
                    self.search_step,
                ],
            )
        )
        self.initial_dialog_id = "schedule"

    # ---- helpers -------------------------------------------------------------------------
    @staticmethod
    def _draft(step: WaterfallStepContext) -> ScheduleDraft:
        return ScheduleDraft.from_json(step.values.get("draft") or step.options)

    @staticmethod
    def _keep(step: WaterfallStepContext, draft: ScheduleDraft) -> None:
        step.values["draft"] = draft.to_json()

    def _today(self, draft: ScheduleDraft) -> Any:
        return self._services.clock().astimezone(zone_or_utc(draft.manager_zone)).date()

    async def _valid_range(self, ctx: PromptValidatorContext) -> bool:
        draft = (
            ScheduleDraft.from_json(ctx.options.validations)
            if isinstance(getattr(ctx.options, "validations", None), dict)
            else None
        )
        today = self._today(draft) if draft else self._services.clock().astimezone(ZoneInfo("UTC")).date()
        complaint = dates.range_complaint(_text(ctx), today)
        return complaint is None or await _reject(ctx, complaint)

    # ---- steps ---------------------------------------------------------------------------
    async def name_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        draft = self._draft(step)
        self._keep(step, draft)
        if draft.candidate_name:
            return await step.next(None)
        return await step.prompt(NAME, _ask("What is the candidate's name?"))

    async def email_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        draft = self._draft(step)
        if step.result:
            draft = draft.evolve(candidate_name=parse.parse_name(str(step.result)))
        self._keep(step, draft)
        if draft.candidate_email:
            return await step.next(None)
        return await step.prompt(EMAIL, _ask(f"What is {draft.candidate_name}'s e-mail?"))

    async def people_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        draft = self._draft(step)
        if step.result:
            draft = draft.evolve(candidate_email=parse.parse_email(str(step.result)))
        self._keep(step, draft)
        if draft.extras.get(FIXING_PANEL) and not draft.pending_people:
            return await step.prompt(
                PEOPLE,
                _ask(
                    'Type a name to add or replace, "remove <name>" to take someone off, '
                    '"optional <name>" to invite them without checking their calendar, or '
                    '"done" to go on with this panel.'
                ),
            )
        if draft.interviewers or draft.pending_people:
            return await step.next(None)
        await step.context.send_activity(card_activity(build_people_picker(draft.flow)))
        return await step.prompt(
            PEOPLE, _ask("Who should interview? Names or e-mails, separated by commas (rooms too).")
        )

    async def resolve_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        draft = self._draft(step)
        if step.result:
            answer = str(step.result)
            if draft.extras.get(FIXING_PANEL):
                draft, answer = await self._panel_edit(step, draft, answer)
                if draft.extras.get(FIXING_PANEL):  # still fixing: ask again
                    return await step.replace_dialog(self.id, draft.to_json())
            draft = draft.evolve(pending_people=parse.split_people(answer))
        if not draft.pending_people:
            self._keep(step, draft)
            return await step.next(None)
        token = _handed_over_token(step.context) or await fetch_user_token(
            step.context, self._services.connection
        )
        if token is None:
            await step.context.send_activity(card_activity(build_reconnect(draft.flow)))
            return await step.end_dialog(None)
        checks = await self._services.calendar.check_people(token, list(draft.pending_people))
        return await self._apply_checks(step, draft, checks)

    async def _panel_edit(
        self, step: WaterfallStepContext, draft: ScheduleDraft, answer: str
    ) -> tuple[ScheduleDraft, str]:
        """Apply "done", "remove <name>" or "optional <name>" while the panel is being fixed;
        other text is names to add (returned). The draft leaves fixing mode on "done" (with at
        least one required interviewer) or on names to add."""
        command = " ".join(answer.lower().split())
        extras = {k: v for k, v in draft.extras.items() if k != FIXING_PANEL}
        if command in DONE_WORDS:
            if draft.required:
                return draft.evolve(extras=extras), ""
            await step.context.send_activity(
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
            await step.context.send_activity(panel_text(draft))
            return draft, ""
        removal = re.match(r"^(?:remove|drop|without|delete)\s+(.+)$", answer.strip(), re.I)
        if removal:
            gone = parse.split_people(removal.group(1))
            kept = tuple(m for m in draft.members if not any(_names(m, g) for g in gone))
            draft = draft.evolve(members=kept)
            await step.context.send_activity(panel_text(draft) if kept else "The panel is empty now.")
            return draft, ""
        return draft.evolve(extras=extras), answer

    async def _apply_checks(
        self, step: WaterfallStepContext, draft: ScheduleDraft, checks: list[PersonCheckOut]
    ) -> DialogTurnResult:
        members, problems = list(draft.members), []
        known = {m.address for m in members}
        for check in checks:
            person = check.person
            if check.status == "ambiguous" and check.choices:
                step.values["choices"] = [
                    [p.address, p.display_name, p.time_zone, p.is_room] for p in check.choices[:8]
                ]
                rest = tuple(q for q in draft.pending_people if q != check.query)
                self._keep(step, draft.evolve(members=tuple(members), pending_people=rest))
                return await step.next(check.query)
            if check.status == "unreadable" and person is not None:  # can still be optional
                if person.address not in known:
                    known.add(person.address)
                    members.append(
                        Member(person.address, person.display_name, person.time_zone, person.is_room)
                    )
                problems.append(
                    problem_text(check) + " Say \u201coptional "
                    f"{person.display_name}\u201d to invite them without checking, "
                    f"or \u201cremove {person.display_name}\u201d."
                )
                continue
            if check.status in {"ok", "duplicate"} and person is not None:
                if person.address not in known:
                    known.add(person.address)
                    members.append(
                        Member(person.address, person.display_name, person.time_zone, person.is_room)
                    )
                continue
            problems.append(problem_text(check))
        draft = draft.evolve(members=tuple(members), pending_people=())
        if problems:
            await step.context.send_activity(
                "\n\n".join([*problems, panel_text(draft) if members else "Nobody is on the panel yet."])
            )
            return await step.replace_dialog(
                self.id, draft.evolve(extras={**draft.extras, FIXING_PANEL: "1"}).to_json()
            )
        self._keep(step, draft)
        return await step.next(None)

    async def pick_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        if not step.result:
            return await step.next(None)
        choices = [Choice(f"{name} ({address})") for address, name, _, _ in step.values["choices"]]
        return await step.prompt(
            PICK,
            PromptOptions(
                prompt=MessageFactory.text(f'Which "{step.result}" did you mean?'),
                retry_prompt=MessageFactory.text("Please pick one of the options."),
                choices=choices,
                style=ListStyle.list_style,
            ),
        )

    async def duration_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        draft = self._draft(step)
        if step.result is not None and hasattr(step.result, "index"):
            address, name, zone, is_room = step.values["choices"][step.result.index]
            draft = draft.evolve(members=(*draft.members, Member(address, name, zone, is_room)))
            if draft.pending_people:
                return await step.replace_dialog(self.id, draft.to_json())
        if not draft.required:
            await step.context.send_activity(
                "An interview needs at least one required interviewer, not only rooms or optional people."
            )
            return await step.replace_dialog(
                self.id, draft.evolve(extras={**draft.extras, FIXING_PANEL: "1"}).to_json()
            )
        await step.context.send_activity(panel_text(draft))  # the panel shown back, by name
        self._keep(step, draft)
        if draft.duration_min:
            return await step.next(None)
        return await step.prompt(DURATION, _ask("How long is the interview? (15-240 minutes)"))

    async def range_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        draft = self._draft(step)
        if step.result:
            draft = draft.evolve(duration_min=parse.parse_duration(str(step.result)))
        self._keep(step, draft)
        if draft.range_start:
            return await step.next(None)
        options = _ask(
            f'When? e.g. {dates.examples(self._today(draft))}, or "default" for the next 5 working days.'
        )
        options.validations = draft.to_json()  # the validator reads "today" in the manager's zone
        return await step.prompt(RANGE, options)

    async def zone_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        draft = self._draft(step)
        if step.result:
            first, last = dates.read_dates(str(step.result), self._today(draft)).span or (None, None)
            draft = draft.evolve(range_start=first, range_end=last)
        self._keep(step, draft)
        if draft.candidate_zone:
            return await step.next(None)
        return await step.prompt(
            ZONE,
            _ask(
                "Which time zone is the candidate in? (e.g. India, London, America/New_York; "
                'I rank times inside their 08:00-20:00 first; say e.g. "India 09:00-18:00" for '
                "other hours)"
            ),
        )

    async def buffer_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        draft = self._draft(step)
        if step.result:
            zone, day = parse.parse_zone_and_day(str(step.result)) or (None, None)
            extras = {**draft.extras, CANDIDATE_DAY_KEY: "-".join(day)} if day else draft.extras
            draft = draft.evolve(candidate_zone=zone, extras=extras)
        self._keep(step, draft)
        if draft.buffer_min is not None:
            return await step.next(None)
        return await step.prompt(
            BUFFER, _ask('Any buffer between meetings, in minutes? Say "none" for no buffer.')
        )

    async def search_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        draft = self._draft(step)
        if step.result:
            draft = draft.evolve(buffer_min=parse.parse_buffer(str(step.result)))
        await self._services.save_flow(step.context, draft)
        try:
            await show_slots(step.context, self._services, draft)
        except errors.CalendarError as err:
            await step.context.send_activity(err.message)
        return await step.end_dialog(draft.to_json())
