"""devtenant's Microsoft Graph v1.0 surface: pipeline, authorization, directory and calendar reads.

Every HTTP request under `/v1.0/` runs one pipeline (`GraphSurface.handle_http`):

    count "graph" -> FaultPlan.latency_ms -> bearer token (401) -> route -> count the operation
    -> fault dice (429 TooManyRequests / 503 serviceNotAvailable) -> handler -> response

`$batch` sub-requests re-enter the pipeline at "route" with the outer request's caller, so they
get the same authorization and are throttled individually (graph_batch.py). Handlers raise
`GraphError`; the pipeline renders Graph's error body `{"error": {"code", "message",
"innerError": {...}}}`. Every response carries a `request-id` header. Event routes live in
graph_events.py, subscription routes in subscriptions.py.

Authorization (platform.md C11-C13): app-only tokens carry `roles`, delegated tokens `scp` + `oid`.
App-only calendar/mailboxSettings calls are subject to `applicationAccessPolicies`; delegated calls
to another user's calendar are subject to that user's `calendarPermissions` (the checks are in
graph_access.py; the request/answer model every route module shares is graph_http.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from devtenant import freebusy, graph_batch, graph_events, recurrence, subscriptions, zones
from devtenant.graph_access import (
    CAL_READ,
    MAILBOX_READ,
    OWNER_RANK,
    PLACE_READ,
    ROLE_RANK,
    USER_BASIC,
    USER_FULL,
    calendar_rank,
    check_mailbox_enabled,
    check_policy,
    log_event_read,
    open_calendar,
    policy_allows,
    render_event,
    resolve_mailbox,
)
from devtenant.graph_http import (
    ACCESS_DENIED,
    GRAPH_METADATA,
    Caller,
    GraphError,
    GraphRequest,
    GraphResponse,
    Route,
    error_response,
    json_answer,
    merge_headers,
    next_link,
    page_size,
    preferred_zone,
    route,
    select_fields,
    skip_of,
    zone_headers,
)
from devtenant.tenant import DevTenant, FaultPlan, JsonDict

_log = logging.getLogger(__name__)

VerifyToken = Callable[[str], dict[str, Any]]

# POSTs that change no calendar data (no change-notification scan after them)
_NOT_WRITES = frozenset({"graph.getSchedule", "graph.batch"})
MAILBOX_CONCURRENCY = 4  # Outlook: concurrent requests per app and mailbox
_WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
    'common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'
)
_USER_DEFAULT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
_USER_BASIC = frozenset({"id", "displayName", "givenName", "surname", "mail", "userPrincipalName"})
_NOT_DIRECTORY = frozenset({"events", "calendarPermissions", "hasMailbox", "mailboxSettings"})
_ROOM_HIDDEN = frozenset({"events", "calendarPermissions", "mailboxSettings", "hasMailbox"})


class _FaultDice:
    """Deterministic fault draws: one `random.Random(seed)` per FaultPlan, re-seeded on change."""

    def __init__(self) -> None:
        self._plan: FaultPlan | None = None
        self._seed = 0
        self._rng = random.Random(0)

    def draw(self, plan: FaultPlan) -> GraphError | None:
        if plan is not self._plan or plan.seed != self._seed:
            self._plan, self._seed, self._rng = plan, plan.seed, random.Random(plan.seed)
        if plan.throttle_rate <= 0 and plan.unavailable_rate <= 0:
            return None
        roll = self._rng.random()
        retry = {"Retry-After": f"{plan.retry_after_s:g}"}
        if roll < plan.throttle_rate:
            return GraphError(429, "TooManyRequests", "Please retry again later.", headers=retry)
        if roll < plan.throttle_rate + plan.unavailable_rate:
            return GraphError(
                503,
                "serviceNotAvailable",
                "Service unavailable. Please retry after some time.",
                headers=retry,
            )
        return None


class GraphSurface:
    """The Graph pipeline over one tenant; `execute` is shared by HTTP and `$batch`.

    `mailbox_concurrency` caps in-flight requests per (app, mailbox) as Outlook does (4); one more
    is answered 429 ApplicationThrottled.
    """

    def __init__(self, tenant: DevTenant, verify_token: VerifyToken, routes: Sequence[Route]) -> None:
        self.tenant = tenant
        self._verify_token = verify_token
        self._routes = tuple(routes)
        self._dice = _FaultDice()
        self._in_flight: Counter[tuple[str, str]] = Counter()
        self.mailbox_concurrency = MAILBOX_CONCURRENCY

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        """aiohttp handler for every `/v1.0/{tail}` request."""
        self.tenant.counters["graph"] += 1
        request_id = str(uuid.uuid4())
        client_request_id = request.headers.get("client-request-id", request_id)
        base_url = f"{request.scheme}://{request.host}"
        delay_s = max(self.tenant.faults.latency_ms, 0) / 1000
        try:
            caller = self._authenticate(request.headers.get("Authorization", ""))
            body = await _read_json(request)
            query = {k.lower(): v for k, v in request.rel_url.query.items()}
            path = request.match_info["tail"]
            answer = await self.execute(
                caller,
                request.method,
                path,
                query,
                CIMultiDict(request.headers),
                body,
                base_url=base_url,
                in_batch=False,
                delay_s=delay_s,
            )
        except GraphError as exc:
            await asyncio.sleep(delay_s)
            answer = error_response(exc, self.tenant, request_id, client_request_id)
        answer.headers.setdefault("request-id", request_id)
        answer.headers.setdefault("client-request-id", client_request_id)
        return _to_web(answer)

    async def execute(
        self,
        caller: Caller,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: CIMultiDict[str],
        body: Any,
        *,
        base_url: str,
        in_batch: bool,
        delay_s: float = 0.0,
    ) -> GraphResponse:
        """Route, count, draw faults and run one operation; errors come back as responses.

        `delay_s` (FaultPlan latency) is spent while holding the mailbox concurrency slot.
        """
        request_id = str(uuid.uuid4())
        client_request_id = headers.get("client-request-id", request_id)
        slept = False
        try:
            found, args = self._admit(method, path, in_batch=in_batch)
            req = GraphRequest(self, caller, method.upper(), path, query, headers, body, args, base_url)
            async with self._mailbox_slot(req):
                await asyncio.sleep(delay_s)
                slept = True
                answer = await found.handler(req)
            if req.method != "GET" and found.op not in _NOT_WRITES:
                self.tenant.changed()  # change notifications (devtenant.subscriptions)
        except GraphError as exc:
            answer = error_response(exc, self.tenant, request_id, client_request_id)
        except Exception:
            _log.exception("graph operation failed: %s %s", method, _route_name(path))
            fault = GraphError(500, "generalException", "An internal server error occurred.")
            answer = error_response(fault, self.tenant, request_id, client_request_id)
        if not slept:
            await asyncio.sleep(delay_s)
        answer.headers.setdefault("request-id", request_id)
        return answer

    @contextlib.asynccontextmanager
    async def _mailbox_slot(self, req: GraphRequest) -> AsyncIterator[None]:
        """Hold one of the (app, mailbox) concurrency slots while the operation runs.

        Raises:
            GraphError: 429 ApplicationThrottled when all slots of that mailbox are taken.
        """
        if "user" not in req.args:
            yield
            return
        key = req.args["user"]
        mailbox = req.caller.user if key is None else req.tenant.find_mailbox(key)
        slot = (req.caller.app_id.lower(), str(mailbox["id"] if mailbox else key).lower())
        if self._in_flight[slot] >= self.mailbox_concurrency:
            retry = f"{self.tenant.faults.retry_after_s:g}"
            raise GraphError(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                headers={"Retry-After": retry},
            )
        self._in_flight[slot] += 1
        try:
            yield
        finally:
            # An idle slot is dropped: the key comes from the URL (any address, even an unknown
            # one, takes a slot before its 404), so zero counts would pile up without bound.
            self._in_flight[slot] -= 1
            if self._in_flight[slot] <= 0:
                del self._in_flight[slot]

    def _admit(self, method: str, path: str, *, in_batch: bool) -> tuple[Route, dict[str, str | None]]:
        """Route and count one operation, then draw the injected 429/503 (never for $batch)."""
        found, args = self._match(method, path)
        self.tenant.counters[found.op] += 1
        if in_batch:
            self.tenant.counters["graph.batch_items"] += 1
        fault = None if found.op == "graph.batch" else self._dice.draw(self.tenant.faults)
        if fault is not None:
            raise fault
        return found, args

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str | None]]:
        path = path.strip("/")
        for candidate in self._routes:
            match = candidate.pattern.match(path)
            if match and candidate.method == method.upper():
                return candidate, match.groupdict()
        segment = path.split("/")[-1] if path else ""
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    def _authenticate(self, authorization: str) -> Caller:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated("Access token is empty.")
        try:
            claims = self._verify_token(token.strip())
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError) as exc:
            raise _unauthenticated("Access token has expired or is not yet valid.") from exc
        except jwt.InvalidTokenError as exc:
            raise _unauthenticated("Access token validation failure.") from exc
        return caller_from_claims(self.tenant, claims)


def add_graph_routes(app: web.Application, tenant: DevTenant, verify_token: VerifyToken) -> None:
    """Serve Graph v1.0 for `tenant` on `app` under `/v1.0/`.

    `verify_token(token)` must validate a Graph access token (aud "https://graph.microsoft.com",
    RS256) and return its claims, or raise `jwt.InvalidTokenError` (answered 401).
    """
    surface = GraphSurface(
        tenant,
        verify_token,
        [
            *graph_batch.ROUTES,
            *DIRECTORY_ROUTES,
            *CALENDAR_ROUTES,
            *graph_events.ROUTES,
            *subscriptions.ROUTES,
        ],
    )
    app.router.add_route("*", "/v1.0/{tail:.*}", surface.handle_http)

    async def close_hub(_: web.Application) -> None:
        await subscriptions.close_hub(tenant)

    app.on_cleanup.append(close_hub)


def caller_from_claims(tenant: DevTenant, claims: Mapping[str, Any]) -> Caller:
    """The caller a validated Graph token describes.

    Raises:
        GraphError: 401 when the token has neither `scp` nor `roles`, belongs to another tenant,
            or its delegated subject is unknown or disabled.
    """
    if claims.get("tid") and str(claims["tid"]).lower() != tenant.tenant_id.lower():
        raise _unauthenticated("Access token validation failure. Invalid audience.")
    app_id = str(claims.get("azp") or claims.get("appid") or "")
    if claims.get("scp"):
        user = tenant.find_user(str(claims.get("oid", "")))
        if user is None or user.get("accountEnabled") is False:
            raise _unauthenticated("Access token validation failure.")
        return Caller(app_id, frozenset(str(claims["scp"]).split()), user)
    roles = claims.get("roles")
    if isinstance(roles, list) and roles:
        return Caller(app_id, frozenset(str(r) for r in roles), None)
    raise _unauthenticated("Either scp or roles claim need to be present in the token.")


def _route_name(path: str) -> str:
    """The path without mailbox or item keys, safe to log (no addresses or ids)."""
    return "/".join(p if p.isalpha() or p.startswith("$") else "{key}" for p in path.strip("/").split("/"))


def _unauthenticated(message: str) -> GraphError:
    return GraphError(
        401, "InvalidAuthenticationToken", message, headers={"WWW-Authenticate": _WWW_AUTHENTICATE}
    )


async def _read_json(request: web.Request) -> Any:
    if not request.can_read_body:
        return None
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise GraphError(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please "
            "ensure Content-Type header is set and payload is of valid JSON "
            "format.",
        ) from exc


def _to_web(answer: GraphResponse) -> web.Response:
    if answer.body is None:
        return web.Response(status=answer.status, headers=answer.headers)
    return web.json_response(answer.body, status=answer.status, headers=answer.headers)


# ---- shared helpers (also used by graph_events / graph_batch) -----------------------------------

# ---- directory: users, delta, mailboxSettings, places -------------------------------------------


def _user_view(user: JsonDict, req: GraphRequest, *, extra: Sequence[str] = ()) -> JsonDict:
    basic_only = not req.caller.permissions & USER_FULL and req.caller.user is not user
    if req.query.get("$select"):
        item = {k: v for k, v in user.items() if k not in _NOT_DIRECTORY}
        item = select_fields(item, req.query)
    else:
        item = {k: user.get(k) for k in (*_USER_DEFAULT, *extra)}
        item.setdefault("businessPhones", [])
        item["businessPhones"] = item["businessPhones"] or []
    if basic_only:
        item = {k: v for k, v in item.items() if k in _USER_BASIC}
    return item


_FILTER_CLAUSE = re.compile(
    r"^\s*(?:startswith\(\s*(?P<sprop>\w+)\s*,\s*'(?P<sval>(?:[^']|'')*)'\s*\)"
    r"|(?P<eprop>\w+)\s+eq\s+'(?P<eval>(?:[^']|'')*)')\s*$",
    re.IGNORECASE,
)
_FILTERABLE = {
    "displayname": "displayName",
    "mail": "mail",
    "userprincipalname": "userPrincipalName",
    "givenname": "givenName",
    "surname": "surname",
    "id": "id",
}


def _user_filter(expression: str) -> Callable[[JsonDict], bool]:
    """A predicate for the `$filter` subset: clauses `startswith(p,'x')` / `p eq 'x'` joined by or.

    Raises:
        GraphError: 400 Request_UnsupportedQuery for anything else.
    """
    tests: list[tuple[str, str, bool]] = []
    for clause in re.split(r"\s+or\s+", expression.strip(), flags=re.IGNORECASE):
        match = _FILTER_CLAUSE.match(clause)
        prop = match and _FILTERABLE.get((match["sprop"] or match["eprop"]).lower())
        if not match or not prop:
            raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
        value = (match["sval"] if match["sprop"] else match["eval"]).replace("''", "'")
        tests.append((prop, value.lower(), bool(match["sprop"])))

    def keep(user: JsonDict) -> bool:
        for prop, value, is_prefix in tests:
            have = str(user.get(prop) or "").lower()
            if have.startswith(value) if is_prefix else have == value:
                return True
        return False

    return keep


def _user_search(req: GraphRequest) -> Callable[[JsonDict], bool]:
    """A predicate for `$search="displayName:x"` (token prefix match); needs ConsistencyLevel."""
    if req.headers.get("ConsistencyLevel", "").lower() != "eventual":
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            "Request with $search query parameter only works through MSGraph with a "
            "special request header: 'ConsistencyLevel: eventual'",
        )
    match = re.fullmatch(r'\s*"(\w+):([^"]*)"\s*', req.query["$search"])
    prop = match and _FILTERABLE.get(match.group(1).lower())
    if not match or not prop:
        raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
    term = match.group(2).strip().lower()

    def keep(user: JsonDict) -> bool:
        words = re.split(r"[\s.@_-]+", str(user.get(prop) or "").lower())
        return any(w.startswith(term) for w in words)

    return keep


async def list_users(req: GraphRequest) -> GraphResponse:
    """GET /users: $filter/$search subset, $select, pages of $top (default 100, max 999)."""
    req.caller.require(USER_BASIC)
    users = req.tenant.users()
    if req.query.get("$filter"):
        users = [u for u in users if _user_filter(req.query["$filter"])(u)]
    if req.query.get("$search"):
        users = [u for u in users if _user_search(req)(u)]
    size, _ = page_size(req, default=100, maximum=999)
    skip = skip_of(req, "$skiptoken")
    body: JsonDict = {
        "@odata.context": f"{GRAPH_METADATA}#users",
        "value": [_user_view(u, req) for u in users[skip : skip + size]],
    }
    if skip + size < len(users):
        body["@odata.nextLink"] = next_link(req, **{"$skiptoken": str(skip + size)})
    return json_answer(body)


async def get_user(req: GraphRequest) -> GraphResponse:
    """GET /users/{id|upn}: 404 Request_ResourceNotFound when unknown."""
    req.caller.require(USER_BASIC)
    key = str(req.args["user"])
    user = req.tenant.find_user(key)
    if user is None:
        raise GraphError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{key}' does not exist or "
            "one of its queried reference-property objects are not present.",
        )
    return json_answer({"@odata.context": f"{GRAPH_METADATA}#users/$entity", **_user_view(user, req)})


async def get_me(req: GraphRequest) -> GraphResponse:
    """GET /me: the signed-in user (delegated tokens only)."""
    req.caller.require(USER_BASIC | {"User.Read", "User.ReadWrite"})
    user = resolve_mailbox(req, None)
    return json_answer({"@odata.context": f"{GRAPH_METADATA}#users/$entity", **_user_view(user, req)})


async def users_delta(req: GraphRequest) -> GraphResponse:
    """users/delta: a full round without $deltatoken, else the changes logged since that token."""
    req.caller.require(USER_FULL)
    latest = len(req.tenant.directory_log)
    token = req.query.get("$deltatoken")
    if token is None:
        value = [_user_view(u, req, extra=("accountEnabled",)) for u in req.tenant.users()]
    else:
        if not token.isdigit() or int(token) > latest:
            raise GraphError(400, "SyncStateNotFound", "The sync state is not valid.")
        value = _delta_changes(req, int(token))
    link = str(URL(req.base_url).with_path("/v1.0/users/delta").with_query({"$deltatoken": str(latest)}))
    return json_answer(
        {"@odata.context": f"{GRAPH_METADATA}#users", "value": value, "@odata.deltaLink": link}
    )


def _delta_changes(req: GraphRequest, since: int) -> list[JsonDict]:
    changed: dict[str, None] = {}
    for sequence, user_id, _removed in req.tenant.directory_log:
        if sequence > since:
            changed[user_id] = None
    out: list[JsonDict] = []
    for user_id in changed:
        user = req.tenant.find_user(user_id)
        if user is None:
            out.append({"id": user_id, "@removed": {"reason": "deleted"}})
        else:
            out.append(_user_view(user, req, extra=("accountEnabled",)))
    return out


GROUP_MEMBER_READ = frozenset(
    {
        "GroupMember.Read.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)


def _group_member(tenant: DevTenant, key: str) -> JsonDict | None:
    """A group member: a user, or a room's resource account (in Entra a room mailbox is a user
    object too, so a group can hold one: it is listed as a user with the room's address)."""
    user = tenant.find_user(key)
    if user is not None:
        return user
    room = tenant.find_room(key)
    if room is None:
        return None
    address = str(room.get("emailAddress", ""))
    return {
        "id": room["id"],
        "displayName": room.get("displayName"),
        "mail": address,
        "userPrincipalName": address,
    }


