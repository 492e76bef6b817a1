"""The Calendar Service's HTTP API (aiohttp): routes, the three locks, and the one error mapping.

Order on every request: lock 1 (the bearer token is validated before the body is read), then lock 3 (the
body must match the operation's pinned JSON Schema), then the use case, which starts with lock 2 (the tenant
credential must decrypt). Any failure answers `{"error": code, "message": text}` with the status of
`calendar_backend.errors` and has no side effect. Exception text is never echoed.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from aiohttp import web
from jsonschema import Draft202012Validator

from calendar_backend import contract
from calendar_backend.auth import Principal, TokenValidator
from calendar_backend.contract import (
    CandidateRequest,
    CreateInterviewRequest,
    CreateOfferRequest,
    FindSlotsRequest,
    RescheduleRequest,
    SearchLoopsRequest,
)
from calendar_backend.denials import DenialBudget as DenialBudget
from calendar_backend.errors import (
    AuthError,
    CalendarError,
    ConflictError,
    InvalidTemplateError,
    SlotTakenError,
    ValidationError,
)
from calendar_backend.loop_contract import BookLoopRequest, RescheduleLoopRequest
from calendar_backend.routing import Auth as Auth
from calendar_backend.routing import openapi_document
from calendar_backend.service import CalendarService
from calendar_backend.watch_feed import FEED_KEY_HEADER

log = logging.getLogger(__name__)

SERVICE_KEY = web.AppKey("service", CalendarService)
VALIDATOR_KEY = web.AppKey("validator", TokenValidator)
REQUEST_ID = web.RequestKey("request_id", str)
REQUEST_TENANT = web.RequestKey("tenant_id", str)
_MAX_BODY = 64 * 1024
_VALIDATORS = {name: Draft202012Validator(schema) for name, schema in contract.SCHEMAS.items()}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map the error tree to JSON answers; unknown exceptions become an opaque 500."""
    request_id = request.headers.get("x-request-id", "")
    if not request_id or len(request_id) > 64 or not request_id.replace("-", "").isalnum():
        request_id = str(uuid.uuid4())
    request[REQUEST_ID] = request_id
    try:
        response = await handler(request)
    except CalendarError as exc:
        if exc.lock2_denial:
            await _audit_denial(request, request.get(REQUEST_TENANT, ""), f"lock2_{exc.code}", exc.denied_oid)
        elif exc.denial_reason:  # a refused capability link, a lock-2 refusal
            await _audit_denial(request, request.get(REQUEST_TENANT, ""), exc.denial_reason)
        response = _error_response(exc)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error (request %s)", request_id)
        response = web.json_response({"error": "internal", "message": "Something went wrong."}, status=500)
    response.headers["x-request-id"] = request_id
    response.headers["Cache-Control"] = "no-store"
    return response


def _error_response(exc: CalendarError) -> web.Response:
    body: dict[str, Any] = {"error": exc.code, "message": exc.message}
    headers: dict[str, str] = {}
    if isinstance(exc, ValidationError):
        body["field"] = exc.field
    if isinstance(exc, InvalidTemplateError):
        body["problems"] = list(exc.problems)
    if isinstance(exc, SlotTakenError) and exc.fresh is not None:
        body["fresh"] = exc.fresh.to_json()
    if isinstance(exc, SlotTakenError) and exc.fresh_loops is not None:
        body["fresh_loops"] = exc.fresh_loops.to_json()
    if isinstance(exc, ConflictError) and exc.repairs is not None:
        body["repairs"] = exc.repairs
    retry = getattr(exc, "retry_after_s", None)
    if retry is not None:
        body["retry_after_s"] = retry
        headers["Retry-After"] = str(max(1, round(retry)))
    if isinstance(exc, AuthError):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return web.json_response(body, status=exc.status, headers=headers)


