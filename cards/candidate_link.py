"""Candidate link card: the booking link with "Copy link", "E-mail to candidate" and "Revoke link".

Teams cards have no clipboard action: "Copy link" opens the link alone, as literal text ready to
select and copy. "E-mail to candidate" is a ``mailto:`` link prefilled with the candidate's
address, a subject and the link: it opens in the manager's own mail client, so OpenSlot needs no
mail permission and sends nothing itself.
"""

from __future__ import annotations

from urllib.parse import quote
from zoneinfo import ZoneInfo

from cards.actions import CardAction, Verb, build_execute, build_refresh
from cards.elements import action_set, build_card, field_rows, heading, plain
from cards.local_time import format_instant
from cards.views import LinkOptionsView, OfferView, Person

__all__ = ["build_candidate_link", "build_link_revoked", "candidate_mailto"]

MAX_MAILTO = 2000  # Outlook and browsers handle mailto: links up to about 2,000 characters


def candidate_mailto(candidate: Person, url: str, expiry: str) -> str:
    """A ``mailto:`` URL to the candidate with a subject and a short body holding the link."""
    first = candidate.display_name.split()[0] if candidate.display_name.split() else ""
    subject = "Please choose a time for your interview"
    body = (
        f"Hi {first},\n\nPlease choose a time for your interview here: {url}\n\n"
        f"The page shows the open times in your time zone. The link works until {expiry}.\n"
    )
    address = candidate.address if "@" in candidate.address else ""
    link = f"mailto:{quote(address, safe='@')}?subject={quote(subject, safe='')}&body={quote(body, safe='')}"
    return link if len(link) <= MAX_MAILTO else f"mailto:{quote(address, safe='@')}"


def build_candidate_link(
    flow: str,
    candidate: Person,
    offer: OfferView,
    manager_zone: ZoneInfo,
    *,
    options: LinkOptionsView | None = None,
    user_ids: tuple[str, ...] = (),
) -> dict[str, object]:
    """Return the link card: the URL as literal copyable text, expiry in ``manager_zone``, and
    what the link shows (``options``, the defaults when ``None``)."""
    options = options or LinkOptionsView()
    revoke = CardAction(Verb.REVOKE_OFFER, flow, offer_id=offer.offer_id)
    expiry = format_instant(offer.expires_at, manager_zone)
    # Text, not an input: an input's value would travel back with "Revoke link".
    copy_card = {
        "type": "AdaptiveCard",
        "body": [
            plain("Select the link below and copy it (Ctrl+C, or \u2318C on a Mac):", subtle=True),
            plain(offer.url, monospace=True, weight="Bolder"),
        ],
    }
    body = [
        heading("Booking link ready"),
        plain(
            f"Send this link to {candidate.display_name}. It shows open times only, never anyone's calendar."
        ),
        plain(offer.url, monospace=True, separator=True),
        plain(f"Works until {expiry}, or until someone books.", subtle=True),
        field_rows(_option_rows(options)),
        action_set(
            [
                {
                    "type": "Action.OpenUrl",
                    "title": "E-mail to candidate",
                    "url": candidate_mailto(candidate, offer.url, expiry),
                },
                {"type": "Action.ShowCard", "title": "Copy link", "card": copy_card},
                build_execute("Revoke link", revoke, style="destructive"),
            ]
        ),
    ]
    refresh = build_refresh(flow, user_ids) if user_ids else None
    return build_card(body, fallback_text="Candidate booking link.", refresh=refresh)


def _hour(hour: int) -> str:
    return f"{hour:02d}:00"


def _option_rows(options: LinkOptionsView) -> list[tuple[str, str]]:
    return [
        ("Role", options.role or "Not shown"),
        ("Interviewers", "First names shown" if options.show_names else "Names not shown"),
        (
            "Their day",
            f"{_hour(options.day_start)}\u2013{_hour(options.day_end)} in their time "
            "zone; other times folded away",
        ),
    ]


def build_link_revoked(flow: str) -> dict[str, object]:
    """Return the card that replaces a revoked link: it says so, and offers a new search."""
    body = [
        heading("Booking link revoked"),
        plain("The link no longer works: the candidate sees that it has expired."),
        action_set([build_execute("Schedule an interview", CardAction(Verb.SCHEDULE, flow))]),
    ]
    return build_card(body, fallback_text="Booking link revoked.")
