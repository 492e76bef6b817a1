"""The Bot Framework user-token service and channel auth metadata, as botbuilder 4.17 calls them.

Token service (paths, verbs and bodies as in `botframework.connector.token_api`):
`GET /api/usertoken/GetToken`, `POST /api/usertoken/exchange`, `DELETE /api/usertoken/SignOut`,
`GET /api/usertoken/GetTokenStatus`, `GET /api/botsignin/GetSignInResource`, plus the sign-in
callback `/.auth/web/redirect`. The stored token is a v2 access token for OpenSlot's own API
(`aud` = appId, `scp` = access_as_user). A bearer token is optional (dev profile), but when an
Authorization header is present it must verify (aud `https://api.botframework.com`), else 401.

Channel auth: `/botframework/v1/.well-known/openidconfiguration` and `/.../keys`, a separate key
set whose keys carry `endorsements: ["msteams"]`; `mint_channel_token` signs channel→bot tokens.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web

from devtenant.entra import (
    BOTFRAMEWORK_RESOURCE,
    ISSUER_KEY,
    TOKEN_LIFETIME,
    EntraError,
    TokenIssuer,
    active_user,
    html_page,
)
from devtenant.keys import SigningKeys

JsonDict = dict[str, Any]
CHANNEL_ISSUER = "https://api.botframework.com"
SSO_SCOPE = "access_as_user"
CHANNEL_KEYS = web.AppKey("devtenant.channel_keys", SigningKeys)
CHANNEL_TOKEN_LIFETIME = timedelta(hours=1)


def add_botframework_routes(app: web.Application, channel_keys: SigningKeys) -> None:
    """Register the token service and channel-auth routes; needs `ISSUER_KEY` set (entra first)."""
    app[CHANNEL_KEYS] = channel_keys
    app.router.add_get("/api/usertoken/GetToken", _get_token)
    app.router.add_post("/api/usertoken/exchange", _exchange)
    app.router.add_delete("/api/usertoken/SignOut", _sign_out)
    app.router.add_get("/api/usertoken/GetTokenStatus", _token_status)
    app.router.add_get("/api/botsignin/GetSignInResource", _sign_in_resource)
    app.router.add_get("/.auth/web/redirect", _sign_in_callback)
    app.router.add_get("/botframework/v1/.well-known/openidconfiguration", _channel_metadata)
    app.router.add_get("/botframework/v1/.well-known/keys", _channel_keys)


def mint_channel_token(keys: SigningKeys, *, app_id: str, service_url: str, now: datetime) -> str:
    """A channel→bot token as Bot Framework signs it: iss api.botframework.com, aud bot app id."""
    ts = int(now.timestamp())
    return keys.mint(
        {
            "iss": CHANNEL_ISSUER,
            "aud": app_id,
            "serviceurl": service_url,
            "iat": ts,
            "nbf": ts,
            "exp": ts + int(CHANNEL_TOKEN_LIFETIME.total_seconds()),
        },
        include_x5t=True,
    )


def connection_app(issuer: TokenIssuer) -> JsonDict:
    """The app behind the OAuth connection (botFramework.appId, else the first app)."""
    bf = issuer.tenant.data.get("botFramework") or {}
    app = issuer.tenant.find_application(str(bf.get("appId", ""))) if bf.get("appId") else None
    apps = issuer.tenant.applications()
    if app is None and not apps:
        raise web.HTTPNotFound(text="no application registered")
    return app or apps[0]


def _connection_name(issuer: TokenIssuer) -> str:
    return str((issuer.tenant.data.get("botFramework") or {}).get("connectionName", ""))


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _guard(request: web.Request) -> TokenIssuer:
    """Count the call; verify an optional bot bearer token (raises 401 when it does not verify)."""
    issuer = request.app[ISSUER_KEY]
    issuer.tenant.counters["botframework.tokenservice"] += 1
    header = request.headers.get("Authorization")
    if header:
        scheme, _, token = header.partition(" ")
        try:
            issuer.keys.verify(token if scheme.lower() == "bearer" else "", audience=BOTFRAMEWORK_RESOURCE)
        except jwt.InvalidTokenError as exc:
            raise web.HTTPUnauthorized(
                text=json.dumps({"error": {"code": "Unauthorized", "message": "invalid token"}}),
                content_type="application/json",
            ) from exc
    return issuer


def _resolve_user(issuer: TokenIssuer, user_id: str) -> JsonDict | None:
    """A tenant user for a Bot Framework user id: object id, `29:`-prefixed, learned mapping, or
    the tenant file's `botFramework.channelUserIds` (channel account id -> object id)."""
    aliases: dict[str, str] = issuer.tenant.data.setdefault("_botUserIds", {})
    seeded = (issuer.tenant.data.get("botFramework") or {}).get("channelUserIds") or {}
    candidates = [
        user_id,
        aliases.get(user_id, ""),
        str(seeded.get(user_id, "")),
        user_id.removeprefix("29:"),
    ]
    for key in candidates:
        user = issuer.tenant.find_user(key) if key else None
        if user is not None:
            return user
    return None