async def list_group_members(req: GraphRequest) -> GraphResponse:
    """GET /groups/{id}/members | transitiveMembers (devtenant groups are flat, so both agree).

    Needs GroupMember.Read.All (or wider); 404 Request_ResourceNotFound for an unknown group.
    """
    req.caller.require(GROUP_MEMBER_READ)
    key = str(req.args["group"])
    group = req.tenant.find_group(key)
    if group is None or str(group["id"]).lower() != key.lower():
        raise GraphError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{key}' does not exist or "
            "one of its queried reference-property objects are not present.",
        )
    users = [u for u in (_group_member(req.tenant, str(m)) for m in group.get("members", [])) if u]
    size, _ = page_size(req, default=100, maximum=999)
    skip = skip_of(req, "$skiptoken")
    body: JsonDict = {
        "@odata.context": f"{GRAPH_METADATA}#directoryObjects",
        "value": [
            {"@odata.type": "#microsoft.graph.user", **_user_view(u, req)} for u in users[skip : skip + size]
        ],
    }
    if skip + size < len(users):
        body["@odata.nextLink"] = next_link(req, **{"$skiptoken": str(skip + size)})
    return json_answer(body)


async def get_mailbox_settings(req: GraphRequest) -> GraphResponse:
    """mailboxSettings (+ /timeZone, /workingHours); another user's only for app-only callers."""
    req.caller.require(MAILBOX_READ)
    mailbox = resolve_mailbox(req, req.args.get("user"))
    check_policy(req.tenant, req.caller, mailbox)
    check_mailbox_enabled(mailbox)
    if calendar_rank(req.caller, mailbox) < OWNER_RANK:
        raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)
    settings = mailbox_settings(mailbox)
    who = req.args.get("user") or "me"
    setting = req.args.get("setting")
    if setting is None:
        return json_answer({"@odata.context": f"{GRAPH_METADATA}#users('{who}')/mailboxSettings", **settings})
    name = "timeZone" if setting.lower() == "timezone" else "workingHours"
    context = f"{GRAPH_METADATA}#users('{who}')/mailboxSettings/{name}"
    if name == "timeZone":
        return json_answer({"@odata.context": context, "value": settings["timeZone"]})
    return json_answer({"@odata.context": context, **settings["workingHours"]})


