"""What the dialogs need from the outside world, passed in explicitly by bot.py or tests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botbuilder.core import ConversationState, MessageFactory, TurnContext
from botbuilder.schema import Activity, Attachment

from calendar_backend.client import CalendarServiceApi
from calendar_backend.errors import CalendarError
from dialogs.state import ScheduleDraft, remember_flow

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DialogServices:
    """The Calendar Service client, the OAuth connection, conversation state and a UTC clock."""

    calendar: CalendarServiceApi
    connection: str
    conversation_state: ConversationState
    clock: Callable[[], datetime] = field(default=_utc_now)

    async def load_flows(self, context: TurnContext) -> dict[str, Any]:
        """The conversation's flows (flow id → draft JSON)."""
        accessor = self.conversation_state.create_property("flows")
        flows = await accessor.get(context, dict)
        return flows if isinstance(flows, dict) else {}

    async def load_flow(self, context: TurnContext, flow: str) -> ScheduleDraft | None:
        """One flow's draft, or ``None`` if unknown (or unreadable)."""
        doc = (await self.load_flows(context)).get(flow)
        try:
            return ScheduleDraft.from_json(doc) if isinstance(doc, dict) else None
        except (KeyError, TypeError, ValueError):
            return None

    async def save_flow(self, context: TurnContext, draft: ScheduleDraft) -> None:
        """Store ``draft`` in conversation state (persisted at the end of the turn)."""
        accessor = self.conversation_state.create_property("flows")
        await accessor.set(context, remember_flow(await self.load_flows(context), draft))

    async def set_current_flow(self, context: TurnContext, flow: str | None) -> None:
        """Remember ``flow`` as the one whose slots were shown last (typed edits apply to it)."""
        await self.conversation_state.create_property("current_flow" + sender_scope(context)).set(
            context, flow
        )

    async def current_flow(self, context: TurnContext) -> ScheduleDraft | None:
        """The draft whose slots were shown last in this conversation, if any."""
        flow = await self.conversation_state.create_property("current_flow" + sender_scope(context)).get(
            context
        )
        return await self.load_flow(context, flow) if isinstance(flow, str) else None


def is_shared(context: TurnContext) -> bool:
    """True in a group chat or a channel (anything but a personal chat)."""
    conversation = context.activity.conversation
    return conversation is not None and conversation.conversation_type in ("groupChat", "channel")


def sender_scope(context: TurnContext) -> str:
    """A state-key suffix: "" in a personal chat, ".<hash of the sender's id>" in a shared one,
    so each manager in a group chat or channel has their own questions and current search."""
    if not is_shared(context):
        return ""
    sender = context.activity.from_property.id if context.activity.from_property else ""
    return "." + hashlib.sha256(sender.encode()).hexdigest()[:16]


def card_activity(card: dict[str, object]) -> Activity:
    """A message activity carrying one Adaptive Card."""
    return MessageFactory.attachment(Attachment(content_type=CARD_CONTENT_TYPE, content=card))


async def mailbox_zone(context: TurnContext, services: DialogServices, token: str) -> str:
    """The manager's zone from their Outlook mailbox settings (via the Calendar Service), else
    from the activity (``manager_zone``). A failure to ask is not an error: the activity's zone
    (or UTC) is used and the conversation goes on."""
    try:
        zone = await services.calendar.my_time_zone(token)
    except CalendarError:
        zone = None
    return zone or manager_zone(context)


def manager_zone(context: TurnContext) -> str:
    """The user's IANA zone from the activity (``localTimezone`` or Teams clientInfo), else UTC."""
    activity = context.activity
    zone = getattr(activity, "local_timezone", None)
    for entity in activity.entities or []:
        props = getattr(entity, "additional_properties", None) or {}
        if getattr(entity, "type", None) == "clientInfo" and props.get("timezone"):
            zone = zone or str(props["timezone"])
    return str(zone) if zone else "UTC"
