"""Security-suite fixtures: devtenant (session), a recording fake Bot Connector, and the bot app in the PROD
profile with channel auth pointed at devtenant's Bot Framework OpenID metadata.

The SDK fetches the channel OpenID metadata with module-level `requests` (trust_env), so the test points
REQUESTS_CA_BUNDLE at devtenant's CA for the duration of a test (monkeypatch); production trusts public CAs.
The prod profile sends only to https serviceUrls on allow-listed ports (calendar_backend/outbound.py), so the
fake Bot Connectors serve TLS with devtenant's certificate (`tls_context`) and their ports are allow-listed.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import create_async_engine

import bot as bot_module
from devtenant.botframework import mint_channel_token
from devtenant.keys import SigningKeys
from devtenant.tls import server_ssl_context
from dialogs.sql_storage import SqlStorage
from tests.bot.conftest import FakeCalendarService, migrated_sqlite_url
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server

__all__ = ["devtenant", "devtenant_server"]


@dataclass
class Connector:
    """A stand-in Bot Connector on loopback that records every request the bot makes to it."""

    posted: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._record)
        return app

    async def _record(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.posted.append(
            {
                "path": request.path,
                "method": request.method,
                "auth": request.headers.get("Authorization", "")[:7],
                "body": json.loads(body) if body else None,
            }
        )
        return web.json_response({"id": f"r{len(self.posted)}"})


@dataclass
class ProdBot:
    """The bot app in PROD profile behind a real loopback server, plus what it needs to be attacked."""

    client: TestClient[Any, Any]
    connector: Connector
    devtenant: DevTenantHandle
    app_id: str
    tenant_id: str
    channel_keys: SigningKeys
    template: dict[str, Any] = field(default_factory=dict)

    def channel_token(self, *, service_url: str | None = None, **claims: Any) -> str:
        """A genuine channel→bot token: devtenant's `mint_channel_token` claims and header, fresh
        times, optionally with claims overridden."""
        now = int(datetime.now(UTC).timestamp())
        shift = now - int(self.template["iat"])
        base = {
            **self.template,
            "serviceurl": service_url or self.connector.url,
            "iat": now,
            "nbf": now,
            "exp": int(self.template["exp"]) + shift,
        }
        return self.sign({**base, **claims})

    def sign(self, claims: dict[str, Any]) -> str:
        """Sign with the channel key exactly as devtenant does (key object: no per-token PEM load)."""
        key = self.channel_keys.current
        return jwt.encode(
            claims, key.private_key, algorithm="RS256", headers={"typ": "JWT", "kid": key.kid, "x5t": key.x5t}
        )

    def activity(self, *, aid: str = "a1", tenant: str | None = None, **extra: Any) -> dict[str, Any]:
        tid = self.tenant_id if tenant is None else tenant
        doc: dict[str, Any] = {
            "type": "message",
            "id": aid,
            "text": "hello",
            "channelId": "msteams",
            "serviceUrl": self.connector.url,
            "from": {"id": "29:alex", "name": "Alex"},
            "recipient": {"id": f"28:{self.app_id}"},
            "conversation": {"id": f"a:conv-{aid}", "tenantId": tid},
            "channelData": {"tenant": {"id": tid}},
        }
        doc.update(extra)
        return doc

    async def post(self, doc: Any, token: str | None, *, scheme: str = "Bearer") -> int:
        headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
        resp = await self.client.post("/api/messages", json=doc, headers=headers)
        await resp.read()
        return resp.status


def tls_context(dt: DevTenantHandle) -> ssl.SSLContext:
    """A TLS server context with devtenant's certificate (127.0.0.1, ::1, localhost)."""
    return server_ssl_context(dt.ca_path.parent)


def port_of(url: str) -> int:
    """The port of a loopback test server's URL."""
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


@pytest.fixture
async def connector(devtenant: DevTenantHandle) -> AsyncIterator[Connector]:
    conn = Connector()
    server = TestServer(conn.app(), host="127.0.0.1")
    await server.start_server(ssl=tls_context(devtenant))
    conn.url = str(server.make_url("/")).rstrip("/") + "/"
    yield conn
    await server.close()


@pytest.fixture
async def bot_storage(tmp_path: Path) -> AsyncIterator[SqlStorage]:
    """The bot's storage on a database migrated like production's (bot_state, the audit chain, ...)."""
    store = SqlStorage(create_async_engine(await migrated_sqlite_url(tmp_path / "bot.db")))
    yield store
    await store.close()


def prod_settings(dt: DevTenantHandle, ports: Iterable[int] = ()) -> bot_module.BotSettings:
    """PROD profile: real app id + password, channel auth and outbound token against devtenant;
    https serviceUrls on 127.0.0.1 at ``ports`` allowed."""
    app = dt.tenant.applications()[0]
    return bot_module.load_bot_settings(
        {
            "OPENSLOT_ENV": "prod",
            "OPENSLOT_BOT_APP_ID": str(app["appId"]),
            "OPENSLOT_BOT_APP_PASSWORD": str(app["passwordCredentials"][0]["secretText"]),
            "OPENSLOT_BOT_ALLOWED_TENANTS": dt.tenant_id,
            "OPENSLOT_TOKEN_SERVICE_URL": dt.base_url,
            "OPENSLOT_CA_BUNDLE": str(dt.ca_path),
            "OPENSLOT_ALLOWED_SERVICE_URL_HOSTS": "127.0.0.1",
            "OPENSLOT_ALLOWED_SERVICE_URL_PORTS": ",".join(str(p) for p in ports),
            "OPENSLOT_BOT_CHANNEL_OPENID_METADATA_URL": f"{dt.base_url}/botframework/v1/.well-known/openidconfiguration",  # noqa: E501
            "OPENSLOT_BOT_LOGIN_URL": f"{dt.base_url}/{dt.tenant_id}",
        }
    )


@pytest.fixture(scope="session")
def channel_keys(devtenant_server: DevTenantHandle) -> SigningKeys:
    """devtenant's Bot Framework channel signing keys (its persisted key file, loaded once)."""
    return SigningKeys(devtenant_server.ca_path.parent / "channel-keys.json")


@pytest.fixture
async def prod_bot(
    devtenant: DevTenantHandle,
    connector: Connector,
    bot_storage: SqlStorage,
    channel_keys: SigningKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[ProdBot]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(devtenant.ca_path))
    settings = prod_settings(devtenant, [port_of(connector.url)])
    app = bot_module.build_app(settings, calendar=FakeCalendarService(), storage=bot_storage)
    template = jwt.decode(
        mint_channel_token(channel_keys, app_id=settings.app_id, service_url="x", now=datetime.now(UTC)),
        options={"verify_signature": False},
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield ProdBot(
            client, connector, devtenant, settings.app_id, devtenant.tenant_id, channel_keys, template
        )
