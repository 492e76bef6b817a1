"""What a route of the Calendar Service's API is (its lock-1 mode) and the OpenAPI document of a route
table (pure: the table itself, with the use cases it calls, lives in `app`)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from calendar_backend import contract


class Auth(enum.StrEnum):
    """What stands for lock 1 on a route."""

    USER = "user"  # a validated Microsoft-issued user token (the principal)
    CAPABILITY = "capability"  # a candidate link's capability token in the body (checked by the use case)
    NONE = "none"  # public: health and this API's description
    # Graph change notifications (forwarded by the bot's public receiver): no user token; each
    # item's subscriptionId + clientState must match a stored subscription (watch.Watcher.receive)
    NOTIFICATION = "notification"
    # the drift feed (the bot's poller, watch_feed.py): the shared OPENSLOT_WATCH_FEED_KEY in a
    # header, compared in constant time before the body is read; a refusal is audited
    FEED = "feed"


class RouteLike(Protocol):
    """The parts of `app.Route` the document reads."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def schema(self) -> str | None: ...
    @property
    def run(self) -> Callable[..., Any]: ...
    @property
    def summary(self) -> str: ...
    @property
    def auth(self) -> Auth: ...
    @property
    def status(self) -> int: ...


def openapi_document(routes: Iterable[RouteLike]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API, generated from its routes and the pinned schemas."""
    paths: dict[str, Any] = {}
    for route in routes:
        method, path, schema = route.method, route.path, route.schema
        op: dict[str, Any] = {
            "summary": route.summary,
            "operationId": route.run.__name__,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {}}}},
                "201": {"description": "Created"},
                "400": {"description": "Invalid request"},
                "401": {"description": "Not authorised"},
                "403": {"description": "Forbidden"},
                "404": {"description": "Not found"},
                "409": {"description": "Conflict (slot taken)"},
                "410": {"description": "Candidate link expired or revoked"},
                "429": {"description": "Rate limited"},
                "502": {"description": "Microsoft 365 failed"},
                "503": {"description": "Throttled"},
                "504": {"description": "Microsoft 365 unavailable"},
            },
        }
        if route.status == 202:
            op["responses"]["202"] = {"description": "Accepted (queued)"}
        if route.auth is Auth.USER:
            op["security"] = [{"entra": []}]
        if "{id}" in path:
            op["parameters"] = [
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9-]{1,64}\\Z"},
                }
            ]
        if "{name}" in path:
            op["parameters"] = [
                {"name": "name", "in": "path", "required": True, "schema": contract.TEMPLATE_NAME}
            ]
        if schema:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": contract.SCHEMAS[schema]}},
            }
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "OpenSlot Calendar Service", "version": contract.API_VERSION},
        "paths": paths,
        "components": {
            "securitySchemes": {"entra": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
        },
    }
