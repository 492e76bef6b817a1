"""Booked card: the final state after Confirm.

It carries no ``Action.Execute`` at all, so a stale copy of the card cannot book twice; the
only action is ``Action.OpenUrl`` to the Teams meeting.
"""

from __future__ import annotations

from cards.elements import action_set, build_card, field_rows, heading, note
from cards.interview_facts import interview_rows
from cards.views import InterviewView

__all__ = ["build_booked"]


def build_booked(interview: InterviewView) -> dict[str, object]:
    """Return the booked card; shows the join link button only when ``join_url`` is set."""
    body: list[dict[str, object]] = [
        heading("Interview booked"),
        field_rows(interview_rows(interview)),
        note("The invite is in your Outlook calendar and has gone to everyone on it.", subtle=True),
    ]
    if interview.join_url is not None:
        body.append(
            action_set([{"type": "Action.OpenUrl", "title": "Join Teams meeting", "url": interview.join_url}])
        )
    return build_card(body, fallback_text="Interview booked.")