def mailbox_settings(mailbox: JsonDict) -> JsonDict:
    """The mailbox's settings with Exchange's defaults filled in (UTC, Mon-Fri 08:00-17:00)."""
    stored = dict(mailbox.get("mailboxSettings") or {})
    zone = str(stored.get("timeZone") or "UTC")
    stored.setdefault("timeZone", zone)
    stored.setdefault(
        "workingHours",
        {
            "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "startTime": "08:00:00.0000000",
            "endTime": "17:00:00.0000000",
            "timeZone": {"name": zone},
        },
    )
    stored.setdefault("dateFormat", "yyyy-MM-dd")
    stored.setdefault("timeFormat", "HH:mm")
    stored.setdefault("language", {"locale": "en-US", "displayName": "English (United States)"})
    return stored


async def list_rooms(req: GraphRequest) -> GraphResponse:
    """GET /places/microsoft.graph.room: rooms without calendar data, pages of 100."""
    req.caller.require(PLACE_READ)
    rooms = req.tenant.rooms()
    size, _ = page_size(req, default=100, maximum=999)
    skip = skip_of(req)
    value = [
        select_fields(
            {"@odata.type": "#microsoft.graph.room", **{k: v for k, v in r.items() if k not in _ROOM_HIDDEN}},
            req.query,
        )
        for r in rooms[skip : skip + size]
    ]
    body: JsonDict = {"@odata.context": f"{GRAPH_METADATA}#places/microsoft.graph.room", "value": value}
    if skip + size < len(rooms):
        body["@odata.nextLink"] = next_link(req, **{"$skip": str(skip + size), "$top": str(size)})
    return json_answer(body)


