"""The candidate page of a loop link (issue 17): PURE server-side HTML, on `candidate_view`'s shell.

One link books a whole interview loop: the page lists whole-loop options by day (the candidate's
zone), each option a radio button whose label reads the loop's span and every session's title and
times (never an interviewer's or a room's address); ONE form post books the whole loop. The
confirmation lists every session; a booked loop can be moved whole (the same picker) or cancelled
whole while the link allows it. Keyboard and screen readers: native radio groups in one fieldset per
day with a legend, each option's sessions a list tied to its radio (``aria-describedby``), status
notices in ``role="status"``; it works without JavaScript, like the single-meeting page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from html import escape

from dialogs.candidate_view import (
    BookingView,
    PageContext,
    page_day_text,
    page_document,
    page_facts,
    page_header,
    page_hidden,
    page_notice,
    page_range,
    page_when,
    page_zone_picker,
)

__all__ = [
    "LoopChoice",
    "LoopSession",
    "LoopView",
    "render_loop_booking_page",
    "render_loop_confirmation_page",
]


@dataclass(frozen=True, slots=True)
class LoopSession:
    """One session as the candidate sees it: a title and its times (aware UTC)."""

    title: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class LoopChoice:
    """One whole-loop option; ``option_id`` is opaque."""

    option_id: str
    sessions: tuple[LoopSession, ...]

    @property
    def start(self) -> datetime:
        return min(s.start for s in self.sessions)

    @property
    def end(self) -> datetime:
        return max(s.end for s in self.sessions)


@dataclass(frozen=True, slots=True)
class LoopView:
    """A loop link as the candidate sees it: the single page's facts plus the loop's parts."""

    base: BookingView
    title: str
    options: tuple[LoopChoice, ...] = ()
    booked: tuple[LoopSession, ...] = ()


def render_loop_booking_page(ctx: PageContext, view: LoopView) -> str:
    """Pick a whole loop: the facts, the zone, then options by day, one form."""
    parts = [
        page_header(view.base),
        "<h1>Choose a time for your interviews</h1>",
        page_notice(view.base.notice, ok=view.base.notice_ok),
        page_facts(ctx, view.base),
        page_zone_picker(ctx),
    ]
    if view.options:
        parts.append(_picker(ctx, view, action="book", label="Book all these interviews"))
    else:
        parts.append(
            "<p>There are no open times right now, so please reply to the person who "
            "sent you this link and ask for new times.</p>"
        )
    return page_document(ctx, "Choose a time for your interviews", "".join(parts))


def render_loop_confirmation_page(ctx: PageContext, view: LoopView) -> str:
    """The booked (or cancelled) loop with every session; move or cancel it whole while allowed."""
    if not view.booked:
        raise ValueError("a confirmation page needs a booking")
    sessions = _sessions(ctx, view.booked, "booked")
    if view.base.status == "cancelled":
        body = (
            f"{page_header(view.base)}<h1>Interviews cancelled</h1>{page_notice(view.base.notice, ok=True)}"
            f"<p>These interviews were cancelled; if you still want them, reply to the person "
            f"who sent you this link.</p>{sessions}"
        )
        return page_document(ctx, "Interviews cancelled", body)
    parts = [
        page_header(view.base),
        "<h1>Your interviews are booked</h1>",
        page_notice(view.base.notice, ok=True),
        f'<section class="card" aria-labelledby="booked-title"><h2 id="booked-title">'
        f"{escape(view.title)}</h2>{sessions}<p>Invitations with the Teams meeting link are on "
        "their way to your email.</p>",
        page_facts(ctx, view.base, card=False),
        "</section>",
        page_zone_picker(ctx),
    ]
    if view.base.can_change:
        parts.append(_change_controls(ctx, view))
    else:
        parts.append('<p class="muted">To change these interviews, reply to the invitation.</p>')
    return page_document(ctx, "Your interviews are booked", "".join(parts))


def _change_controls(ctx: PageContext, view: LoopView) -> str:
    cancel = (
        f'<form method="post" action="{escape(ctx.base_path)}/cancel">'
        f'{page_hidden(ctx)}<button class="secondary" type="submit">Cancel all my interviews'
        "</button></form>"
    )
    if not view.options or view.base.changes_left <= 0:
        return f"<h2>Need to change them?</h2>{cancel}"
    left = "once more" if view.base.changes_left == 1 else f"{view.base.changes_left} more times"
    return (
        f'<h2>Need another time?</h2><p class="muted">You can move all of them together {left}.</p>'
        + _picker(ctx, view, action="reschedule", label="Move all interviews to this time")
        + cancel
    )


def _picker(ctx: PageContext, view: LoopView, *, action: str, label: str) -> str:
    by_day: dict[date, list[LoopChoice]] = {}
    for option in sorted(view.options, key=lambda o: o.start):
        by_day.setdefault(option.start.astimezone(ctx.zone).date(), []).append(option)
    days = "".join(
        f'<fieldset class="card"><legend>{escape(page_day_text(ctx, day, "full"))}</legend><ul>'
        + "".join(_option_row(ctx, o, action) for o in options)
        + "</ul></fieldset>"
        for day, options in by_day.items()
    )
    email = ""
    if view.base.needs_email and action == "book":
        email = (
            '<p><label for="email">Your email (for the invitations)</label><br>'
            '<input id="email" name="email" type="email" required autocomplete="email" '
            'maxlength="254"></p>'
        )
    return (
        f'<h2 id="{action}-days">Pick a day and time</h2>'
        f'<form method="post" action="{escape(ctx.base_path)}/{action}">{page_hidden(ctx)}{days}{email}'
        f'<button type="submit">{escape(label)}</button></form>'
    )


def _option_row(ctx: PageContext, option: LoopChoice, action: str) -> str:
    ident = f"{action}-{option.option_id}"
    value = f"{option.option_id}.{option.start.strftime('%Y%m%dT%H%MZ')}"
    return (
        f'<li><label class="slot" for="{escape(ident)}"><input type="radio" name="loop" '
        f'id="{escape(ident)}" value="{escape(value)}" aria-describedby="{escape(ident)}-s" required>'
        f"{escape(page_range(ctx, option.start, option.end))}</label>"
        f"{_sessions(ctx, option.sessions, ident + '-s', day=False)}</li>"
    )


def _sessions(ctx: PageContext, sessions: tuple[LoopSession, ...], ident: str, *, day: bool = True) -> str:
    items = "".join(
        f"<li><strong>{escape(s.title)}</strong>: "
        f"{escape(page_when(ctx, s.start, s.end) if day else page_range(ctx, s.start, s.end))}</li>"
        for s in sorted(sessions, key=lambda s: s.start)
    )
    return f'<ul class="muted sessions" id="{escape(ident)}">{items}</ul>'
