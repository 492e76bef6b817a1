"""OpenSlotBot: the Teams activity handler. Routes messages, card actions and sign-in invokes."""

from __future__ import annotations

import logging
import re
from typing import Any

from botbuilder.core import StatePropertyAccessor, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.dialogs import Dialog, DialogSet, DialogTurnStatus
from botbuilder.schema import (
    Activity,
    AdaptiveCardInvokeResponse,
    AdaptiveCardInvokeValue,
    ChannelAccount,
)

from cards.actions import CardAction, Verb, parse_action
from cards.error import build_error
from cards.loop_actions import LoopAction, is_loop_verb, parse_loop_action
from cards.pool_actions import is_pool_verb, parse_pool_action
from cards.welcome import build_welcome
from dialogs.card_actions import handle_card_action, my_interviews_card
from dialogs.edits import EditField
from dialogs.loop_actions import handle_loop_action
from dialogs.main_dialog import MainDialog
from dialogs.panel import picked_people_text
from dialogs.pools import PRIVATE, handle_pool_action
from dialogs.services import (
    CARD_CONTENT_TYPE,
    DialogServices,
    card_activity,
    is_shared,
    sender_scope,
)
from dialogs.state import new_flow_id
from dialogs.turn_log import log_turn_failure

LOG = logging.getLogger("openslot.bot")
MESSAGE_CONTENT_TYPE = "application/vnd.microsoft.activity.message"
_VERB_COMMANDS = {
    Verb.SCHEDULE: "schedule",
    Verb.MY_INTERVIEWS: "my interviews",
    Verb.HELP: "help",
    Verb.SIGN_IN: "sign in",
}


_EDIT_VERBS = {
    Verb.EDIT_DURATION: EditField.DURATION,
    Verb.EDIT_WINDOW: EditField.WINDOW,
    Verb.EDIT_PANEL: EditField.PANEL,
    Verb.EDIT_ZONE: EditField.ZONE,
}
_VERB_ACKS = {
    Verb.SCHEDULE: "Let's schedule an interview.",
    Verb.MY_INTERVIEWS: "Your interviews.",
    Verb.HELP: "Here is what I can do.",
    Verb.SIGN_IN: "Signing in.",
}


_AT_TAG = re.compile(r"<at>([^<]{0,256})</at>", re.IGNORECASE)


def strip_bot_mention(activity: Activity) -> str:
    """``activity.text`` without the @mention of the bot ("<at>OpenSlot</at> schedule" →
    "schedule"), by the message's mention entities, else by the bot's name; other mentions stay.
    """
    text = activity.text or ""
    bot = activity.recipient
    for entity in activity.entities or []:
        props = getattr(entity, "additional_properties", None) or {}
        mentioned = props.get("mentioned") if getattr(entity, "type", None) == "mention" else None
        if isinstance(mentioned, dict) and bot is not None and mentioned.get("id") == bot.id:
            tag = props.get("text")
            if isinstance(tag, str) and tag:
                text = text.replace(tag, " ")
    if bot is not None and bot.name:
        text = _AT_TAG.sub(lambda m: " " if m.group(1).strip() == bot.name else m.group(0), text)
    return " ".join(text.split())


class MessageInvokeResponse(AdaptiveCardInvokeResponse):
    """An ``adaptiveCard/action`` response whose ``value`` is a message string.

    botbuilder's schema types ``value`` as ``{object}`` (a dict), so msrest cannot serialise the
    ``application/vnd.microsoft.activity.message`` response (its value is a string, platform.md
    §E1): the turn failed with ``SerializationError`` and the channel saw no invoke response
    (``invoke 501``). This subclass serialises ``value`` as a plain string.
    """

    _attribute_map = {  # AdaptiveCardInvokeResponse's, with value a string
        "status_code": {"key": "statusCode", "type": "int"},
        "type": {"key": "type", "type": "str"},
        "value": {"key": "value", "type": "str"},
    }


def message_response(text: str) -> AdaptiveCardInvokeResponse:
    """A 200 ``adaptiveCard/action`` response that leaves the pressed card as it is."""
    return MessageInvokeResponse(status_code=200, type=MESSAGE_CONTENT_TYPE, value=text)


def _error_response(status: int, message: str) -> AdaptiveCardInvokeResponse:
    return AdaptiveCardInvokeResponse(
        status_code=status,
        type="application/vnd.microsoft.error",
        value={"code": "BadRequest" if status == 400 else "Error", "message": message},
    )


