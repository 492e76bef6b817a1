"""The Bot Framework user-token service client the bot uses for every turn: one per process.

botbuilder 4.17's ``CloudAdapter`` asks ``BotFrameworkAuthentication.create_user_token_client``
for a client on every turn, and its ``_UserTokenClientImpl`` is msrest over ``requests``: each
``GetToken`` (asked on every turn that calls the Calendar Service, see ``sso.fetch_user_token``)
ran in a worker thread (~1.3 ms on loopback, two thread hand-offs), and each new client brought new
``MicrosoftAppCredentials`` with an empty MSAL cache, so in production every lookup first asked
Entra for a new bot token.

``TokenServiceClient`` is built once per bot process. ``get_user_token`` goes over aiohttp on the
bot's event loop: same URL, query (``userId``, ``connectionName``, ``channelId``, ``code``,
``api-version=token``), ``Accept`` header and answers as the msrest operation (200 → the
``TokenResponse``; 404 or an answer without a token → ``None``; anything else raises
``TokenServiceError``), never following a redirect, within ``timeout_s``. The bot's own token for
the ``Authorization`` header comes from the process-wide ``AppCredentials`` (MSAL's cache, in a
worker thread because a cache miss goes to the network); without an app id (the dev profile) no
header is sent, as msrest does. TLS trusts ``OPENSLOT_CA_BUNDLE`` when set, else the system's trust
store (``requests`` used certifi's copy of Mozilla's; both hold the roots token.botframework.com
chains to). The rarer operations (exchange, sign-out, sign-in resource, token
status, AAD tokens) go to the msrest client unchanged.

The user token is returned to the caller and held nowhere here: not logged, not cached.
"""

from __future__ import annotations

import asyncio
import json
import ssl

import aiohttp
from botbuilder.schema import Activity, TokenResponse
from botframework.connector.auth import AppCredentials
from botframework.connector.auth.user_token_client import UserTokenClient
from botframework.connector.token_api.models import (
    SignInUrlResponse,
    TokenExchangeRequest,
    TokenStatus,
)

GET_TOKEN_PATH = "/api/usertoken/GetToken"  # noqa: S105 (a URL path, not a secret)
MAX_ANSWER_BYTES = 64 * 1024  # a TokenResponse is a few KiB; anything larger is refused


class TokenServiceError(Exception):
    """The token service answered a token lookup with something other than a token or 404."""

    def __init__(self, status: int) -> None:
        super().__init__(f"token service answered HTTP {status}")
        self.status = status


class TokenServiceClient(UserTokenClient):
    """A process-wide user-token client: aiohttp ``GetToken``, msrest for the rest."""

    def __init__(
        self,
        inner: UserTokenClient,
        endpoint: str,
        credentials: AppCredentials,
        *,
        ca_bundle: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        super().__init__()
        self._inner = inner
        self._url = endpoint.rstrip("/") + GET_TOKEN_PATH
        self._credentials = credentials
        self._ssl: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def get_user_token(
        self, user_id: str, connection_name: str, channel_id: str, magic_code: str | None
    ) -> TokenResponse | None:
        """The user's token for ``connection_name``, or ``None`` when there is none.

        Raises:
            TypeError: a required argument is missing (as botbuilder's client does).
            TokenServiceError: the service answered neither 200 nor 404, or too much.
            aiohttp.ClientError, TimeoutError: the service could not be reached in time.
        """
        for name, value in (
            ("user_id", user_id),
            ("connection_name", connection_name),
            ("channel_id", channel_id),
        ):
            if not value or not isinstance(value, str):
                raise TypeError(name)
        params = {"userId": user_id, "connectionName": connection_name, "channelId": channel_id}
        if magic_code is not None:
            params["code"] = magic_code
        params["api-version"] = "token"
        headers = {"Accept": "application/json"}
        if self._credentials.microsoft_app_id:  # the dev profile has no bot identity: no header
            bot_token = await asyncio.to_thread(self._credentials.get_access_token)
            headers["Authorization"] = f"Bearer {bot_token}"
        async with self._http().get(
            self._url,
            params=params,
            headers=headers,
            ssl=self._ssl,
            allow_redirects=False,
            timeout=self._timeout,
        ) as answer:
            if answer.status == 404:
                return None
            body = await answer.content.read(MAX_ANSWER_BYTES + 1)
            if answer.status != 200 or len(body) > MAX_ANSWER_BYTES:
                raise TokenServiceError(answer.status)
        try:
            doc = json.loads(body)
        except ValueError as exc:  # not JSON, or not UTF-8
            raise TokenServiceError(answer.status) from exc
        if not isinstance(doc, dict):
            raise TokenServiceError(answer.status)
        result = TokenResponse.deserialize(doc)
        return result if isinstance(result, TokenResponse) and result.token else None

    def _http(self) -> aiohttp.ClientSession:
        """The session of the running loop (a new loop, as in tests, gets a new session)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(trust_env=False)
            self._loop = loop
        return self._session

    async def close(self) -> None:
        """Close the session (on the bot app's shutdown)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    # ---- the rarer operations: botbuilder's msrest client, unchanged ------------------------

    async def get_sign_in_resource(
        self, connection_name: str, activity: Activity, final_redirect: str
    ) -> SignInUrlResponse:
        return await self._inner.get_sign_in_resource(connection_name, activity, final_redirect)

    async def sign_out_user(self, user_id: str, connection_name: str, channel_id: str) -> None:
        await self._inner.sign_out_user(user_id, connection_name, channel_id)

    async def get_token_status(self, user_id: str, channel_id: str, include_filter: str) -> list[TokenStatus]:
        return await self._inner.get_token_status(user_id, channel_id, include_filter)

    async def get_aad_tokens(
        self, user_id: str, connection_name: str, resource_urls: list[str], channel_id: str
    ) -> dict[str, TokenResponse]:
        return await self._inner.get_aad_tokens(user_id, connection_name, resource_urls, channel_id)

    async def exchange_token(
        self, user_id: str, connection_name: str, channel_id: str, exchange_request: TokenExchangeRequest
    ) -> TokenResponse:
        return await self._inner.exchange_token(user_id, connection_name, channel_id, exchange_request)
