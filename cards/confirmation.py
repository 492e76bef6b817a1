"""Confirmation card: the chosen time in both zones, with Confirm / Back."""

from __future__ import annotations

from cards.actions import CardAction, Verb, build_execute, build_refresh
from cards.elements import action_set, build_card, field_rows, heading, join_names
from cards.local_time import format_range
from cards.views import ConfirmationView

__all__ = ["build_confirmation"]


def build_confirmation(view: ConfirmationView) -> dict[str, object]:
    """Return the confirmation card; Confirm carries the chosen ``slot_id``."""
    slot, zones = view.slot, view.zones
    rows = [
        ("Candidate", view.candidate.display_name),
        ("Interviewers", join_names([p.display_name for p in view.interviewers])),
    ]
    if view.rooms:
        rows.append(("Room", join_names([r.display_name for r in view.rooms])))
    rows += [
        ("Your time", format_range(slot.start_utc, slot.end_utc, zones.manager)),
        ("Their time", format_range(slot.start_utc, slot.end_utc, zones.candidate)),
    ]
    confirm = CardAction(Verb.CONFIRM, view.flow, slot_id=slot.slot_id)
    body = [
        heading("Book this interview?"),
        field_rows(rows),
        action_set(
            [
                build_execute("Confirm", confirm, style="positive"),
                build_execute("Back", CardAction(Verb.BACK, view.flow)),
            ]
        ),
    ]
    refresh = build_refresh(view.flow, view.user_ids) if view.user_ids else None
    return build_card(body, fallback_text="Confirm the interview in OpenSlot.", refresh=refresh)
