"""Calendar Service token validation beyond the forged matrix of tests/service/test_locks.py
(security.md §7 #2, #3, #5): unknown-kid floods, key rollover, JWKS outage (last known good), the signing
key's own `issuer`, and identity = tid + oid only.

Cache behaviour runs the real `JwksCache` + `TokenValidator` against a small identity provider served on
loopback (devtenant's `SigningKeys`, JWKS with per-key `issuer` as Entra publishes it) with an injected
monotonic clock; the HTTP-level flood runs against the real service and devtenant.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from calendar_backend.auth import JwksCache, TokenValidator
from calendar_backend.contract import format_time
from calendar_backend.errors import AuthError
from devtenant.keys import SigningKeys
from tests.service.conftest import Stack, calendar_stack

__all__ = ["calendar_stack"]

CLIENT_ID = "b7e3f0a4-2c6d-4e8f-9a1b-3d5c7e9f0a12"
ORG_TID = "6f2d5c1e-8d3b-4a7e-9f41-2b7c9e0d1a55"
CONSUMER_TID = "9188040d-6c67-4c5b-b112-36a304b66dad"
SCOPE = "access_as_user"


@dataclass
class Idp:
    """An Entra-like issuer: org keys published with the `{tenantid}` template issuer, plus one
    consumer-tenant key published with that tenant's exact issuer."""

    org: SigningKeys = field(default_factory=SigningKeys)
    consumer: SigningKeys = field(default_factory=SigningKeys)
    up: bool = True
    fetches: int = 0
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/organizations/v2.0/.well-known/openid-configuration", self._metadata)
        app.router.add_get("/keys", self._keys)
        return app

    async def _metadata(self, _request: web.Request) -> web.Response:
        if not self.up:
            return web.Response(status=503)
        return web.json_response({"jwks_uri": f"{self.url}/keys"})

    async def _keys(self, _request: web.Request) -> web.Response:
        self.fetches += 1
        keys = (
            self.org.jwks(f"{self.url}/{{tenantid}}/v2.0")["keys"]
            + self.consumer.jwks(f"{self.url}/{CONSUMER_TID}/v2.0")["keys"]
        )
        return web.json_response({"keys": keys})

    def claims(self, tid: str = ORG_TID, **over: Any) -> dict[str, Any]:
        now = int(datetime.now(UTC).timestamp())
        base = {
            "aud": CLIENT_ID,
            "iss": f"{self.url}/{tid}/v2.0",
            "tid": tid,
            "ver": "2.0",
            "oid": "25da05b9-438b-56fc-b1dd-a0f2636eb550",
            "scp": SCOPE,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "preferred_username": "alexw@contoso.example",
            "email": "alexw@contoso.example",
        }
        return {**base, **over}

    def token(self, keys: SigningKeys | None = None, *, kid: str | None = None, **over: Any) -> str:
        signer = keys or self.org
        if kid is None:
            return signer.mint(self.claims(**over))
        # the key object, not PEM: re-loading a PEM key costs ~0.1 s of validation per token
        return jwt.encode(
            self.claims(**over), signer.current.private_key, algorithm="RS256", headers={"kid": kid}
        )


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def idp() -> AsyncIterator[Idp]:
    provider = Idp()
    server = TestServer(provider.app(), host="127.0.0.1")
    await server.start_server()
    provider.url = str(server.make_url("")).rstrip("/")
    yield provider
    await server.close()


@pytest.fixture
async def validator(idp: Idp) -> AsyncIterator[tuple[TokenValidator, Clock]]:
    clock = Clock()
    async with aiohttp.ClientSession() as session:
        cache = JwksCache(session, idp.url, min_refresh_s=300, clock=clock, timeout_s=2)
        yield TokenValidator(cache, authority_host=idp.url, client_id=CLIENT_ID, required_scope=SCOPE), clock


async def _refused(v: TokenValidator, token: str) -> bool:
    try:
        await v.validate(token)
    except AuthError:
        return True
    return False


async def test_unknown_kid_flood_costs_at_most_one_refresh(
    idp: Idp, validator: tuple[TokenValidator, Clock]
) -> None:
    v, _clock = validator
    await v.validate(idp.token())  # the first fetch
    assert idp.fetches == 1
    results = [await _refused(v, idp.token(kid=uuid.uuid4().hex)) for _ in range(1000)]
    assert all(results)
    assert idp.fetches <= 2


