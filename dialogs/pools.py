"""Interviewer pools in the bot (issue 18): "my load", "pools", "pool <name>" and the pool card's
buttons (edit a member's caps, add or remove a member).

Loads and pools are private: in a group chat or a channel the bot says so and shows nothing
(the commands and the buttons alike). A member is named on a button by an opaque key (a hash of
the pool and the address), never by the address; a press re-reads the pool and finds the member by
that key, so a stale card cannot change somebody else. A member being added is resolved like a
panel's names (``check_people``): one ``ok`` person, or the same sentences as the panel's.
"""

from __future__ import annotations

import hashlib
from datetime import date

from botbuilder.core import TurnContext

from calendar_backend import errors
from calendar_backend.client import PoolCalendarApi
from calendar_backend.contract import (
    MemberLoadOut,
    MyLoadOut,
    PoolCardOut,
    PoolMemberRequest,
    TraineeProgressOut,
    WeekLoadOut,
)
from cards.error import build_error
from cards.pool_actions import PoolAction, PoolVerb
from cards.pool_cards import (
    MemberView,
    MyLoadView,
    PoolCardView,
    PoolLoadView,
    PoolSummaryView,
    TraineeView,
    WeekView,
    build_add_member_form,
    build_member_caps_form,
    build_my_load,
    build_pool_card,
    build_pool_list,
)
from cards.reconnect import build_reconnect
from dialogs.panel import problem_text
from dialogs.services import DialogServices, card_activity, is_shared
from dialogs.sso import require_user_token
from dialogs.state import new_flow_id

MY_LOAD_WORDS = frozenset({"my load", "load", "my interview load", "my pools load"})
POOLS_WORDS = frozenset({"pools", "my pools", "pool"})
PRIVATE = "Interview loads and pools are private: ask me in our personal chat."
UNAVAILABLE = "Interviewer pools are not available on this Calendar Service yet."
Card = dict[str, object]


def is_pool_command(command: str) -> bool:
    """True for "my load", "pools" and "pool <name>" (a normalised command)."""
    return command in MY_LOAD_WORDS or command in POOLS_WORDS or command.startswith("pool ")


def pool_api(calendar: object) -> PoolCalendarApi | None:
    """``calendar`` as the pools client, or ``None`` when it has no pool methods."""
    return calendar if isinstance(calendar, PoolCalendarApi) else None


def member_key(pool_id: str, address: str) -> str:
    """The opaque key a card names a member by (never the address)."""
    return "m" + hashlib.sha256(f"{pool_id}\n{address}".encode()).hexdigest()[:20]


def _week(w: WeekLoadOut) -> WeekView:
    return WeekView(_day(w.week), w.booked)


def _day(d: date) -> str:
    return f"from {d:%a} {d.day} {d:%b}"


def shown_name(display_name: str, address: str) -> str:
    """How a card names a person: their display name, else their address's local part."""
    return display_name.strip() or address.split("@", 1)[0]


def _trainee(t: TraineeProgressOut) -> TraineeView:
    return TraineeView(
        shown_name(t.display_name, t.address),
        t.stage,
        t.shadow_done,
        t.shadow_required,
        t.reverse_shadow_done,
        t.reverse_shadow_required,
        t.pool,
    )


def my_load_view(out: MyLoadOut) -> MyLoadView:
    return MyLoadView(
        tuple(
            PoolLoadView(p.pool, p.zone, p.weekly_cap, p.daily_cap, _week(p.this_week), _week(p.next_week))
            for p in out.pools
        ),
        tuple(_trainee(t) for t in out.training),
    )


def _member(pool_id: str, m: MemberLoadOut) -> MemberView:
    return MemberView(
        member_key(pool_id, m.address),
        shown_name(m.display_name, m.address),
        m.zone,
        m.weekly_cap,
        m.daily_cap,
        _week(m.this_week),
        _week(m.next_week),
        m.own_caps,
    )


def pool_view(out: PoolCardOut, notice: str = "") -> PoolCardView:
    return PoolCardView(
        out.id,
        out.name,
        out.role,
        out.default_weekly_cap,
        out.default_daily_cap,
        tuple(_member(out.id, m) for m in out.members),
        tuple(_trainee(t) for t in out.trainees),
        notice,
    )


async def pool_command(context: TurnContext, services: DialogServices, command: str, token: str) -> None:
    """Answer "my load", "pools" or "pool <name>" with its card (or a sentence)."""
    if is_shared(context):
        await context.send_activity(PRIVATE)
        return
    api = pool_api(services.calendar)
    if api is None:
        await context.send_activity(UNAVAILABLE)
        return
    flow = new_flow_id()
    card: Card | str
    try:
        if command in MY_LOAD_WORDS:
            card = build_my_load(flow, my_load_view(await api.my_load(token)))
        elif command in POOLS_WORDS:
            card = await _pool_list(api, token, flow)
        else:
            card = await _named_pool(api, token, flow, command.removeprefix("pool ").strip())
    except errors.ReconnectRequiredError:
        card = build_reconnect(flow)
    except errors.CalendarError as err:
        await context.send_activity(err.message)
        return
    if isinstance(card, str):
        await context.send_activity(card)
    else:
        await context.send_activity(card_activity(card))