async def _principal(request: web.Request) -> tuple[Principal, str]:
    """Lock 1. Returns the principal and the raw assertion (for on-behalf-of)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > 16384 or not token.isascii():  # a JWT is ASCII
        await _audit_denial(request, "", "no_token")
        raise AuthError()
    try:
        principal = await request.app[VALIDATOR_KEY].validate(token.strip())
    except AuthError:
        await _audit_denial(request, "", "token")
        raise
    request[REQUEST_TENANT] = principal.tenant_id
    return principal, token.strip()


async def _payload(
    request: web.Request, operation: str, principal: Principal | None = None
) -> dict[str, Any]:
    """Lock 3: the body must match the operation's pinned schema."""
    if request.content_length is not None and request.content_length > _MAX_BODY:
        raise ValidationError("body", "is too large")
    raw = await request.content.read(_MAX_BODY + 1)
    if len(raw) > _MAX_BODY:
        raise ValidationError("body", "is too large")
    try:
        doc = json.loads(raw or b"{}")
    except (ValueError, RecursionError) as exc:  # RecursionError: a nesting bomb under the size cap
        raise ValidationError("body", "is not valid JSON") from exc
    try:
        bad = _control_character_at(doc)
    except RecursionError:  # nested deeper than the walk can go: refuse like a nesting bomb
        bad = "body"
    if bad is not None:  # before the schema: no pattern has to get this right on its own
        await _audit_denial(request, principal.tenant_id if principal else "", "payload")
        raise ValidationError(bad, "has a control character")
    error = next(iter(_VALIDATORS[operation].iter_errors(doc)), None)
    if error is not None:
        field = ".".join(str(p) for p in error.absolute_path) or "body"
        await _audit_denial(request, principal.tenant_id if principal else "", "payload")
        raise ValidationError(field, _short_reason(error.validator))
    return doc  # type: ignore[no-any-return]


_SAFE_KEY = re.compile(r"[A-Za-z0-9_]{1,40}")
# Control characters (C0, DEL, C1, line/paragraph separators), bidi embeddings, overrides and
# isolates (a name that displays as something else in Outlook or a card), and lone surrogates
# (valid JSON escapes that no UTF-8 store or request can encode: a 500 after Graph was read).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _control_character_at(doc: Any, path: str = "") -> str | None:
    """The dotted path of the first string (value or key) holding a control character, if any."""
    if isinstance(doc, str):
        return (path or "body") if _CONTROL.search(doc) else None
    if isinstance(doc, dict):
        for key, value in doc.items():
            name = str(key) if _SAFE_KEY.fullmatch(str(key)) else "?"
            where = (f"{path}.{name}" if path else name)[:64]
            if _CONTROL.search(str(key)):
                return path or "body"
            found = _control_character_at(value, where)
            if found is not None:
                return found
    if isinstance(doc, list):
        for i, value in enumerate(doc):
            found = _control_character_at(value, f"{path}.{i}" if path else str(i))
            if found is not None:
                return found
    return None


def _short_reason(validator: object) -> str:
    return {
        "required": "is missing a required field",
        "additionalProperties": "has an unknown field",
        "type": "has the wrong type",
        "pattern": "has an invalid format",
        "maxLength": "is too long",
        "minLength": "is too short",
        "maximum": "is too large",
        "minimum": "is too small",
        "maxItems": "has too many items",
        "minItems": "has too few items",
        "uniqueItems": "has duplicate items",
    }.get(str(validator), "is not valid")


def _operation_of(request: web.Request) -> str:
    """The audit operation name of a request: its route template, e.g. `api.v1.interviews.id.cancel`."""
    info = request.match_info.route.resource
    template = info.canonical if info is not None else "unrouted"
    return ("api." + re.sub(r"[^a-z0-9_.:-]+", ".", template.lower()).strip("."))[:64]


BUDGET_KEY = web.AppKey("denial_budget", DenialBudget)


async def _audit_denial(
    request: web.Request, tenant_id: str, reason: str, actor_oid: str | None = None
) -> None:
    if not tenant_id:
        skipped = request.app[BUDGET_KEY].take()
        if skipped is None:
            return
        if skipped:
            reason = f"{reason}:skipped:{skipped}"
    try:
        await request.app[SERVICE_KEY].tenancy.audit_denial(
            tenant_id, _operation_of(request), reason, request[REQUEST_ID], actor_oid
        )
    except Exception:  # an audit failure must not turn a 401 into a 500
        log.exception("could not audit a denial")


