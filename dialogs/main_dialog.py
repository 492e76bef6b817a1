"""MainDialog: sign in, then route "schedule" / "my interviews" / "help" / "sign out" / "disconnect"
(and the pool commands "my load" / "pools" / "pool <name>": ``dialogs.pools``).

Interruptions: "cancel" and "help" work at every step of every child dialog, and so do the global
commands ``GLOBAL_WORDS`` and "schedule ...": the question is dropped and the command runs.
Edits: once slots are shown, a typed edit ("make it 60 minutes") or a slot card's "Change ..."
button changes one field of that flow and searches again (``dialogs.edits``).
"""

from __future__ import annotations

import re

from botbuilder.core import MessageFactory
from botbuilder.dialogs import (
    ComponentDialog,
    DialogContext,
    DialogTurnResult,
    DialogTurnStatus,
    WaterfallDialog,
    WaterfallStepContext,
)
from botbuilder.dialogs.prompts import OAuthPromptSettings, PromptOptions

from calendar_backend import errors
from cards.help import build_help
from cards.my_interviews import build_private_interviews
from dialogs import dates, parse
from dialogs.card_actions import listing_card
from dialogs.edits import EditField, apply_typed_edit, clear_field, editable, parse_typed_edit
from dialogs.loop_state import LoopDraft, load_loop
from dialogs.pools import is_pool_command, pool_command
from dialogs.schedule_interview import ScheduleInterviewDialog
from dialogs.schedule_loop import ScheduleLoopDialog
from dialogs.services import DialogServices, card_activity, is_shared, mailbox_zone, manager_zone
from dialogs.sso import SafeOAuthPrompt, fetch_user_token, hand_over_token, sign_out
from dialogs.state import ScheduleDraft, new_flow_id
from dialogs.views import zone_or_utc

SIGN_IN = "signin"
SIGN_IN_RETRY = (
    "Please use the Sign in button above. If the sign-in page shows a code, type the "
    'code here. Or type "cancel".'
)
SIGNED_OUT = (
    'You are signed out. To sign in again, type "sign in" (or any command) and use the Sign in button.'
)
CANCEL_WORDS = frozenset({"cancel", "stop", "quit", "never mind"})
HELP_WORDS = frozenset({"help", "?"})
RESTART_WORDS = frozenset({"restart", "start over", "start again", "reset", "new", "new interview"})
MY_INTERVIEWS_WORDS = frozenset({"my interviews", "interviews", "list"})
SIGN_OUT_WORDS = frozenset({"sign out", "signout", "log out", "logout"})
LOOP_WORDS = frozenset({"schedule a loop", "schedule loop", "loop", "loops", "new loop", "interview loop"})
_LOOP_COMMAND = re.compile(
    r"^(?:schedule\s+(?:a\s+)?)?loop\s+(?P<template>.+?)\s+for\s+(?P<name>[^()<>@]+?)\s*"
    r"\(\s*(?P<email>[^()\s]+)\s*\)\s*(?P<when>.*)$",
    re.IGNORECASE,
)
#: Commands that interrupt any question: the question is dropped and the command runs.
GLOBAL_WORDS = RESTART_WORDS | frozenset(
    {"my interviews", "sign out", "signout", "log out", "logout", "disconnect"}
)


def is_loop_command(command: str) -> bool:
    """True for "schedule a loop" & co. and the one-message form ("loop <template> for ...")."""
    return command in LOOP_WORDS or command.startswith(("loop ", "schedule a loop ", "schedule loop "))


def command_of(text: str) -> str:
    """Normalise a typed command: lower-case, single spaces, no trailing punctuation."""
    return " ".join(text.lower().strip().strip(".!").split())