def _pool_press(raw: dict[str, Any]) -> bool:
    """True for an ``adaptiveCard/action`` invoke value (or data) of a pool card button."""
    action = raw.get("action")
    data = action.get("data") if isinstance(action, dict) else raw
    return isinstance(data, dict) and is_pool_verb(data.get("verb"))


def _loop_press(raw: dict[str, Any]) -> bool:
    """True for an ``adaptiveCard/action`` invoke value (or data) of a loop card button."""
    action = raw.get("action")
    data = action.get("data") if isinstance(action, dict) else raw
    return isinstance(data, dict) and is_loop_verb(data.get("verb"))


class OpenSlotBot(TeamsActivityHandler):
    """Teams handler; the dialog stack lives in durable conversation state."""

    def __init__(self, services: DialogServices) -> None:
        super().__init__()
        self._services = services
        self._dialog: Dialog = MainDialog(services)
        self._dialog_state = services.conversation_state.create_property("DialogState")

    def _dialog_state_of(self, context: TurnContext) -> StatePropertyAccessor:
        """The dialog stack: the conversation's in a personal chat, the sender's own in a group
        chat or channel (one manager's question never takes another's message as its answer)."""
        scope = sender_scope(context)
        if not scope:
            return self._dialog_state
        return self._services.conversation_state.create_property("DialogState" + scope)

    async def on_turn(self, turn_context: TurnContext) -> None:
        await super().on_turn(turn_context)
        await self._services.conversation_state.save_changes(turn_context)

    async def run_dialog(
        self,
        context: TurnContext,
        text: str | None = None,
        edit: tuple[EditField, str] | None = None,
        loop: str | None = None,
    ) -> None:
        """Continue the active dialog, or start MainDialog with ``text`` as the command.

        ``edit`` (field, flow) starts MainDialog on an edit of that flow instead (a slot card's
        "Change ..." button); ``loop`` (a flow) starts it on the loop dialog of that flow (a loop
        card's press that needs answers typed). Any of them drops the dialog that was waiting.
        """
        dialogs = DialogSet(self._dialog_state_of(context))
        dialogs.add(self._dialog)
        dc = await dialogs.create_context(context)
        if text is None and edit is None and loop is None:
            result = await dc.continue_dialog()
            if result.status != DialogTurnStatus.Empty:
                return
            text = context.activity.text or ""
        else:
            await dc.cancel_all_dialogs()
        options: dict[str, str] = {"text": text or ""}
        if edit is not None:
            options.update(edit=edit[0].value, flow=edit[1])
        if loop is not None:
            options["loop"] = loop
        if context.activity.type == "message" or text or edit or loop:
            await dc.begin_dialog(self._dialog.id, options)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        if turn_context.activity.text:
            turn_context.activity.text = strip_bot_mention(turn_context.activity)
        value = turn_context.activity.value
        if isinstance(value, dict) and "verb" in value:
            await self._on_submit(turn_context, value)
            return
        picked = picked_people_text(value)
        if picked is not None:  # the people picker answers the interviewers question
            turn_context.activity.text = picked
        await self.run_dialog(turn_context)

    async def _on_submit(self, context: TurnContext, value: dict[str, Any]) -> None:
        if is_loop_verb(value.get("verb")):
            await self._on_loop_submit(context, value)
            return
        if is_pool_verb(value.get("verb")):
            await self._on_pool_submit(context, value)
            return
        try:
            action = parse_action(value)
        except ValueError:
            await context.send_activity('I didn\'t understand that button. Type "help".')
            return
        if action.verb in _EDIT_VERBS:
            await self.run_dialog(context, edit=(_EDIT_VERBS[action.verb], action.flow))
            return
        card = await handle_card_action(context, self._services, action)
        if card is None:
            await self.run_dialog(context, _VERB_COMMANDS[action.verb])
        else:
            await context.send_activity(card_activity(card))

    async def _on_loop_submit(self, context: TurnContext, value: dict[str, Any]) -> None:
        try:
            action = parse_loop_action(value)
        except ValueError:
            await context.send_activity('I didn\'t understand that button. Type "help".')
            return
        card = await handle_loop_action(context, self._services, action)
        if card is None:
            await self.run_dialog(context, loop=action.flow)
        else:
            await context.send_activity(card_activity(card))

    async def _on_pool_submit(self, context: TurnContext, value: dict[str, Any]) -> None:
        try:
            action = parse_pool_action(value)
        except ValueError:
            await context.send_activity('I didn\'t understand that button. Type "help".')
            return
        if is_shared(context):
            await context.send_activity(PRIVATE)
            return
        await context.send_activity(card_activity(await handle_pool_action(context, self._services, action)))

    async def _answer_pool_press(
        self, context: TurnContext, raw: dict[str, Any]
    ) -> AdaptiveCardInvokeResponse:
        try:
            action = parse_pool_action(raw)
        except ValueError:
            return _error_response(400, "This card action is not valid.")
        if is_shared(context):  # loads and pools are private: the pressed card stays as it is
            return message_response(PRIVATE)
        try:
            card = await handle_pool_action(context, self._services, action)
        except Exception as err:  # the press still gets its answer, not invoke 501
            log_turn_failure(LOG, context, err)
            card = build_error(action.flow, "Sorry, something went wrong. Please try again.")
        return AdaptiveCardInvokeResponse(status_code=200, type=CARD_CONTENT_TYPE, value=card)

    async def _answer_loop_press(
        self, context: TurnContext, raw: dict[str, Any]
    ) -> AdaptiveCardInvokeResponse:
        try:
            action: LoopAction = parse_loop_action(raw)
        except ValueError:
            return _error_response(400, "This card action is not valid.")
        try:
            card = await handle_loop_action(context, self._services, action)
            if card is None:
                await self.run_dialog(context, loop=action.flow)
                return message_response("Let's find loop times.")
        except Exception as err:  # the press still gets its answer, not invoke 501
            log_turn_failure(LOG, context, err)
            card = build_error(action.flow, "Sorry, something went wrong. Please try again.")
        return AdaptiveCardInvokeResponse(status_code=200, type=CARD_CONTENT_TYPE, value=card)

    async def on_adaptive_card_invoke(
        self,
        turn_context: TurnContext,
        invoke_value: AdaptiveCardInvokeValue,  # noqa: ARG002
    ) -> AdaptiveCardInvokeResponse:
        raw = turn_context.activity.value
        if isinstance(raw, dict) and _loop_press(raw):
            return await self._answer_loop_press(turn_context, raw)
        if isinstance(raw, dict) and _pool_press(raw):
            return await self._answer_pool_press(turn_context, raw)
        try:
            action: CardAction = parse_action(raw if isinstance(raw, dict) else {})
        except ValueError:
            return _error_response(400, "This card action is not valid.")
        try:
            return await self._answer_press(turn_context, action)
        except Exception as err:  # the press still gets its answer: an error card, not invoke 501
            log_turn_failure(LOG, turn_context, err)
            return AdaptiveCardInvokeResponse(
                status_code=200,
                type=CARD_CONTENT_TYPE,
                value=build_error(action.flow, "Sorry, something went wrong. Please try again."),
            )

    async def _answer_press(
        self, turn_context: TurnContext, action: CardAction
    ) -> AdaptiveCardInvokeResponse:
        if action.verb in _EDIT_VERBS:
            await self.run_dialog(turn_context, edit=(_EDIT_VERBS[action.verb], action.flow))
            return message_response("Let's change that.")
        if action.verb is Verb.MY_INTERVIEWS and is_shared(turn_context):
            # In a group chat or channel the list is the answer to the press: the presser's own.
            listing = await my_interviews_card(turn_context, self._services, action.flow)
            return AdaptiveCardInvokeResponse(status_code=200, type=CARD_CONTENT_TYPE, value=listing)
        card = await handle_card_action(turn_context, self._services, action)
        if card is None:
            await self.run_dialog(turn_context, _VERB_COMMANDS[action.verb])
            return message_response(_VERB_ACKS[action.verb])
        return AdaptiveCardInvokeResponse(status_code=200, type=CARD_CONTENT_TYPE, value=card)

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        if any(member.id != bot_id for member in members_added):
            conversation = turn_context.activity.conversation
            if conversation is None or conversation.conversation_type in (None, "personal"):
                # A fresh welcome (first install, or the Playground reloaded) starts afresh: the
                # question that was waiting must not take the next message as its answer.
                stack = self._dialog_state_of(turn_context)
                if await stack.get(turn_context) is not None:
                    await stack.delete(turn_context)
            await turn_context.send_activity(card_activity(build_welcome(new_flow_id())))

    async def on_teams_signin_verify_state(self, turn_context: TurnContext) -> None:
        await self.run_dialog(turn_context)

    async def on_teams_signin_token_exchange(self, turn_context: TurnContext) -> None:
        await self.run_dialog(turn_context)