# ---- the route table -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Call:
    """One request past its route's locks: the principal (lock 1) and the schema-valid body (lock 3)."""

    request: web.Request
    principal: Principal | None
    assertion: str
    body: dict[str, Any]

    @property
    def user(self) -> Principal:
        """The principal of a `Auth.USER` route (lock 1 held)."""
        if self.principal is None:  # a route table error, never a request's
            raise AuthError()
        return self.principal

    @property
    def service(self) -> CalendarService:
        return self.request.app[SERVICE_KEY]

    @property
    def rid(self) -> str:
        """The request id (audit rows and logs)."""
        return self.request[REQUEST_ID]

    def path_id(self) -> str:
        """The ``{id}`` of the path, ASCII letters, digits and ``-`` only (the OpenAPI pattern)."""
        value = self.request.match_info["id"]
        if not _PATH_ID.fullmatch(value):  # ASCII only (`isalnum` takes every script's letters)
            raise ValidationError("id", "is not a valid identifier")
        return value

    def path_name(self) -> str:
        """The ``{name}`` of the path (a loop template's name, percent-decoded): the pattern the
        OpenAPI document pins."""
        value = self.request.match_info["name"]
        if not _PATH_NAME.fullmatch(value):
            raise ValidationError("name", "is not a valid template name")
        return value


UseCase = Callable[[Call], Awaitable[Any]]  # a request past its locks -> the JSON answer
_PATH_ID = re.compile(r"[A-Za-z0-9-]{1,64}")  # the pattern the OpenAPI document pins
_PATH_NAME = re.compile(contract.TEMPLATE_NAME["pattern"].removeprefix("^").removesuffix("\\Z"))


class Route(NamedTuple):
    """One operation: ``schema`` names its pinned body schema (lock 3; ``None``: no body is read);
    ``auth`` what stands for lock 1; ``status`` the status of a success."""

    method: str
    path: str
    schema: str | None
    run: UseCase
    summary: str
    auth: Auth = Auth.USER
    status: int = 200


# ---- use cases: one call each over the service ---------------------------------------------------
async def health(_c: Call) -> Any:
    return {"status": "ok", "version": contract.API_VERSION}


async def openapi(_c: Call) -> Any:
    return build_openapi()


async def find_slots(c: Call) -> Any:
    return (
        await c.service.search.find_slots(c.user, c.assertion, FindSlotsRequest.from_json(c.body), c.rid)
    ).to_json()


async def create_interview(c: Call) -> Any:
    ref = c.body.get("conversation_ref")  # the drift card's chat: checked before, sealed after
    if ref is not None:
        c.service.drift_feed.check(ref, c.user)
    out = await c.service.interviews.create(
        c.user, c.assertion, CreateInterviewRequest.from_json(c.body), c.rid
    )
    if ref is not None:
        await c.service.drift_feed.remember(c.user, out.id, ref)
    return out.to_json()


async def list_interviews(c: Call) -> Any:
    return {
        "interviews": [
            r.to_json() for r in await c.service.interviews.list_upcoming(c.user, c.assertion, c.rid)
        ]
    }


async def cancel_interview(c: Call) -> Any:
    return (await c.service.interviews.cancel(c.user, c.assertion, c.path_id(), c.rid)).to_json()


async def reschedule_interview(c: Call) -> Any:
    return (
        await c.service.interviews.reschedule(
            c.user, c.assertion, c.path_id(), RescheduleRequest.from_json(c.body), c.rid
        )
    ).to_json()


async def resolve_people(c: Call) -> Any:
    return {
        "results": [
            [p.to_json() for p in r]
            for r in await c.service.directory.resolve_people(c.user, c.assertion, c.body["queries"], c.rid)
        ]
    }


