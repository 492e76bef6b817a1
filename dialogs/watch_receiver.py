"""The public receiver of Graph change notifications on the bot's app (issue 19, docs/watcher.md).

``POST /api/graph/notifications`` is reached by Microsoft Graph, not by a user: no bot auth. It
forwards the query string (Graph's ``validationToken`` handshake), the raw body (≤ 64 KiB) and
``Content-Type`` unchanged to the private Calendar Service (``POST /v1/watch/notifications``), which
checks every item's ``subscriptionId`` + ``clientState`` and queues it durably before answering 202,
and relays status, ``Content-Type`` and body. Graph wants an answer within 3 s: when the Calendar
Service is slower or unreachable the receiver answers 503 (nothing was queued, so Graph retries),
never a 202 of its own. Rate-limited per client address like the candidate pages. Nothing from the
body is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from calendar_backend import errors
from calendar_backend.client import CalendarServiceClient
from dialogs.candidate_page import client_ip
from dialogs.rate_limit import KeyedTokenBuckets

LOG = logging.getLogger("openslot.watch")
PATH = "/api/graph/notifications"
MAX_BODY = 64 * 1024
MAX_QUERY = 2048


@dataclass(frozen=True)
class ReceiverConfig:
    calendar_service_url: str
    timeout_s: float = 2.5  # Graph's limit is 3 s: leave room for the relay itself
    trust_forwarded_for: bool = False
    ip_rate_per_min: int = 600
    ip_burst: int = 120


@dataclass
class _Receiver:
    config: ReceiverConfig
    limit: KeyedTokenBuckets
    on_forwarded: Callable[[], None] | None
    client: CalendarServiceClient | None = None


_KEY = web.AppKey("watch_receiver", _Receiver)


def mount_watch_receiver(
    app: web.Application, config: ReceiverConfig, on_forwarded: Callable[[], None] | None = None
) -> None:
    """Register ``POST /api/graph/notifications`` (and its HTTP client's lifecycle) on the bot app.
    ``on_forwarded``: called after a notification was queued (the drift poller looks at once)."""
    app[_KEY] = _Receiver(
        config, KeyedTokenBuckets(config.ip_rate_per_min, burst=config.ip_burst), on_forwarded
    )

    async def lifecycle(app_: web.Application):  # type: ignore[no-untyped-def]
        session = aiohttp.ClientSession()
        app_[_KEY].client = CalendarServiceClient(config.calendar_service_url, session)
        yield
        await session.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post(PATH, receive)


def _problem(status: int, code: str, message: str, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


async def receive(request: web.Request) -> web.Response:
    rt = request.app[_KEY]
    wait = rt.limit.take(client_ip(request, rt.config.trust_forwarded_for))
    if wait > 0:
        return _problem(429, "rate_limited", "Too many requests.", max(1, round(wait)))
    query = request.rel_url.raw_query_string  # as sent: never re-encoded
    if len(query) > MAX_QUERY:
        return _problem(400, "invalid_request", "query: is too long")
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _problem(413, "invalid_request", "body: is too large")
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _problem(413, "invalid_request", "body: is too large")
    content_type = request.headers.get("Content-Type")
    if rt.client is None:  # not started yet
        return _problem(503, "upstream_unavailable", "Try again.", 1)
    try:
        status, answer_type, answer = await rt.client.forward_notification(
            query, body, content_type, rt.config.timeout_s
        )
    except errors.GraphUnavailableError:
        LOG.warning("graph notification not forwarded: calendar service unavailable")
        return _problem(503, "upstream_unavailable", "Try again.", 1)  # nothing queued: Graph retries
    if status == 202 and rt.on_forwarded is not None:
        rt.on_forwarded()
    return web.Response(status=status, body=answer, headers={"Content-Type": answer_type})
