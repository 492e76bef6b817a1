"""The candidate booking page: PURE server-side HTML (stdlib only, no I/O).

Invariants: every dynamic value is HTML-escaped; the page loads nothing from anywhere (inline CSS
and one small inline script, both carrying the response's CSP nonce); it works without
JavaScript (the script only switches to the browser's detected time zone with a plain GET); every
state-changing control is a POST form carrying the page nonce. Times are shown in the chosen
zone; nothing but start/end times and the names the manager chose to show is rendered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from itertools import groupby
from zoneinfo import ZoneInfo

from cards.local_time import format_duration, format_range

__all__ = [
    "BookingView",
    "PageContext",
    "SlotChoice",
    "render_booking_page",
    "render_confirmation_page",
    "render_message_page",
]

_CSS = """
*{box-sizing:border-box}body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;
margin:0;color:#1b1b1b;background:#f7f7f9}main{max-width:40rem;margin:0 auto;padding:1rem}
h1{font-size:1.4rem}h2{font-size:1.05rem;margin:1.2rem 0 .4rem}
fieldset{border:0;padding:0;margin:0}ul{list-style:none;padding:0;margin:0}
li{margin:.3rem 0}label.slot{display:block;padding:.6rem .8rem;border:1px solid #8a8886;
border-radius:.4rem;background:#fff;cursor:pointer}label.slot:focus-within{outline:3px solid #4f52b2}
input[type=radio]{margin-right:.5rem}button{font:inherit;padding:.6rem 1rem;border-radius:.4rem;
border:1px solid #4f52b2;background:#4f52b2;color:#fff;cursor:pointer;margin-top:.8rem}
button.secondary{background:#fff;color:#4f52b2}select,input[type=email]{font:inherit;
padding:.4rem;max-width:100%}.notice{padding:.6rem .8rem;border-left:4px solid #c50f1f;
background:#fff}.ok{border-left-color:#107c10}.muted{color:#605e5c}
"""
_SCRIPT = """(function(){try{var p=new URLSearchParams(location.search);if(p.has('tz'))return;
var z=Intl.DateTimeFormat().resolvedOptions().timeZone;var c=document.body.dataset.tz;
if(z&&z!==c&&document.body.dataset.zones.split(' ').indexOf(z)>=0){
location.replace(location.pathname+'?tz='+encodeURIComponent(z));}}catch(e){}})();"""


@dataclass(frozen=True, slots=True)
class SlotChoice:
    """One open time the candidate may pick; ``slot_id`` is opaque, times are aware UTC."""

    slot_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class PageContext:
    """What every candidate page needs: where forms post, the nonces and the shown zone."""

    base_path: str  # the page's own path, e.g. "/c/<capability>"
    csp_nonce: str
    form_nonce: str
    zone: ZoneInfo
    zones: tuple[str, ...]  # the zone picker's choices (IANA names)


@dataclass(frozen=True, slots=True)
class BookingView:
    """The offer as the candidate sees it."""

    duration_min: int
    display_names: tuple[str, ...]
    slots: tuple[SlotChoice, ...]
    needs_email: bool = False
    notice: str = ""
    booked: tuple[datetime, datetime] | None = None
    status: str = "open"  # "open" | "confirmed" | "cancelled" | ...
    can_change: bool = False
    changes_left: int = 0


def render_booking_page(ctx: PageContext, view: BookingView) -> str:
    """The slot list: a zone picker (GET) and one POST form with a radio per open time."""
    intro = f"Pick a time for your {format_duration_min(view.duration_min)} interview"
    if view.display_names:
        intro += " with " + ", ".join(view.display_names)
    parts = [f"<h1>Choose your interview time</h1><p>{escape(intro)}.</p>",
             _notice(view.notice), _zone_picker(ctx)]
    if view.slots:
        parts.append(_slot_form(ctx, view, action="book", label="Book this time"))
    else:
        parts.append("<p>There are no open times right now. Please contact the person who "
                     "sent you this link.</p>")
    return _document(ctx, "Choose your interview time", "".join(parts))


def render_confirmation_page(ctx: PageContext, view: BookingView) -> str:
    """The booked (or cancelled) interview, with cancel and reschedule when still allowed."""
    if view.booked is None:
        raise ValueError("a confirmation page needs a booking")
    when = escape(format_range(view.booked[0], view.booked[1], ctx.zone))
    if view.status == "cancelled":
        body = (f"<h1>Interview cancelled</h1>{_notice(view.notice, ok=True)}"
                f"<p>Your interview on <strong>{when}</strong> was cancelled.</p>")
        return _document(ctx, "Interview cancelled", body)
    parts = ["<h1>Your interview is booked</h1>", _notice(view.notice, ok=True),
             f"<p><strong>{when}</strong></p><p>An invitation with the meeting link is on its "
             "way to your email.</p>", _zone_picker(ctx)]
    if view.can_change:
        parts.append(_change_controls(ctx, view))
    return _document(ctx, "Your interview is booked", "".join(parts))


def render_message_page(csp_nonce: str, title: str, text: str) -> str:
    """A plain page for errors (gone, not found, too many requests, forbidden)."""
    ctx = PageContext("", csp_nonce, "", ZoneInfo("UTC"), ())
    return _document(ctx, title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>",
                     script=False)


def format_duration_min(minutes: int) -> str:
    """``45`` → ``45 min``; ``90`` → ``1 h 30 min``."""
    from datetime import timedelta

    return format_duration(timedelta(minutes=minutes))


def _change_controls(ctx: PageContext, view: BookingView) -> str:
    cancel = (f'<form method="post" action="{escape(ctx.base_path)}/cancel">'
              f"{_hidden(ctx)}<button class=\"secondary\" type=\"submit\">Cancel my interview"
              "</button></form>")
    if not view.slots or view.changes_left <= 0:
        return f"<h2>Need to change it?</h2>{cancel}"
    return (f"<h2>Need another time?</h2><p class=\"muted\">You can move it "
            f"{view.changes_left} more time(s).</p>"
            + _slot_form(ctx, view, action="reschedule", label="Move to this time") + cancel)


def _slot_form(ctx: PageContext, view: BookingView, *, action: str, label: str) -> str:
    groups = []
    for day, items in groupby(view.slots, key=lambda s: s.start.astimezone(ctx.zone).date()):
        rows = "".join(_slot_row(ctx, s, action) for s in items)
        groups.append(f"<h2>{escape(day.strftime('%A %d %B'))}</h2><ul>{rows}</ul>")
    email = ""
    if view.needs_email and action == "book":
        email = ('<p><label for="email">Your email (for the invitation)</label><br>'
                 '<input id="email" name="email" type="email" required autocomplete="email" '
                 'maxlength="254"></p>')
    return (f'<form method="post" action="{escape(ctx.base_path)}/{action}">{_hidden(ctx)}'
            f'<fieldset><legend>Open times ({escape(_zone_name(ctx))})</legend>'
            f"{''.join(groups)}</fieldset>{email}"
            f'<button type="submit">{escape(label)}</button></form>')


def _slot_row(ctx: PageContext, slot: SlotChoice, action: str) -> str:
    ident = f"{action}-{slot.slot_id}"
    text = format_range(slot.start, slot.end, ctx.zone, with_day=False)
    return (f'<li><label class="slot" for="{escape(ident)}"><input type="radio" name="slot" '
            f'id="{escape(ident)}" value="{escape(slot.slot_id)}" required>'
            f"{escape(text)}</label></li>")


def _hidden(ctx: PageContext) -> str:
    return (f'<input type="hidden" name="nonce" value="{escape(ctx.form_nonce)}">'
            f'<input type="hidden" name="tz" value="{escape(str(ctx.zone))}">')


def _zone_picker(ctx: PageContext) -> str:
    current = str(ctx.zone)
    names: Sequence[str] = ctx.zones if current in ctx.zones else (current, *ctx.zones)
    options = "".join(
        f'<option value="{escape(z)}"{" selected" if z == current else ""}>{escape(z)}</option>'
        for z in names)
    return (f'<form method="get" action="{escape(ctx.base_path)}"><label for="tz">Times are '
            f"shown in</label> <select id=\"tz\" name=\"tz\">{options}</select> "
            '<button class="secondary" type="submit">Change time zone</button></form>')


def _zone_name(ctx: PageContext) -> str:
    return str(ctx.zone)


def _notice(text: str, *, ok: bool = False) -> str:
    if not text:
        return ""
    cls = "notice ok" if ok else "notice"
    return f'<p class="{cls}" role="status">{escape(text)}</p>'


def _document(ctx: PageContext, title: str, body: str, *, script: bool = True) -> str:
    nonce = escape(ctx.csp_nonce)
    js = f'<script nonce="{nonce}">{_SCRIPT}</script>' if script else ""
    zones = escape(" ".join(ctx.zones))
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="robots" content="noindex, nofollow">'
            f"<title>{escape(title)} · OpenSlot</title><style nonce=\"{nonce}\">{_CSS}</style>"
            f'</head><body data-tz="{escape(str(ctx.zone))}" data-zones="{zones}">'
            f"<main>{body}</main>{js}</body></html>")
