"""Lock 1: validate a Microsoft-issued v2 user access token locally with PyJWT.

Checks (security.md §1.1, requirements 1-3, 5): RS256 only; `kid` from the authority's JWKS; exact `aud` =
OpenSlot's client id; `ver` == "2.0"; `tid` a GUID and `iss` == "{authority}/{tid}/v2.0" (and the signing
key's `issuer`, when published, matches that template or that exact value); `exp`/`nbf`/`iat` integers (not
strings, fractions or booleans) with at most 5 minutes of skew; the required delegated scope in `scp`.
Identity is `tid` + `oid`, never email or UPN.

JWKS: cached; an unknown `kid` triggers at most one refresh per `min_refresh_s`; a failed refresh keeps the
last known good keys. Every failure raises `AuthError` (uniform; the reason is only logged, as a short code).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt

from calendar_backend.errors import AuthError

log = logging.getLogger(__name__)

_TIME_CLAIMS = ("exp", "nbf", "iat")  # NumericDate, integers only (Entra issues integers)
_MAX_TIME = 2**40  # far beyond any real token, and keeps datetime conversions in range
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the immutable tenant + object id pair, and the token's scopes."""

    tenant_id: str
    oid: str
    scopes: frozenset[str]
    display_name: str = ""


class JwksCache:
    """The authority's signing keys, fetched over HTTPS and refreshed on unknown `kid` (bounded)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        authority_host: str,
        *,
        min_refresh_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        timeout_s: float = 10.0,
    ) -> None:
        self._session = session
        self._metadata_url = f"{authority_host}/organizations/v2.0/.well-known/openid-configuration"
        self._keys: dict[str, dict[str, Any]] = {}
        self._last_fetch: float | None = None
        self._min_refresh_s = min_refresh_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.fetches = 0

    async def key_for(self, kid: str) -> dict[str, Any] | None:
        """The JWK with this `kid`, refreshing the set at most once per `min_refresh_s`."""
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if kid in self._keys:
                return self._keys[kid]
            now = self._clock()
            if self._last_fetch is None or now - self._last_fetch >= self._min_refresh_s:
                self._last_fetch = now
                await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        self.fetches += 1
        try:
            async with self._session.get(self._metadata_url, timeout=self._timeout) as resp:
                resp.raise_for_status()
                jwks_uri = (await resp.json())["jwks_uri"]
            async with self._session.get(jwks_uri, timeout=self._timeout) as resp:
                resp.raise_for_status()
                doc = await resp.json()
            keys = {k["kid"]: k for k in doc.get("keys", []) if k.get("kty") == "RSA" and "kid" in k}
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
            log.warning(
                "jwks refresh failed (%s); keeping %d known keys", type(exc).__name__, len(self._keys)
            )
            return
        if keys:
            self._keys = keys


class TokenValidator:
    """Validates user tokens for OpenSlot's API; see the module docstring for the checks."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        authority_host: str,
        client_id: str,
        required_scope: str,
        leeway_s: int = 300,
        now: Callable[[], float] = time.time,
    ) -> None:
        if leeway_s > 300:
            raise ValueError("clock skew above 5 minutes is not allowed")
        self._jwks = jwks
        self._authority = authority_host
        self._client_id = client_id
        self._scope = required_scope
        self._leeway = leeway_s
        self._now = now

    async def validate(self, token: str) -> Principal:
        """Return the caller's `Principal`; raises `AuthError` for any failed check."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _deny("malformed") from exc
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise _deny("alg_or_kid")
        # PyJWT checks int(exp): "9999999999", 9.9e9 or true would pass, so the types come first.
        if not all(type(unverified.get(c)) is int and 0 <= unverified[c] < _MAX_TIME for c in _TIME_CLAIMS):
            raise _deny("time_claim_type")
        tid = unverified.get("tid")
        if not isinstance(tid, str) or not _GUID.match(tid):
            raise _deny("tid")
        issuer = f"{self._authority}/{tid}/v2.0"
        jwk = await self._jwks.key_for(header["kid"])
        if jwk is None:
            raise _deny("unknown_kid")
        key_issuer = jwk.get("issuer")
        if key_issuer is not None and key_issuer.replace("{tenantid}", tid) != issuer:
            raise _deny("key_issuer")
        claims = self._decode(token, jwk, issuer)
        if claims.get("ver") != "2.0":
            raise _deny("version")
        scopes = frozenset(str(claims.get("scp", "")).split())
        if self._scope not in scopes:
            raise _deny("scope")
        oid = claims.get("oid")
        if not isinstance(oid, str) or not _GUID.match(oid):
            raise _deny("oid")
        return Principal(
            tenant_id=tid, oid=oid, scopes=scopes, display_name=str(claims.get("name", ""))[:120]
        )

    def _decode(self, token: str, jwk: dict[str, Any], issuer: str) -> dict[str, Any]:
        try:
            key = jwt.PyJWK(jwk, algorithm="RS256")
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=["RS256"],
                audience=self._client_id,
                issuer=issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "nbf", "aud", "iss", "tid", "oid"], "strict_aud": True},
            )
        except jwt.PyJWTError as exc:
            raise _deny(type(exc).__name__) from exc
        now = self._now()
        if claims["iat"] > now + self._leeway:
            raise _deny("iat_future")
        return claims


def _deny(reason: str) -> AuthError:
    log.info("token rejected: %s", reason)
    return AuthError()
