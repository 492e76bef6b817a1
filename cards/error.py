"""Error card: one friendly line, an optional support reference, and a way forward.

Callers pass a message meant for users; never exception text, tokens or calendar data.
"""

from __future__ import annotations

from cards.actions import CardAction, Verb, build_execute
from cards.elements import action_set, build_card, heading, plain

__all__ = ["build_error"]


def build_error(flow: str, message: str, *, reference: str | None = None) -> dict[str, object]:
    """Return the error card. ``message`` is shown literally (clipped); ``reference`` too."""
    body = [heading("Something went wrong"), plain(message)]
    if reference is not None:
        body.append(plain(f"Reference: {reference}", subtle=True))
    body.append(
        action_set(
            [
                build_execute("Start over", CardAction(Verb.SCHEDULE, flow)),
                build_execute("Help", CardAction(Verb.HELP, flow)),
            ]
        )
    )
    return build_card(body, fallback_text="Something went wrong in OpenSlot.")
