"""My interviews: upcoming interviews OpenSlot booked, each with Reschedule / Cancel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from cards.actions import CardAction, Verb, build_execute, build_refresh
from cards.elements import action_set, build_card, field_rows, heading, note
from cards.interview_facts import interview_rows
from cards.local_time import format_slot
from cards.views import InterviewView

__all__ = ["MAX_LISTED", "build_my_interviews"]

MAX_LISTED: Final = 10


def _entry(flow: str, interview: InterviewView) -> dict[str, object]:
    iid = interview.interview_id
    if interview.outlook == "deleted":
        return {"type": "Container", "separator": True, "items": [
            field_rows(interview_rows(interview)),
            note("This meeting was deleted in Outlook, so it no longer takes place. Type "
                 "\"schedule\" to book it again.", color="Attention")]}
    moved = interview.moved_to
    notice = ([note("Moved in Outlook to " + format_slot(moved.start_utc, moved.end_utc,
                                                         interview.zones) + ".",
                    color="Warning")] if interview.outlook == "moved" and moved else [])
    return {
        "type": "Container",
        "separator": True,
        "items": [
            field_rows(interview_rows(interview)),
            *notice,
            action_set([
                build_execute("Reschedule",
                              CardAction(Verb.RESCHEDULE_INTERVIEW, flow, interview_id=iid)),
                build_execute("Cancel", CardAction(Verb.CANCEL_INTERVIEW, flow, interview_id=iid),
                              style="destructive"),
            ]),
        ],
    }


def build_my_interviews(
    flow: str, interviews: Sequence[InterviewView], *, user_ids: tuple[str, ...] = ()
) -> dict[str, object]:
    """Return the list card: the first ``MAX_LISTED`` interviews in the given order.

    ``user_ids`` (Teams MRIs, at most 60) get the card refreshed automatically; empty for none.
    """
    shown = list(interviews[:MAX_LISTED])
    body: list[dict[str, object]] = [heading("My interviews")]
    if not shown:
        body += [
            note("You have no upcoming interviews booked with OpenSlot."),
            action_set([build_execute("Schedule an interview", CardAction(Verb.SCHEDULE, flow),
                                      style="positive")]),
        ]
    body += [_entry(flow, interview) for interview in shown]
    hidden = len(interviews) - len(shown)
    if hidden > 0:
        body.append(note(f"{hidden} more not shown. Cancel or finish some to see them.",
                         subtle=True))
    refresh = build_refresh(flow, user_ids) if user_ids else None
    return build_card(body, fallback_text="Your interviews in OpenSlot.", refresh=refresh)
