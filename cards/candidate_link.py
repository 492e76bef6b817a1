"""Candidate link card: a booking link to copy and send, with "Revoke link"."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from cards.actions import CardAction, Verb, build_execute, build_refresh
from cards.elements import action_set, build_card, heading, plain
from cards.local_time import format_instant
from cards.views import OfferView, Person

__all__ = ["build_candidate_link", "build_link_revoked"]


def build_candidate_link(
    flow: str,
    candidate: Person,
    offer: OfferView,
    manager_zone: ZoneInfo,
    *,
    user_ids: tuple[str, ...] = (),
) -> dict[str, object]:
    """Return the link card: the URL as literal copyable text, expiry in ``manager_zone``."""
    revoke = CardAction(Verb.REVOKE_OFFER, flow, offer_id=offer.offer_id)
    body = [
        heading("Booking link ready"),
        plain(f"Send this link to {candidate.display_name}. It shows open times only, "
              "never anyone's calendar."),
        plain(offer.url, monospace=True, separator=True),
        plain(f"Works until {format_instant(offer.expires_at, manager_zone)}, "
              "or until someone books.", subtle=True),
        action_set([build_execute("Revoke link", revoke, style="destructive")]),
    ]
    refresh = build_refresh(flow, user_ids) if user_ids else None
    return build_card(body, fallback_text="Candidate booking link.", refresh=refresh)


def build_link_revoked(flow: str) -> dict[str, object]:
    """Return the card that replaces a revoked link: it says so, and offers a new search."""
    body = [
        heading("Booking link revoked"),
        plain("The link no longer works: the candidate sees that it has expired."),
        action_set([build_execute("Schedule an interview", CardAction(Verb.SCHEDULE, flow))]),
    ]
    return build_card(body, fallback_text="Booking link revoked.")
