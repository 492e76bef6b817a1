"""A loop flow's cards that need the Calendar Service: the builder (with the saved templates) and
the options (a fresh search each time), and the people check of a builder's typed names.

Every function here answers with a card, never raises ``CalendarError``: no token → the reconnect
card; a Calendar Service without the loop routes (404) or a client without the loop methods →
``UNAVAILABLE``, said plainly; a template the service refuses → the builder with its problems.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from botbuilder.core import TurnContext

from calendar_backend import errors
from calendar_backend.contract import LoopSearchOut, LoopTemplateOut, PersonCheckOut, PersonOut
from cards.loop_actions import LoopBuilderInput
from cards.loop_booked import build_loop_notice
from cards.loop_builder import MAX_TEMPLATES, build_loop_builder
from cards.loop_options import build_loop_options
from cards.reconnect import build_reconnect
from dialogs.loop_client import UNAVAILABLE, LoopCalendarApi, loop_api, template_problems
from dialogs.loop_state import LoopDraft, save_loop
from dialogs.loop_views import name_of, options_view, template_view, unnamed, with_people
from dialogs.panel import problem_text
from dialogs.parse import next_working_days
from dialogs.services import DialogServices
from dialogs.sso import require_user_token
from dialogs.state import FlowStatus
from dialogs.views import zone_or_utc

Card = dict[str, object]
SEARCH_LIMIT = 10
TITLE = "Interview loop"
USABLE = frozenset({"ok", "duplicate", "unreadable"})


class Shown(StrEnum):
    """Which card an options request ended with."""

    OPTIONS = "options"
    BUILDER = "builder"
    OTHER = "other"  # reconnect, not available, an error said plainly


class LoopsUnavailableError(errors.NotFoundError):
    """The client has no loop methods (the Calendar Service side has not landed)."""

    message = UNAVAILABLE


def api_of(services: DialogServices) -> LoopCalendarApi:
    """The loop client. Raises ``LoopsUnavailableError`` when there is none."""
    api = loop_api(services.calendar)
    if api is None:
        raise LoopsUnavailableError()
    return api


def window_of(draft: LoopDraft, today: datetime) -> tuple[datetime, datetime]:
    """The UTC search window of the draft's dates (the next 5 working days when it has none)."""
    tz = zone_or_utc(draft.manager_zone)
    first, last = draft.range_start, draft.range_end
    if first is None or last is None:
        first, last = next_working_days(today.astimezone(tz).date())
    start = datetime.combine(first, time(0), tzinfo=tz).astimezone(UTC)
    return start, datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)


def failure_card(draft: LoopDraft, err: errors.CalendarError) -> tuple[Card, Shown]:
    """The card for a failed Calendar Service call of a loop flow."""
    if isinstance(err, errors.ReconnectRequiredError):
        return build_reconnect(draft.flow), Shown.OTHER
    problems = template_problems(err)
    if problems:
        return build_loop_builder(draft.flow, draft=builder_input(draft), problems=problems), Shown.BUILDER
    if isinstance(err, errors.NotFoundError):
        return build_loop_notice(TITLE, UNAVAILABLE), Shown.OTHER
    return build_loop_notice(TITLE, err.message), Shown.OTHER


async def saved_templates(context: TurnContext, services: DialogServices) -> list[LoopTemplateOut]:
    """The tenant's saved loop templates (``[]`` when loops are not available).

    Raises:
        errors.CalendarError: other failures (reconnect included).
    """
    api = loop_api(services.calendar)
    if api is None:
        return []
    token = await require_user_token(context, services.connection)
    try:
        return (await api.list_loop_templates(token))[:MAX_TEMPLATES]
    except errors.NotFoundError:
        return []


def find_template(templates: list[LoopTemplateOut], wanted: str) -> LoopTemplateOut | None:
    """The saved template called ``wanted`` (case-insensitive), else the one it uniquely starts."""
    key = " ".join(wanted.split()).casefold()
    exact = [t for t in templates if t.name.casefold() == key]
    starts = [t for t in templates if t.name.casefold().startswith(key)]
    return exact[0] if exact else starts[0] if len(starts) == 1 else None


async def builder_card(
    context: TurnContext,
    services: DialogServices,
    draft: LoopDraft,
    problems: tuple[str, ...] = (),
    *,
    edit: bool = False,
) -> Card:
    """The builder: the saved templates (use/edit) and the form, or the form prefilled (``edit``)."""
    if edit:
        return build_loop_builder(draft.flow, draft=builder_input(draft), problems=problems)
    try:
        templates = await saved_templates(context, services)
    except errors.CalendarError as err:
        return failure_card(draft, err)[0]
    return build_loop_builder(draft.flow, [template_view(t) for t in templates], problems=problems)


def builder_input(draft: LoopDraft) -> LoopBuilderInput:
    """The builder form prefilled from the draft's template, people by display name."""
    from cards.loop_actions import BUILDER_ROWS, BuilderSession

    template = draft.template or {}
    breaks = template.get("breaks")
    max_break = breaks.get("max_minutes") if isinstance(breaks, dict) else None
    rows = [
        BuilderSession(
            str(s.get("title") or ""),
            s.get("minutes") if isinstance(s.get("minutes"), int) else None,
            tuple(name_of(draft, a) for a in s.get("interviewers") or []),
        )
        for s in draft.sessions()
        if "window" not in s  # a lunch is the toggle
    ][:BUILDER_ROWS]
    days = template.get("max_days")
    return LoopBuilderInput(
        name=str(template.get("name") or ""),
        order="free" if template.get("order") == "free" else "fixed",
        max_break=max_break if isinstance(max_break, int) else None,
        max_days=days if isinstance(days, int) else None,
        lunch=any("window" in s for s in draft.sessions()),
        sessions=tuple(rows),
    )