async def my_settings(c: Call) -> Any:
    return {"time_zone": await c.service.directory.my_time_zone(c.user, c.assertion, c.rid)}


async def check_people(c: Call) -> Any:
    return {
        "people": [
            r.to_json()
            for r in await c.service.directory.check_people(c.user, c.assertion, c.body["queries"], c.rid)
        ]
    }


async def disconnect(c: Call) -> Any:
    await c.service.tenancy.disconnect(c.user, c.rid)
    return {"status": "disconnected"}


# ---- candidate offers (offers.py: the manager's side; candidate.py: the link holder's) -------------
async def create_offer(c: Call) -> Any:
    return (
        await c.service.offers.create_offer(c.user, c.assertion, CreateOfferRequest.from_json(c.body), c.rid)
    ).to_json()


async def list_offers(c: Call) -> Any:
    return {"offers": [r.to_json() for r in await c.service.offers.list_offers(c.user)]}


async def revoke_offer(c: Call) -> Any:
    return (await c.service.offers.revoke_offer(c.user, c.path_id(), c.rid)).to_json()


async def candidate_slots(c: Call) -> Any:
    return await c.service.candidate.slots(CandidateRequest.from_json(c.body), c.rid)


async def candidate_book(c: Call) -> Any:
    return await c.service.candidate.book(CandidateRequest.from_json(c.body), c.rid)


async def candidate_cancel(c: Call) -> Any:
    return await c.service.candidate.cancel(CandidateRequest.from_json(c.body), c.rid)


async def candidate_reschedule(c: Call) -> Any:
    return await c.service.candidate.reschedule(CandidateRequest.from_json(c.body), c.rid)


# ---- interview loops (loop_search.py: saved templates and the loop search) ------------------------
async def list_loop_templates(c: Call) -> Any:
    return {"templates": [t.to_json() for t in await c.service.loop_templates.list(c.user)]}


async def save_loop_template(c: Call) -> Any:
    return (await c.service.loop_templates.save(c.user, c.path_name(), c.body["template"], c.rid)).to_json()


async def delete_loop_template(c: Call) -> Any:
    name = c.path_name()
    await c.service.loop_templates.delete(c.user, name, c.rid)
    return {"name": name, "deleted": True}


async def search_loops(c: Call) -> Any:
    return (
        await c.service.loops_search.search(c.user, c.assertion, SearchLoopsRequest.from_json(c.body), c.rid)
    ).to_json()


# ---- interview loops (loop_booking.py) -------------------------------------------------------------
async def book_loop(c: Call) -> Any:
    ref = c.body.get("conversation_ref")  # the drift card's chat: checked before, sealed after
    checked = c.service.drift_feed.check(ref, c.user) if ref is not None else None
    loop = await c.service.loops.book(c.user, c.assertion, BookLoopRequest.from_json(c.body), c.rid)
    for session in loop.sessions if checked is not None else ():
        if session.interview_id and checked is not None:
            await c.service.drift_feed.remember(c.user, session.interview_id, checked)
    return loop.to_json()


async def list_loops(c: Call) -> Any:
    return {"loops": [r.to_json() for r in await c.service.loops.list_upcoming(c.user)]}


async def cancel_loop(c: Call) -> Any:
    return (await c.service.loops.cancel(c.user, c.assertion, c.path_id(), c.rid)).to_json()


async def reschedule_loop(c: Call) -> Any:
    req = RescheduleLoopRequest.from_json(c.body)
    return (await c.service.loops.reschedule(c.user, c.assertion, c.path_id(), req, c.rid)).to_json()


# ---- the drift watcher (watch.py, watch_repairs.py) ----------------------------------------------
_MAX_TOKEN = 1024  # a validationToken longer than this is not Graph's


