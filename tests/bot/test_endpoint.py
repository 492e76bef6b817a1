"""The bot's HTTP endpoint on a real server, with devtenant's fake connector + token service."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import bot as bot_module
from devtenant.bot_connector import FakeBotConnector
from dialogs.sql_storage import SqlStorage
from tests.bot.conftest import TOKEN, FakeCalendarService

TENANT = "6f2d5c1e-8d3b-4a7e-9f41-2b7c9e0d1a55"


@pytest.fixture
async def channel() -> AsyncIterator[FakeBotConnector]:
    """The connector + user-token service the bot talks to, on a random loopback port."""
    fake = FakeBotConnector(token=TOKEN)
    async with fake.serving():
        yield fake


def settings_for(channel: FakeBotConnector, **extra: str) -> bot_module.BotSettings:
    env = {
        "OPENSLOT_ENV": "dev",
        "OPENSLOT_DEV_TENANT_ID": TENANT,
        "OPENSLOT_TOKEN_SERVICE_URL": channel.url,
        "OPENSLOT_ALLOWED_SERVICE_URL_HOSTS": "smba.trafficmanager.net,127.0.0.1",
        **extra,
    }
    return bot_module.load_bot_settings(env)


@pytest.fixture
async def client(
    channel: FakeBotConnector, storage: SqlStorage, fake: FakeCalendarService
) -> AsyncIterator[TestClient]:
    app = bot_module.build_app(settings_for(channel), calendar=fake, storage=storage)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


def activity(
    channel: FakeBotConnector,
    *,
    tenant: str = TENANT,
    aid: str = "a1",
    service_url: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    doc = {
        "type": "message",
        "id": aid,
        "text": "hello",
        "channelId": "msteams",
        "serviceUrl": service_url or channel.url,
        "from": {"id": "29:alex", "name": "Alex"},
        "recipient": {"id": "28:bot"},
        "conversation": {"id": "a:conv1", "tenantId": tenant},
        "channelData": {"tenant": {"id": tenant}},
    }
    doc.update(extra)
    return doc


def test_prod_without_app_id_refuses_to_start() -> None:
    assert bot_module.main({"OPENSLOT_ENV": "prod", "OPENSLOT_BOT_ALLOWED_TENANTS": TENANT}) == 2
    with pytest.raises(bot_module.SettingsError):
        bot_module.load_bot_settings({"OPENSLOT_ENV": "prod", "OPENSLOT_BOT_APP_ID": "x"})


async def test_allowed_activity_is_answered(client: TestClient, channel: FakeBotConnector) -> None:
    resp = await client.post("/api/messages", json=activity(channel))
    assert resp.status in (200, 201, 202)
    assert len(channel.posted) == 1  # the help card


async def test_foreign_tenant_dropped(client: TestClient, channel: FakeBotConnector) -> None:
    await client.post("/api/messages", json=activity(channel, tenant="evil-tenant"))
    assert channel.posted == []


async def test_non_allowlisted_service_url_gets_no_reply(
    client: TestClient, channel: FakeBotConnector
) -> None:
    url = channel.url.replace("127.0.0.1", "localhost")
    await client.post("/api/messages", json=activity(channel, service_url=url))
    assert channel.posted == []


async def test_duplicate_activity_processed_once(client: TestClient, channel: FakeBotConnector) -> None:
    await client.post("/api/messages", json=activity(channel, aid="dup"))
    await client.post("/api/messages", json=activity(channel, aid="dup"))
    assert len(channel.posted) == 1


@pytest.mark.parametrize("body", [b"{not json", b"[1,2]", b'{"type": 5}', b"\xff\xfe"])
async def test_malformed_body_is_400(client: TestClient, body: bytes) -> None:
    resp = await client.post("/api/messages", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400


async def test_token_exchange_failure_is_412(client: TestClient, channel: FakeBotConnector) -> None:
    channel.exchange_status = 400
    doc = activity(
        channel,
        type="invoke",
        name="signin/tokenExchange",
        value={"id": "ex1", "connectionName": "openslot", "token": "sso"},
    )
    resp = await client.post("/api/messages", json=doc)
    assert resp.status == 412
    assert (await resp.json())["failureDetail"].startswith("The bot is unable")


async def test_token_exchange_success_is_200_and_deduped(
    client: TestClient, channel: FakeBotConnector
) -> None:
    doc = activity(
        channel,
        type="invoke",
        name="signin/tokenExchange",
        value={"id": "ex2", "connectionName": "openslot", "token": "sso"},
    )
    first = await client.post("/api/messages", json=doc)
    assert first.status == 200
    second = await client.post("/api/messages", json={**doc, "id": "a2"})
    assert second.status == 200


def test_form_key_is_shared_by_a_deployment_and_validated() -> None:
    base = {"OPENSLOT_ENV": "dev", "OPENSLOT_DEV_TENANT_ID": "t1"}
    with_password = {**base, "OPENSLOT_BOT_APP_PASSWORD": "p@ss"}
    one, two = (bot_module.load_bot_settings(with_password) for _ in range(2))
    assert one.form_key == two.form_key  # two instances, one key
    assert len(one.form_key) == 32
    assert one.form_key != b"p@ss"  # derived for this purpose, not the password itself
    assert (
        bot_module.load_bot_settings({**base, "OPENSLOT_BOT_APP_PASSWORD": "other"}).form_key != one.form_key
    )
    explicit = base64.urlsafe_b64encode(bytes(range(40))).decode().rstrip("=")
    assert bot_module.load_bot_settings(
        {**with_password, "OPENSLOT_BOT_FORM_KEY": explicit}
    ).form_key == bytes(range(40))
    # No password and no key (the dev profile only): random per process, never empty.
    lone = [bot_module.load_bot_settings(base).form_key for _ in range(2)]
    assert lone[0] != lone[1]
    assert all(len(k) == 32 for k in lone)
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(bot_module.SettingsError, match="OPENSLOT_BOT_FORM_KEY"):
            bot_module.load_bot_settings({**base, "OPENSLOT_BOT_FORM_KEY": bad})
    assert "form_key" not in repr(one)


async def test_replies_reuse_one_connector_client_and_connection(
    channel: FakeBotConnector, storage: SqlStorage, fake: FakeCalendarService
) -> None:
    # botbuilder built a new ConnectorClient (a new `requests` session) for every turn, so every
    # reply opened a new connection to the Bot Connector (TLS to smba.trafficmanager.net in Teams).
    peers: list[tuple[str, int]] = []

    @web.middleware
    async def record_peer(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/v3/"):
            peers.append(request.transport.get_extra_info("peername")[:2])  # type: ignore[union-attr]
        return await handler(request)

    connector = channel.app()
    connector.middlewares.append(record_peer)
    server = TestServer(connector, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("/")).rstrip("/")
    app = bot_module.build_app(settings_for(channel), calendar=fake, storage=storage)
    async with TestClient(TestServer(app, host="127.0.0.1")) as bot_client:
        for n in range(3):
            doc = activity(
                channel,
                aid=f"reuse-{n}",
                service_url=url,
                conversation={"id": f"a:reuse-{n}", "tenantId": TENANT},
            )
            assert (await bot_client.post("/api/messages", json=doc)).status in (200, 201, 202)
    await server.close()
    assert len(peers) == 3
    assert len(set(peers)) == 1  # one kept-alive connection for every turn's reply


def test_unset_profile_never_runs_anonymously(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 12 finding 7: only an explicit OPENSLOT_ENV=dev may be anonymous."""
    for env in ({}, {"OPENSLOT_ENV": ""}, {"OPENSLOT_ENV": "  "}):
        base = {**env, "OPENSLOT_DEV_TENANT_ID": TENANT, "OPENSLOT_BOT_ALLOWED_TENANTS": TENANT}
        with pytest.raises(bot_module.SettingsError, match="only OPENSLOT_ENV=dev may run anonymously"):
            bot_module.load_bot_settings(base)
        assert bot_module.main(base) == 2
    assert "OPENSLOT_ENV is unset" in caplog.text
    assert not bot_module.load_bot_settings(
        {"OPENSLOT_BOT_ALLOWED_TENANTS": TENANT, "OPENSLOT_BOT_APP_ID": "a", "OPENSLOT_BOT_APP_PASSWORD": "p"}
    ).is_dev
    assert bot_module.load_bot_settings({"OPENSLOT_ENV": "dev", "OPENSLOT_DEV_TENANT_ID": TENANT}).is_dev
