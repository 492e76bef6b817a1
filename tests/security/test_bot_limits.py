"""The bot's rate limits and outbound connector hardening (security.md §7 #22, #27, #9).

The bot runs in the PROD profile (genuine channel tokens from devtenant's channel keys) behind a
real loopback server; the Bot Connector is a recording server on loopback.

- #22: inbound activities are limited per conversation and per tenant (never per IP): the excess
  gets 429 + Retry-After and no handler runs (the connector hears nothing); forged requests (401)
  spend no budget.
- #27: however fast turns arrive, one conversation receives ≤ 7 sends in any one-second window.
- #9: a serviceUrl answering 302 is not followed; a serviceUrl that never answers ends the turn
  within the configured connector timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import bot as bot_module
from devtenant.botframework import mint_channel_token
from devtenant.keys import SigningKeys
from dialogs.rate_limit import KeyedTokenBuckets, SendPacer
from dialogs.sql_storage import SqlStorage
from tests.bot.conftest import FakeCalendarService
from tests.devtenant.fixtures import DevTenantHandle
from tests.security.conftest import Connector, ProdBot, port_of, prod_settings, tls_context


@dataclass
class TimedConnector(Connector):
    """The recording connector, also noting when each request arrived (monotonic seconds)."""

    times: list[float] = field(default_factory=list)

    async def _record(self, request: web.Request) -> web.Response:
        self.times.append(time.monotonic())
        return await super()._record(request)


@asynccontextmanager
async def serve(app: web.Application, dt: DevTenantHandle) -> AsyncIterator[str]:
    """``app`` on https://127.0.0.1:<port>/ (the prod profile sends to https serviceUrls only)."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=tls_context(dt))
    try:
        yield str(server.make_url("/")).rstrip("/") + "/"
    finally:
        await server.close()


@dataclass
class Env:
    devtenant: DevTenantHandle
    storage: SqlStorage
    keys: SigningKeys
    monkeypatch: pytest.MonkeyPatch

    @asynccontextmanager
    async def bot(self, connector: Connector, *also: str, **overrides: Any) -> AsyncIterator[ProdBot]:
        """The prod bot; ``connector`` and the serviceUrls in ``also`` are allow-listed."""
        self.monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(self.devtenant.ca_path))
        ports = [port_of(u) for u in (connector.url, *also)]
        settings = replace(prod_settings(self.devtenant, ports), **overrides)
        app = bot_module.build_app(settings, calendar=FakeCalendarService(), storage=self.storage)
        template = jwt.decode(
            mint_channel_token(self.keys, app_id=settings.app_id, service_url="x", now=datetime.now(UTC)),
            options={"verify_signature": False},
        )
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield ProdBot(
                client,
                connector,
                self.devtenant,
                settings.app_id,
                self.devtenant.tenant_id,
                self.keys,
                template,
            )


