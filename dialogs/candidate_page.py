"""The public candidate booking page at ``/c/{token}`` on the bot app (aiohttp handlers).

- ``GET``/``HEAD /c/{token}[?tz=Zone]``: read-only (mail scanners fetch links first): asks the
  Calendar Service for the offer and its live open slots and renders them.
- ``POST /c/{token}/book|cancel|reschedule``: form posts carrying the page nonce (an HMAC of the
  token hash and the issue time under the deployment's form key, see `form_key`, valid
  ``nonce_ttl_s``; every bot instance of one deployment derives the same key, so a page served by one
  instance can be posted to another); a missing or bad nonce is 403. A successful change tells the
  manager in Teams (proactive message on the conversation reference the Calendar Service returns only
  then) and redirects (303) to the page.
- Every response carries the security headers (strict nonce CSP, no-referrer, nosniff,
  frame-ancestors none, no-store, HSTS). Requests are rate limited per link and per client IP
  (``request.remote``; ``X-Forwarded-For`` only when ``trust_forwarded_for``). The buckets live in
  this process: behind several bot instances, use a shared store or limit at the proxy.
- The capability token is never logged (see `RedactingAccessLogger`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.schema import ConversationReference

from calendar_backend import errors
from calendar_backend.client import CalendarServiceClient
from calendar_backend.contract import OutboundPolicy, OutboundUrlError, check_outbound_url, parse_time
from cards.candidate_notice import build_candidate_notice
from cards.candidate_zones import all_zones, canonical_zone, find_zone
from cards.local_time import format_range
from dialogs.candidate_loop_view import (
    LoopChoice,
    LoopSession,
    LoopView,
    render_loop_booking_page,
    render_loop_confirmation_page,
)
from dialogs.candidate_view import (
    BookingView,
    Company,
    PageContext,
    SlotChoice,
    negotiate_locale,
    render_booking_page,
    render_confirmation_page,
    render_message_page,
)
from dialogs.deployment_key import deployment_key
from dialogs.form_nonces import MemoryNonceLedger, NonceLedger
from dialogs.rate_limit import KeyedTokenBuckets

LOG = logging.getLogger("openslot.candidate")
_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{40,128}$")
_SLOT = re.compile(r"^\d{8}T\d{4}Z$")
_LOOP = re.compile(r"^([0-9a-f]{20})\.(\d{8}T\d{4}Z)$")  # a loop option: "<id>.<first start>"
_MAX_FORM = 4096
FORM_KEY_BYTES = 32
_FORM_KEY_INFO = b"openslot/candidate-form-nonce/v1"
ZONES: tuple[str, ...] = all_zones()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class CandidatePageConfig:
    """Settings of the candidate page (built once by bot.py from its settings)."""

    calendar_service_url: str
    bot_app_id: str = ""
    trust_forwarded_for: bool = False
    link_rate_per_min: float = 30.0
    link_burst: int = 20
    ip_rate_per_min: float = 60.0
    ip_burst: int = 40
    nonce_ttl_s: int = 3600
    nonce_key: bytes = field(default_factory=lambda: secrets.token_bytes(FORM_KEY_BYTES), repr=False)
    timeout_s: float = 30.0


def form_key(configured: str, app_password: str) -> bytes:
    """The key of the candidate page's form nonces, the same on every bot instance of a deployment.

    ``configured`` (OPENSLOT_BOT_FORM_KEY, base64 of at least 32 random bytes) wins. Otherwise the key is
    derived from the bot's app password with HKDF-SHA256 (a separate purpose, so the password itself is
    never the HMAC key): every instance shares the password, and rotating it rotates this key (pages
    open at that moment get a "reload" answer). With neither (the dev profile only has no password) the
    key is random per process, which is right for one local instance only.

    Raises:
        ValueError: ``configured`` is not base64 of at least 32 bytes.
    """
    key = deployment_key(
        configured, app_password, setting="OPENSLOT_BOT_FORM_KEY", info=_FORM_KEY_INFO, size=FORM_KEY_BYTES
    )
    return secrets.token_bytes(FORM_KEY_BYTES) if key is None else key


def make_form_nonce(key: bytes, token_hash: bytes, issued_s: int, salt: str | None = None) -> str:
    """``<issued>.<salt>.<hex HMAC-SHA256(key, token_hash | issued | salt)>``: binds a form to its
    link; the random salt makes every page's nonce distinct (each is spent once, see `_change`)."""
    salt = secrets.token_hex(8) if salt is None else salt
    mac = hmac.new(key, token_hash + f"{issued_s}.{salt}".encode(), hashlib.sha256).hexdigest()
    return f"{issued_s}.{salt}.{mac}"


