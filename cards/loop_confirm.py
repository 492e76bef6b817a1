"""Loop confirmation: the option the hiring manager picked, before it is booked.

Shows the option's timeline as the options card does (both zones, people, rooms), says what booking
does (all sessions or none, one Outlook event per session, one Teams meeting for the loop), and offers
"Book the loop" (``loop_confirm``) and "Back to the options" (``loop_back``).
"""

from __future__ import annotations

from datetime import timedelta

from cards.actions import build_refresh
from cards.elements import action_set, build_card, heading, note, plain
from cards.local_time import format_duration
from cards.loop_actions import LoopAction, LoopVerb, build_loop_execute
from cards.loop_options import option_timeline, override_lines
from cards.loop_views import LoopOptionsView

__all__ = ["BOOKING_TEXT", "build_loop_confirmation"]

BOOKING_TEXT = (
    "OpenSlot checks every calendar again, then books all sessions or none: one Outlook event per "
    "session, sent by you, and one Teams meeting for the whole loop."
)


def build_loop_confirmation(view: LoopOptionsView, option_id: str) -> dict[str, object]:
    """The confirmation card for the option ``option_id`` of ``view``.

    Raises:
        ValueError: ``option_id`` is not one of ``view.options``.
    """
    option = next((o for o in view.options if o.option_id == option_id), None)
    if option is None:
        raise ValueError("option_id must name one of the view's options")
    total = format_duration(timedelta(minutes=sum(s.minutes for s in view.sessions)))
    book = LoopAction(LoopVerb.CONFIRM, view.flow, option_id=option.option_id)
    body: list[dict[str, object]] = [
        heading("Book this loop?"),
        plain(f"Interview loop: {view.candidate.display_name}", weight="Bolder"),
        plain(f"{view.loop_name} · {len(view.sessions)} sessions · {total}", subtle=True),
        *override_lines(view),
        *option_timeline(view, option, "Loop"),
        note(BOOKING_TEXT, subtle=True),
        action_set(
            [
                build_loop_execute("Book the loop", book, style="positive"),
                build_loop_execute("Back to the options", LoopAction(LoopVerb.BACK, view.flow)),
            ]
        ),
    ]
    refresh = build_refresh(view.flow, view.user_ids) if view.user_ids else None
    return build_card(body, fallback_text="Confirm the interview loop in OpenSlot.", refresh=refresh)
