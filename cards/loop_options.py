"""Loop options: whole-loop schedules as compact day timelines, or why none fits and what helps.

Each option shows its day(s), then one row per session: the time in the hiring manager's zone and
in the candidate's, the title, the interviewers and the room; a "Pick" button per option. Below,
the edits: change a session's length, drop or replace a person, allow a further day. Invariants:
at most ``PAGE_SIZE`` options per card (best first, the caller's order); people and rooms appear
by display name only (buttons carry opaque keys); every button is ``Action.Execute`` with an
``Action.Submit`` fallback (:mod:`cards.loop_actions`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from cards.actions import build_refresh
from cards.elements import action_set, build_card, clip, heading, join_names, note, plain
from cards.local_time import format_duration, format_range, format_slot
from cards.loop_actions import REASON_FIELD, REASON_MAX, LoopAction, LoopVerb, build_loop_execute
from cards.loop_views import (
    LoopFix,
    LoopFixView,
    LoopOptionsView,
    LoopOptionView,
    LoopSessionView,
    PlacedSessionView,
)

__all__ = ["LENGTH_CHOICES", "PAGE_SIZE", "build_loop_options", "option_timeline", "override_lines"]

PAGE_SIZE: Final = 5
LENGTH_CHOICES: Final = (-30, -15, 15, 30)  # minutes added to a session's length by the edit buttons
MIN_LENGTH: Final = 15
MAX_LENGTH: Final = 240
OUTSIDE_TEXT: Final = "Partly outside the candidate's day"


def _people(view: LoopOptionsView, index: int) -> str:
    return join_names([p.display_name for p in view.sessions[index].interviewers])


def _session_row(view: LoopOptionsView, placed: PlacedSessionView) -> dict[str, object]:
    session = view.sessions[placed.session]
    zones = view.zones
    who = " · ".join(
        part for part in (_people(view, placed.session), placed.room or "") if part and part != "—"
    )
    details = [plain(session.title, weight="Bolder")] + ([plain(who, subtle=True)] if who else [])
    return {
        "type": "ColumnSet",
        "spacing": "Small",
        "columns": [
            {
                "type": "Column",
                "width": "auto",
                "items": [
                    plain(format_range(placed.start_utc, placed.end_utc, zones.manager, with_day=False)),
                    plain(
                        format_range(placed.start_utc, placed.end_utc, zones.candidate, with_day=False),
                        subtle=True,
                    ),
                ],
            },
            {"type": "Column", "width": "stretch", "items": details},
        ],
    }


def _days(view: LoopOptionsView, option: LoopOptionView) -> list[list[PlacedSessionView]]:
    days: list[list[PlacedSessionView]] = []
    for placed in option.placements:
        local = placed.start_utc.astimezone(view.zones.manager).date()
        if days and days[-1][0].start_utc.astimezone(view.zones.manager).date() == local:
            days[-1].append(placed)
        else:
            days.append([placed])
    return days


def option_timeline(view: LoopOptionsView, option: LoopOptionView, label: str) -> list[dict[str, object]]:
    """An option's compact timeline: per day a ``label`` line with the day's span in both zones,
    then one row per session (both zones, title, people, room); a warning when part of it lies
    outside the candidate's day."""
    days = _days(view, option)
    items: list[dict[str, object]] = []
    for day_number, day in enumerate(days, start=1):
        span = format_slot(day[0].start_utc, day[-1].end_utc, view.zones)
        title = label + (f", day {day_number}" if len(days) > 1 else "")
        items.append(plain(f"{title}: {span}", weight="Bolder", separator=day_number > 1))
        items.extend(_session_row(view, placed) for placed in day)
    if option.outside_candidate_minutes:
        items.append(note(OUTSIDE_TEXT, color="Warning"))
    return items


def _option(view: LoopOptionsView, number: int, option: LoopOptionView) -> dict[str, object]:
    items = option_timeline(view, option, f"Option {number}")
    pick = LoopAction(LoopVerb.CHOOSE, view.flow, option_id=option.option_id)
    items.append(action_set([build_loop_execute(f"Pick option {number}", pick, style="positive")]))
    return {"type": "Container", "separator": True, "items": items}


REASON_LABEL: Final = "Why use them past their cap? (required, up to 200 characters; kept with the audit log)"


def _cap_override(view: LoopOptionsView, fix: LoopFixView) -> dict[str, object] | None:
    """ "Over cap: use <name> anyway": opens a reason box (issue 18) and its button. The box is
    not ``isRequired`` (a client that validates would then send nothing at all): an empty or bad
    reason reaches the bot, which answers with this card and the rule, booking nothing."""
    if not isinstance(fix.value, str) or fix.session is None:
        return None
    action = LoopAction(LoopVerb.CAP_OVERRIDE, view.flow, session=fix.session, person=fix.value)
    label = fix.text[:1].upper() + fix.text[1:]
    reason = {
        "type": "Input.Text",
        "id": REASON_FIELD,
        "label": REASON_LABEL,
        "maxLength": REASON_MAX,
        "placeholder": "e.g. the only Java expert free this week",
    }
    go = build_loop_execute(clip(label.replace("Over cap: use", "Use", 1), 60), action, style="positive")
    return {
        "type": "Action.ShowCard",
        "title": clip(label, 60),
        "card": {"type": "AdaptiveCard", "body": [reason], "actions": [go]},
    }


