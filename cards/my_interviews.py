"""My interviews: upcoming interviews OpenSlot booked, each with Reschedule / Cancel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from cards.actions import CardAction, Verb, build_execute, build_refresh
from cards.elements import action_set, build_card, field_rows, heading, note, plain
from cards.interview_facts import interview_rows
from cards.local_time import format_slot
from cards.loop_manage import ManagedLoop, loop_entry
from cards.views import InterviewView

__all__ = ["MAX_LISTED", "build_cancel_question", "build_my_interviews", "build_private_interviews"]

MAX_LISTED: Final = 10


def _entry(flow: str, interview: InterviewView) -> dict[str, object]:
    iid = interview.interview_id
    if interview.outlook == "deleted":
        return {
            "type": "Container",
            "separator": True,
            "items": [
                field_rows(interview_rows(interview)),
                note(
                    "This meeting was deleted in Outlook, so it no longer takes place. Type "
                    '"schedule" to book it again.',
                    color="Attention",
                ),
            ],
        }
    moved = interview.moved_to
    notice = (
        [
            note(
                "Moved in Outlook to " + format_slot(moved.start_utc, moved.end_utc, interview.zones) + ".",
                color="Warning",
            )
        ]
        if interview.outlook == "moved" and moved
        else []
    )
    return {
        "type": "Container",
        "separator": True,
        "items": [
            field_rows(interview_rows(interview)),
            *notice,
            action_set(
                [
                    build_execute(
                        "Reschedule", CardAction(Verb.RESCHEDULE_INTERVIEW, flow, interview_id=iid)
                    ),
                    build_execute(
                        "Cancel",
                        CardAction(Verb.CANCEL_INTERVIEW, flow, interview_id=iid),
                        style="destructive",
                    ),
                ]
            ),
        ],
    }


def build_my_interviews(
    flow: str,
    interviews: Sequence[InterviewView],
    *,
    user_ids: tuple[str, ...] = (),
    loops: Sequence[ManagedLoop] = (),
) -> dict[str, object]:
    """Return the list card: the first ``MAX_LISTED`` interview loops (one entry per loop, in the
    given order), then the first ``MAX_LISTED`` single interviews in the given order.

    ``user_ids`` (Teams MRIs, at most 60) get the card refreshed automatically; empty for none.
    """
    shown = list(interviews[:MAX_LISTED])
    body: list[dict[str, object]] = [heading("My interviews")]
    if loops:
        body.append(plain("Interview loops", weight="Bolder"))
        body += [loop_entry(flow, loop) for loop in loops[:MAX_LISTED]]
        if shown:
            body.append(plain("Interviews", weight="Bolder", separator=True))
    if not shown and not loops:
        body += [
            note("You have no upcoming interviews booked with OpenSlot."),
            action_set(
                [build_execute("Schedule an interview", CardAction(Verb.SCHEDULE, flow), style="positive")]
            ),
        ]
    body += [_entry(flow, interview) for interview in shown]
    hidden = len(interviews) - len(shown)
    if hidden > 0:
        body.append(note(f"{hidden} more not shown. Cancel or finish some to see them.", subtle=True))
    refresh = build_refresh(flow, user_ids) if user_ids else None
    return build_card(body, fallback_text="Your interviews in OpenSlot.", refresh=refresh)


def build_cancel_question(flow: str, interview: InterviewView) -> dict[str, object]:
    """Return "Cancel this interview?": the facts, "Yes, cancel it" and "Keep it" (back to the list)."""
    iid = interview.interview_id
    body = [
        heading("Cancel this interview?"),
        field_rows(interview_rows(interview)),
        note("Everyone on the invite will be told. This cannot be undone.", subtle=True),
        action_set(
            [
                build_execute(
                    "Yes, cancel it",
                    CardAction(Verb.CANCEL_INTERVIEW_CONFIRMED, flow, interview_id=iid),
                    style="destructive",
                ),
                build_execute("Keep it", CardAction(Verb.KEEP_INTERVIEW, flow, interview_id=iid)),
            ]
        ),
    ]
    return build_card(body, fallback_text="Cancel this interview?")


def build_private_interviews(flow: str) -> dict[str, object]:
    """Return the card posted for "my interviews" in a group chat or channel: everyone sees it,
    and its button shows the list to whoever presses it only (the answer to their own press)."""
    body = [
        heading("My interviews are private"),
        note("Press the button: the list is shown to you only, never to the rest of the chat."),
        action_set([build_execute("Show my interviews", CardAction(Verb.MY_INTERVIEWS, flow))]),
    ]
    return build_card(body, fallback_text="My interviews are private.")
