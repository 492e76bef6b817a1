"""Fuzz `POST /api/messages` (security.md §7 #29 for the bot): malformed JSON, wrong types, wrong content
types and oversized bodies get a 4xx and never a 5xx, in the dev profile (anonymous, so fuzzed activities
reach the gate and the dialogs) and the PROD profile (with and without a genuine channel token)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import create_async_engine

import bot as bot_module
from devtenant.botframework import mint_channel_token
from devtenant.keys import SigningKeys
from dialogs.sql_storage import METADATA, SqlStorage
from tests.bot.conftest import FakeCalendarService
from tests.devtenant.fixtures import DevTenantHandle
from tests.security.conftest import prod_settings
from tests.security.servers import serve_in_thread

TENANT = "6f2d5c1e-8d3b-4a7e-9f41-2b7c9e0d1a55"
FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "type",
    "id",
    "text",
    "channelId",
    "serviceUrl",
    "from",
    "recipient",
    "conversation",
    "channelData",
    "value",
    "name",
    "attachments",
    "entities",
    "timestamp",
    "locale",
    "replyToId",
    "localTimezone",
    "membersAdded",
    "action",
]


def _activity(service_url: str, tenant: str = TENANT) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "a1",
        "text": "schedule",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": "29:alex", "name": "Alex"},
        "recipient": {"id": "28:bot"},
        "conversation": {"id": "a:c1", "tenantId": tenant},
        "channelData": {"tenant": {"id": tenant}},
    }


@st.composite
def mutated_activities(draw: st.DrawFn, service_url: str) -> dict[str, Any]:
    doc = _activity(service_url)
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        if draw(st.booleans()):
            doc[key] = draw(json_values)
        else:
            doc.pop(key, None)
    doc["id"] = draw(st.uuids()).hex  # never deduplicated away
    return doc


bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=100).map(str.encode),
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        None,
    ]
)


async def _connector(request: web.Request) -> web.Response:
    """The bot's own server doubles as the Bot Connector its activities name as serviceUrl."""
    await request.read()
    return web.json_response({"id": "r1"})


def _app(settings_: bot_module.BotSettings, db: Path) -> web.Application:
    engine = create_async_engine(f"sqlite+aiosqlite:///{db}")
    app = bot_module.build_app(settings_, calendar=FakeCalendarService(), storage=SqlStorage(engine))
    app.router.add_route("*", "/v3/{tail:.*}", _connector)

    async def tables(_app: web.Application) -> None:
        async with engine.begin() as conn:
            await conn.run_sync(METADATA.create_all)

    app.on_startup.insert(0, tables)
    return app


@pytest.fixture(scope="module")
def dev_bot_url(devtenant_server: DevTenantHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings_ = bot_module.load_bot_settings(
        {
            "OPENSLOT_ENV": "dev",
            "OPENSLOT_DEV_TENANT_ID": TENANT,
            "OPENSLOT_TOKEN_SERVICE_URL": devtenant_server.base_url,
            "OPENSLOT_CA_BUNDLE": str(devtenant_server.ca_path),
            "OPENSLOT_ALLOWED_SERVICE_URL_HOSTS": "127.0.0.1",
        }
    )
    db = tmp_path_factory.mktemp("fuzzbot") / "bot.db"
    with serve_in_thread(lambda: _app(settings_, db)) as url:
        yield url


@pytest.fixture(scope="module")
def prod_bot_url(
    devtenant_server: DevTenantHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    db = tmp_path_factory.mktemp("fuzzprod") / "bot.db"
    with serve_in_thread(lambda: _app(prod_settings(devtenant_server), db)) as url:
        yield url


def _post(url: str, body: bytes, content_type: str | None, token: str | None = None) -> int:
    headers = {"Content-Type": content_type} if content_type else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with requests.Session() as s:
        s.trust_env = False
        resp = s.post(f"{url}/api/messages", data=body, headers=headers, timeout=30)
    return resp.status_code


@FUZZ
@given(body=bodies, content_type=content_types)
def test_dev_random_bodies_never_5xx(dev_bot_url: str, body: bytes, content_type: str | None) -> None:
    assert _post(dev_bot_url, body, content_type) < 500


@FUZZ
@given(data=st.data())
def test_dev_wrongly_typed_activities_never_5xx(dev_bot_url: str, data: st.DataObject) -> None:
    doc = data.draw(mutated_activities(dev_bot_url + "/"))
    status = _post(dev_bot_url, json.dumps(doc).encode(), "application/json")
    assert status < 500, doc


@pytest.fixture(scope="module")
def channel_token(
    prod_bot_url: str, devtenant_server: DevTenantHandle, channel_keys: SigningKeys
) -> Iterator[str]:
    """A genuine channel token for activities whose serviceUrl is the prod bot's own server."""
    keys = channel_keys
    app_id = str(devtenant_server.tenant.applications()[0]["appId"])
    mp = pytest.MonkeyPatch()
    mp.setenv("REQUESTS_CA_BUNDLE", str(devtenant_server.ca_path))  # the SDK's metadata fetch
    yield mint_channel_token(keys, app_id=app_id, service_url=prod_bot_url + "/", now=datetime.now(UTC))
    mp.undo()


@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_prod_wrongly_typed_activities_with_a_genuine_token_never_5xx(
    prod_bot_url: str, channel_token: str, data: st.DataObject
) -> None:
    doc = data.draw(mutated_activities(prod_bot_url + "/"))
    status = _post(prod_bot_url, json.dumps(doc).encode(), "application/json", channel_token)
    assert status < 500, doc


@FUZZ
@given(body=bodies, content_type=content_types)
def test_prod_unauthenticated_random_bodies_are_4xx(
    prod_bot_url: str, body: bytes, content_type: str | None
) -> None:
    assert 400 <= _post(prod_bot_url, body, content_type) < 500


@pytest.mark.parametrize("size", [256 * 1024 + 1, 4 * 1024 * 1024])
def test_oversized_bodies_are_413(dev_bot_url: str, size: int) -> None:
    body = b'{"type":"message","text":"' + b"x" * size + b'"}'
    assert _post(dev_bot_url, body, "application/json") == 413


def test_deeply_nested_json_is_4xx(dev_bot_url: str) -> None:
    body = b'{"type":"message","value":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    assert 400 <= _post(dev_bot_url, body, "application/json") < 500
