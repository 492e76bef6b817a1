"""Graph JSON batching (`POST /v1.0/$batch`) for devtenant, per platform.md C9.

The batch itself answers 400 (nothing runs) when malformed: not `{"requests": [...]}`, more than 20
requests, an item without `id`/`method`/`url`, a duplicate `id`, a `body` without a `Content-Type`
header, or a `dependsOn` naming an unknown id or forming a cycle. Otherwise it answers 200 and each
item runs through the same pipeline as a direct request (authorization with the batch's token,
per-operation counters, `graph.batch_items`, individual throttling with Retry-After in the item's
headers). Items run one at a time, dependencies first; an item whose dependency did not succeed
(non-2xx) answers 424 without running. Responses are listed in reverse completion order, so
clients cannot rely on order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from multidict import CIMultiDict
from yarl import URL

from devtenant.graph_http import (
    GraphError,
    GraphRequest,
    GraphResponse,
    error_response,
    json_answer,
    route,
)
from devtenant.tenant import JsonDict

MAX_BATCH = 20
_METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})


def _bad(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def _parse_items(body: Any) -> list[JsonDict]:
    """The validated batch items, in request order.

    Raises:
        GraphError: 400 for any malformed batch (see module docstring).
    """
    items = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise _bad("Invalid batch payload format.")
    if len(items) > MAX_BATCH:
        raise _bad(f"Number of requests in a batch exceeds the limit of {MAX_BATCH}.")
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item[k] for k in ("id", "method", "url")
        ):
            raise _bad("Invalid batch payload format.")
        if item["id"] in seen:
            raise _bad(f"Request Id '{item['id']}' is duplicated in the batch.")
        seen.add(item["id"])
        headers = item.get("headers")
        if "body" in item and not (
            isinstance(headers, dict) and any(k.lower() == "content-type" for k in headers)
        ):
            raise _bad(f"Write request id : {item['id']} does not contain Content-Type header or body.")
    _check_dependencies(items, seen)
    return items


def _depends_on(item: Mapping[str, Any]) -> list[str]:
    raw = item.get("dependsOn") or []
    if not isinstance(raw, list) or not all(isinstance(d, str) for d in raw):
        raise _bad("Invalid batch payload format.")
    return list(raw)


def _check_dependencies(items: list[JsonDict], ids: set[str]) -> None:
    for item in items:
        for dep in _depends_on(item):
            if dep not in ids or dep == item["id"]:
                raise _bad(f"Request id '{item['id']}' depends on an unknown request '{dep}'.")
    if len(_execution_order(items)) != len(items):
        raise _bad("The dependsOn relationships of the batch contain a cycle.")


def _execution_order(items: list[JsonDict]) -> list[JsonDict]:
    """Items with dependencies after what they depend on (stable; cyclic items are left out)."""
    done: set[str] = set()
    order: list[JsonDict] = []
    progress = True
    while progress:
        progress = False
        for item in items:
            if item["id"] not in done and all(d in done for d in _depends_on(item)):
                done.add(item["id"])
                order.append(item)
                progress = True
    return order


async def _run_item(req: GraphRequest, item: JsonDict) -> GraphResponse:
    method = item["method"].upper()
    url = URL(item["url"])
    path = url.path.strip("/")
    if url.is_absolute() or method not in _METHODS or path.lower() == "$batch":
        fault = GraphError(400, "BadRequest", "Invalid request URL or method in batch item.")
        return error_response(fault, req.tenant, "", req.headers.get("client-request-id", ""))
    query = {k.lower(): v for k, v in url.query.items()}
    headers = CIMultiDict({str(k): str(v) for k, v in (item.get("headers") or {}).items()})
    return await req.surface.execute(
        req.caller, method, path, query, headers, item.get("body"), base_url=req.base_url, in_batch=True
    )


def _failed_dependency() -> GraphResponse:
    return GraphResponse(424, {"error": {"code": "FailedDependency", "message": "Failed dependency."}})


def _sub_response(item_id: str, answer: GraphResponse) -> JsonDict:
    headers = dict(answer.headers)
    if answer.body is not None:
        headers.setdefault("Content-Type", "application/json")
    out: JsonDict = {"id": item_id, "status": answer.status, "headers": headers}
    if answer.body is not None:
        out["body"] = answer.body
    return out


async def run_batch(req: GraphRequest) -> GraphResponse:
    """POST $batch: 200 with one sub-response per item, or 400 for a malformed batch."""
    items = _parse_items(req.body)
    statuses: dict[str, int] = {}
    responses: list[JsonDict] = []
    for item in _execution_order(items):
        if any(not 200 <= statuses[d] < 300 for d in _depends_on(item)):
            answer = _failed_dependency()
        else:
            answer = await _run_item(req, item)
        statuses[item["id"]] = answer.status
        responses.append(_sub_response(item["id"], answer))
    return json_answer({"responses": responses[::-1]})


ROUTES = (route("POST", r"\$batch", "graph.batch", run_batch),)