async def test_rollover_new_kid_is_accepted_after_one_bounded_refresh(
    idp: Idp, validator: tuple[TokenValidator, Clock]
) -> None:
    v, clock = validator
    old = idp.token()
    await v.validate(old)
    idp.org.rollover()  # the new key is published, old keys stay published
    new = idp.token()
    clock.now += 301  # beyond the refresh bound
    principal = await v.validate(new)
    assert principal.tenant_id == ORG_TID
    assert idp.fetches == 2
    await v.validate(old)  # still published, still valid
    assert idp.fetches == 2


async def test_jwks_outage_keeps_last_known_good_keys(
    idp: Idp, validator: tuple[TokenValidator, Clock]
) -> None:
    v, clock = validator
    await v.validate(idp.token())
    idp.up = False
    clock.now += 301
    assert await _refused(v, idp.token(kid="never-published"))  # refresh fails → 401, not 500
    clock.now += 301
    assert (await v.validate(idp.token())).oid == idp.claims()["oid"]  # cached key still works


async def test_consumer_tenant_key_cannot_sign_an_org_tenant_token(
    idp: Idp, validator: tuple[TokenValidator, Clock]
) -> None:
    v, _ = validator
    assert await _refused(v, idp.token(idp.consumer, tid=ORG_TID))
    assert (await v.validate(idp.token(idp.consumer, tid=CONSUMER_TID))).tenant_id == CONSUMER_TID


async def test_iss_tid_mismatch_and_non_guid_tid_are_refused(
    idp: Idp, validator: tuple[TokenValidator, Clock]
) -> None:
    v, _ = validator
    assert await _refused(v, idp.token(iss=f"{idp.url}/{uuid.uuid4()}/v2.0"))
    assert await _refused(v, idp.token(tid="contoso.example", iss=f"{idp.url}/contoso.example/v2.0"))


async def test_identity_is_tid_and_oid_never_email_or_upn(
    idp: Idp, validator: tuple[TokenValidator, Clock]
) -> None:
    v, _ = validator
    base = await v.validate(idp.token())
    renamed = await v.validate(
        idp.token(
            preferred_username="ceo@contoso.example",
            email="ceo@contoso.example",
            upn="ceo@contoso.example",
            unique_name="ceo@contoso.example",
        )
    )
    assert (renamed.tenant_id, renamed.oid) == (base.tenant_id, base.oid)
    other_tid = str(uuid.uuid4())
    same_email_elsewhere = await v.validate(idp.token(tid=other_tid))
    assert (same_email_elsewhere.tenant_id, same_email_elsewhere.oid) != (base.tenant_id, base.oid)
    assert await _refused(v, idp.token(scp="User.Read"))
    assert await _refused(v, idp.token(scp=""))


async def test_http_unknown_kid_flood_is_401_with_at_most_one_jwks_fetch(calendar_stack: Stack) -> None:
    stack = calendar_stack
    start = datetime.now(UTC) + timedelta(days=7)
    body = {
        "interviewers": ["meganb@contoso.example"],
        "duration_min": 30,
        "start": format_time(start),
        "end": format_time(start + timedelta(days=2)),
    }
    status, _ = await stack.post("/v1/slots/find", body, stack.token())  # warm the cache
    assert status == 200
    claims = jwt.decode(stack.token(), options={"verify_signature": False})
    key = stack.devtenant.issuer.keys.current.private_key
    counters = stack.devtenant.tenant.counters
    keys_before, graph_before = counters["entra.keys"], stack.graph_requests()
    statuses = set()
    for i in range(300):
        forged = jwt.encode(claims, key, algorithm="RS256", headers={"kid": f"flood-{i}"})
        statuses.add((await stack.post("/v1/slots/find", body, forged))[0])
    assert statuses == {401}
    assert counters["entra.keys"] - keys_before <= 1
    assert stack.graph_requests() == graph_before


async def test_time_claims_must_be_integers(idp: Idp, validator: tuple[TokenValidator, Clock]) -> None:
    """Issue 12 finding 14: PyJWT reads ``int(exp)``, so "9999999999", 9.9e9 or true would pass."""
    v, _ = validator
    now = int(datetime.now(UTC).timestamp())
    assert not await _refused(v, idp.token(exp=now + 3600))
    for claim, bad in [
        ("exp", str(now + 3600)),
        ("exp", float(now + 3600)),
        ("exp", now + 3600.5),
        ("exp", True),
        ("exp", [now + 3600]),
        ("nbf", str(now)),
        ("nbf", float(now)),
        ("iat", str(now)),
        ("iat", float(now)),
        ("exp", 10**20),
    ]:
        assert await _refused(v, idp.token(**{claim: bad})), (claim, bad)