async def search(
    context: TurnContext, services: DialogServices, draft: LoopDraft
) -> tuple[LoopDraft, LoopSearchOut]:
    """Search ``draft``'s loop now; the draft comes back knowing the people's names (and saved).

    Raises:
        errors.CalendarError: any failure (``LoopsUnavailableError`` without loop methods).
    """
    api = api_of(services)
    token = await require_user_token(context, services.connection)
    start, end = window_of(draft, services.clock())
    extra: dict[str, Any] = {}  # only when used: a client without cap overrides still searches
    if draft.cap_override is not None:
        extra["cap_overrides"] = (draft.cap_override[:2],)
    result = await api.search_loops(
        token,
        template=draft.template,
        start=start,
        end=end,
        candidate_time_zone=draft.candidate_zone,
        limit=SEARCH_LIMIT,
        **extra,
    )
    draft = with_people(draft, result).evolve(  # the first searcher is the flow's manager
        searched_by=draft.searched_by or user_id(context), cap_choices=cap_choices_of(result)
    )
    if missing := unnamed(draft, result):  # once per flow: the names are kept in the draft
        draft = await _named(services, token, draft, missing)
    draft = draft.evolve(status=FlowStatus.PICKING)
    await save_loop(context, services, draft)
    return draft, result


def user_id(context: TurnContext) -> str:
    """Who pressed or typed (the channel's user id; ``""`` when the activity has none)."""
    sender = context.activity.from_property
    return str(sender.id or "") if sender else ""


def cap_choices_of(result: LoopSearchOut) -> tuple[tuple[int, str], ...]:
    """``(session, address)`` the search could use only past their cap (``pool_cap``, issue 18)."""
    return tuple(
        (e.session, str(s.value).lower())
        for e in result.explanations
        if e.reason == "pool_cap" and e.session is not None
        for s in e.suggestions
        if s.kind == "cap_override" and isinstance(s.value, str)
    )


RESOLVE_CHUNK = 20  # /directory/resolve takes up to 20 queries


async def _named(services: DialogServices, token: str, draft: LoopDraft, addresses: list[str]) -> LoopDraft:
    """``draft`` knowing the display names of ``addresses`` (one directory look-up; best effort:
    a name not found stays the address's local part)."""
    found: list[list[PersonOut]] = []
    try:
        for at in range(0, len(addresses), RESOLVE_CHUNK):
            found += await services.calendar.resolve_people(token, addresses[at : at + RESOLVE_CHUNK])
    except errors.CalendarError:
        return draft
    names = dict(draft.names)
    for address, matches in zip(addresses, found, strict=False):
        name = next((m.display_name for m in matches if m.address.lower() == address), "")
        names[address] = name or address.split("@", 1)[0]
    return draft.evolve(names=names)


async def options_card(
    context: TurnContext, services: DialogServices, draft: LoopDraft, page: int = 1, notice: str = ""
) -> tuple[Card, Shown]:
    """The loop options card of a fresh search (or why nothing fits), or the card a failure gets;
    ``notice``: what was wrong with the last press, said first on the card."""
    try:
        draft, result = await search(context, services, draft)
    except errors.CalendarError as err:
        return failure_card(draft, err)
    return build_loop_options(options_view(draft, result, page, notice)), Shown.OPTIONS


async def resolve_builder(
    context: TurnContext, services: DialogServices, draft: LoopDraft, given: LoopBuilderInput
) -> tuple[LoopDraft, tuple[str, ...]]:
    """The builder's typed people checked (``directory/check``) and put into the template as
    addresses; the problems (per session, by name) when someone cannot be used.

    Raises:
        errors.CalendarError: the check failed (reconnect included).
    """
    problems: list[str] = []
    if not given.sessions:
        problems.append("Add at least one session: a title, a length and its interviewers.")
    for number, row in enumerate(given.sessions, start=1):
        if not row.title:
            problems.append(f"Session {number}: give it a title.")
        if not row.people:
            problems.append(f'Session {number} "{row.title}": name at least one interviewer.')
    queries = list(dict.fromkeys(p for row in given.sessions for p in row.people))[:40]
    checks: dict[str, PersonCheckOut] = {}
    if queries:
        token = await require_user_token(context, services.connection)
        checks = dict(zip(queries, await services.calendar.check_people(token, queries), strict=False))
    names = dict(draft.names)
    for query in queries:
        check = checks.get(query)
        if check is None or check.status not in USABLE or check.person is None:
            if check is not None and check.status == "ambiguous" and check.choices:
                found = ", ".join(c.display_name for c in check.choices[:5])
                problems.append(f"\u201c{query[:60]}\u201d could be {found}: type the e-mail address.")
            else:
                problems.append(
                    problem_text(check) if check else f"I couldn't check \u201c{query[:60]}\u201d."
                )
            continue
        names[check.person.address.lower()] = check.person.display_name
    template: dict[str, Any] = given.template_json()
    for session in template["sessions"] if isinstance(template["sessions"], list) else []:
        people = session.get("interviewers", [])
        session["interviewers"] = list(
            dict.fromkeys(
                checks[p].person.address.lower()  # type: ignore[union-attr]
                for p in people
                if p in checks and checks[p].person is not None
            )
        )
    return draft.evolve(template=template, names=names), tuple(problems)
