"""Getting Graph tokens with MSAL: on-behalf-of the signed-in user (delegated) or app-only.

MSAL is synchronous (requests), so every call runs in a worker thread. MSAL talks to the configured authority
without instance discovery and trusts the configured CA bundle (devtenant) or the system store.

Per-user token caches (they hold the OBO refresh token) are serialised, sealed with AES-256-GCM under
purpose `token-cache`, and stored only in the `token_caches` row of that (tenant, oid); they are written back
only when MSAL changed them, and deleted on disconnect.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import msal
import requests

from calendar_backend.errors import (
    AuthError,
    PermissionDeniedError,
    ReconnectRequiredError,
    UpstreamError,
)

log = logging.getLogger(__name__)

GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
# AADSTS codes that mean "this user may no longer act" rather than "sign in again".
_USER_GONE = {50057, 50034, 700082}


@dataclass(frozen=True, slots=True)
class AppCredential:
    """A tenant's admin-consent app credential, as decrypted for one request (never stored plain)."""

    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"AppCredential(client_id={self.client_id!r}, client_secret='***')"

    @staticmethod
    def from_bytes(raw: bytes) -> AppCredential:
        doc = json.loads(raw)
        return AppCredential(client_id=str(doc["client_id"]), client_secret=str(doc["client_secret"]))

    def to_bytes(self) -> bytes:
        return json.dumps({"client_id": self.client_id, "client_secret": self.client_secret}).encode()


class _DiscoveryOnlyCache(dict[Any, Any]):
    """An MSAL `http_cache` that keeps discovery GETs but never token-endpoint answers.

    MSAL also caches an HTTP 400 from the token endpoint for 60 s; shared across requests that would
    replay "consent required" for a minute after an admin granted consent, so POST entries are dropped.
    """

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(key, str) and key.startswith("POST "):
            return
        super().__setitem__(key, value)


class TokenBroker:
    """Acquires Graph access tokens.

    It keeps only a shared HTTP session and MSAL's cache of authority metadata (discovery documents, no
    tokens), so each request costs one token call, not a discovery call as well. On-behalf-of runs on
    every request on purpose: a user disabled in Entra is refused at once, not when a cached token expires.
    """

    def __init__(
        self, authority_host: str, ca_bundle: str | None, scopes: tuple[str, ...], timeout_s: float = 15.0
    ) -> None:
        self._authority_host = authority_host
        self._scopes = list(scopes)
        self._http = requests.Session()
        if ca_bundle:
            self._http.verify = ca_bundle
            # requests lets REQUESTS_CA_BUNDLE override session.verify; an explicit bundle must win.
            self._http.trust_env = False
        self._timeout = timeout_s
        self._metadata_cache = _DiscoveryOnlyCache()  # MSAL http_cache: discovery responses only

    def _app(
        self, tenant_id: str, credential: AppCredential, cache: msal.SerializableTokenCache | None
    ) -> msal.ConfidentialClientApplication:
        return msal.ConfidentialClientApplication(
            credential.client_id,
            client_credential=credential.client_secret,
            authority=f"{self._authority_host}/{tenant_id}",
            instance_discovery=False,
            http_client=self._http,
            token_cache=cache,
            timeout=self._timeout,
            http_cache=self._metadata_cache,
        )

    async def on_behalf_of(
        self, tenant_id: str, credential: AppCredential, user_assertion: str, cache_blob: bytes | None
    ) -> tuple[str, bytes | None]:
        """A delegated Graph token for the user; returns (access token, new cache or None)."""
        return await asyncio.to_thread(self._on_behalf_of, tenant_id, credential, user_assertion, cache_blob)

    def _on_behalf_of(
        self, tenant_id: str, credential: AppCredential, user_assertion: str, cache_blob: bytes | None
    ) -> tuple[str, bytes | None]:
        cache = msal.SerializableTokenCache()
        if cache_blob:
            cache.deserialize(cache_blob.decode())
        try:
            app = self._app(tenant_id, credential, cache)
            result = app.acquire_token_on_behalf_of(user_assertion, self._scopes)
        except (requests.RequestException, ValueError) as exc:
            raise UpstreamError("Microsoft Entra ID is not reachable.") from exc
        token = _token_or_raise(result)
        return token, cache.serialize().encode() if cache.has_state_changed else None

    async def for_app(self, tenant_id: str, credential: AppCredential) -> str:
        """An app-only Graph token (client credentials) for candidate bookings and directory jobs."""
        return await asyncio.to_thread(self._for_app, tenant_id, credential)

    def _for_app(self, tenant_id: str, credential: AppCredential) -> str:
        try:
            app = self._app(tenant_id, credential, None)
            result = app.acquire_token_for_client([GRAPH_DEFAULT_SCOPE])
        except (requests.RequestException, ValueError) as exc:
            raise UpstreamError("Microsoft Entra ID is not reachable.") from exc
        return _token_or_raise(result)


def _token_or_raise(result: dict[str, Any] | None) -> str:
    if result and "access_token" in result:
        return str(result["access_token"])
    result = result or {}
    error = str(result.get("error", ""))
    codes = set(result.get("error_codes") or [])
    log.info("entra refused a token: %s %s", error[:40], sorted(codes)[:3])
    if codes & _USER_GONE:
        raise PermissionDeniedError("This account can no longer use OpenSlot.")
    if error in {"invalid_grant", "interaction_required", "consent_required"}:
        raise ReconnectRequiredError()
    if error in {"invalid_client", "unauthorized_client"}:
        raise AuthError()
    raise UpstreamError("Microsoft Entra ID refused the request.")
