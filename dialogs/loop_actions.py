"""Button presses on the loop cards (``loop_*`` verbs, :mod:`cards.loop_actions`).

``handle_loop_action`` returns the card that replaces the pressed one, or ``None`` when the press
needs an answer typed: the caller then starts ``ScheduleLoopDialog`` on the flow (a template to use
needs the candidate and dates; "Replace <name>" asks who). Every edit of the options card changes
the flow's template (or its dates) and searches again; a pick and a booking are checked against a
fresh search, so a stale card never books a time that is gone. A booked flow answers every press
with its booked card and never books twice (the booking's transaction id is stable per flow and
option, so a retried press gets the same loop back).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from botbuilder.core import TurnContext

from calendar_backend import errors
from calendar_backend.contract import LoopOptionOut, LoopOut, LoopSearchOut
from cards.loop_actions import LoopAction, LoopVerb, check_reason
from cards.loop_booked import build_loop_booked, build_loop_notice
from cards.loop_builder import build_loop_builder
from cards.loop_confirm import build_loop_confirmation
from cards.loop_options import build_loop_options
from dialogs.loop_link import send_loop_link
from dialogs.loop_manage import MANAGE_VERBS, handle_loop_manage
from dialogs.loop_search import (
    TITLE,
    api_of,
    builder_card,
    failure_card,
    options_card,
    resolve_builder,
    saved_templates,
    search,
    user_id,
)
from dialogs.loop_state import LoopDraft, load_loop, save_loop
from dialogs.loop_views import (
    address_of,
    cap_choice,
    option_view,
    options_view,
    template_id,
    with_people,
)
from dialogs.parse import next_working_days
from dialogs.schedule_loop import today_of
from dialogs.services import DialogServices, mailbox_zone
from dialogs.sso import require_user_token
from dialogs.state import FlowStatus

Card = dict[str, object]
EXPIRED = 'That loop card has expired. Type "schedule a loop" to start again.'
TAKEN = "Sorry, that loop was just taken. Here are fresh options."
MIN_LENGTH, MAX_LENGTH, MAX_DAYS = 5, 480, 5


async def handle_loop_action(
    context: TurnContext, services: DialogServices, action: LoopAction
) -> Card | None:
    """The card replacing the pressed loop card, or ``None``: run the loop dialog on ``action.flow``.

    Never raises ``CalendarError``: failures become the reconnect card or a plain notice.
    """
    if action.verb in MANAGE_VERBS:  # a booked loop from "My interviews" (dialogs/loop_manage.py)
        return await handle_loop_manage(context, services, action)
    draft = await load_loop(context, services, action.flow)
    if draft is None:
        draft = LoopDraft(action.flow)
        if action.verb is not LoopVerb.NEW:
            return build_loop_notice(TITLE, EXPIRED)
    try:
        if draft.status is FlowStatus.BOOKED and draft.loop_id:
            return await _booked_card(context, services, draft)
        return await _dispatch(context, services, draft, action)
    except errors.CalendarError as err:
        return failure_card(draft, err)[0]


async def _dispatch(
    context: TurnContext, services: DialogServices, draft: LoopDraft, action: LoopAction
) -> Card | None:
    verb = action.verb
    if verb is LoopVerb.NEW:
        zone = await mailbox_zone(context, services, await require_user_token(context, services.connection))
        draft = LoopDraft(draft.flow, manager_zone=zone)
        await save_loop(context, services, draft)
        return await builder_card(context, services, draft)
    if verb in (LoopVerb.USE_TEMPLATE, LoopVerb.EDIT_TEMPLATE):
        return await _template(context, services, draft, action)
    if verb is LoopVerb.FIND:
        return await _find(context, services, draft, action)
    if draft.template is None:
        return build_loop_notice(TITLE, EXPIRED)
    if verb is LoopVerb.SEND_LINK:
        return await send_loop_link(context, services, draft)
    if verb is LoopVerb.CHOOSE:
        return await _choose(context, services, draft, action.option_id or "")
    if verb is LoopVerb.CONFIRM:
        return await _confirm(context, services, draft, action.option_id or "")
    if verb is LoopVerb.CAP_OVERRIDE:
        return await _cap_override(context, services, draft, action)
    if verb is LoopVerb.REPLACE_PERSON:
        address = address_of(draft, action.session or 0, action.person or "")
        if address is None:
            return (await options_card(context, services, draft))[0]
        await save_loop(context, services, draft.evolve(replacing=(action.session or 0, address)))
        return None
    edited = _edited(draft, action, today_of(services, draft.manager_zone))
    if isinstance(edited, str):
        await context.send_activity(edited)
        edited = draft
    page = action.page or 1 if verb is LoopVerb.MORE else 1
    return (await options_card(context, services, edited, page))[0]


def _edited(draft: LoopDraft, action: LoopAction, today: date) -> LoopDraft | str:
    """The draft with an options card edit applied, or what is wrong with it (said in chat)."""
    verb, sessions = action.verb, draft.sessions()
    index = action.session if action.session is not None else -1
    if verb is LoopVerb.LENGTH and 0 <= index < len(sessions):
        minutes = min(MAX_LENGTH, max(MIN_LENGTH, action.duration_min or 0))
        sessions[index]["minutes"] = minutes
        return draft.with_template(sessions=sessions)
    if verb is LoopVerb.DROP_PERSON:
        address = address_of(draft, index, action.person or "")
        if address is None:
            return draft
        people = [p for p in sessions[index].get("interviewers") or [] if p != address]
        if not people:
            return "A session needs at least one interviewer: replace them instead."
        sessions[index]["interviewers"] = people
        return draft.with_template(sessions=sessions)
    if verb is LoopVerb.DAYS:
        return draft.with_template(max_days=min(MAX_DAYS, action.days or 1))
    if verb is LoopVerb.BREAK:
        breaks = (draft.template or {}).get("breaks")
        low = breaks.get("min_minutes", 0) if isinstance(breaks, dict) else 0
        return draft.with_template(breaks={"min_minutes": low, "max_minutes": action.break_min or 0})
    if verb is LoopVerb.FREE_ORDER:
        return draft.with_template(order="free")
    if verb is LoopVerb.WIDEN:
        first, last = draft.range_start, draft.range_end
        if first is None or last is None:  # the default window: the next working days from today
            first, last = next_working_days(today)
        return draft.evolve(range_start=first, range_end=last + timedelta(days=action.days or 7))
    return draft  # BACK, MORE: the same search again


async def _template(
    context: TurnContext, services: DialogServices, draft: LoopDraft, action: LoopAction
) -> Card | None:
    templates = await saved_templates(context, services)
    found = next((t for t in templates if template_id(t.name) == action.template_id), None)
    if found is None:
        return await builder_card(context, services, draft, ("That saved loop is no longer there.",))
    if draft.manager_zone == "UTC":
        zone = await mailbox_zone(context, services, await require_user_token(context, services.connection))
        draft = draft.evolve(manager_zone=zone)
    draft = draft.evolve(template=dict(found.template), status=FlowStatus.COLLECTING)
    if action.verb is LoopVerb.EDIT_TEMPLATE:
        addresses = [a for s in draft.sessions() for a in s.get("interviewers") or []]
        token = await require_user_token(context, services.connection)
        names = dict(draft.names)
        for address, people in zip(
            addresses, await services.calendar.resolve_people(token, addresses[:20]), strict=False
        ):
            if len(people) == 1:
                names[address.lower()] = people[0].display_name
        draft = draft.evolve(names=names)
        await save_loop(context, services, draft)
        return await builder_card(context, services, draft, edit=True)
    await save_loop(context, services, draft)
    return None


async def _find(
    context: TurnContext, services: DialogServices, draft: LoopDraft, action: LoopAction
) -> Card | None:
    if action.builder is None:
        return build_loop_notice(TITLE, EXPIRED)
    if draft.manager_zone == "UTC":
        zone = await mailbox_zone(context, services, await require_user_token(context, services.connection))
        draft = draft.evolve(manager_zone=zone)
    resolved, problems = await resolve_builder(context, services, draft, action.builder)
    if problems:
        return build_loop_builder(draft.flow, draft=action.builder, problems=problems)
    draft = resolved.evolve(status=FlowStatus.COLLECTING)
    if action.builder.save and draft.template is not None:
        token = await require_user_token(context, services.connection)
        name = str(draft.template.get("name") or "Interview loop")
        await api_of(services).save_loop_template(token, name, draft.template)
        await context.send_activity(f"Saved \u201c{name}\u201d for next time.")
    await save_loop(context, services, draft)
    return None


NOT_YOURS = "Only the hiring manager who searched for this loop can use someone past their cap."
NO_REASON = (
    "Give a reason (1 to 200 characters, no line breaks) to use them past their cap. Nothing was booked."
)
GONE = "That choice is no longer offered: here is a fresh search."


async def _cap_override(
    context: TurnContext, services: DialogServices, draft: LoopDraft, action: LoopAction
) -> Card:
    """ "Use <name> anyway" with the typed reason: search again as if they were under their cap
    for that session (the booking then carries the override, audited by the service). Only the
    flow's manager may; no valid reason or a stale choice: the options card says so."""
    if draft.searched_by and user_id(context) != draft.searched_by:
        return build_loop_notice(TITLE, NOT_YOURS)  # no search with their sign-in, nothing booked
    session = action.session if action.session is not None else -1
    address = cap_choice(draft, session, action.person or "")
    if address is None:
        return (await options_card(context, services, draft, notice=GONE))[0]
    reason = check_reason(action.reason)
    if reason is None:
        return (await options_card(context, services, draft, notice=NO_REASON))[0]
    return (await options_card(context, services, draft.evolve(cap_override=(session, address, reason))))[0]