# ---- calendar reads: calendarView, getSchedule --------------------------------------------------


def _query_instant(req: GraphRequest, name: str) -> datetime:
    raw = req.query.get(name.lower())
    if not raw:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window "
            "specified by the query string parameters StartDateTime and EndDateTime.",
        )
    try:
        parsed = datetime.fromisoformat(raw.strip().replace(" ", "+"))
    except ValueError as exc:
        raise GraphError(400, "ErrorInvalidRequest", f"The parameter '{name}' has an invalid value.") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


async def calendar_view(req: GraphRequest) -> GraphResponse:
    """calendarView: expanded occurrences in [startDateTime, endDateTime), paged with $skip."""
    mailbox, rank = open_calendar(req, req.args.get("user"))
    log_event_read(req, "calendarView", mailbox)
    start = _query_instant(req, "startDateTime")
    end = _query_instant(req, "endDateTime")
    zone = preferred_zone(req.headers)
    size, pref = page_size(req, default=10, maximum=1000)
    skip = skip_of(req)
    occurrences = recurrence.expand(req.tenant.events_of(mailbox), start, end) if end > start else []
    page, has_more = freebusy.calendar_view_page(occurrences, skip, size)
    who = req.args.get("user") or "me"
    body: JsonDict = {
        "@odata.context": f"{GRAPH_METADATA}#users('{who}')/calendarView",
        "value": [select_fields(render_event(e, zone, rank), req.query) for e in page],
    }
    if has_more:
        body["@odata.nextLink"] = next_link(req, **{"$top": str(size), "$skip": str(skip + len(page))})
    return json_answer(body, headers=merge_headers(zone_headers(zone), pref))


