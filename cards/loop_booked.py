"""Loop booked: the summary after "Book the loop", and the plain notice a loop press may answer with.

The booked card shows the loop's timeline as the options card does (every session in both zones,
its people and room) and carries no ``Action.Execute`` at all, so a stale copy cannot book twice;
its only action is ``Action.OpenUrl`` to the loop's one Teams meeting.
"""

from __future__ import annotations

from cards.elements import action_set, build_card, heading, note, plain
from cards.loop_options import option_timeline, override_lines
from cards.loop_views import LoopOptionsView, LoopOptionView

__all__ = ["build_loop_booked", "build_loop_notice"]

BOOKED_TEXT = (
    "One Outlook event per session is in your calendar and has gone to everyone on it; the "
    "candidate has one Teams meeting for the whole loop."
)


def build_loop_booked(
    view: LoopOptionsView, option: LoopOptionView, join_url: str | None
) -> dict[str, object]:
    """The booked loop ``option`` of ``view``; a join button only when ``join_url`` is set."""
    count = len(view.sessions)
    body: list[dict[str, object]] = [
        heading("Interview loop booked"),
        plain(f"Interview loop: {view.candidate.display_name}", weight="Bolder"),
        plain(f"{view.loop_name} · {count} session{'s' if count > 1 else ''}", subtle=True),
        *override_lines(view),
        *option_timeline(view, option, "Loop"),
        note(BOOKED_TEXT, subtle=True),
    ]
    if join_url:
        body.append(action_set([{"type": "Action.OpenUrl", "title": "Join Teams meeting", "url": join_url}]))
    return build_card(body, fallback_text="Interview loop booked.")


def build_loop_notice(title: str, text: str) -> dict[str, object]:
    """A card with a heading and one sentence (shown literally), no action: e.g. loops not
    available yet, or an expired loop card."""
    return build_card([heading(title), plain(text)], fallback_text=text)
