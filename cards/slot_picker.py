"""Slot picker: open times for the panel, or why there are none and how to widen the search.

Invariants: at most ``PAGE_SIZE`` slots per card (Teams' ~100 KB message limit, platform.md §E4),
shown in the caller's order (best first); blockers appear by display name only; calendars that
could not be read are named as such, never as "busy".
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from cards.actions import CardAction, Verb, build_execute, build_refresh
from cards.elements import action_set, build_card, clip, heading, join_names, note, plain
from cards.local_time import format_duration, format_slot
from cards.views import Blocker, BlockReason, SlotPickerView, SlotView, ZonePair

__all__ = ["PAGE_SIZE", "WIDEN_DAYS", "build_slot_picker"]

PAGE_SIZE: Final = 8
WIDEN_DAYS: Final = 7
SHORTER: Final = timedelta(minutes=30)
OUTSIDE_DAY_TEXT: Final = "Outside the candidate's working day"
MAX_DROP_BUTTONS: Final = 5
SHOWN_NAMES: Final = 4
_REASON_TEXT: Final = {
    BlockReason.NO_WORKING_HOURS: "works other hours: none of their working time in this window "
    "is long enough",
    BlockReason.NOT_WORKING_DAYS: "doesn't work on these days (a weekend or days off)",
    BlockReason.FULLY_BUSY: "is busy for the whole window",
    BlockReason.NO_COMMON_TIME: "has free time, but none that overlaps with the others",
}
_OTHER_HOURS: Final = frozenset({BlockReason.NO_WORKING_HOURS, BlockReason.NOT_WORKING_DAYS})
_OPTIONAL_HELPS: Final = frozenset(
    {
        BlockReason.UNREADABLE,
        BlockReason.FULLY_BUSY,
        BlockReason.NO_COMMON_TIME,
        BlockReason.NO_WORKING_HOURS,
        BlockReason.NOT_WORKING_DAYS,
    }
)
_SHORTER_HELPS: Final = frozenset({BlockReason.FULLY_BUSY, BlockReason.NO_COMMON_TIME})


def _slot_row(flow: str, slot: SlotView, zones: ZonePair, *, label_outside: bool = True) -> dict[str, object]:
    """One row; ``label_outside``: mark a row outside the candidate's day (not when the header
    already says that every time is)."""
    choose = build_execute("Choose", CardAction(Verb.CHOOSE_SLOT, flow, slot_id=slot.slot_id))
    items = [plain(format_slot(slot.start_utc, slot.end_utc, zones))]
    if slot.outside_candidate_day and label_outside:
        items.append(note(OUTSIDE_DAY_TEXT, color="Warning"))
    return {
        "type": "ColumnSet",
        "separator": True,
        "columns": [
            {"type": "Column", "width": "stretch", "verticalContentAlignment": "Center", "items": items},
            {"type": "Column", "width": "auto", "items": [action_set([choose])]},
        ],
    }


def _blocker_lines(blockers: tuple[Blocker, ...]) -> list[dict[str, object]]:
    busy = [b for b in blockers if not b.reason.is_unreadable]
    unreadable = [b.display_name for b in blockers if b.reason is BlockReason.UNREADABLE]
    refused = [b.display_name for b in blockers if b.reason is BlockReason.NOT_ALLOWED]
    lines = [plain(f"{b.display_name} {_REASON_TEXT[b.reason]}.") for b in busy]
    if unreadable:
        lines.append(plain(f"I couldn't read these calendars: {join_names(unreadable)}."))
    if refused:
        lines.append(
            plain(
                "OpenSlot may not read these calendars (your organisation's "
                f"settings): {join_names(refused)}."
            )
        )
    return lines


def _drop_actions(view: SlotPickerView) -> list[dict[str, object]]:
    """ "Drop <name>" for each blocker that can be dropped (never the whole panel)."""
    if len(view.interviewers) < 2:
        return []
    droppable = [b for b in view.blockers if b.person][:MAX_DROP_BUTTONS]
    if len(droppable) >= len(view.interviewers):
        return []
    actions = []
    for b in droppable:
        key = b.person or ""
        actions.append(
            build_execute(
                clip(f"Drop {b.display_name}", 40), CardAction(Verb.DROP_PERSON, view.flow, person=key)
            )
        )
        if b.reason in _OPTIONAL_HELPS:
            actions.append(
                build_execute(
                    clip(f"Make {b.display_name} optional", 40),
                    CardAction(Verb.OPTIONAL_PERSON, view.flow, person=key),
                )
            )
    return actions


def _widen_actions(view: SlotPickerView) -> list[dict[str, object]]:
    reasons = {b.reason for b in view.blockers}
    actions = []
    if reasons & _OTHER_HOURS:
        actions.append(build_execute("Try the next working days", CardAction(Verb.OTHER_DAYS, view.flow)))
    actions.append(
        build_execute(f"Look {WIDEN_DAYS} more days", CardAction(Verb.WIDEN_DAYS, view.flow, days=WIDEN_DAYS))
    )
    if view.duration > SHORTER and (not reasons or reasons & _SHORTER_HELPS):
        minutes = int(SHORTER.total_seconds()) // 60
        actions.append(
            build_execute(f"Try {minutes} minutes", CardAction(Verb.SHORTEN, view.flow, duration_min=minutes))
        )
    return actions


def _empty_body(view: SlotPickerView) -> list[dict[str, object]]:
    reasons = _blocker_lines(view.blockers) or [
        note("There is no time when everyone is free in this window.")
    ]
    drops = _drop_actions(view)
    return [
        heading("No time fits yet"),
        *reasons,
        action_set(_widen_actions(view)),
        *([note("Or go ahead without:", subtle=True), action_set(drops)] if drops else []),
    ]


def _slots_body(view: SlotPickerView, page: int, shown: tuple[SlotView, ...]) -> list[dict[str, object]]:
    all_outside = all(slot.outside_candidate_day for slot in view.slots)
    if not view.candidate_day:
        first = "Best times first"
    elif all_outside:
        first = f"No time fits inside the candidate's {view.candidate_day}; these are the best outside it"
    else:
        first = f"Best times inside the candidate's {view.candidate_day} first"
    body: list[dict[str, object]] = [
        heading("Pick a time"),
        note(f"{first}. Your time, then the candidate's.", subtle=True),
        *(
            _slot_row(view.flow, slot, view.zones, label_outside=not (view.candidate_day and all_outside))
            for slot in shown
        ),
    ]
    if len(view.slots) > page * PAGE_SIZE:
        more = CardAction(Verb.MORE_SLOTS, view.flow, page=page + 1)
        body.append(action_set([build_execute("Show more times", more)]))
    body.extend(_blocker_lines(tuple(b for b in view.blockers if b.reason.is_unreadable)))
    return body


_EDITS: Final = (
    ("Change length", Verb.EDIT_DURATION),
    ("Change dates", Verb.EDIT_WINDOW),
    ("Change panel", Verb.EDIT_PANEL),
    ("Candidate's zone", Verb.EDIT_ZONE),
)


def _edit_actions(flow: str) -> dict[str, object]:
    """ "Change ..." buttons: each asks for one field again and searches again (no start over)."""
    return action_set([build_execute(title, CardAction(verb, flow)) for title, verb in _EDITS])


def _hour_choices(first: int, last: int) -> list[dict[str, str]]:
    return [
        {"title": f"{h:02d}:00" + (" (midnight)" if h == 24 else ""), "value": f"{h:02d}:00"}
        for h in range(first, last + 1)
    ]


def _link_options(view: SlotPickerView) -> dict[str, object]:
    """The optional inputs of "Send to candidate" (a shown-on-demand card: its inputs travel
    only with its own "Create link" button, never with the slot card's other buttons)."""
    start, end = view.link_day
    create = build_execute(
        "Create link with these options", CardAction(Verb.SEND_TO_CANDIDATE, view.flow), style="positive"
    )
    return {
        "type": "AdaptiveCard",
        "body": [
            {
                "type": "Input.Text",
                "id": "role",
                "label": "Role (shown to the candidate)",
                "placeholder": "e.g. Senior Data Engineer",
                "maxLength": 120,
            },
            {
                "type": "Input.Toggle",
                "id": "show_names",
                "value": "false",
                "title": "Show the interviewers' first names to the candidate",
                "valueOn": "true",
                "valueOff": "false",
                "wrap": True,
            },
            note(
                "The candidate's day, in their time zone: times outside it are folded away on the page.",
                subtle=True,
            ),
            {
                "type": "ColumnSet",
                "columns": [
                    {
                        "type": "Column",
                        "width": "stretch",
                        "items": [
                            {
                                "type": "Input.ChoiceSet",
                                "id": "day_start",
                                "label": "Day starts",
                                "style": "compact",
                                "isRequired": True,
                                "errorMessage": "Choose an hour.",
                                "value": f"{start:02d}:00",
                                "choices": _hour_choices(0, 23),
                            }
                        ],
                    },
                    {
                        "type": "Column",
                        "width": "stretch",
                        "items": [
                            {
                                "type": "Input.ChoiceSet",
                                "id": "day_end",
                                "label": "Day ends",
                                "style": "compact",
                                "isRequired": True,
                                "errorMessage": "Choose an hour.",
                                "value": f"{end:02d}:00",
                                "choices": _hour_choices(1, 24),
                            }
                        ],
                    },
                ],
            },
            action_set([create]),
        ],
    }


def build_slot_picker(view: SlotPickerView) -> dict[str, object]:
    """Return the slot picker card for page ``view.page`` of ``view.slots``.

    A page past the end shows the last page.
    With no slots on the page it explains who blocks and offers "Look 7 more days" and, when
    the interview is longer than 30 minutes, "Try 30 minutes". "Send to candidate instead" is
    offered only when every calendar could be read: a candidate link may never cover a calendar
    the manager could not read (issue 12; the Calendar Service refuses such a link too). It
    creates the link at once with the defaults; "Link options" beside it shows optional inputs
    (role, interviewers' first names, the candidate's day prefilled from ``view.link_day``).
    """
    page = min(view.page, max(1, -(-len(view.slots) // PAGE_SIZE)))  # clamp to the last page
    start = (page - 1) * PAGE_SIZE
    shown = view.slots[start : start + PAGE_SIZE]
    names = [p.display_name for p in view.interviewers]
    if len(names) > SHOWN_NAMES + 1:  # a long panel would be clipped mid-name
        names = [*names[:SHOWN_NAMES], f"{len(names) - SHOWN_NAMES} others"]
    summary = f"{format_duration(view.duration)} with {join_names(names)}"
    body = [
        plain(f"Interview: {view.candidate.display_name}", weight="Bolder"),
        plain(summary, subtle=True),
        *(_slots_body(view, page, shown) if shown else _empty_body(view)),
        _edit_actions(view.flow),
    ]
    if not any(b.reason.is_unreadable for b in view.blockers):
        send = CardAction(Verb.SEND_TO_CANDIDATE, view.flow)
        body.append(
            action_set(
                [
                    build_execute("Send to candidate instead", send),
                    {"type": "Action.ShowCard", "title": "Link options", "card": _link_options(view)},
                ]
            )
        )
    refresh = build_refresh(view.flow, view.user_ids) if view.user_ids else None
    return build_card(body, fallback_text="Pick an interview time in OpenSlot.", refresh=refresh)
