"""devtenant's Graph request and answer model, shared by every Graph route module.

`GraphRequest` / `GraphResponse` / `GraphError` and `route` are what a handler sees; the paging,
`$select` and `Prefer` helpers follow Graph's query conventions. The pipeline that runs handlers
is `devtenant.graph.GraphSurface` (it implements `Surface`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Protocol

from multidict import CIMultiDict
from yarl import URL

from devtenant import zones
from devtenant.tenant import DevTenant, JsonDict

GRAPH_METADATA = "https://graph.microsoft.com/v1.0/$metadata"
ACCESS_DENIED = "Access is denied. Check credentials and try again."


class GraphError(Exception):
    """An error answer in Graph's shape; `status` is the HTTP status."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls: the client app, its granted permissions, and the signed-in user if delegated."""

    app_id: str
    permissions: frozenset[str]
    user: JsonDict | None

    @property
    def is_app_only(self) -> bool:
        return self.user is None

    def require(self, allowed: frozenset[str]) -> None:
        """Raises GraphError 403 ErrorAccessDenied unless one of `allowed` is granted."""
        if not self.permissions & allowed:
            raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)


class Surface(Protocol):
    """The pipeline a request runs in (devtenant.graph.GraphSurface); `$batch` re-enters it."""

    tenant: DevTenant

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
        """Route, authorize and run one operation; errors come back as responses."""
        ...


@dataclass(frozen=True, slots=True)
class GraphRequest:
    """One Graph operation: an HTTP request or a `$batch` item (path has no `/v1.0/` prefix)."""

    surface: Surface
    caller: Caller
    method: str
    path: str
    query: Mapping[str, str]  # option names lower-cased ("$top", "startdatetime")
    headers: CIMultiDict[str]
    body: Any
    args: Mapping[str, str | None]  # the route's named groups
    base_url: str  # scheme://host the client used, for absolute nextLinks

    @property
    def tenant(self) -> DevTenant:
        return self.surface.tenant


@dataclass(slots=True)
class GraphResponse:
    """A Graph answer before it is written to the wire (or into a `$batch` response)."""

    status: int
    body: JsonDict | None = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[GraphRequest], Awaitable[GraphResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    op: str  # counter key, e.g. "graph.calendarView"
    handler: Handler


def route(method: str, pattern: str, op: str, handler: Handler) -> Route:
    """A route whose `pattern` matches the path after `/v1.0/` (case-insensitive, anchored)."""
    return Route(method, re.compile(f"^{pattern}$", re.IGNORECASE), op, handler)


def error_response(
    exc: GraphError, tenant: DevTenant, request_id: str, client_request_id: str
) -> GraphResponse:
    """Graph's error body for `exc`, with its headers."""
    inner = {
        "date": tenant.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id,
    }
    body = {"error": {"code": exc.code, "message": exc.message, "innerError": inner}}
    return GraphResponse(exc.status, body, dict(exc.headers))


def json_answer(body: JsonDict, status: int = 200, headers: Mapping[str, str] | None = None) -> GraphResponse:
    """A JSON answer (default 200) with extra headers."""
    return GraphResponse(status, body, dict(headers or {}))


def preferred_zone(headers: Mapping[str, str]) -> str | None:
    """The known zone named by `Prefer: outlook.timezone="..."`, else None (answer in UTC)."""
    match = re.search(r'outlook\.timezone\s*=\s*"([^"]*)"', _prefer(headers), re.IGNORECASE)
    if match is None:
        return None
    try:
        zones.zone_for(match.group(1))
    except ValueError:
        return None
    return match.group(1)


def zone_headers(zone: str | None) -> dict[str, str]:
    """The Preference-Applied header echoing an applied outlook.timezone (none for UTC default)."""
    return {"Preference-Applied": f'outlook.timezone="{zone}"'} if zone else {}


def _prefer(headers: Mapping[str, str]) -> str:
    if isinstance(headers, CIMultiDict):
        return ", ".join(headers.getall("Prefer", []))
    return str(headers.get("Prefer", ""))


def select_fields(item: JsonDict, query: Mapping[str, str]) -> JsonDict:
    """Apply `$select` (comma-separated); `id` and `@odata.*` annotations always stay."""
    raw = query.get("$select")
    if not raw:
        return item
    wanted = {s.strip().lower() for s in raw.split(",") if s.strip()}
    return {k: v for k, v in item.items() if k.lower() in wanted or k == "id" or k.startswith("@odata")}


def page_size(req: GraphRequest, *, default: int, maximum: int) -> tuple[int, dict[str, str]]:
    """Page size from `$top`, else `Prefer: odata.maxpagesize`, else `default`; capped at maximum.

    Returns the size and the Preference-Applied header to echo (empty when not applied).

    Raises:
        GraphError: 400 when `$top` is not a positive integer.
    """
    top = req.query.get("$top")
    if top is not None:
        if not top.isdigit() or int(top) < 1:
            raise GraphError(
                400, "ErrorInvalidParameter", f"The value '{top}' of the parameter '$top' is invalid."
            )
        return min(int(top), maximum), {}
    match = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", _prefer(req.headers), re.IGNORECASE)
    if match and int(match.group(1)) > 0:
        size = min(int(match.group(1)), maximum)
        return size, {"Preference-Applied": f"odata.maxpagesize={size}"}
    return default, {}


def skip_of(req: GraphRequest, name: str = "$skip") -> int:
    """The non-negative integer paging offset in query option `name`.

    Raises:
        GraphError: 400 when it is not a non-negative integer.
    """
    raw = req.query.get(name, "0")
    if not raw.isdigit():
        raise GraphError(400, "BadRequest", f"Invalid value for {name}.")
    return int(raw)


def next_link(req: GraphRequest, **changes: str) -> str:
    """Absolute URL of this request with query options replaced (clients follow it unchanged)."""
    query = dict(req.query)
    query.update(changes)
    canonical = {"startdatetime": "startDateTime", "enddatetime": "endDateTime"}
    params = {canonical.get(k, k): v for k, v in query.items()}
    return str(URL(req.base_url).with_path("/v1.0/" + req.path).with_query(params))


def merge_headers(*parts: Mapping[str, str]) -> dict[str, str]:
    """Header dicts merged left to right; repeated names are joined with ", "."""
    merged: dict[str, str] = {}
    for part in parts:
        for key, value in part.items():
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged
