"""Button presses on OpenSlot cards (``Action.Execute`` invokes or ``Action.Submit`` fallbacks).

``handle_card_action`` returns the card that replaces the pressed one (or ``None`` when the
verb is a conversation command the caller routes to the main dialog). A confirm on a flow that is
already booked answers with the booked card and never books twice; a confirm that is retried
reuses the flow's stable idempotency key, so the Calendar Service returns the same interview.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from botbuilder.core import TurnContext

from calendar_backend import errors
from calendar_backend.contract import InterviewOut
from cards.actions import CardAction, Verb
from cards.booked import build_booked
from cards.cancelled import build_cancelled
from cards.candidate_link import build_candidate_link, build_link_revoked
from cards.confirmation import build_confirmation
from cards.error import build_error
from cards.my_interviews import build_cancel_question, build_my_interviews
from cards.reconnect import build_reconnect
from cards.slot_picker import WIDEN_DAYS, build_slot_picker
from cards.views import LinkOptionsView, OfferView
from dialogs.drift import apply_repair_card
from dialogs.flow_search import MAX_SLOTS, slot_card
from dialogs.loop_manage import loop_entries_zones, loop_zones, upcoming_loops
from dialogs.my_interviews import interview_views
from dialogs.parse import next_working_days
from dialogs.services import DialogServices, mailbox_zone, manager_zone
from dialogs.sso import require_user_token
from dialogs.state import DEFAULT_DURATION_MIN, FlowStatus, ScheduleDraft, idempotency_key, slot_start_from
from dialogs.views import (
    candidate_of,
    confirmation_view,
    interview_view,
    link_day_of,
    person_key,
    slot_picker_view,
    window_of,
    zone_or_utc,
    zones_of,
)

COMMAND_VERBS = frozenset({Verb.SCHEDULE, Verb.MY_INTERVIEWS, Verb.HELP, Verb.SIGN_IN})
_INTERVIEW_VERBS = frozenset(
    {
        Verb.CANCEL_INTERVIEW,
        Verb.CANCEL_INTERVIEW_CONFIRMED,
        Verb.KEEP_INTERVIEW,
        Verb.RESCHEDULE_INTERVIEW,
        Verb.REVOKE_OFFER,
    }
)
Card = dict[str, object]


async def handle_card_action(
    context: TurnContext, services: DialogServices, action: CardAction
) -> Card | None:
    """The replacement card for ``action``; ``None`` for conversation commands.

    Never raises ``CalendarError``: failures become an error or reconnect card.
    """
    if action.verb in COMMAND_VERBS:
        return None
    try:
        return await _dispatch(context, services, action)
    except errors.ReconnectRequiredError:
        return build_reconnect(action.flow)
    except errors.CalendarError as err:
        return build_error(action.flow, err.message)


async def _dispatch(context: TurnContext, services: DialogServices, action: CardAction) -> Card:
    if action.verb is Verb.APPLY_REPAIR:  # the drift repair card (issue 19)
        return await apply_repair_card(context, services, action)
    if action.verb in _INTERVIEW_VERBS:
        return await _interview_action(context, services, action)
    draft = await services.load_flow(context, action.flow)
    if draft is None:
        return build_error(action.flow, "That card has expired. Please start again.")
    if draft.status is FlowStatus.BOOKED and draft.interview_id:
        return await _booked_card(context, services, draft)
    handler = _FLOW_HANDLERS.get(action.verb)
    if handler is None:
        return build_error(action.flow, "That button is no longer available.")
    return await handler(context, services, draft, action)


async def _choose(
    context: TurnContext,  # noqa: ARG001
    services: DialogServices,  # noqa: ARG001
    draft: ScheduleDraft,
    action: CardAction,
) -> Card:
    return build_confirmation(confirmation_view(draft, action.slot_id or ""))


async def _back(
    context: TurnContext,
    services: DialogServices,
    draft: ScheduleDraft,
    action: CardAction,  # noqa: ARG001
) -> Card:
    return await slot_card(context, services, draft)


async def _widen(
    context: TurnContext, services: DialogServices, draft: ScheduleDraft, action: CardAction
) -> Card:
    if draft.range_end is None:
        return build_error(draft.flow, "That search has no dates. Please start again.")
    days = action.days or WIDEN_DAYS
    draft = draft.evolve(range_end=draft.range_end + timedelta(days=days))
    await services.save_flow(context, draft)
    return await slot_card(context, services, draft)


async def _shorten(
    context: TurnContext, services: DialogServices, draft: ScheduleDraft, action: CardAction
) -> Card:
    draft = draft.evolve(duration_min=max(15, action.duration_min or DEFAULT_DURATION_MIN))
    await services.save_flow(context, draft)
    return await slot_card(context, services, draft)


async def _more(
    context: TurnContext, services: DialogServices, draft: ScheduleDraft, action: CardAction
) -> Card:
    return await slot_card(context, services, draft, page=action.page or 1)


async def _confirm(
    context: TurnContext, services: DialogServices, draft: ScheduleDraft, action: CardAction
) -> Card:
    token = await require_user_token(context, services.connection)
    slot_id = action.slot_id or ""
    start = slot_start_from(slot_id)
    end = start + draft.length
    try:
        ref = TurnContext.get_conversation_reference(context.activity).serialize()
        interview = await _book(token, services, draft, slot_id, start, end, ref)
    except errors.SlotTakenError as err:
        return await _taken_card(context, services, draft, err)
    draft = draft.evolve(status=FlowStatus.BOOKED, interview_id=interview.id, booked_slot_id=slot_id)
    await services.save_flow(context, draft)
    return build_booked(interview_view(interview, zones_of(draft), draft))


async def _book(
    token: str,
    services: DialogServices,
    draft: ScheduleDraft,
    slot_id: str,
    start: datetime,
    end: datetime,
    conversation_ref: dict[str, object] | None = None,
) -> InterviewOut:
    reschedule = draft.extras.get("reschedule")
    if reschedule:
        return await services.calendar.reschedule_interview(token, str(reschedule), start=start, end=end)
    return await services.calendar.create_interview(
        token,
        candidate_name=draft.candidate_name or "Candidate",
        candidate_email=draft.candidate_email or "",
        interviewers=[m.address for m in draft.required],
        start=start,
        end=end,
        idempotency_key=idempotency_key(draft.flow, slot_id),
        rooms=[m.address for m in draft.rooms] or None,
        time_zone=draft.candidate_zone,
        optional=[m.address for m in draft.optional] or None,
        role=draft.extras.get(ROLE_KEY) or None,
        # the chat a drift repair card is posted to (issue 19; sealed by the Calendar Service)
        conversation_ref=conversation_ref,
    )


async def _taken_card(
    context: TurnContext, services: DialogServices, draft: ScheduleDraft, err: errors.SlotTakenError
) -> Card:
    await context.send_activity("Sorry, that time was just taken. Here are fresh times.")
    fresh = err.fresh_slots
    if fresh is not None and fresh.slots:
        return build_slot_picker(slot_picker_view(draft, fresh))
    return await slot_card(context, services, draft)


async def _booked_card(context: TurnContext, services: DialogServices, draft: ScheduleDraft) -> Card:
    token = await require_user_token(context, services.connection)
    for interview in await services.calendar.list_interviews(token):
        if interview.id == draft.interview_id:
            return build_booked(interview_view(interview, zones_of(draft), draft))
    return build_error(draft.flow, "That interview is no longer booked.")


ROLE_KEY = "role"  # draft.extras: the role the manager gave (link options); the panel invite shows it


def link_options(draft: ScheduleDraft, action: CardAction) -> LinkOptionsView:
    """The link options of a "Send to candidate" press: what the card's inputs carried, else the
    draft's role and the candidate's working day the manager gave (8-20 by default)."""
    day_start, day_end = link_day_of(draft)
    if action.day_start is not None or action.day_end is not None:
        day_start = action.day_start if action.day_start is not None else day_start
        day_end = action.day_end if action.day_end is not None else day_end
        if day_start >= day_end:
            raise ValueError("the candidate's day must start before it ends")
    role = action.role if action.role is not None else draft.extras.get(ROLE_KEY, "")
    return LinkOptionsView(
        role=role, show_names=bool(action.show_names), day_start=day_start, day_end=day_end
    )


async def _send_to_candidate(
    context: TurnContext, services: DialogServices, draft: ScheduleDraft, action: CardAction
) -> Card:
    try:
        options = link_options(draft, action)
    except ValueError:
        return build_error(draft.flow, "The candidate's day must start before it ends.")
    token = await require_user_token(context, services.connection)
    if action.role is not None and action.role != draft.extras.get(ROLE_KEY):
        draft = draft.evolve(extras={**draft.extras, ROLE_KEY: action.role})
        await services.save_flow(context, draft)
    start, end = window_of(draft)
    try:
        offer = await services.calendar.create_offer(
            token,
            interviewers=[m.address for m in draft.required],
            duration_min=draft.length_min,
            window_start=start,
            window_end=end,
            candidate_name=draft.candidate_name or "Candidate",
            candidate_time_zone=draft.candidate_zone,
            # sealed in the offer: the page then does not ask the candidate for it again
            candidate_email=draft.candidate_email or None,
            # sealed in the offer; returned only on a booking, for the manager's notice
            conversation_ref=TurnContext.get_conversation_reference(context.activity).serialize(),
            manager_time_zone=zones_of(draft).manager.key,
            role=options.role or None,
            show_interviewer_names=options.show_names,
            day_hours=(options.day_start, options.day_end),
        )
    except errors.NotFoundError:
        return build_error(draft.flow, "Candidate booking links are not available yet.")
    if not offer.url:
        return build_error(draft.flow, "The booking link could not be created.")
    return build_candidate_link(
        draft.flow,
        candidate_of(draft),
        OfferView(offer.id, offer.url, offer.expires_at),
        zones_of(draft).manager,
        options=options,
    )


async def _interview_action(context: TurnContext, services: DialogServices, action: CardAction) -> Card:
    token = await require_user_token(context, services.connection)
    if action.verb is Verb.REVOKE_OFFER:
        await services.calendar.revoke_offer(token, action.offer_id or "")
        return build_link_revoked(action.flow)
    zone = zone_or_utc(await mailbox_zone(context, services, token))
    if action.verb is Verb.CANCEL_INTERVIEW_CONFIRMED:
        cancelled = await services.calendar.cancel_interview(token, action.interview_id or "")
        [view] = await interview_views(context, services, token, [cancelled], zone)
        return build_cancelled(action.flow, view)
    if action.verb is Verb.RESCHEDULE_INTERVIEW:
        return await _start_reschedule(context, services, token, action)
    interviews = await services.calendar.list_interviews(token)
    if action.verb is Verb.KEEP_INTERVIEW:
        return await _listing(context, services, token, action.flow, interviews, zone)
    interview = next((i for i in interviews if i.id == action.interview_id and i.status != "cancelled"), None)
    if interview is None:
        return build_error(action.flow, "That interview is no longer booked.")
    # Names and the candidate's zone as on "My interviews", never raw addresses or UTC.
    [view] = await interview_views(context, services, token, [interview], zone)
    return build_cancel_question(action.flow, view)


async def _listing(
    context: TurnContext,
    services: DialogServices,
    token: str,
    flow: str,
    interviews: list[InterviewOut],
    zone: ZoneInfo,
) -> Card:
    now = services.clock()
    loops, loop_sessions = await upcoming_loops(services, token)  # one entry per loop, newest first
    upcoming = sorted(
        (i for i in interviews if i.end > now and i.status != "cancelled" and i.id not in loop_sessions),
        key=lambda i: i.start,
    )
    views = await interview_views(context, services, token, upcoming, zone)
    zones = await loop_zones(context, services, zone)
    return build_my_interviews(flow, views, loops=loop_entries_zones(loops, zones, zone))


async def listing_card(
    context: TurnContext,
    services: DialogServices,
    token: str,
    flow: str,
    interviews: list[InterviewOut],
    zone: ZoneInfo,
) -> Card:
    """The "My interviews" card: upcoming interview loops (one entry each), then the single
    interviews of ``interviews`` that are not a loop's session."""
    return await _listing(context, services, token, flow, interviews, zone)