def _token_response(issuer: TokenIssuer, user: JsonDict, connection: str, channel_id: str) -> JsonDict:
    app_id = str(connection_app(issuer)["appId"])
    token = issuer.access_token(client_id=app_id, audience=app_id, user=user, scp=[SSO_SCOPE])
    expiration = issuer.tenant.clock().astimezone(UTC) + TOKEN_LIFETIME
    return {
        "channelId": channel_id,
        "connectionName": connection,
        "token": token,
        "expiration": expiration.isoformat().replace("+00:00", "Z"),
    }


def _signed_in(issuer: TokenIssuer, user: JsonDict, connection: str) -> bool:
    stored = issuer.tenant.bot_tokens.get((str(user["id"]), connection))
    listed = (issuer.tenant.data.get("botFramework") or {}).get("signedInUsers", [])
    return stored is not None or str(user["id"]) in [str(u) for u in listed]


def _usable(user: JsonDict | None) -> JsonDict | None:
    return user if user is not None and user.get("accountEnabled", True) else None


async def _get_token(request: web.Request) -> web.Response:
    issuer, q = _guard(request), request.query
    connection, channel = q.get("connectionName", ""), q.get("channelId", "")
    user = _usable(_resolve_user(issuer, q.get("userId", "")))
    pending = issuer.tenant.data.setdefault("_botMagicCodes", {})
    if user is not None and q.get("code") and pending.get(q["code"]) == str(user["id"]):
        pending.pop(q["code"])
        issuer.tenant.bot_tokens[(str(user["id"]), connection)] = {"at": issuer.now_ts()}
    if user is None or connection != _connection_name(issuer) or not _signed_in(issuer, user, connection):
        return _error(404, "TokenNotFound", "The user is not signed in to this connection.")
    return web.json_response(_token_response(issuer, user, connection, channel))


async def _exchange(request: web.Request) -> web.Response:
    issuer, q = _guard(request), request.query
    connection, channel = q.get("connectionName", ""), q.get("channelId", "")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "BadArgument", "The request body is not valid JSON.")
    if connection != _connection_name(issuer):
        return _error(404, "ConnectionNotFound", "The connection name is not known.")
    try:
        user = _validate_sso_token(issuer, str((body or {}).get("token") or ""))
    except EntraError as err:
        return _error(400, "ExchangeFailed", f"AADSTS{err.code}: {err.message}")
    issuer.tenant.bot_tokens[(str(user["id"]), connection)] = {"at": issuer.now_ts()}
    issuer.tenant.data.setdefault("_botUserIds", {})[q.get("userId", "")] = str(user["id"])
    return web.json_response(_token_response(issuer, user, connection, channel))


def _validate_sso_token(issuer: TokenIssuer, token: str) -> JsonDict:
    """The enabled user behind an SSO token (aud appId, scp access_as_user, consent granted)."""
    app = connection_app(issuer)
    try:
        claims = issuer.verify(token, audience=str(app["appId"]))
    except jwt.InvalidTokenError as exc:
        raise EntraError("invalid_grant", 50013, "Assertion failed signature validation.") from exc
    if SSO_SCOPE not in str(claims.get("scp", "")).split():
        raise EntraError("invalid_grant", 65001, "The SSO token lacks the access_as_user scope.")
    if not (app.get("adminConsent") or {}).get("granted"):
        raise EntraError(
            "invalid_grant",
            65001,
            "The user or administrator has not consented to use the application.",
            suberror="consent_required",
        )
    return active_user(issuer.tenant, str(claims.get("oid", "")))


