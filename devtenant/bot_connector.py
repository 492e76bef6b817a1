"""A fake Bot Connector (Teams' side of the conversation) and, optionally, user-token service.

For tests and benches that run the real bot app: it records every activity the bot sends
(``POST``/``PUT /v3/conversations/{cid}/activities[/{aid}]``) and, when given a ``token``, answers
``GET /api/usertoken/GetToken`` and ``POST /api/usertoken/exchange`` with it (``exchange_status`` other
than 200 makes the exchange fail as Entra's consent error does). Plain HTTP on 127.0.0.1.

    connector = FakeBotConnector(token="t")
    async with connector.serving() as url:      # also sets connector.url
        ...  # a serviceUrl / OPENSLOT_TOKEN_SERVICE_URL of `url`
    connector.posted                             # every activity, with "_conversation" = the cid

`app()` is the bare aiohttp app, for a test server of one's own (or one in another thread). Reading
`posted` from another thread is safe through `replies()` / `count`. Subclasses may override `record` (a
bench that only counts, for example).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

CONNECTION = "openslot"  # the OAuth connection name the bot asks for


@dataclass
class FakeBotConnector:
    """Records what the bot posts; hands out ``token`` as every user's token when set."""

    token: str | None = None
    exchange_status: int = 200
    keep: bool = True  # False: count the activities, keep none (long benches)
    url: str = ""  # set by `serving()`
    posted: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v3/conversations/{cid}/activities", self._post)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._post)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._post)
        if self.token is not None:
            app.router.add_get("/api/usertoken/GetToken", self._token)
            app.router.add_post("/api/usertoken/exchange", self._exchange)
        return app

    def record(self, conversation: str, activity: dict[str, Any]) -> None:
        """Keep ``activity`` (tagged with its conversation id in ``"_conversation"``) unless not `keep`."""
        if self.keep:
            activity["_conversation"] = conversation
            self.posted.append(activity)

    def replies(self, conversation: str) -> list[dict[str, Any]]:
        """Everything sent to ``conversation`` so far, in order."""
        with self._lock:
            return [a for a in self.posted if a["_conversation"] == conversation]

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        """Serve on a random loopback port in the running loop; yields (and sets) ``url``."""
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            yield self.url
        finally:
            await runner.cleanup()

    async def _post(self, request: web.Request) -> web.Response:
        activity = await request.json()
        with self._lock:
            self.count += 1
            self.record(request.match_info["cid"], activity)
            count = self.count
        return web.json_response({"id": f"r{count}"})

    async def _token(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "channelId": "msteams",
                "connectionName": CONNECTION,
                "token": self.token,
                "expiration": "2099-01-01T00:00:00Z",
            }
        )

    async def _exchange(self, request: web.Request) -> web.Response:
        if self.exchange_status != 200:
            return web.json_response(
                {"error": {"code": "ExchangeFailed", "message": "AADSTS65001"}}, status=self.exchange_status
            )
        return await self._token(request)