async def _pool_list(api: PoolCalendarApi, token: str, flow: str) -> Card:
    pools = await api.list_pools(token)
    if len(pools) == 1:  # the one pool: its card straight away
        return build_pool_card(flow, pool_view(await api.pool_card(token, pools[0].id)))
    return build_pool_list(
        flow, [PoolSummaryView(p.id, p.name, p.role, p.members, p.trainees) for p in pools]
    )


async def _named_pool(api: PoolCalendarApi, token: str, flow: str, name: str) -> Card | str:
    pools = await api.list_pools(token)
    wanted = " ".join(name.lower().split())
    found = [p for p in pools if p.name.lower() == wanted] or [
        p for p in pools if p.name.lower().startswith(wanted)
    ]
    if len(found) != 1:
        names = ", ".join(p.name for p in pools) or "none"
        return f'You don\'t own a pool called "{name[:60]}". Your pools: {names}. Type "pools" to see them.'
    return build_pool_card(flow, pool_view(await api.pool_card(token, found[0].id)))


async def handle_pool_action(context: TurnContext, services: DialogServices, action: PoolAction) -> Card:
    """The card that replaces the pressed one. Never raises ``CalendarError``."""
    if is_shared(context):
        return build_error(action.flow, PRIVATE)
    api = pool_api(services.calendar)
    if api is None:
        return build_error(action.flow, UNAVAILABLE)
    try:
        token = await require_user_token(context, services.connection)
        return await _dispatch(services, api, token, action)
    except errors.ReconnectRequiredError:
        return build_reconnect(action.flow)
    except errors.NotFoundError:
        return build_error(action.flow, "That pool is not one of yours (any more). Type \u201cpools\u201d.")
    except errors.CalendarError as err:
        return build_error(action.flow, err.message)


async def _dispatch(services: DialogServices, api: PoolCalendarApi, token: str, action: PoolAction) -> Card:
    flow = action.flow
    if action.verb is PoolVerb.MY_LOAD:
        return build_my_load(flow, my_load_view(await api.my_load(token)))
    if action.verb is PoolVerb.LIST or action.pool_id is None:
        return await _pool_list(api, token, flow)
    card = await api.pool_card(token, action.pool_id)
    if action.verb is PoolVerb.OPEN:
        return build_pool_card(flow, pool_view(card))
    if action.verb is PoolVerb.ADD_FORM:
        return build_add_member_form(flow, pool_view(card))
    if action.verb is PoolVerb.ADD:
        return await _add(services, api, token, action, card)
    member = next((m for m in card.members if member_key(card.id, m.address) == action.person), None)
    if member is None:
        return build_pool_card(flow, pool_view(card, "That member is no longer in the pool."))
    if action.verb is PoolVerb.EDIT:
        view = pool_view(card)
        shown = next(m for m in view.members if m.key == action.person)
        own = member.own_caps
        return build_member_caps_form(
            flow,
            view,
            shown,
            weekly=member.weekly_cap if own else None,
            daily=member.daily_cap if own else None,
        )
    if action.verb is PoolVerb.REMOVE:
        change = PoolMemberRequest("remove", member.address)
        notice = f"Removed {shown_name(member.display_name, member.address)}."
    else:
        change = PoolMemberRequest("set_caps", member.address, action.weekly_cap, action.daily_cap)
        notice = f"Saved the caps of {shown_name(member.display_name, member.address)}."
    try:
        updated = await api.change_pool_member(token, card.id, change)
    except errors.ConflictError as err:
        return build_pool_card(flow, pool_view(card, err.message))
    return build_pool_card(flow, pool_view(updated, notice))


async def _add(
    services: DialogServices, api: PoolCalendarApi, token: str, action: PoolAction, card: PoolCardOut
) -> Card:
    typed = action.member or ""
    view = pool_view(card)
    if not typed:
        return build_add_member_form(action.flow, view, problem="Type a name or an email address.")
    checks = await services.calendar.check_people(token, [typed])
    if len(checks) != 1:
        return build_add_member_form(action.flow, view, problem="Type one name or email address.")
    check = checks[0]
    if check.status == "ambiguous":
        names = ", ".join(f"{c.display_name} ({c.address})" for c in check.choices[:5])
        return build_add_member_form(
            action.flow,
            view,
            problem=f"Several people match \u201c{typed[:60]}\u201d: {names}. Type their email.",
        )
    if check.status != "ok" or check.person is None or check.person.is_room:
        problem = (
            "That is a room, not a person." if check.person and check.person.is_room else problem_text(check)
        )
        return build_add_member_form(action.flow, view, problem=problem)
    person = check.person
    change = PoolMemberRequest("add", person.address, zone=person.time_zone or None)
    try:
        updated = await api.change_pool_member(token, card.id, change)
    except errors.ConflictError:
        return build_pool_card(action.flow, pool_view(card, f"{person.display_name} is already a member."))
    return build_pool_card(action.flow, pool_view(updated, f"Added {person.display_name}."))
