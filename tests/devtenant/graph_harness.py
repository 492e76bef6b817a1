"""What the devtenant Graph route tests share: one signing key, tokens for a tenant id, the verifier the
routes trust, a test client serving just the Graph routes of a tenant, and tenant-file users."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import rsa

from devtenant.graph import add_graph_routes
from devtenant.tenant import DevTenant

GRAPH_AUD = "https://graph.microsoft.com"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
Client = TestClient[web.Request, web.Application]
AiohttpClient = Callable[[web.Application], Awaitable[Client]]


def sign(tid: str, claims: dict[str, Any], key: rsa.RSAPrivateKey = KEY) -> str:
    """A Graph access token for tenant ``tid`` with ``claims`` (``azp``, ``roles``/``scp``, ``oid``...)."""
    now = int(time.time())
    body = {
        "aud": GRAPH_AUD,
        "iss": f"https://sts.windows.net/{tid}/",
        "tid": tid,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256")


def bearer(tid: str, **claims: Any) -> dict[str, str]:
    """An ``Authorization`` header carrying ``sign(tid, claims)``."""
    return {"Authorization": "Bearer " + sign(tid, claims)}


def verify(token: str) -> dict[str, Any]:
    """The verifier the Graph routes get: RS256 under `KEY`, audience Graph."""
    return jwt.decode(token, KEY.public_key(), algorithms=["RS256"], audience=GRAPH_AUD)


async def graph_client(tenant: DevTenant, aiohttp_client: AiohttpClient) -> Client:
    """A test client for an app serving only ``tenant``'s Graph routes."""
    app = web.Application()
    add_graph_routes(app, tenant, verify)
    return await aiohttp_client(app)


def person(uid: str, nick: str, *, role: str | None = "read", **extra: Any) -> dict[str, Any]:
    """A tenant-file user ``nick``@contoso.example with no events; the organisation may read their
    calendar with ``role`` (no ``calendarPermissions`` entry when None); ``extra`` adds fields."""
    doc: dict[str, Any] = {
        "id": uid,
        "displayName": nick.title(),
        "userPrincipalName": f"{nick}@contoso.example",
        "mail": f"{nick}@contoso.example",
        "accountEnabled": True,
        "events": [],
    }
    if role is not None:
        everyone = {"name": "My Organization", "address": ""}
        doc["calendarPermissions"] = [{"emailAddress": everyone, "role": role}]
    return {**doc, **extra}
