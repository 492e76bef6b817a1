"""The bot's user-token service client (``dialogs/token_service.py``) in the PROD profile.

Against devtenant's Bot Framework token service, which verifies the bot's bearer token when one is
sent: a lookup carries a valid bot token, answers what botbuilder's msrest client answers, and one
client (with one MSAL cache) serves every turn of the process. Against a local stub: anything but
200/404 is an error, redirects are not followed, oversized or malformed answers are refused.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from aiohttp import web
from botbuilder.schema import TokenResponse
from botframework.connector.auth import ClaimsIdentity, MicrosoftAppCredentials
from botframework.connector.auth._user_token_client_impl import _UserTokenClientImpl

import bot as bot_module
from dialogs.token_service import MAX_ANSWER_BYTES, TokenServiceClient, TokenServiceError
from tests.devtenant.fixtures import DevTenantHandle
from tests.security.conftest import prod_settings

CHANNEL = "msteams"


def _signed_in_user(dt: DevTenantHandle) -> tuple[str, str]:
    """An enabled user signed in to the bot's connection at devtenant: (object id, connection)."""
    connection = str(dt.tenant.data["botFramework"]["connectionName"])
    user = next(u for u in dt.tenant.users() if u.get("accountEnabled", True))
    dt.tenant.bot_tokens[(str(user["id"]), connection)] = {"at": 0}
    return str(user["id"]), connection


async def test_prod_lookup_sends_a_valid_bot_token_and_one_client_serves_every_turn(
    devtenant: DevTenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(devtenant.ca_path))
    settings = prod_settings(devtenant)
    auth = bot_module.OpenSlotAuthentication(settings)
    oid, connection = _signed_in_user(devtenant)
    counters = devtenant.tenant.counters
    grants_before = counters["entra.token.client_credentials"]
    lookups_before = counters["botframework.tokenservice"]
    try:
        clients = [await auth.create_user_token_client(ClaimsIdentity({}, True)) for _ in range(3)]
        assert clients[0] is clients[1] is clients[2]
        assert isinstance(clients[0], TokenServiceClient)
        answers = [await c.get_user_token(f"29:{oid}", connection, CHANNEL, None) for c in clients]
    finally:
        await auth.close()
    for answer in answers:
        assert isinstance(answer, TokenResponse)
        claims = jwt.decode(answer.token, options={"verify_signature": False})
        assert (claims["aud"], claims["oid"]) == (settings.app_id, oid)
        assert (answer.connection_name, answer.channel_id) == (connection, CHANNEL)
    # devtenant answers 401 to a bearer token that does not verify, so every lookup carried a
    # valid one; the bot token came from Entra once for the three lookups (one MSAL cache).
    assert counters["botframework.tokenservice"] - lookups_before == 3
    assert counters["entra.token.client_credentials"] - grants_before == 1


async def test_answers_match_botbuilders_msrest_client(
    devtenant: DevTenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(devtenant.ca_path))
    settings = prod_settings(devtenant)
    auth = bot_module.OpenSlotAuthentication(settings)
    oid, connection = _signed_in_user(devtenant)
    ours = await auth.create_user_token_client(ClaimsIdentity({}, True))
    assert isinstance(ours, TokenServiceClient)
    theirs = ours._inner
    assert isinstance(theirs, _UserTokenClientImpl)
    try:
        for user, conn in (
            (f"29:{oid}", connection),
            ("29:nobody", connection),
            (f"29:{oid}", "another-connection"),
        ):
            mine = await ours.get_user_token(user, conn, CHANNEL, None)
            reference = await theirs.get_user_token(user, conn, CHANNEL, None)
            assert (mine is None) == (reference is None)
            if mine is not None:
                assert (mine.connection_name, mine.channel_id) == (
                    reference.connection_name,
                    reference.channel_id,
                )
                assert jwt.decode(mine.token, options={"verify_signature": False})["oid"] == oid
        with pytest.raises(TypeError):
            await ours.get_user_token("", connection, CHANNEL, None)
    finally:
        await auth.close()


# ---- a misbehaving token service -----------------------------------------------------------


@pytest.fixture
async def stub_service(aiohttp_server: Any) -> tuple[str, list[web.Request]]:
    seen: list[web.Request] = []
    answers = {
        "ok": web.json_response({"channelId": CHANNEL, "connectionName": "c", "token": "t-1"}),
        "missing": web.json_response({"error": {"code": "TokenNotFound"}}, status=404),
        "empty": web.json_response({"channelId": CHANNEL, "connectionName": "c"}),
        "broken": web.json_response({"error": {"code": "Oops"}}, status=500),
        "moved": web.HTTPFound("/elsewhere"),
        "huge": web.json_response({"token": "x" * MAX_ANSWER_BYTES}),
        "garbage": web.Response(text="<html>", content_type="application/json"),
        "list": web.json_response([{"token": "t"}]),
    }

    async def get_token(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        answer = answers[request.query["userId"]]
        if isinstance(answer, web.HTTPException):
            raise answer
        return answer

    async def elsewhere(_request: web.Request) -> web.Response:
        return web.json_response({"token": "followed"})

    app = web.Application()
    app.router.add_get("/api/usertoken/GetToken", get_token)
    app.router.add_get("/elsewhere", elsewhere)
    server = await aiohttp_server(app)
    return str(server.make_url("")), seen


def _stub_client(url: str) -> TokenServiceClient:
    return TokenServiceClient(None, url, MicrosoftAppCredentials.empty(), timeout_s=5)  # type: ignore[arg-type]


async def test_request_shape_and_answers_from_a_stub(stub_service: tuple[str, list[web.Request]]) -> None:
    url, seen = stub_service
    client = _stub_client(url)
    try:
        ok = await client.get_user_token("ok", "c", CHANNEL, "123456")
        assert isinstance(ok, TokenResponse)
        assert ok.token == "t-1"
        assert dict(seen[-1].query) == {
            "userId": "ok",
            "connectionName": "c",
            "channelId": CHANNEL,
            "code": "123456",
            "api-version": "token",
        }
        assert seen[-1].headers["Accept"] == "application/json"
        assert "Authorization" not in seen[-1].headers  # the dev profile has no bot identity
        assert "code" not in (await _query_of(client, "missing", seen))
        assert await client.get_user_token("empty", "c", CHANNEL, None) is None
        for refused, status in (
            ("broken", 500),
            ("moved", 302),
            ("huge", 200),
            ("garbage", 200),
            ("list", 200),
        ):
            with pytest.raises(TokenServiceError) as caught:
                await client.get_user_token(refused, "c", CHANNEL, None)
            assert caught.value.status == status
        assert all(r.path != "/elsewhere" for r in seen)  # the redirect was not followed
    finally:
        await client.close()


async def _query_of(client: TokenServiceClient, user: str, seen: list[web.Request]) -> dict[str, str]:
    assert await client.get_user_token(user, "c", CHANNEL, None) is None
    return dict(seen[-1].query)
