"""The candidate booking page: PURE server-side HTML (no I/O; Babel for localised dates, which is
why it lives here and not in the stdlib-only `cards` package).

Invariants: every dynamic value is HTML-escaped; the page loads nothing from anywhere (inline CSS and
one small inline script, both carrying the response's CSP nonce; the company logo is a ``data:``
image); it works without JavaScript (the day picker is links, the early/late times are a
``<details>``, the zone is a GET form; the script only switches to the browser's detected zone with a
plain GET); every state-changing control is a POST form carrying the page nonce. Times are shown in
the chosen zone and the browser's language; nothing but start/end times, the company, the role, the
organizer and the interviewers' first names the manager chose to show is rendered.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time

from cards.candidate_zones import COMMON_ZONES, all_zones, zone_title
from cards.local_time import format_duration, zone_label

__all__ = [
    "BookingView",
    "PageContext",
    "SlotChoice",
    "best_first",
    "negotiate_locale",
    "render_booking_page",
    "render_confirmation_page",
    "render_message_page",
]

_CSS = """
*{box-sizing:border-box}body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;
margin:0;color:#1b1b1b;background:#f5f5f7}main{max-width:44rem;margin:0 auto;padding:1rem}
h1{font-size:1.45rem;margin:.4rem 0}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
.brand{display:flex;align-items:center;gap:.6rem;font-weight:600;font-size:1.05rem}
.brand img{max-height:2.5rem;max-width:8rem}.card{background:#fff;border:1px solid #d1d1d1;
border-radius:.6rem;padding:1rem;margin:1rem 0}dl.facts{display:grid;grid-template-columns:auto 1fr;
gap:.2rem .8rem;margin:.6rem 0 0}dl.facts dt{color:#545454}dl.facts dd{margin:0;overflow-wrap:anywhere}
fieldset{border:0;padding:0;margin:0;min-width:0}legend{font-weight:600;padding:0}
ul{list-style:none;padding:0;margin:0}li{margin:.35rem 0}
label.slot{display:block;padding:.6rem .8rem;border:1px solid #8a8886;border-radius:.4rem;
background:#fff;cursor:pointer}label.slot:focus-within,label.slot:hover{outline:3px solid #4f52b2}
.best{font-size:.85rem;color:#0e700e;margin-left:.4rem}input[type=radio]{margin-right:.5rem}
button,.button{font:inherit;padding:.6rem 1rem;border-radius:.4rem;border:1px solid #4f52b2;
background:#4f52b2;color:#fff;cursor:pointer;margin-top:.8rem;display:inline-block;
text-decoration:none}button.secondary{background:#fff;color:#4f52b2}
select,input[type=email],input[type=search]{font:inherit;padding:.45rem;max-width:100%;width:100%;
border:1px solid #8a8886;border-radius:.3rem;background:#fff;color:#1b1b1b}
.zone{display:grid;gap:.4rem}.notice{padding:.6rem .8rem;border-left:4px solid #c50f1f;
background:#fff;margin:.8rem 0}.ok{border-left-color:#0e700e}.muted{color:#545454}
table.cal{border-collapse:collapse;width:100%;table-layout:fixed}table.cal caption{text-align:left;
font-weight:600;padding:.3rem 0}table.cal th{font-size:.8rem;color:#545454;font-weight:600;
padding:.2rem 0}table.cal td{padding:2px;text-align:center}
table.cal a,table.cal span{display:block;padding:.45rem 0;border-radius:.4rem;min-height:2.6rem}
table.cal a{background:#e8e8f7;color:#33358a;font-weight:600;text-decoration:none}
table.cal a.odd{background:#fff;border:1px dashed #6b6b6b}
table.cal a[aria-current]{background:#4f52b2;color:#fff;border:0}table.cal a:focus{outline:3px solid #1b1b1b}
table.cal span{color:#6b6b6b}details{margin:.8rem 0}summary{cursor:pointer;color:#33358a;
font-weight:600;padding:.3rem 0}a{color:#33358a}
"""
_SCRIPT = """(function(){try{var b=document.body.dataset;if(b.detect!=='1')return;
var z=Intl.DateTimeFormat().resolvedOptions().timeZone;if(z&&z!==b.tz){
location.replace(b.page+'?tz='+encodeURIComponent(z));}}catch(e){}})();"""
_LOCALES = (
    "en",
    "en_GB",
    "en_IN",
    "de",
    "fr",
    "es",
    "pt",
    "pt_BR",
    "it",
    "nl",
    "pl",
    "sv",
    "da",
    "nb",
    "fi",
    "cs",
    "tr",
    "ja",
    "ko",
    "zh",
    "hi",
    "ar",
    "he",
    "ru",
    "uk",
    "id",
)
_BEST = (10 * 60, 16 * 60)  # local minutes of a candidate's best hours: 10:00-16:00


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
    zones: tuple[str, ...] = ()  # unused (kept for callers); the picker uses `all_zones`
    locale: str = "en"  # a Babel locale id, see `negotiate_locale`
    day: date | None = None  # the day picked in the calendar (candidate's zone)
    detect_zone: bool = False  # a first GET without a chosen zone: the script may switch


@dataclass(frozen=True, slots=True)
class Company:
    """Tenant branding: a name and a ``data:`` logo (or empty)."""

    name: str
    logo: str = ""


@dataclass(frozen=True, slots=True)
class BookingView:
    """The offer as the candidate sees it."""

    duration_min: int
    display_names: tuple[str, ...]  # interviewers' first names, only when the manager chose to
    slots: tuple[SlotChoice, ...]
    needs_email: bool = False
    notice: str = ""
    booked: tuple[datetime, datetime] | None = None
    status: str = "open"  # "open" | "confirmed" | "cancelled" | ...
    can_change: bool = False
    changes_left: int = 0
    company: Company | None = None
    role: str = ""
    organizer: str = ""
    meeting_format: str = "Microsoft Teams video call"
    day_hours: tuple[int, int] = (8, 20)
    expires_at: datetime | None = None
    notice_ok: bool = field(default=False)


def negotiate_locale(accept_language: str | None) -> str:
    """The best supported locale for an ``Accept-Language`` header (``en`` when none fits)."""
    wanted: list[tuple[float, str]] = []
    for i, part in enumerate((accept_language or "").split(",")[:20]):
        lang, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        if lang and lang != "*" and len(lang) <= 35:
            wanted.append((weight - i / 1000, lang.strip()))
    preferred = [lang for _w, lang in sorted(wanted, reverse=True)]
    available = [name.replace("_", "-") for name in _LOCALES]
    found = (
        Locale.negotiate([p.replace("_", "-") for p in preferred], available, sep="-") if preferred else None
    )
    return str(found) if found else "en"


def best_first(
    slots: Sequence[SlotChoice], zone: ZoneInfo, day_hours: tuple[int, int]
) -> tuple[list[SlotChoice], list[SlotChoice]]:
    """(times inside the candidate's day, best first; times outside it, chronological).

    Best = nearest to 10:00-16:00 in the candidate's zone, then earliest.
    """
    inside, outside = [], []
    for slot in slots:
        local_start, local_end = slot.start.astimezone(zone), slot.end.astimezone(zone)
        start_min = local_start.hour * 60 + local_start.minute
        end_min = (local_end.hour * 60 + local_end.minute) or 24 * 60
        if local_end.date() > local_start.date() and local_end.time() != datetime.min.time():
            end_min = 24 * 60 + 1
        if start_min >= day_hours[0] * 60 and end_min <= day_hours[1] * 60:
            inside.append(slot)
        else:
            outside.append(slot)

    def distance(slot: SlotChoice) -> tuple[int, datetime]:
        local = slot.start.astimezone(zone)
        minute = local.hour * 60 + local.minute
        return max(0, _BEST[0] - minute, minute - _BEST[1]), slot.start

    return sorted(inside, key=distance), sorted(outside, key=lambda s: s.start)


# ---- pages ------------------------------------------------------------------------------------
def render_booking_page(ctx: PageContext, view: BookingView) -> str:
    """Pick a time: the interview's facts, the zone, a calendar of days and the day's times."""
    parts = [
        page_header(view),
        "<h1>Choose a time for your interview</h1>",
        page_notice(view.notice, ok=view.notice_ok),
        page_facts(ctx, view),
        page_zone_picker(ctx),
    ]
    if view.slots:
        parts.append(_picker(ctx, view, action="book", label="Book this time"))
    else:
        parts.append(
            "<p>There are no open times right now, so please reply to the person who "
            "sent you this link and ask for new times.</p>"
        )
    return page_document(ctx, "Choose a time for your interview", "".join(parts))


def render_confirmation_page(ctx: PageContext, view: BookingView) -> str:
    """The booked (or cancelled) interview, with move and cancel while still allowed."""
    if view.booked is None:
        raise ValueError("a confirmation page needs a booking")
    when = escape(page_when(ctx, view.booked[0], view.booked[1]))
    if view.status == "cancelled":
        body = (
            f"{page_header(view)}<h1>Interview cancelled</h1>{page_notice(view.notice, ok=True)}"
            f"<p>Your interview on <strong>{when}</strong> was cancelled; if you still want "
            "one, reply to the person who sent you this link.</p>"
        )
        return page_document(ctx, "Interview cancelled", body)
    parts = [
        page_header(view),
        "<h1>Your interview is booked</h1>",
        page_notice(view.notice, ok=True),
        f'<div class="card"><p><strong>{when}</strong></p><p>An invitation with the Teams '
        "meeting link is on its way to your email.</p>",
        page_facts(ctx, view, card=False),
        "</div>",
        page_zone_picker(ctx),
    ]
    if view.can_change:
        parts.append(_change_controls(ctx, view))
    else:
        parts.append('<p class="muted">To change this interview, reply to the invitation.</p>')
    return page_document(ctx, "Your interview is booked", "".join(parts))


def render_message_page(csp_nonce: str, title: str, text: str, *, link: str = "", link_text: str = "") -> str:
    """A one-sentence state page (expired, withdrawn, not found, too many requests, error)."""
    ctx = PageContext("", csp_nonce, "", ZoneInfo("UTC"))
    action = f'<p><a class="button" href="{escape(link)}">{escape(link_text)}</a></p>' if link else ""
    return page_document(ctx, title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>{action}", script=False)


def format_duration_min(minutes: int) -> str:
    """``45`` → ``45 min``; ``90`` → ``1 h 30 min``."""
    return format_duration(timedelta(minutes=minutes))


# ---- parts ------------------------------------------------------------------------------------
def page_header(view: BookingView) -> str:
    if view.company is None:
        return ""
    logo = ""
    if view.company.logo.startswith("data:image/"):
        logo = f'<img src="{escape(view.company.logo)}" alt="">'
    return f'<header class="brand">{logo}<span>{escape(view.company.name)}</span></header>'


def page_facts(ctx: PageContext, view: BookingView, *, card: bool = True) -> str:
    rows = []
    if view.role:
        rows.append(("Role", view.role))
    if view.organizer:
        rows.append(("Organizer", view.organizer))
    if view.display_names:
        rows.append(("Interviewers", ", ".join(view.display_names)))
    rows.append(("Duration", format_duration_min(view.duration_min)))
    rows.append(("Format", view.meeting_format))
    if view.expires_at is not None and view.booked is None:
        rows.append(("Book by", page_day_text(ctx, view.expires_at.astimezone(ctx.zone).date(), "long")))
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    facts = f'<dl class="facts">{items}</dl>'
    return f'<section class="card" aria-label="Interview details">{facts}</section>' if card else facts


def _change_controls(ctx: PageContext, view: BookingView) -> str:
    cancel = (
        f'<form method="post" action="{escape(ctx.base_path)}/cancel">'
        f'{page_hidden(ctx)}<button class="secondary" type="submit">Cancel my interview'
        "</button></form>"
    )
    if not view.slots or view.changes_left <= 0:
        return f"<h2>Need to change it?</h2>{cancel}"
    left = "once more" if view.changes_left == 1 else f"{view.changes_left} more times"
    return (
        f'<h2>Need another time?</h2><p class="muted">You can move it {left}.</p>'
        + _picker(ctx, view, action="reschedule", label="Move to this time")
        + cancel
    )


def _picker(ctx: PageContext, view: BookingView, *, action: str, label: str) -> str:
    by_day: dict[date, list[SlotChoice]] = {}
    for slot in view.slots:
        by_day.setdefault(slot.start.astimezone(ctx.zone).date(), []).append(slot)
    good_days = [d for d, s in by_day.items() if best_first(s, ctx.zone, view.day_hours)[0]]
    day = ctx.day if ctx.day in by_day else (good_days or list(by_day))[0]
    inside, outside = best_first(by_day[day], ctx.zone, view.day_hours)
    heading = page_day_text(ctx, day, "full")
    rows = "".join(_slot_row(ctx, s, action, best=i < 3 and len(inside) > 3) for i, s in enumerate(inside))
    start_h, end_h = (f"{h:02d}:00" for h in view.day_hours)
    if inside:
        times = f"<ul>{rows}</ul>"
    else:
        times = (
            f'<p class="muted">No times between {start_h} and {end_h} on this day; '
            "earlier and later ones are below.</p>"
        )
    more = ""
    if outside:
        count = len(outside)
        noun = "time" if count == 1 else "times"
        more = (
            f"<details{' open' if not inside else ''}><summary>Show early and late "
            f"{noun} ({count}, before {start_h} or after {end_h})</summary><ul>"
            + "".join(_slot_row(ctx, s, action) for s in outside)
            + "</ul></details>"
        )
    email = ""
    if view.needs_email and action == "book":
        email = (
            '<p><label for="email">Your email (for the invitation)</label><br>'
            '<input id="email" name="email" type="email" required autocomplete="email" '
            'maxlength="254"></p>'
        )
    calendar = _calendar(ctx, by_day, day, action, view.day_hours)
    return (
        f'<h2 id="{action}-days">Pick a day</h2>{calendar}'
        f'<form method="post" action="{escape(ctx.base_path)}/{action}">{page_hidden(ctx)}'
        f"<fieldset><legend>Times on {escape(heading)}, best first "
        f"({escape(zone_title(str(ctx.zone)))})</legend>{times}{more}</fieldset>{email}"
        f'<button type="submit">{escape(label)}</button></form>'
    )


def _calendar(
    ctx: PageContext,
    by_day: dict[date, list[SlotChoice]],
    chosen: date,
    action: str,
    day_hours: tuple[int, int],
) -> str:
    locale = _locale(ctx)
    first_weekday = locale.first_week_day
    days = sorted(by_day)
    start = days[0] - timedelta(days=(days[0].weekday() - first_weekday) % 7)
    end = days[-1]
    names = [locale.days["format"]["abbreviated"][(first_weekday + i) % 7] for i in range(7)]
    full = [locale.days["format"]["wide"][(first_weekday + i) % 7] for i in range(7)]
    head = "".join(
        f'<th scope="col"><abbr title="{escape(f)}">{escape(n)}</abbr></th>'
        for n, f in zip(names, full, strict=True)
    )
    months = {format_date(days[0], "LLLL y", locale=locale), format_date(end, "LLLL y", locale=locale)}
    caption = " \u2013 ".join(
        sorted(months, key=lambda m: m != format_date(days[0], "LLLL y", locale=locale))
    )
    weeks, cursor = [], start
    while cursor <= end:
        cells = []
        for _ in range(7):
            cell = _day_cell(ctx, cursor, by_day.get(cursor, []), chosen, action, day_hours)
            cells.append(f"<td>{cell}</td>")
            cursor += timedelta(days=1)
        weeks.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<table class="cal"><caption>{escape(caption)}</caption><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(weeks)}</tbody></table>"
    )


def _day_cell(
    ctx: PageContext,
    day: date,
    slots: list[SlotChoice],
    chosen: date,
    action: str,
    day_hours: tuple[int, int],
) -> str:
    if not slots:
        return f"<span>{day.day}</span>"
    count = len(slots)
    noun = "time" if count == 1 else "times"
    odd = not best_first(slots, ctx.zone, day_hours)[0]
    label = f"{page_day_text(ctx, day, 'full')}, {count} open {noun}" + (", all early or late" if odd else "")
    current = ' aria-current="date"' if day == chosen else ""
    cls = ' class="odd"' if odd else ""
    href = f"{ctx.base_path}?tz={_q(str(ctx.zone))}&day={day.isoformat()}#{action}-days"
    return f'<a href="{escape(href)}" aria-label="{escape(label)}"{current}{cls}>{day.day}</a>'


def _slot_row(ctx: PageContext, slot: SlotChoice, action: str, *, best: bool = False) -> str:
    ident = f"{action}-{slot.slot_id}"
    text = page_range(ctx, slot.start, slot.end)
    mark = '<span class="best">Suggested</span>' if best else ""
    return (
        f'<li><label class="slot" for="{escape(ident)}"><input type="radio" name="slot" '
        f'id="{escape(ident)}" value="{escape(slot.slot_id)}" required>'
        f"{escape(text)}{mark}</label></li>"
    )


def page_hidden(ctx: PageContext) -> str:
    return (
        f'<input type="hidden" name="nonce" value="{escape(ctx.form_nonce)}">'
        f'<input type="hidden" name="tz" value="{escape(str(ctx.zone))}">'
    )


def page_zone_picker(ctx: PageContext) -> str:
    current = str(ctx.zone)
    options = _zone_options(current, datetime.now(UTC).strftime("%Y%m%d%H"))
    every = _all_zone_options()
    return (
        f'<form method="get" action="{escape(ctx.base_path)}" class="zone">'
        f'<label for="tz">Times are shown in</label><select id="tz" name="tz">{options}'
        '</select><label for="tzq">Not listed? Search all time zones (a city or country)'
        '</label><input id="tzq" name="tzq" type="search" list="all-zones" '
        'autocomplete="off" maxlength="64">'
        f'<datalist id="all-zones">{every}</datalist><div><button class="secondary" '
        'type="submit">Change time zone</button></div></form>'
    )


@functools.lru_cache(maxsize=256)
def _zone_options(current: str, hour: str) -> str:  # noqa: ARG001 - ``hour`` keys the cache (DST)
    common = [z for z, _ in COMMON_ZONES]
    names = common if current in common else [current, *common]
    return "".join(
        f'<option value="{escape(z)}"{" selected" if z == current else ""}>{escape(zone_title(z))}</option>'
        for z in names
    )


@functools.lru_cache(maxsize=1)
def _all_zone_options() -> str:
    return "".join(f'<option value="{escape(z)}"></option>' for z in all_zones())


def page_notice(text: str, *, ok: bool = False) -> str:
    if not text:
        return ""
    cls = "notice ok" if ok else "notice"
    return f'<p class="{cls}" role="status">{escape(text)}</p>'


def page_document(ctx: PageContext, title: str, body: str, *, script: bool = True) -> str:
    nonce = escape(ctx.csp_nonce)
    js = f'<script nonce="{nonce}">{_SCRIPT}</script>' if script else ""
    lang = escape(ctx.locale.replace("_", "-"))
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f'<title>{escape(title)} · OpenSlot</title><style nonce="{nonce}">{_CSS}</style>'
        f'</head><body data-tz="{escape(str(ctx.zone))}" data-page="{escape(ctx.base_path)}"'
        f' data-detect="{1 if ctx.detect_zone else 0}">'
        f"<main>{body}</main>{js}</body></html>"
    )


# ---- localised text ---------------------------------------------------------------------------
def _locale(ctx: PageContext) -> Locale:
    return _parsed_locale(ctx.locale)


@functools.lru_cache(maxsize=64)
def _parsed_locale(name: str) -> Locale:
    try:
        return Locale.parse(name)
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def page_day_text(ctx: PageContext, day: date, width: str) -> str:
    return str(format_date(day, width, locale=_locale(ctx)))


def _clock(ctx: PageContext, local: datetime) -> str:
    return str(format_time(local.replace(tzinfo=None).time(), "short", locale=_locale(ctx)))


def page_range(ctx: PageContext, start: datetime, end: datetime) -> str:
    s, e = start.astimezone(ctx.zone), end.astimezone(ctx.zone)
    return f"{_clock(ctx, s)}\u2013{_clock(ctx, e)} {zone_label(s)}"


def page_when(ctx: PageContext, start: datetime, end: datetime) -> str:
    day = page_day_text(ctx, start.astimezone(ctx.zone).date(), "full")
    return f"{day}, {page_range(ctx, start, end)}"


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
