"""Reconnect card: the user's sign-in expired or was revoked; ask them to sign in again."""

from __future__ import annotations

from cards.actions import CardAction, Verb, build_execute
from cards.elements import action_set, build_card, heading, note

__all__ = ["build_reconnect"]


def build_reconnect(flow: str) -> dict[str, object]:
    """Return the reconnect card; "Sign in" carries ``Verb.SIGN_IN``."""
    body = [
        heading("Please sign in again"),
        note("I need you to sign in before I can look at free and busy times. Nothing you started is lost."),
        action_set([build_execute("Sign in", CardAction(Verb.SIGN_IN, flow), style="positive")]),
    ]
    return build_card(body, fallback_text="Please sign in to OpenSlot again.")
