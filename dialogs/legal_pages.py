"""The privacy statement and terms of use the Teams manifest links to (``/privacy``, ``/terms``).

The Teams app package (appManifest/build.py) points ``developer.privacyUrl`` and
``developer.termsOfUseUrl`` at these pages on the bot's public host unless the admin sets their own
URLs (``OPENSLOT_PRIVACY_URL``, ``OPENSLOT_TERMS_URL``). Static HTML, no script, no cookies.
"""

from __future__ import annotations

import html
from typing import Final

from aiohttp import web

PRIVACY: Final = (
    "Privacy statement",
    [
        "OpenSlot schedules interviews from Microsoft Teams for your organisation. Your "
        "organisation's administrator decides whether OpenSlot is used and for which mailboxes.",
        "Calendars are read just in time, as free/busy, when someone asks for open times. Calendar "
        "contents are never stored, cached to disk, logged or shown to anyone who could not see "
        "them in Outlook. Candidates see open times only.",
        "OpenSlot stores the invitations it creates (time, interviewers, candidate name and e-mail "
        "address) and booking links, and an append-only audit log of every calendar access "
        "(who, whose calendar, when, the result; no calendar content).",
        "Sign-in tokens and your organisation's connection credential are stored encrypted "
        "(AES-256-GCM) with keys kept outside the database. Disconnecting deletes them. People "
        "who leave the organisation lose access at once and are archived within 24 hours.",
        "OpenSlot runs in your organisation's own Azure subscription; data is not shared with "
        "anyone else. Ask your administrator to see, export or delete what is held about you.",
    ],
)
TERMS: Final = (
    "Terms of use",
    [
        "OpenSlot is provided by your organisation for scheduling interviews. Use it only for "
        "that purpose and according to your organisation's policies.",
        "Invitations are sent from your own Outlook calendar; you are responsible for the people "
        "you invite and for what you write in invitations.",
        "Candidate booking links are personal: share a link only with the candidate it is for.",
        "Your organisation's administrator can change or end access to OpenSlot at any time.",
    ],
)

_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "public, max-age=3600",
}


def render(title: str, paragraphs: list[str]) -> str:
    """One small accessible HTML page."""
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>OpenSlot: {html.escape(title)}</title>"
        f"<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;"
        f"padding:0 1rem;line-height:1.5}}</style></head>"
        f"<body><main><h1>OpenSlot: {html.escape(title)}</h1>\n{body}\n</main></body></html>\n"
    )


def _page(title: str, paragraphs: list[str]) -> web.Response:
    return web.Response(text=render(title, paragraphs), content_type="text/html", headers=_HEADERS)


async def privacy(_request: web.Request) -> web.Response:
    """``GET /privacy``."""
    return _page(*PRIVACY)


async def terms(_request: web.Request) -> web.Response:
    """``GET /terms``."""
    return _page(*TERMS)


def mount_legal_pages(app: web.Application) -> None:
    """Add ``/privacy`` and ``/terms`` to the bot's public app."""
    app.router.add_get("/privacy", privacy)
    app.router.add_get("/terms", terms)