async def watch_notifications(c: Call) -> Any:
    """Graph's validation handshake (200 text/plain echo), else queue the items and answer 202
    before any Graph read."""
    token = c.request.query.get("validationToken")
    if token is not None:
        if len(token) > _MAX_TOKEN or _CONTROL.search(token):
            raise ValidationError("validationToken", "is not valid")
        return web.Response(
            text=token, content_type="text/plain", headers={"X-Content-Type-Options": "nosniff"}
        )
    if c.request.content_length is not None and c.request.content_length > _MAX_BODY:
        raise ValidationError("body", "is too large")
    raw = await c.request.content.read(_MAX_BODY + 1)
    if len(raw) > _MAX_BODY:
        raise ValidationError("body", "is too large")
    try:
        doc = json.loads(raw or b"{}")
    except (ValueError, RecursionError) as exc:
        raise ValidationError("body", "is not valid JSON") from exc
    queued, dropped = await c.service.watch.receive(doc)
    return web.json_response({"queued": queued, "dropped": dropped}, status=202)


async def list_drift(c: Call) -> Any:
    return {"drift": [d.to_json() for d in await c.service.repairs.open_items(c.user)]}


async def apply_drift(c: Call) -> Any:
    return await c.service.repairs.apply(c.user, c.assertion, c.path_id(), str(c.body["repair"]), c.rid)


async def watch_feed(c: Call) -> Any:
    return {"items": await c.service.drift_feed.items(c.body.get("poller"))}


async def watch_feed_ack(c: Call) -> Any:
    return {"acked": await c.service.drift_feed.ack([str(i) for i in c.body["ids"]])}


_PUBLIC, _LINK = Auth.NONE, Auth.CAPABILITY


# ---- interviewer pools (issue 18: pool_views.py): my load, the owner's pool card and members ------
async def my_load(c: Call) -> Any:
    return (await c.service.pools.my_load(c.user, c.assertion, c.rid)).to_json()


async def list_pools(c: Call) -> Any:
    return {"pools": [p.to_json() for p in await c.service.pools.owned(c.user, c.assertion, c.rid)]}


async def pool_card(c: Call) -> Any:
    return (await c.service.pools.card(c.user, c.assertion, c.path_id(), c.rid)).to_json()


async def pool_member(c: Call) -> Any:
    req = contract.PoolMemberRequest.from_json(c.body)
    return (await c.service.pools.change_member(c.user, c.assertion, c.path_id(), req, c.rid)).to_json()