def _schedule_body(req: GraphRequest) -> tuple[list[str], datetime, datetime, int]:
    body = req.body if isinstance(req.body, dict) else {}
    schedules = body.get("schedules")
    if not isinstance(schedules, list) or not schedules or not all(isinstance(s, str) for s in schedules):
        raise GraphError(400, "ErrorInvalidParameter", "The 'schedules' parameter is required.")
    if len(schedules) > 20:
        raise GraphError(400, "ErrorInvalidParameter", "Number of schedules exceeds the maximum of 20.")
    try:
        start, end = zones.to_utc(body["startTime"]), zones.to_utc(body["endTime"])
    except (KeyError, ValueError) as exc:
        raise GraphError(
            400, "ErrorInvalidParameter", "startTime and endTime must be valid dateTimeTimeZone values."
        ) from exc
    if end <= start or end - start >= timedelta(days=62):
        raise GraphError(
            400, "ErrorInvalidParameter", "The time window must be positive and shorter than 62 days."
        )
    interval = body.get("availabilityViewInterval", 30)
    if not isinstance(interval, int) or isinstance(interval, bool) or not 5 <= interval <= 1440:
        raise GraphError(
            400, "ErrorInvalidParameter", "availabilityViewInterval must be an integer from 5 to 1440."
        )
    return schedules, start, end, interval