def check_form_nonce(key: bytes, token_hash: bytes, nonce: str, now_s: int, ttl_s: int) -> bool:
    """True when ``nonce`` was made for this link by this key no more than ``ttl_s`` ago."""
    issued_raw, _, rest = nonce.partition(".")
    salt, _, _mac = rest.partition(".")
    # ASCII digits only: `isdigit`/`int` take any Unicode digit, and `compare_digest` raises on
    # a non-ASCII str (a 500 instead of a 403).
    if (
        not nonce.isascii()
        or len(nonce) > 120
        or not re.fullmatch(r"[0-9]{1,12}", issued_raw)
        or not re.fullmatch(r"[0-9a-f]{16}", salt)
    ):
        return False
    issued = int(issued_raw)
    if not (now_s - ttl_s <= issued <= now_s + 5):
        return False
    return hmac.compare_digest(make_form_nonce(key, token_hash, issued, salt), nonce)


def security_headers(csp_nonce: str) -> dict[str, str]:
    """The headers every candidate response carries."""
    csp = (
        f"default-src 'none'; script-src 'nonce-{csp_nonce}'; style-src 'nonce-{csp_nonce}'; "
        "img-src data:; connect-src 'none'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": csp,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
        "X-Robots-Tag": "noindex, nofollow",
    }


