"""Search for slots for a draft and build the slot picker (posted, or returned in place)."""

from __future__ import annotations

from botbuilder.core import TurnContext

from calendar_backend import errors
from cards.reconnect import build_reconnect
from cards.slot_picker import PAGE_SIZE, build_slot_picker
from dialogs.services import DialogServices, card_activity
from dialogs.sso import require_user_token
from dialogs.state import FlowStatus, ScheduleDraft
from dialogs.views import candidate_day_of, slot_picker_view, window_of

MAX_SLOTS = PAGE_SIZE * 5


async def slot_card(
    context: TurnContext, services: DialogServices, draft: ScheduleDraft, page: int = 1
) -> dict[str, object]:
    """The slot picker card for ``draft`` (or the reconnect card when there is no usable token).

    Raises:
        errors.CalendarError: other Calendar Service failures (callers say so in chat).
    """
    start, end = window_of(draft)
    try:
        token = await require_user_token(context, services.connection)
        result = await services.calendar.find_slots(
            token,
            interviewers=[m.address for m in draft.required],
            rooms=[m.address for m in draft.rooms] or None,
            duration_min=draft.length_min,
            start=start,
            end=end,
            buffer_min=draft.buffer_min or 0,
            limit=MAX_SLOTS,
            candidate_time_zone=draft.candidate_zone,
            candidate_day=candidate_day_of(draft),
        )
    except errors.ReconnectRequiredError:
        return build_reconnect(draft.flow)
    await services.save_flow(context, draft.evolve(status=FlowStatus.PICKING))
    await services.set_current_flow(context, draft.flow)
    return build_slot_picker(slot_picker_view(draft, result, page))


async def show_slots(context: TurnContext, services: DialogServices, draft: ScheduleDraft) -> None:
    """Post the slot picker for ``draft`` as a new message."""
    await context.send_activity(card_activity(await slot_card(context, services, draft)))