def _schedule_error(schedule_id: str, message: str, code: str) -> JsonDict:
    return {
        "scheduleId": schedule_id,
        "availabilityView": "",
        "scheduleItems": [],
        "error": {"message": message, "responseCode": code},
    }


def _one_schedule(
    req: GraphRequest, address: str, start: datetime, end: datetime, interval: int, zone: str
) -> JsonDict:
    """One scheduleInformation; failures become its `error` (the request still answers 200).

    Unknown address or no mailbox: responseCode "5009". Access policy denies an app-only caller:
    responseCode "ErrorAccessDenied" with Exchange's policy message. Share role "none" for a
    delegated caller: responseCode "ErrorNoFreeBusyAccess".
    """
    mailbox = req.tenant.find_mailbox(address)
    if mailbox is None or mailbox.get("hasMailbox") is False:
        return _schedule_error(
            address, f"Unable to resolve e-mail address {address} to an Active Directory object.", "5009"
        )
    if not policy_allows(req.tenant, req.caller, mailbox):
        return _schedule_error(address, "Access to OData is disabled.", "ErrorAccessDenied")
    rank = calendar_rank(req.caller, mailbox)
    if rank < ROLE_RANK["freeBusyRead"]:
        return _schedule_error(
            address, "The caller has no free/busy access to this calendar.", "ErrorNoFreeBusyAccess"
        )
    occurrences = recurrence.expand(req.tenant.events_of(mailbox), start, end)
    return freebusy.schedule_information(
        address,
        occurrences,
        start,
        end,
        interval,
        working_hours=mailbox_settings(mailbox)["workingHours"],
        can_see_details=rank >= ROLE_RANK["limitedRead"],
        out_zone=zone,
    )


