"""Bot Framework token service + channel auth, called through botbuilder's own token API client."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from botframework.connector.auth import MicrosoftAppCredentials
from botframework.connector.token_api.aio import TokenApiClient
from botframework.connector.token_api.models import ErrorResponse, TokenResponse

from tests.devtenant.fixtures import DevTenantHandle

CHANNEL = "msteams"


@pytest.fixture
async def token_api(devtenant: DevTenantHandle) -> AsyncIterator[TokenApiClient]:
    client = TokenApiClient(MicrosoftAppCredentials.empty(), devtenant.base_url)
    client.config.connection.verify = str(devtenant.ca_path)
    async with client:
        yield client


def _conn(dt: DevTenantHandle) -> str:
    return str(dt.tenant.data["botFramework"]["connectionName"])


def _user(dt: DevTenantHandle, signed_in: bool) -> dict[str, Any]:
    """An enabled user; for signed_in=False, one signed out through the token service first."""
    enabled = [u for u in dt.tenant.users() if u.get("accountEnabled", True)]
    if signed_in:
        return enabled[0]
    user = enabled[-1]
    dt.session().delete(
        f"{dt.base_url}/api/usertoken/SignOut",
        params={"userId": user["id"], "connectionName": _conn(dt), "channelId": CHANNEL},
        timeout=10,
    ).raise_for_status()
    return user


async def test_get_token_for_signed_in_user(devtenant: DevTenantHandle, token_api: TokenApiClient) -> None:
    user = _user(devtenant, signed_in=True)
    result = await token_api.user_token.get_token(user["id"], _conn(devtenant), channel_id=CHANNEL)
    assert isinstance(result, TokenResponse)
    assert result.token
    assert result.connection_name == _conn(devtenant)
    assert result.expiration
    app_id = devtenant.tenant.applications()[0]["appId"]
    claims = devtenant.issuer.verify(result.token, audience=app_id)
    assert claims["oid"] == user["id"]
    assert claims["scp"] == "access_as_user"


async def test_get_token_teams_style_user_id(devtenant: DevTenantHandle, token_api: TokenApiClient) -> None:
    user = _user(devtenant, signed_in=True)
    result = await token_api.user_token.get_token(f"29:{user['id']}", _conn(devtenant), channel_id=CHANNEL)
    assert result.token


async def test_get_token_not_signed_in_is_404(devtenant: DevTenantHandle, token_api: TokenApiClient) -> None:
    user = _user(devtenant, signed_in=False)
    result = await token_api.user_token.get_token(user["id"], _conn(devtenant), channel_id=CHANNEL)
    assert result.token is None  # botbuilder's UserTokenClient maps this to None


async def test_exchange_valid_sso_token(devtenant: DevTenantHandle, token_api: TokenApiClient) -> None:
    user = _user(devtenant, signed_in=False)
    sso = devtenant.mint_user_token(user["userPrincipalName"])
    result = await token_api.user_token.exchange_async(
        "29:teams-user", _conn(devtenant), CHANNEL, uri="api://x", token=sso
    )
    assert isinstance(result, TokenResponse)
    assert result.token
    again = await token_api.user_token.get_token("29:teams-user", _conn(devtenant), channel_id=CHANNEL)
    assert jwt.decode(again.token, options={"verify_signature": False})["oid"] == user["id"]
    status = await token_api.user_token.get_token_status("29:teams-user", channel_id=CHANNEL)
    assert status[0].has_token is True
    await token_api.user_token.sign_out("29:teams-user", _conn(devtenant), CHANNEL)
    gone = await token_api.user_token.get_token("29:teams-user", _conn(devtenant), channel_id=CHANNEL)
    assert gone.token is None


@pytest.mark.parametrize("case", ["wrong_audience", "no_scope", "consent", "disabled"])
async def test_exchange_failure_is_error_response(
    devtenant: DevTenantHandle, token_api: TokenApiClient, case: str
) -> None:
    user = _user(devtenant, signed_in=False)
    kwargs: dict[str, Any] = {}
    if case == "wrong_audience":
        kwargs["audience"] = "https://graph.microsoft.com"
    if case == "no_scope":
        kwargs["scp"] = "User.Read"
    sso = devtenant.mint_user_token(user["userPrincipalName"], **kwargs)
    s = devtenant.session()
    if case == "consent":
        app_id = devtenant.tenant.applications()[0]["appId"]
        s.post(f"{devtenant.base_url}/_devtenant/apps/{app_id}/consent/revoke", timeout=10)
    if case == "disabled":
        s.post(f"{devtenant.base_url}/_devtenant/users/{user['id']}/disable", timeout=10)
    result = await token_api.user_token.exchange_async(
        "29:someone", _conn(devtenant), CHANNEL, uri="api://x", token=sso
    )
    assert isinstance(result, ErrorResponse)
    assert result.error.code
    assert result.error.message
    assert getattr(result, "token", None) is None


async def test_sign_in_resource_points_at_authorize(
    devtenant: DevTenantHandle, token_api: TokenApiClient
) -> None:
    state = base64.b64encode(
        json.dumps(
            {
                "connectionName": _conn(devtenant),
                "msAppId": devtenant.tenant.applications()[0]["appId"],
                "conversation": {"user": {"id": "29:abc", "aadObjectId": _user(devtenant, False)["id"]}},
            }
        ).encode()
    ).decode()
    result = await token_api.bot_sign_in.get_sign_in_resource(state)
    assert result.sign_in_link.startswith(f"{devtenant.base_url}/{devtenant.tenant_id}/oauth2/")
    assert result.token_exchange_resource.uri
    assert result.token_exchange_resource.id
    assert result.token_post_resource.sas_url
    # Follow the link as a browser would: pick the user, land on the callback, get the token.
    s = devtenant.session()
    page = s.get(result.sign_in_link, timeout=10)
    assert page.status_code == 200
    from urllib.parse import parse_qs, urlparse

    params = {k: v[0] for k, v in parse_qs(urlparse(result.sign_in_link).query).items()}
    done = s.post(
        f"{devtenant.base_url}/{devtenant.tenant_id}/oauth2/v2.0/authorize",
        data={**params, "user": _user(devtenant, False)["id"]},
        timeout=10,
    )
    assert done.status_code == 200
    assert "magic-code" in done.text
    token = await token_api.user_token.get_token("29:abc", _conn(devtenant), channel_id=CHANNEL)
    assert token.token


async def test_bearer_token_when_present_must_verify(devtenant: DevTenantHandle) -> None:
    user = _user(devtenant, signed_in=True)
    r = devtenant.session().get(
        f"{devtenant.base_url}/api/usertoken/GetToken",
        params={"userId": user["id"], "connectionName": _conn(devtenant), "channelId": CHANNEL},
        headers={"Authorization": "Bearer not-a-token"},
        timeout=10,
    )
    assert r.status_code == 401


def test_channel_metadata_and_endorsed_keys(devtenant: DevTenantHandle) -> None:
    s = devtenant.session()
    meta = s.get(f"{devtenant.base_url}/botframework/v1/.well-known/openidconfiguration", timeout=10).json()
    assert meta["issuer"] == "https://api.botframework.com"
    keys = s.get(meta["jwks_uri"], timeout=10).json()["keys"]
    assert all(k["endorsements"] == ["msteams"] for k in keys)
    token = s.post(
        f"{devtenant.base_url}/_devtenant/tokens/channel",
        json={"app_id": "bot-app", "service_url": "https://smba.example/amer/"},
        timeout=10,
    ).json()["access_token"]
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict({"keys": keys})[kid]
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience="bot-app",
        issuer="https://api.botframework.com",
    )
    assert claims["serviceurl"] == "https://smba.example/amer/"
    entra_kids = {
        k["kid"] for k in s.get(f"{devtenant.base_url}/common/discovery/v2.0/keys", timeout=10).json()["keys"]
    }
    assert kid not in entra_kids