def _override_of(draft: LoopDraft, option: LoopOptionOut) -> tuple[str, str] | None:
    """The manager's ``(address, reason)`` when ``option`` uses the overridden member where chosen."""
    if draft.cap_override is None:
        return None
    index, address, reason = draft.cap_override
    used = any(s.index == index and address in (s.pool_members or ()) for s in option.sessions)
    return (address, reason) if used else None


async def _choose(context: TurnContext, services: DialogServices, draft: LoopDraft, option_id: str) -> Card:
    draft, result = await search(context, services, draft)
    view = options_view(draft, result)
    if all(o.option_id != option_id for o in view.options):
        await context.send_activity(TAKEN)
        return build_loop_options(view)
    return build_loop_confirmation(view, option_id)


async def _confirm(context: TurnContext, services: DialogServices, draft: LoopDraft, option_id: str) -> Card:
    api = api_of(services)
    draft, result = await search(context, services, draft)
    option = next((o for o in result.options if o.id == option_id), None)
    if option is None or draft.template is None:
        await context.send_activity(TAKEN)
        return build_loop_options(options_view(draft, result))
    token = await require_user_token(context, services.connection)
    override = _override_of(draft, option)
    if override is not None and draft.searched_by and user_id(context) != draft.searched_by:
        return build_loop_options(options_view(draft, result, notice=NOT_YOURS))
    extra: dict[str, Any] = {"cap_override": override} if override else {}  # issue 18, audited
    try:
        loop = await api.book_loop(
            token,
            template=draft.template,
            sessions=list(option.sessions),
            candidate_name=draft.candidate_name or "Candidate",
            candidate_email=draft.candidate_email or "",
            candidate_time_zone=draft.candidate_zone,
            transaction_id=f"{draft.flow}-{option_id}"[:128],
            conversation_ref=TurnContext.get_conversation_reference(context.activity).serialize(),
            **extra,
        )
    except errors.SlotTakenError as exc:
        await context.send_activity(TAKEN)
        if exc.fresh_loops is None:  # none came with the refusal: search again
            return (await options_card(context, services, draft))[0]
        draft = with_people(draft, exc.fresh_loops)
        await save_loop(context, services, draft)
        return build_loop_options(options_view(draft, exc.fresh_loops))
    if override is None:
        draft = draft.evolve(cap_override=None)  # the booked card says an override only when used
    draft = draft.evolve(status=FlowStatus.BOOKED, loop_id=loop.id)
    await save_loop(context, services, draft)
    return _booked(draft, loop)


def _booked(draft: LoopDraft, loop: LoopOut) -> Card:
    view = options_view(draft, LoopSearchOut(options=(), people=()))
    return build_loop_booked(
        view, option_view(draft, LoopOptionOut(loop.id, 1, 0, 0, tuple(loop.sessions))), loop.join_url
    )


async def _booked_card(context: TurnContext, services: DialogServices, draft: LoopDraft) -> Card:
    token = await require_user_token(context, services.connection)
    for loop in await api_of(services).list_loops(token):
        if loop.id == draft.loop_id and loop.status != "cancelled":
            return _booked(draft, loop)
    return build_loop_notice(TITLE, "That interview loop is no longer booked.")