async def get_schedule(req: GraphRequest) -> GraphResponse:
    """calendar/getSchedule: ≤20 schedules, window < 62 days, interval 5..1440 (default 30)."""
    req.caller.require(CAL_READ)
    owner = resolve_mailbox(req, req.args.get("user"))
    check_policy(req.tenant, req.caller, owner)
    check_mailbox_enabled(owner)
    schedules, start, end, interval = _schedule_body(req)
    zone = preferred_zone(req.headers)
    value = [_one_schedule(req, s, start, end, interval, zone or "UTC") for s in schedules]
    return json_answer(
        {
            "@odata.context": f"{GRAPH_METADATA}#Collection(microsoft.graph.scheduleInformation)",
            "value": value,
        },
        headers=zone_headers(zone),
    )


_USER = r"(?:me|users/(?P<user>[^/]+))"
DIRECTORY_ROUTES = (
    route("GET", r"users", "graph.users.list", list_users),
    route("GET", r"users/delta(?:\(\))?", "graph.users.delta", users_delta),
    route("GET", r"users/(?P<user>[^/]+)", "graph.users.get", get_user),
    route("GET", r"me", "graph.me", get_me),
    route(
        "GET",
        r"groups/(?P<group>[^/]+)/(?:transitiveMembers|members)",
        "graph.groups.members",
        list_group_members,
    ),
    route(
        "GET",
        rf"{_USER}/mailboxSettings(?:/(?P<setting>timeZone|workingHours))?",
        "graph.mailboxSettings",
        get_mailbox_settings,
    ),
    route("GET", r"places/microsoft\.graph\.room", "graph.places.rooms", list_rooms),
)
CALENDAR_ROUTES = (
    route("GET", rf"{_USER}/(?:calendar/)?calendarView", "graph.calendarView", calendar_view),
    route("POST", rf"{_USER}/calendar/getSchedule", "graph.getSchedule", get_schedule),
)
