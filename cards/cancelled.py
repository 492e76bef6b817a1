"""Cancelled card: the final state of a cancelled interview."""

from __future__ import annotations

from cards.actions import CardAction, Verb, build_execute
from cards.elements import action_set, build_card, field_rows, heading, note
from cards.interview_facts import interview_rows
from cards.views import InterviewView

__all__ = ["build_cancelled"]


def build_cancelled(flow: str, interview: InterviewView) -> dict[str, object]:
    """Return the cancelled card; its only button starts a new scheduling flow."""
    body = [
        heading("Interview cancelled"),
        field_rows(interview_rows(interview)),
        note("Everyone on the invite has been told.", subtle=True),
        action_set([build_execute("Schedule another", CardAction(Verb.SCHEDULE, flow))]),
    ]
    return build_card(body, fallback_text="Interview cancelled.")