class MainDialog(ComponentDialog):
    """The root dialog. Options: ``{"text": <command text>}``."""

    def __init__(self, services: DialogServices) -> None:
        super().__init__(MainDialog.__name__)
        self._services = services
        self.add_dialog(
            SafeOAuthPrompt(
                SIGN_IN,
                OAuthPromptSettings(
                    connection_name=services.connection,
                    title="Sign in",
                    text="Please sign in so I can see free and busy times.",
                    timeout=300000,
                ),
            )
        )
        self.add_dialog(ScheduleInterviewDialog(services))
        self.add_dialog(ScheduleLoopDialog(services))
        self.add_dialog(WaterfallDialog("main", [self.sign_in_step, self.route_step]))
        self.initial_dialog_id = "main"

    async def on_continue_dialog(self, inner_dc: DialogContext) -> DialogTurnResult:
        interrupted = await self._interrupt(inner_dc)
        return interrupted or await super().on_continue_dialog(inner_dc)

    async def _interrupt(self, inner_dc: DialogContext) -> DialogTurnResult | None:
        activity = inner_dc.context.activity
        if activity.type != "message" or not activity.text:
            return None
        text = command_of(activity.text)
        if text in CANCEL_WORDS:
            await inner_dc.context.send_activity('Cancelled. Type "schedule" to start again.')
            return await inner_dc.cancel_all_dialogs()
        if text in HELP_WORDS:
            await inner_dc.context.send_activity(card_activity(build_help(new_flow_id())))
            await inner_dc.context.send_activity('Carry on where we were, or type "cancel".')
            return DialogTurnResult(DialogTurnStatus.Waiting)
        if (
            text in GLOBAL_WORDS
            or text == "schedule"
            or text.startswith(("schedule ", "loop "))
            or text in LOOP_WORDS
        ):
            await inner_dc.cancel_all_dialogs()
            if text in RESTART_WORDS:
                await inner_dc.context.send_activity("Starting over.")
            command = "schedule" if text in RESTART_WORDS else activity.text
            return await inner_dc.begin_dialog("main", {"text": command})
        return None

    async def sign_in_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        options = step.options or {}
        step.values["text"] = str(options.get("text", ""))
        if options.get("edit"):
            step.values["edit"], step.values["flow"] = str(options["edit"]), str(options["flow"])
        if options.get("loop"):
            step.values["loop"] = str(options["loop"])
        return await step.begin_dialog(
            SIGN_IN,
            PromptOptions(
                prompt=MessageFactory.text("Please sign in to OpenSlot."),
                retry_prompt=MessageFactory.text(SIGN_IN_RETRY),
            ),
        )

    async def route_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        if step.result is None:
            await step.context.send_activity("Sign-in did not complete. Type anything to retry.")
            return await step.end_dialog(None)
        text = str(step.values.get("text", ""))
        command = command_of(text)
        started = await self._start_from(step, text, command)
        if started is not None:
            return started
        if command == "schedule" or command.startswith("schedule ") or command in RESTART_WORDS:
            draft, notes = await self._draft_for(step, text)
            for note in notes:  # parts of the message that could not be used, said, not dropped
                await step.context.send_activity(note)
            if draft.pending_people:  # typed names: resolved in this turn with this token
                hand_over_token(step.context, step.result)
            return await step.begin_dialog(ScheduleInterviewDialog.__name__, draft.to_json())
        if command in MY_INTERVIEWS_WORDS and is_shared(step.context):
            await step.context.send_activity(card_activity(build_private_interviews(new_flow_id())))
        elif command in MY_INTERVIEWS_WORDS:
            await self._my_interviews(step)
        elif command in SIGN_OUT_WORDS:
            await sign_out(step.context, self._services.connection)
            await step.context.send_activity(SIGNED_OUT)
        elif command == "disconnect":
            await self._disconnect(step)
        elif command in {"sign in", "signin", "login"} or is_pool_command(command):
            await self._signed_in_command(step, command)
        else:
            edited = await self._typed_edit(step, text)
            if edited is not None:
                return edited
            await step.context.send_activity(card_activity(build_help(new_flow_id())))
        return await step.end_dialog(None)

    async def _signed_in_command(self, step: WaterfallStepContext, command: str) -> None:
        """ "sign in" (already done), or a pool command: "my load", "pools", "pool <name>"."""
        if not is_pool_command(command):
            await step.context.send_activity("You are signed in.")
            return
        token = getattr(step.result, "token", None) or await fetch_user_token(
            step.context, self._services.connection
        )
        if token is None:
            await step.context.send_activity("Please sign in again.")
            return
        await pool_command(step.context, self._services, command, token)

    async def _edit_from_button(self, step: WaterfallStepContext) -> DialogTurnResult:
        draft = await self._services.load_flow(step.context, str(step.values["flow"]))
        if draft is None or not editable(draft):
            await step.context.send_activity(
                'That search is finished or has expired. Type "schedule" to start a new one.'
            )
            return await step.end_dialog(None)
        cleared = clear_field(draft, EditField(str(step.values["edit"])))
        return await step.begin_dialog(ScheduleInterviewDialog.__name__, cleared.to_json())

    async def _start_from(
        self, step: WaterfallStepContext, text: str, command: str
    ) -> DialogTurnResult | None:
        """An edit button, a loop card's press or a loop command: its dialog; else ``None``."""
        if step.values.get("edit"):
            return await self._edit_from_button(step)
        if step.values.get("loop"):
            return await self._loop_from_button(step)
        if is_loop_command(command):
            return await self._loop_from_text(step, text)
        return None

    async def _loop_from_button(self, step: WaterfallStepContext) -> DialogTurnResult:
        """A loop card press that needs answers typed: the loop dialog on that flow."""
        draft = await load_loop(step.context, self._services, str(step.values["loop"]))
        if draft is None:
            await step.context.send_activity(
                'That loop card has expired. Type "schedule a loop" to start again.'
            )
            return await step.end_dialog(None)
        hand_over_token(step.context, step.result)
        return await step.begin_dialog(ScheduleLoopDialog.__name__, draft.to_json())

    async def _loop_from_text(self, step: WaterfallStepContext, text: str) -> DialogTurnResult:
        """ "schedule a loop" (the builder card), or the one-message form
        "loop <template> for <name> (<email>) <dates>" (asks only what it does not say)."""
        token = getattr(step.result, "token", None)
        zone = (
            await mailbox_zone(step.context, self._services, token) if token else manager_zone(step.context)
        )
        draft = LoopDraft(new_flow_id(), manager_zone=zone)
        match = _LOOP_COMMAND.match(" ".join(text.split()))
        if match:
            today = self._services.clock().astimezone(zone_or_utc(zone)).date()
            when = match.group("when").strip()
            reading = dates.read_dates(when, today) if when else None
            span = reading.span if reading else None
            if reading and reading.problems:
                await step.context.send_activity(" ".join(reading.problems) + " I'll ask for the dates.")
            draft = draft.evolve(
                template_name=match.group("template").strip(),
                candidate_name=parse.parse_name(match.group("name")),
                candidate_email=parse.parse_email(match.group("email")),
                range_start=span[0] if span else None,
                range_end=span[1] if span else None,
            )
        hand_over_token(step.context, step.result)
        return await step.begin_dialog(ScheduleLoopDialog.__name__, draft.to_json())

    async def _typed_edit(self, step: WaterfallStepContext, text: str) -> DialogTurnResult | None:
        """Apply "make it 60 minutes" & co. to the flow whose slots were shown last."""
        draft = await self._services.current_flow(step.context)
        if draft is None or not editable(draft):
            return None
        today = self._services.clock().astimezone(zone_or_utc(draft.manager_zone)).date()
        edit = parse_typed_edit(text, today)
        if edit is None:
            return None
        if edit.duration_min is not None:
            problem = parse.check_duration(edit.duration_min)
            if problem:
                await step.context.send_activity(problem)
                return await step.end_dialog(None)
        changed = apply_typed_edit(draft, edit)
        if changed.pending_people:
            hand_over_token(step.context, step.result)
        return await step.begin_dialog(ScheduleInterviewDialog.__name__, changed.to_json())

    async def _draft_for(self, step: WaterfallStepContext, text: str) -> tuple[ScheduleDraft, list[str]]:
        prefill = parse.parse_command(text) or parse.CommandPrefill()
        token = getattr(step.result, "token", None)
        zone = (
            await mailbox_zone(step.context, self._services, token) if token else manager_zone(step.context)
        )
        today = self._services.clock().astimezone(zone_or_utc(zone)).date()
        reading = dates.read_dates(prefill.range_text, today) if prefill.range_text else None
        span = reading.span if reading else None
        problem = parse.check_duration(prefill.duration_min) if prefill.duration_min else None
        notes = [f"I didn't use {prefill.duration_min} minutes: {problem}"] if problem else []
        if reading and reading.problems:
            notes.append(" ".join(reading.problems) + " I'll ask for the dates.")
        return ScheduleDraft(
            flow=new_flow_id(),
            manager_zone=zone,
            candidate_name=prefill.candidate_name,
            candidate_email=prefill.candidate_email,
            pending_people=prefill.interviewers,
            duration_min=None if problem else prefill.duration_min,
            range_start=span[0] if span else None,
            range_end=span[1] if span else None,
        ), notes

    async def _my_interviews(self, step: WaterfallStepContext) -> None:
        token = await fetch_user_token(step.context, self._services.connection)
        if token is None:
            await step.context.send_activity("Please sign in again.")
            return
        try:
            interviews = await self._services.calendar.list_interviews(token)
        except errors.CalendarError as err:
            await step.context.send_activity(err.message)
            return
        zone = zone_or_utc(await mailbox_zone(step.context, self._services, token))
        try:  # the same card as the button's: interview loops (one entry each), then the singles
            card = await listing_card(step.context, self._services, token, new_flow_id(), interviews, zone)
        except errors.CalendarError as err:
            await step.context.send_activity(err.message)
            return
        await step.context.send_activity(card_activity(card))

    async def _disconnect(self, step: WaterfallStepContext) -> None:
        token = await fetch_user_token(step.context, self._services.connection)
        if token is not None:
            try:
                await self._services.calendar.disconnect(token)
            except errors.CalendarError as err:
                await step.context.send_activity(err.message)
                return
        await sign_out(step.context, self._services.connection)
        await step.context.send_activity("Disconnected: OpenSlot no longer holds any sign-in for you.")