def _fix_action(view: LoopOptionsView, fix: LoopFixView) -> dict[str, object] | None:
    """The button for a fix, or ``None`` when its value does not fit a button."""
    flow, value, session = view.flow, fix.value, fix.session
    action: LoopAction | None = None
    if fix.kind is LoopFix.CAP_OVERRIDE:
        return _cap_override(view, fix)
    if fix.kind is LoopFix.SHORTEN and isinstance(value, int) and session is not None:
        action = LoopAction(LoopVerb.LENGTH, flow, session=session, duration_min=value)
    elif fix.kind is LoopFix.DROP_PERSON and isinstance(value, str) and session is not None:
        action = LoopAction(LoopVerb.DROP_PERSON, flow, session=session, person=value)
    elif fix.kind is LoopFix.ADD_DAY and isinstance(value, int):
        action = LoopAction(LoopVerb.DAYS, flow, days=value)
    elif fix.kind is LoopFix.LONGER_BREAK and isinstance(value, int):
        action = LoopAction(LoopVerb.BREAK, flow, break_min=value)
    elif fix.kind is LoopFix.FREE_ORDER:
        action = LoopAction(LoopVerb.FREE_ORDER, flow)
    elif fix.kind is LoopFix.LONGER_WINDOW and isinstance(value, int):
        action = LoopAction(LoopVerb.WIDEN, flow, days=value)
    return build_loop_execute(clip(fix.text[:1].upper() + fix.text[1:], 60), action) if action else None


def _empty_body(view: LoopOptionsView) -> list[dict[str, object]]:
    body: list[dict[str, object]] = [heading("No loop fits yet")]
    if not view.problems:
        body.append(note("There is no time when every session fits in this window."))
    for problem in view.problems:
        body.append(plain(problem.text))
        buttons = [a for fix in problem.fixes if (a := _fix_action(view, fix))]
        if buttons:
            body.append(action_set(buttons))
    return body


def _length_rows(view: LoopOptionsView) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for session in view.sessions:
        lengths = [
            session.minutes + d for d in LENGTH_CHOICES if MIN_LENGTH <= session.minutes + d <= MAX_LENGTH
        ]
        rows.append(plain(f"{session.title} ({format_duration(timedelta(minutes=session.minutes))})"))
        buttons = [
            build_loop_execute(
                format_duration(timedelta(minutes=m)),
                LoopAction(LoopVerb.LENGTH, view.flow, session=session.index, duration_min=m),
            )
            for m in lengths
        ]
        if buttons:
            rows.append(action_set(buttons))
    return rows


def _people_rows(view: LoopOptionsView, session: LoopSessionView) -> list[dict[str, object]]:
    buttons = []
    for person in session.interviewers:
        if len(session.interviewers) > 1:
            drop = LoopAction(LoopVerb.DROP_PERSON, view.flow, session=session.index, person=person.key)
            buttons.append(build_loop_execute(clip(f"Drop {person.display_name}", 40), drop))
        swap = LoopAction(LoopVerb.REPLACE_PERSON, view.flow, session=session.index, person=person.key)
        buttons.append(build_loop_execute(clip(f"Replace {person.display_name}", 40), swap))
    return [plain(session.title), action_set(buttons)] if buttons else []


def _edits(view: LoopOptionsView) -> list[dict[str, object]]:
    people = [row for s in view.sessions for row in _people_rows(view, s)]
    actions: list[dict[str, object]] = [
        {
            "type": "Action.ShowCard",
            "title": "Change a length",
            "card": {"type": "AdaptiveCard", "body": _length_rows(view)},
        }
    ]
    if people:
        actions.append(
            {
                "type": "Action.ShowCard",
                "title": "Change people",
                "card": {"type": "AdaptiveCard", "body": people},
            }
        )
    if view.can_add_day and view.max_days < min(len(view.sessions), 14):
        days = view.max_days + 1
        title = "Allow a second day" if days == 2 else f"Allow {days} days"
        actions.append(build_loop_execute(title, LoopAction(LoopVerb.DAYS, view.flow, days=days)))
    return [note("Change the loop:", subtle=True), action_set(actions)]


def override_lines(view: LoopOptionsView) -> list[dict[str, object]]:
    """The last press's problem (``view.notice``) and the cap override in use, when any."""
    lines = [plain(view.notice, weight="Bolder")] if view.notice else []
    return lines + ([plain(view.override)] if view.override else [])


def build_loop_options(view: LoopOptionsView) -> dict[str, object]:
    """The loop options card for page ``view.page`` of ``view.options`` (past the end: the last).

    With no option it explains, per problem, why nothing fits and offers the fixes that help.
    """
    page = min(view.page, max(1, -(-len(view.options) // PAGE_SIZE)))
    start = (page - 1) * PAGE_SIZE
    shown = view.options[start : start + PAGE_SIZE]
    total = format_duration(timedelta(minutes=sum(s.minutes for s in view.sessions)))
    count = len(view.sessions)
    body: list[dict[str, object]] = [
        plain(f"Interview loop: {view.candidate.display_name}", weight="Bolder"),
        plain(f"{view.loop_name} · {count} session{'s' if count > 1 else ''} · {total}", subtle=True),
        *override_lines(view),
    ]
    if shown:
        body.append(heading("Pick a loop"))
        body.append(note("Best first. Your time, then the candidate's (lighter).", subtle=True))
        body.extend(_option(view, start + n, option) for n, option in enumerate(shown, start=1))
        if len(view.options) > page * PAGE_SIZE:
            more = LoopAction(LoopVerb.MORE, view.flow, page=page + 1)
            body.append(action_set([build_loop_execute("Show more options", more)]))
    else:
        body.extend(_empty_body(view))
    body.extend(_edits(view))
    if shown:  # or let the candidate pick: one link, whole-loop options by day (issue 17)
        link = LoopAction(LoopVerb.SEND_LINK, view.flow)
        body.append(action_set([build_loop_execute("Send a link to the candidate", link)]))
    refresh = build_refresh(view.flow, view.user_ids) if view.user_ids else None
    return build_card(body, fallback_text="Pick an interview loop in OpenSlot.", refresh=refresh)