async def my_interviews_card(context: TurnContext, services: DialogServices, flow: str) -> Card:
    """The "My interviews" card of the user who sent this turn (reconnect or error card on
    failure)."""
    try:
        token = await require_user_token(context, services.connection)
        zone = zone_or_utc(await mailbox_zone(context, services, token))
        interviews = await services.calendar.list_interviews(token)
    except errors.ReconnectRequiredError:
        return build_reconnect(flow)
    except errors.CalendarError as err:
        return build_error(flow, err.message)
    return await _listing(context, services, token, flow, interviews, zone)


async def _start_reschedule(
    context: TurnContext, services: DialogServices, token: str, action: CardAction
) -> Card:
    interviews = {i.id: i for i in await services.calendar.list_interviews(token)}
    interview = interviews.get(action.interview_id or "")
    if interview is None:
        return build_error(action.flow, "That interview is no longer booked.")
    resolved = await services.calendar.resolve_people(token, list(interview.attendees)[:20])
    from dialogs.state import Member, new_flow_id

    members = tuple(
        Member(p[0].address, p[0].display_name, p[0].time_zone, p[0].is_room) for p in resolved if len(p) == 1
    )
    today = services.clock().date()
    draft = ScheduleDraft(
        flow=new_flow_id(),
        manager_zone=manager_zone(context),
        candidate_name=interview.candidate_name,
        members=members,
        duration_min=int((interview.end - interview.start).total_seconds() // 60),
        range_start=today + timedelta(days=1),
        range_end=today + timedelta(days=7),
        buffer_min=0,
        extras={"reschedule": interview.id},
    )
    await services.save_flow(context, draft)
    return await slot_card(context, services, draft)


async def _drop_person(
    context: TurnContext, services: DialogServices, draft: ScheduleDraft, action: CardAction
) -> Card:
    """Search again without the panel member the pressed "Drop <name>" names, or, for "Make
    <name> optional", with them invited as optional and not searched."""
    if action.verb is Verb.OPTIONAL_PERSON:
        kept = tuple(
            replace(m, optional=True) if person_key(m.address) == action.person else m for m in draft.members
        )
    else:
        kept = tuple(m for m in draft.members if person_key(m.address) != action.person)
    if kept == draft.members:
        return await slot_card(context, services, draft)  # already done: show the search
    if not any(not m.is_room and not m.optional for m in kept):
        return build_error(draft.flow, "An interview needs at least one required interviewer.")
    draft = draft.evolve(members=kept)
    await services.save_flow(context, draft)
    return await slot_card(context, services, draft)


async def _other_days(
    context: TurnContext,
    services: DialogServices,
    draft: ScheduleDraft,
    action: CardAction,  # noqa: ARG001
) -> Card:
    """Move the search to the next working days (Monday to Friday) after the current window."""
    today = services.clock().astimezone(zone_or_utc(draft.manager_zone)).date()
    first, last = next_working_days(max(draft.range_end or today, today))
    draft = draft.evolve(range_start=first, range_end=last)
    await services.save_flow(context, draft)
    return await slot_card(context, services, draft)


_FLOW_HANDLERS = {
    Verb.DROP_PERSON: _drop_person,
    Verb.OPTIONAL_PERSON: _drop_person,
    Verb.OTHER_DAYS: _other_days,
    Verb.CHOOSE_SLOT: _choose,
    Verb.BACK: _back,
    Verb.WIDEN_DAYS: _widen,
    Verb.SHORTEN: _shorten,
    Verb.MORE_SLOTS: _more,
    Verb.CONFIRM: _confirm,
    Verb.SEND_TO_CANDIDATE: _send_to_candidate,
    Verb.REFRESH: _back,
}
_ = MAX_SLOTS
