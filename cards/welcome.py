"""Welcome card: the first thing a user sees, with the three entry points."""

from __future__ import annotations

from cards.actions import CardAction, Verb, build_execute
from cards.elements import action_set, build_card, clip, heading, note, plain

__all__ = ["build_welcome"]


def build_welcome(flow: str, *, first_name: str | None = None) -> dict[str, object]:
    """Return the welcome card. ``first_name`` (optional) is shown literally in the greeting."""
    greeting = f"Hi {clip(first_name, 40)}!" if first_name else "Hi!"
    body = [
        heading("OpenSlot"),
        plain(greeting),
        note(
            "I find times when everyone on an interview panel is free and send the invite "
            "from your Outlook calendar. I only ever see free and busy time."
        ),
        action_set(
            [
                build_execute("Schedule an interview", CardAction(Verb.SCHEDULE, flow), style="positive"),
                build_execute("My interviews", CardAction(Verb.MY_INTERVIEWS, flow)),
                build_execute("Help", CardAction(Verb.HELP, flow)),
            ]
        ),
    ]
    return build_card(body, fallback_text="Welcome to OpenSlot.")