async def _sign_out(request: web.Request) -> web.Response:
    issuer, q = _guard(request), request.query
    user = _resolve_user(issuer, q.get("userId", ""))
    if user is not None:
        conns = [q["connectionName"]] if q.get("connectionName") else [_connection_name(issuer)]
        for conn in conns:
            issuer.tenant.bot_tokens.pop((str(user["id"]), conn), None)
        listed = (issuer.tenant.data.get("botFramework") or {}).get("signedInUsers", [])
        if str(user["id"]) in listed:
            listed.remove(str(user["id"]))
    return web.Response(status=204)


async def _token_status(request: web.Request) -> web.Response:
    issuer, q = _guard(request), request.query
    user = _usable(_resolve_user(issuer, q.get("userId", "")))
    connection = _connection_name(issuer)
    return web.json_response(
        [
            {
                "channelId": q.get("channelId", ""),
                "connectionName": connection,
                "hasToken": bool(user is not None and _signed_in(issuer, user, connection)),
                "serviceProviderDisplayName": "Azure Active Directory v2",
            }
        ]
    )


def _decode_state(state: str) -> JsonDict:
    try:
        doc = json.loads(base64.b64decode(state + "=" * (-len(state) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


async def _sign_in_resource(request: web.Request) -> web.Response:
    issuer = _guard(request)
    state = request.query.get("state", "")
    doc = _decode_state(state)
    app = connection_app(issuer)
    app_id = str(doc.get("msAppId") or app["appId"])
    user = (doc.get("conversation") or {}).get("user") or {}
    if user.get("id") and user.get("aadObjectId"):
        issuer.tenant.data.setdefault("_botUserIds", {})[str(user["id"])] = str(user["aadObjectId"])
    uri = next(iter(app.get("identifierUris", [])), f"api://{app_id}")
    params = {
        "client_id": app_id,
        "response_type": "code",
        "state": state,
        "redirect_uri": f"{issuer.base_url}/.auth/web/redirect",
        "scope": f"{uri}/{SSO_SCOPE} openid profile offline_access",
    }
    link = f"{issuer.base_url}/{issuer.tenant.tenant_id}/oauth2/v2.0/authorize?{urlencode(params)}"
    return web.json_response(
        {
            "signInLink": link,
            "tokenExchangeResource": {
                "id": secrets.token_hex(16),
                "uri": uri,
                "providerId": "devtenant-aadv2",
            },
            "tokenPostResource": {
                "sasUrl": f"{issuer.base_url}/api/usertoken/post?{urlencode({'state': state})}"
            },
        }
    )


async def _sign_in_callback(request: web.Request) -> web.Response:
    """The authorize page's redirect target: redeem the code, store the token, show a code."""
    issuer = request.app[ISSUER_KEY]
    record = issuer.tenant.auth_codes.pop(request.query.get("code", ""), None)
    if record is None:
        return html_page("Sign-in failed", "<p>The authorization code is not valid.</p>", 400)
    doc = _decode_state(request.query.get("state", ""))
    connection = str(doc.get("connectionName") or _connection_name(issuer))
    bf_user = (doc.get("conversation") or {}).get("user") or {}
    if bf_user.get("id"):
        issuer.tenant.data.setdefault("_botUserIds", {})[str(bf_user["id"])] = record["oid"]
    magic = f"{secrets.randbelow(10**6):06d}"
    issuer.tenant.data.setdefault("_botMagicCodes", {})[magic] = record["oid"]
    issuer.tenant.bot_tokens[(record["oid"], connection)] = {"at": issuer.now_ts()}
    return html_page(
        "Signed in",
        f"<p>Signed in. If asked, enter this code: <b id='magic-code'>{html.escape(magic)}</b></p>",
    )


async def _channel_metadata(request: web.Request) -> web.Response:
    base = request.app[ISSUER_KEY].base_url
    return web.json_response(
        {
            "issuer": CHANNEL_ISSUER,
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": f"{base}/botframework/v1/.well-known/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }
    )


async def _channel_keys(request: web.Request) -> web.Response:
    request.app[ISSUER_KEY].tenant.counters["botframework.keys"] += 1
    return web.json_response(request.app[CHANNEL_KEYS].jwks(None))