# fmt: off
ROUTES: list[Route] = [
    Route("GET", "/v1/health", None, health, "Liveness", _PUBLIC),
    Route("GET", "/v1/openapi.json", None, openapi, "This document", _PUBLIC),
    Route("POST", "/v1/slots/find", "find_slots", find_slots, "Open slots for a panel"),
    Route("POST", "/v1/interviews", "create_interview", create_interview, "Book an interview", status=201),
    Route("GET", "/v1/interviews", None, list_interviews, "My upcoming interviews"),
    Route("POST", "/v1/interviews/{id}/cancel", "cancel_interview", cancel_interview, "Cancel"),
    Route("POST", "/v1/interviews/{id}/reschedule", "reschedule_interview", reschedule_interview,
          "Move to a new time"),
    Route("POST", "/v1/directory/resolve", "resolve_people", resolve_people,
          "Resolve typed names to people and rooms"),
    Route("POST", "/v1/directory/check", "check_people", check_people,
          "Resolve and check a panel: per name found, enabled, mailbox, readable, allowed, duplicate"),
    Route("POST", "/v1/me/disconnect", "empty", disconnect, "Delete my stored tokens"),
    Route("GET", "/v1/me/settings", None, my_settings, "My mailbox time zone (IANA)"),
    Route("POST", "/v1/offers", "create_offer", create_offer, "Create a candidate booking link", status=201),
    Route("GET", "/v1/offers", None, list_offers, "My candidate booking links"),
    Route("POST", "/v1/offers/{id}/revoke", "empty", revoke_offer, "Revoke a booking link"),
    Route("POST", "/v1/candidate/slots", "candidate_slots", candidate_slots,
          "Open times of an offer (capability token in the body)", _LINK),
    Route("POST", "/v1/candidate/book", "candidate_book", candidate_book, "Book an offer once", _LINK, 201),
    Route("POST", "/v1/candidate/cancel", "candidate_change", candidate_cancel, "Cancel a booked offer",
          _LINK),
    Route("POST", "/v1/candidate/reschedule", "candidate_change", candidate_reschedule, "Move a booked offer",
          _LINK),
    Route("GET", "/v1/loop-templates", None, list_loop_templates, "The tenant's saved loop templates"),
    Route("PUT", "/v1/loop-templates/{name}", "save_loop_template", save_loop_template,
          "Save a loop template"),
    Route("DELETE", "/v1/loop-templates/{name}", None, delete_loop_template, "Delete a loop template"),
    Route("POST", "/v1/loops/search", "search_loops", search_loops, "The best interview loops"),
    Route("POST", "/v1/loops", "book_loop", book_loop, "Book an interview loop (all sessions or none)",
          status=201),
    Route("GET", "/v1/loops", None, list_loops, "My upcoming interview loops"),
    Route("POST", "/v1/loops/{id}/cancel", "empty", cancel_loop, "Cancel every session of a loop"),
    Route("POST", "/v1/loops/{id}/reschedule", "reschedule_loop", reschedule_loop,
          "Move one session of a loop, or all"),
    Route("POST", "/v1/watch/notifications", None, watch_notifications,
          "Graph change notifications (validation handshake; items checked by clientState)",
          Auth.NOTIFICATION, 202),
    Route("GET", "/v1/watch/drift", None, list_drift, "My open drift items with their repairs"),
    Route("POST", "/v1/watch/drift/{id}/apply", "apply_repair", apply_drift, "Apply one repair"),
    Route("GET", "/v1/me/load", None, my_load, "My interview load this week and next, per pool"),
    Route("GET", "/v1/pools", None, list_pools, "The interviewer pools I own"),
    Route("GET", "/v1/pools/{id}", None, pool_card, "A pool I own: members' load, caps, trainees"),
    Route("POST", "/v1/pools/{id}/members", "pool_member", pool_member,
          "Add or remove a member of a pool I own, or set their caps"),
    Route("POST", "/v1/watch/feed", "watch_feed", watch_feed, "Undelivered drift items (the bot's poller)",
          Auth.FEED),
    Route("POST", "/v1/watch/feed/ack", "watch_feed_ack", watch_feed_ack, "Mark drift items delivered",
          Auth.FEED),
]
# fmt: on


def _endpoint(route: Route) -> Handler:
    """The aiohttp handler of ``route``: lock 1 (a user route), then lock 3 (a route with a
    schema), then the use case, which starts with lock 2."""

    async def handle(request: web.Request) -> web.StreamResponse:
        principal, assertion = await _principal(request) if route.auth is Auth.USER else (None, "")
        if route.auth is Auth.FEED:  # lock 1 of the service-to-service feed: the shared key
            await request.app[SERVICE_KEY].drift_feed.authenticate(
                request.headers.get(FEED_KEY_HEADER), request[REQUEST_ID]
            )
        body = await _payload(request, route.schema, principal) if route.schema else {}
        answer = await route.run(Call(request, principal, assertion, body))
        if isinstance(answer, web.StreamResponse):  # a use case that answers in its own format
            return answer
        return web.json_response(answer, status=route.status)

    handle.__name__ = route.run.__name__
    return handle


def build_openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API, generated from the route table and the pinned schemas."""
    return openapi_document(ROUTES)


def build_app(
    service: CalendarService,
    validator: TokenValidator,
    extra_routes: Callable[[web.Application], None] | None = None,
) -> web.Application:
    """Compose the aiohttp application (no I/O at construction)."""
    contract.install_http_log_redaction()  # parser errors never log request bytes (a token)
    app = web.Application(middlewares=[error_middleware], client_max_size=_MAX_BODY)
    app[SERVICE_KEY] = service
    app[VALIDATOR_KEY] = validator
    app[BUDGET_KEY] = DenialBudget()
    for route in ROUTES:
        app.router.add_route(route.method, route.path, _endpoint(route))
    if extra_routes is not None:
        extra_routes(app)
    return app