class RedactingAccessLogger(AbstractAccessLogger):
    """aiohttp access log line without capability tokens (``/c/<redacted>``)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = redact_path(request.path)
        self.logger.info("%s %s %s %.3fs", request.method, path, response.status, time)


def redact_path(path: str) -> str:
    """Replace the capability in a candidate path with ``<redacted>``."""
    return re.sub(r"^/c/[^/?]+", "/c/<redacted>", path)


# ---- app wiring -------------------------------------------------------------------------------
@dataclass
class _Runtime:
    config: CandidatePageConfig
    adapter: Any
    service_url_policy: OutboundPolicy
    link_limit: KeyedTokenBuckets
    ip_limit: KeyedTokenBuckets
    nonces: NonceLedger  # spent form nonces: one change per page (dialogs/form_nonces.py)
    client: CalendarServiceClient | None = None


_RUNTIME = web.AppKey("candidate_page", _Runtime)
_CSP_NONCE = web.RequestKey("csp_nonce", str)


def mount_candidate_pages(
    app: web.Application,
    config: CandidatePageConfig,
    *,
    adapter: Any,
    service_url_policy: OutboundPolicy,
    nonce_ledger: NonceLedger | None = None,
) -> None:
    """Register the candidate routes (and their HTTP client's lifecycle) on the bot app.
    ``nonce_ledger``: where spent form nonces are kept (default: this process only)."""
    app[_RUNTIME] = _Runtime(
        config,
        adapter,
        service_url_policy,
        KeyedTokenBuckets(config.link_rate_per_min, burst=config.link_burst),
        KeyedTokenBuckets(config.ip_rate_per_min, burst=config.ip_burst),
        nonce_ledger or MemoryNonceLedger(config.nonce_ttl_s),
    )

    async def lifecycle(app_: web.Application):  # type: ignore[no-untyped-def]
        session = aiohttp.ClientSession()
        app_[_RUNTIME].client = CalendarServiceClient(
            config.calendar_service_url, session, timeout_s=config.timeout_s
        )
        yield
        await session.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/c/{token}", _guard(_show))
    for action in ("book", "cancel", "reschedule"):
        app.router.add_post(f"/c/{{token}}/{action}", _guard(_change))
    app.router.add_get("/robots.txt", _robots)


async def _robots(_request: web.Request) -> web.Response:
    return web.Response(text="User-agent: *\nDisallow: /c/\n")


def _guard(handler: Handler) -> Handler:
    """Headers, rate limits, token format and the error pages around a candidate handler."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        csp = secrets.token_urlsafe(16)
        request[_CSP_NONCE] = csp
        try:
            response = await _limited(request, handler)
        except errors.CalendarError as err:
            response = _error_page(csp, err)
        response.headers.update(security_headers(csp))
        return response

    return guarded


async def _limited(request: web.Request, handler: Handler) -> web.StreamResponse:
    rt = request.app[_RUNTIME]
    token = request.match_info["token"]
    wait = max(
        rt.ip_limit.take(client_ip(request, rt.config.trust_forwarded_for)),
        rt.link_limit.take(hashlib.sha256(token.encode()).hexdigest()),
    )
    if wait > 0:
        raise errors.RateLimitedError(wait)
    if not _TOKEN.fullmatch(token):
        raise errors.NotFoundError()
    return await handler(request)


def client_ip(request: web.Request, trust_forwarded_for: bool) -> str:
    """The peer address; the right-most ``X-Forwarded-For`` hop only behind a trusted proxy."""
    if trust_forwarded_for:
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
        if hops and hops[-1]:
            return hops[-1][:64]
    return request.remote or "-"


def _error_page(csp: str, err: errors.CalendarError) -> web.Response:
    title, text = state_message(err)
    headers = {}
    retry = getattr(err, "retry_after_s", None)
    if retry is not None:
        headers["Retry-After"] = str(max(1, round(retry)))
    status = err.status if err.status in _STATES else 502
    return web.Response(
        text=render_message_page(csp, title, text),
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers=headers,
    )


_STATES: dict[int, tuple[str, str]] = {
    404: (
        "Link not found",
        "This booking link is not valid, so please check that you copied "
        "all of it or ask the person who sent it for a new one.",
    ),
    410: (
        "This link was withdrawn",
        "The person who sent you this link withdrew it, so please reply to them for a new one.",
    ),
    409: (
        "Already booked",
        "This link was already used to book an interview, so please open the link again to see the booking.",
    ),
    429: (
        "Too many requests",
        "This link was opened too often in a short time, so please wait a minute and reload the page.",
    ),
    403: (
        "Please reload the page",
        "This page was open too long to accept your choice, so please reload it and choose again.",
    ),
    400: (
        "Please choose again",
        "That choice was not one of the open times, so please reload the page and pick a time.",
    ),
}
_EXPIRED = (
    "This link has expired",
    "The time to book with this link is over, so please reply to the person who sent it for a new one.",
)
_ERROR = (
    "Something went wrong",
    "We could not load your booking just now, so please try again in a few minutes; nothing was changed.",
)


def state_message(err: errors.CalendarError) -> tuple[str, str]:
    """Title and one sentence (what happened, what to do next) for a failed candidate request."""
    if err.status == 410 and "expired" in err.message.lower():
        return _EXPIRED
    return _STATES.get(err.status, _ERROR)


# ---- handlers ---------------------------------------------------------------------------------
_DONE_NOTICES = {
    "cancelled": "Interview cancelled: you can pick a new time below if you like.",
    "moved": "Done: your interview was moved to the new time.",
}


async def _show(request: web.Request) -> web.Response:
    notice = _DONE_NOTICES.get(request.query.get("done", ""), "")
    tz = _zone_param(request.query.get("tz"))
    query = request.query.get("tzq", "").strip()[:64]
    searched = find_zone(query) if query else None
    if query and searched is None:
        notice = (
            "No time zone matches that search, so the times stay as they were; try a city "
            "such as Mumbai or New York."
        )
    return await _render(request, searched or tz, notice, notice_ok=not (query and not searched))


async def _render(
    request: web.Request, tz: str | None, notice: str = "", status: int = 200, *, notice_ok: bool = True
) -> web.Response:
    rt, token = request.app[_RUNTIME], request.match_info["token"]
    assert rt.client is not None  # noqa: S101 - set by the app's cleanup context
    doc = await rt.client.candidate_slots(token, tz)
    zone = _zone(tz) or _zone(str(doc.get("tz"))) or ZoneInfo("UTC")
    ctx = _page_context(request, token, zone)
    view = _view(doc, notice, ok=notice_ok and status < 400)
    if isinstance(doc.get("loop"), dict):  # a loop link (issue 17): whole-loop options, one post
        loop = _loop_view(doc, view)
        html = (render_loop_confirmation_page if loop.booked else render_loop_booking_page)(ctx, loop)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    html = render_confirmation_page(ctx, view) if view.booked else render_booking_page(ctx, view)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


async def _change(request: web.Request) -> web.StreamResponse:
    rt, token = request.app[_RUNTIME], request.match_info["token"]
    assert rt.client is not None  # noqa: S101
    form = await _form(request)
    token_hash = hashlib.sha256(token.encode()).digest()
    if not check_form_nonce(
        rt.config.nonce_key, token_hash, form.get("nonce", ""), int(time.time()), rt.config.nonce_ttl_s
    ):
        raise errors.PermissionDeniedError()
    if not await rt.nonces.spend(form["nonce"]):  # single-use: a replayed form changes nothing
        raise errors.PermissionDeniedError()
    action = request.path.rsplit("/", 1)[1]
    tz = _zone_param(form.get("tz"))
    try:
        outcome = await _call(rt.client, action, token, form)
    except errors.SlotTakenError:
        notice = "Sorry, that time was just taken, so please pick one of the times still open."
        return await _render(request, tz, notice, 409)
    except errors.ConflictError as err:  # e.g. a second tab: show where things stand now
        notice = (
            "This link already has a booking (perhaps from another tab); here it is."
            if action == "book"
            else f"{err.message.rstrip('.')}, so here is this link as it stands now."
        )
        return await _render(request, tz, notice, 409)
    await notify_manager(rt, outcome)
    query = [f"tz={quote(tz, safe='')}"] if tz else []
    if action == "cancel" and outcome.get("reopened"):
        query.append("done=cancelled")  # the link books again: say the cancel went through
    elif action == "reschedule":
        query.append("done=moved")
    target = f"/c/{token}" + (f"?{'&'.join(query)}" if query else "")
    return web.Response(status=303, headers={"Location": target})


async def _call(
    client: CalendarServiceClient, action: str, token: str, form: dict[str, str]
) -> dict[str, Any]:
    if action == "cancel":
        return await client.candidate_cancel(token)
    if "loop" in form:  # a loop link: the whole loop, one post
        found = _LOOP.fullmatch(form["loop"])
        if found is None:
            raise errors.ValidationError("loop", "is missing")
        first = datetime.strptime(found.group(2), "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
        if action == "book":
            return await client.candidate_book(token, first, form.get("email") or None, option=found.group(1))
        return await client.candidate_reschedule(token, first, option=found.group(1))
    slot = form.get("slot", "")
    if not _SLOT.fullmatch(slot):
        raise errors.ValidationError("slot", "is missing")
    start = datetime.strptime(slot, "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
    if action == "book":
        return await client.candidate_book(token, start, form.get("email") or None)
    return await client.candidate_reschedule(token, start)


async def _form(request: web.Request) -> dict[str, str]:
    if request.content_length is not None and request.content_length > _MAX_FORM:
        raise errors.ValidationError("body", "is too large")
    if request.content_type != "application/x-www-form-urlencoded":
        raise errors.PermissionDeniedError()
    try:  # bytes that are not the declared charset (or an unknown one) are the sender's fault
        data = await request.post()
    except (UnicodeDecodeError, LookupError) as exc:
        raise errors.ValidationError("body", "is not a readable form") from exc
    return {k: str(v)[:256] for k, v in data.items() if isinstance(v, str)}


def _page_context(request: web.Request, token: str, zone: ZoneInfo) -> PageContext:
    rt = request.app[_RUNTIME]
    token_hash = hashlib.sha256(token.encode()).digest()
    nonce = make_form_nonce(rt.config.nonce_key, token_hash, int(time.time()))
    return PageContext(
        f"/c/{token}",
        request[_CSP_NONCE],
        nonce,
        zone,
        (),
        negotiate_locale(request.headers.get("Accept-Language")),
        _day_param(request.query.get("day")),
        detect_zone=request.method in ("GET", "HEAD")
        and not (request.query.get("tz") or request.query.get("tzq")),
    )


def _day_param(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw and len(raw) == 10 else None
    except ValueError:
        return None


def _view(doc: dict[str, Any], notice: str, *, ok: bool = True) -> BookingView:
    slots = tuple(
        SlotChoice(str(s["slot_id"]), parse_time(s["start"]), parse_time(s["end"]))
        for s in doc.get("slots", [])
    )
    booking = doc.get("booking")
    booked = (parse_time(booking["start"]), parse_time(booking["end"])) if booking else None
    return BookingView(
        duration_min=int(doc.get("duration_min", 30)),
        display_names=tuple(str(n) for n in doc.get("display_names", [])),
        slots=slots,
        needs_email=bool(doc.get("needs_email")),
        notice=notice,
        booked=booked,
        status=str(booking["status"]) if booking else "open",
        can_change=bool(doc.get("can_change")),
        changes_left=int(doc.get("changes_left", 0)),
        company=_company(doc.get("company")),
        role=str(doc.get("role") or ""),
        organizer=str(doc.get("organizer_name") or ""),
        meeting_format=str(doc.get("format") or "Microsoft Teams video call"),
        day_hours=_day_hours(doc.get("day_hours")),
        expires_at=parse_time(doc["expires_at"]) if doc.get("expires_at") else None,
        notice_ok=ok,
    )


def _loop_view(doc: dict[str, Any], base: BookingView) -> LoopView:
    """A loop link's page (`dialogs.candidate_loop_view`): its options and its booked sessions."""
    loop, booking = doc["loop"], doc.get("booking") or {}

    def sessions(raw: Any) -> tuple[LoopSession, ...]:
        return tuple(
            LoopSession(str(s["title"]), parse_time(s["start"]), parse_time(s["end"])) for s in raw or []
        )

    options = tuple(
        LoopChoice(str(o["option_id"]), sessions(o["sessions"]))
        for day in loop.get("days", [])
        for o in day.get("options", [])
    )
    return LoopView(base, str(loop.get("title") or ""), options, sessions(booking.get("sessions")))


def _company(doc: Any) -> Company | None:
    if not isinstance(doc, dict) or not doc.get("name"):
        return None
    return Company(str(doc["name"]), str(doc.get("logo") or ""))


def _day_hours(raw: Any) -> tuple[int, int]:
    if (
        isinstance(raw, list)
        and len(raw) == 2
        and all(isinstance(h, int) for h in raw)
        and 0 <= raw[0] < raw[1] <= 24
    ):
        return raw[0], raw[1]
    return 8, 20


def _zone(name: str | None) -> ZoneInfo | None:
    canonical = canonical_zone(name)
    if canonical is None:
        return None
    try:
        return ZoneInfo(canonical)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _zone_param(name: str | None) -> str | None:
    """The canonical zone a ``tz`` parameter names (``Asia/Calcutta`` → ``Asia/Kolkata``)."""
    return canonical_zone(name)


# ---- proactive notice -------------------------------------------------------------------------
async def notify_manager(rt: _Runtime, outcome: dict[str, Any]) -> None:
    """Tell the manager in Teams what the candidate did; never fails the candidate's request."""
    ref_doc = outcome.get("conversation_ref")
    booking = outcome.get("booking") or {}
    if not isinstance(ref_doc, dict) or not booking:
        return
    reference = ConversationReference().deserialize(ref_doc)
    if reference.conversation is not None:  # the SDK drops Teams' "tenantId"; the offer knows it
        reference.conversation.tenant_id = str(outcome.get("tenant_id", ""))
    try:  # the outbound-URL validator, again at send time (the allow-list may have changed)
        check_outbound_url(reference.service_url, rt.service_url_policy)
    except OutboundUrlError as err:
        LOG.warning("proactive notice skipped: serviceUrl refused (%s)", err.reason)
        return
    text = manager_notice(
        str(outcome.get("candidate_name", "The candidate")),
        str(outcome.get("event", "booked")),
        booking,
        _zone(str(outcome.get("manager_time_zone") or "")) or ZoneInfo("UTC"),
        reopened=bool(outcome.get("reopened")),
    )
    card = manager_notice_card(outcome)

    async def send(context: TurnContext) -> None:
        await context.send_activity(MessageFactory.attachment(CardFactory.adaptive_card(card), text=text))

    try:
        await rt.adapter.continue_conversation(reference, send, rt.config.bot_app_id)
    except Exception as exc:  # the booking stands even if Teams is unreachable
        LOG.warning("proactive notice failed: %s", type(exc).__name__, exc_info=True)


def manager_notice_card(outcome: dict[str, Any]) -> dict[str, object]:
    """The notice as an Adaptive Card: both zones, the role, the join link, Reschedule / Cancel."""
    booking = outcome["booking"]
    interview_id = str(outcome.get("interview_id") or "")
    flow = "n-" + (interview_id if re.fullmatch(r"[A-Za-z0-9-]{1,100}", interview_id) else "x")
    return build_candidate_notice(
        flow,
        candidate=str(outcome.get("candidate_name", "The candidate")),
        event=str(outcome.get("event", "booked")),
        start=parse_time(booking["start"]),
        end=parse_time(booking["end"]),
        manager_zone=_zone(str(outcome.get("manager_time_zone") or "")) or ZoneInfo("UTC"),
        candidate_zone=_zone(str(outcome.get("candidate_time_zone") or "")) or ZoneInfo("UTC"),
        role=str(outcome.get("role") or ""),
        join_url=str(outcome.get("join_url") or ""),
        interview_id=interview_id if flow != "n-x" else "",
        reopened=bool(outcome.get("reopened")),
    )


def manager_notice(
    candidate: str,
    event: str,
    booking: dict[str, str],
    zone: ZoneInfo | None = None,
    *,
    reopened: bool = False,
) -> str:
    """One line for the manager, with the time in ``zone`` (the manager's zone stored with the
    offer; UTC when unknown). ``reopened``: a cancel left the link open for a new booking."""
    when = format_range(parse_time(booking["start"]), parse_time(booking["end"]), zone or ZoneInfo("UTC"))
    verbs = {
        "booked": "booked their interview",
        "cancelled": "cancelled their interview",
        "rescheduled": "moved their interview to",
    }
    verb = verbs.get(event, event)
    if event == "cancelled":
        again = " The link is open for a new booking." if reopened else ""
        return f"{candidate} {verb} ({when}).{again}"
    return f"{candidate} {verb}{':' if event == 'booked' else ''} {when}."