@pytest.fixture
def env(
    devtenant: DevTenantHandle,
    bot_storage: SqlStorage,
    channel_keys: SigningKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> Env:
    return Env(devtenant, bot_storage, channel_keys, monkeypatch)


@pytest.fixture
async def timed_connector(devtenant: DevTenantHandle) -> AsyncIterator[TimedConnector]:
    conn = TimedConnector()
    async with serve(conn.app(), devtenant) as url:
        conn.url = url
        yield conn


def in_conversation(bot: ProdBot, aid: str, conversation: str, **extra: Any) -> dict[str, Any]:
    return bot.activity(aid=aid, conversation={"id": conversation, "tenantId": bot.tenant_id}, **extra)


async def post_raw(
    bot: ProdBot, doc: dict[str, Any], service_url: str | None = None
) -> tuple[int, dict[str, str]]:
    token = bot.channel_token(service_url=service_url)
    resp = await bot.client.post("/api/messages", json=doc, headers={"Authorization": f"Bearer {token}"})
    await resp.read()
    return resp.status, dict(resp.headers)


# ---- #22: inbound, per conversation and per tenant --------------------------------------------
async def test_conversation_budget_then_429_with_retry_after(
    env: Env, timed_connector: TimedConnector
) -> None:
    async with env.bot(timed_connector, rate_conversation_per_min=3) as bot:
        statuses = [
            await bot.post(in_conversation(bot, f"a{i}", "a:conv-x"), bot.channel_token()) for i in range(3)
        ]
        assert all(s < 300 for s in statuses)
        replies = len(timed_connector.posted)
        assert replies >= 3  # every admitted turn answered
        status, headers = await post_raw(bot, in_conversation(bot, "a9", "a:conv-x"))
        assert status == 429
        assert 1 <= int(headers["Retry-After"]) <= 60
        assert len(timed_connector.posted) == replies  # no handler ran for the refused one
        other = await bot.post(in_conversation(bot, "b1", "a:conv-y"), bot.channel_token())
        assert other < 300  # another conversation has its own budget


async def test_tenant_budget_spans_conversations(env: Env, timed_connector: TimedConnector) -> None:
    async with env.bot(timed_connector, rate_tenant_per_min=4) as bot:
        for i in range(4):
            assert await bot.post(bot.activity(aid=f"t{i}"), bot.channel_token()) < 300
        status, headers = await post_raw(bot, bot.activity(aid="t9"))
        assert status == 429
        assert int(headers["Retry-After"]) >= 1


async def test_forged_requests_spend_no_budget(env: Env, timed_connector: TimedConnector) -> None:
    async with env.bot(timed_connector, rate_conversation_per_min=2, rate_tenant_per_min=2) as bot:
        for i in range(6):
            doc = in_conversation(bot, f"f{i}", "a:conv-z")
            assert await bot.post(doc, "forged.token.value") == 401
        assert await bot.post(in_conversation(bot, "g1", "a:conv-z"), bot.channel_token()) < 300


def test_rate_settings_are_read_and_validated(devtenant: DevTenantHandle) -> None:
    base = {"OPENSLOT_ENV": "dev", "OPENSLOT_DEV_TENANT_ID": devtenant.tenant_id}
    settings = bot_module.load_bot_settings(
        {
            **base,
            "OPENSLOT_BOT_RATE_TENANT_PER_MIN": "50",
            "OPENSLOT_BOT_RATE_CONVERSATION_PER_MIN": "5",
            "OPENSLOT_BOT_RATE_SENDS_PER_SECOND": "3",
            "OPENSLOT_BOT_CONNECTOR_TIMEOUT_S": "2.5",
        }
    )
    assert (
        settings.rate_tenant_per_min,
        settings.rate_conversation_per_min,
        settings.rate_sends_per_second,
        settings.connector_timeout_s,
    ) == (50, 5, 3, 2.5)
    for name in ("OPENSLOT_BOT_RATE_TENANT_PER_MIN", "OPENSLOT_BOT_CONNECTOR_TIMEOUT_S"):
        for bad in ("0", "-1", "abc"):
            with pytest.raises(bot_module.SettingsError):
                bot_module.load_bot_settings({**base, name: bad})


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    buckets = KeyedTokenBuckets(60, clock=lambda: now[0])  # 1 token per second, burst 60
    assert all(buckets.take("k") == 0.0 for _ in range(60))
    wait = buckets.take("k")
    assert wait == pytest.approx(1.0)
    now[0] += 0.5
    assert buckets.take("k") == pytest.approx(0.5)  # a refusal spends nothing
    now[0] += 0.5
    assert buckets.take("k") == 0.0
    assert buckets.take("other") == 0.0


# ---- #27: outbound pacing per conversation ----------------------------------------------------
def max_in_window(times: list[float], window: float = 1.0) -> int:
    ordered = sorted(times)
    return max((sum(1 for u in ordered[i:] if u - t < window) for i, t in enumerate(ordered)), default=0)


async def test_probe_at_most_seven_sends_per_second_per_conversation(
    env: Env, timed_connector: TimedConnector
) -> None:
    async with env.bot(timed_connector) as bot:
        docs = [in_conversation(bot, f"p{i}", "a:conv-burst") for i in range(12)]
        statuses = await asyncio.gather(*(bot.post(d, bot.channel_token()) for d in docs))
    assert all(s < 500 for s in statuses)
    sends = [
        t
        for t, p in zip(timed_connector.times, timed_connector.posted, strict=True)
        if "/v3/conversations/" in p["path"]
    ]
    assert len(sends) >= 12  # every turn answered at least once
    assert max_in_window(sends) <= 7


async def test_pacer_waits_for_the_window() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = SendPacer(7, clock=lambda: now[0], sleep=sleep)
    stamps = []
    for _ in range(15):
        async with pacer.slot("c1"):
            stamps.append(now[0])
            now[0] += 0.01
    assert max_in_window(stamps) == 7
    assert stamps[7] >= 1.0
    assert stamps[14] >= 2.0
    async with pacer.slot("c2"):  # another conversation is not held back
        assert now[0] == stamps[14] + 0.01


# ---- #9: the outbound connector path ----------------------------------------------------------
@pytest.mark.parametrize(
    "redirect_class", [web.HTTPFound, web.HTTPTemporaryRedirect, web.HTTPPermanentRedirect]
)
async def test_connector_redirect_is_not_followed(
    env: Env, timed_connector: TimedConnector, redirect_class: type[web.HTTPMove]
) -> None:
    """302, 307 and 308 (requests follows 307/308 for POST by default, body included)."""
    target = TimedConnector()
    hits: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        hits.append(request.path)
        raise redirect_class(target.url.rstrip("/") + request.path)

    redirector = web.Application()
    redirector.router.add_route("*", "/{tail:.*}", redirect)
    async with (
        serve(target.app(), env.devtenant) as target_url,
        serve(redirector, env.devtenant) as redirector_url,
    ):
        target.url = target_url
        async with env.bot(timed_connector, redirector_url, target_url) as bot:
            doc = bot.activity(aid="r1", serviceUrl=redirector_url)
            status, _ = await post_raw(bot, doc, service_url=redirector_url)
    assert status < 500
    assert hits  # the bot did try to answer through the redirecting serviceUrl
    assert target.posted == []  # and nothing ever reached the redirect target


@asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[str, Callable[[], int]]]:
    """A TCP server that accepts connections, reads, and never answers."""
    accepted: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read(65536)
        await asyncio.sleep(3600)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}/", lambda: len(accepted)
    finally:
        for writer in accepted:
            writer.close()
        server.close()


async def test_dead_service_url_times_out_quickly(env: Env, timed_connector: TimedConnector) -> None:
    async with (
        silent_server() as (url, accepted),
        env.bot(timed_connector, url, connector_timeout_s=1.0) as bot,
    ):
        started = time.monotonic()
        status, _ = await post_raw(bot, bot.activity(aid="d1", serviceUrl=url), service_url=url)
        elapsed = time.monotonic() - started
    assert status < 500
    assert accepted() >= 1  # the reply was attempted against the silent host
    assert 1.0 <= elapsed < 6.0  # reply + apology, one timeout each, no retries
