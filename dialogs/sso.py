"""Teams SSO around botbuilder 4.17: token lookup, a crash-safe OAuthPrompt, exchange dedupe.

botbuilder 4.17 defect (platform.md §A4): the token service answers a failed exchange with HTTP 400,
the SDK deserialises an ``ErrorResponse`` (no ``.token``) and both ``OAuthPrompt`` and
``TeamsSSOTokenExchangeMiddleware`` crash on ``response.token``. Here every exchange result goes
through ``_token_of`` and a failure answers **412** with a ``TokenExchangeInvokeResponse`` so Teams
falls back to the sign-in card. The user token is only ever held in local variables, and once in
the current turn's ``turn_state`` (``hand_over_token``: the token the sign-in prompt just returned,
taken by the same turn's first ``require_user_token``); it never reaches conversation state, storage
or a log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from botbuilder.core import ExtendedUserTokenProvider, InvokeResponse, Middleware, Storage, TurnContext
from botbuilder.dialogs import DialogContext
from botbuilder.dialogs.prompts import OAuthPrompt, OAuthPromptSettings, PromptRecognizerResult
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    SignInConstants,
    TokenExchangeInvokeResponse,
    TokenResponse,
)
from botframework.connector.auth.user_token_client import UserTokenClient
from botframework.connector.token_api.models import TokenExchangeRequest

from calendar_backend.errors import ReconnectRequiredError

LOG = logging.getLogger("openslot.bot.sso")
EXCHANGE_FAILED = "The bot is unable to exchange token. Proceed with regular login."


def _token_of(response: object) -> str | None:
    """The token in an exchange/get-token answer; ``None`` for ErrorResponse or nothing."""
    token = getattr(response, "token", None)
    return token if isinstance(token, str) and token else None


def _token_client(context: TurnContext) -> UserTokenClient | None:
    client = context.turn_state.get(UserTokenClient.__name__)
    return client if isinstance(client, UserTokenClient) else None


async def fetch_user_token(context: TurnContext, connection: str) -> str | None:
    """The signed-in user's token for ``connection`` from the token service, or ``None``.

    Never raises for token-service failures (they are logged without detail) and never stores
    the token anywhere.
    """
    user_id = context.activity.from_property.id if context.activity.from_property else None
    if not user_id:
        return None
    try:
        client = _token_client(context)
        if client is not None:
            response = await client.get_user_token(user_id, connection, context.activity.channel_id, None)
        elif isinstance(context.adapter, ExtendedUserTokenProvider):
            response = await context.adapter.get_user_token(context, connection, None, None)
        else:
            return None
    except Exception:
        LOG.warning("token service lookup failed")
        return None
    return _token_of(response)


_HANDOVER_KEY = "openslot.sign_in_handover"  # a turn_state key, not a secret


def hand_over_token(context: TurnContext, token_response: object) -> None:
    """Let this turn's next ``require_user_token`` use the token the sign-in prompt returned
    moments ago.

    Asking the token service again in the same turn costs one more round trip (tens of ms against
    the real service). The token goes only into ``turn_state``: memory that lives for this turn,
    is never part of conversation state and is dropped with the turn; it is removed on first use.
    """
    token = _token_of(token_response)
    if token is not None:
        context.turn_state[_HANDOVER_KEY] = token


async def require_user_token(context: TurnContext, connection: str) -> str:
    """The signed-in user's token: the one handed over in this turn (taken), else the token
    service's (``fetch_user_token``).

    Raises:
        ReconnectRequiredError: there is none; the caller answers with the reconnect card, as for
            the Calendar Service's own ``reconnect_required``.
    """
    handed = context.turn_state.pop(_HANDOVER_KEY, None)
    token = handed if isinstance(handed, str) else await fetch_user_token(context, connection)
    if token is None:
        raise ReconnectRequiredError
    return token


async def exchange_sso_token(context: TurnContext, connection: str, sso_token: str) -> str | None:
    """Exchange a Teams SSO token; ``None`` on any failure (incl. the 4.17 ErrorResponse)."""
    user_id = context.activity.from_property.id if context.activity.from_property else ""
    request = TokenExchangeRequest(token=sso_token)
    try:
        client = _token_client(context)
        if client is not None:
            response = await client.exchange_token(user_id, connection, context.activity.channel_id, request)
        elif isinstance(context.adapter, ExtendedUserTokenProvider):
            response = await context.adapter.exchange_token(context, connection, user_id, request)
        else:
            return None
    except Exception:
        LOG.info("token exchange failed")
        return None
    return _token_of(response)


async def sign_out(context: TurnContext, connection: str) -> None:
    """Remove the user's token for ``connection`` from the token service."""
    user_id = context.activity.from_property.id if context.activity.from_property else ""
    client = _token_client(context)
    if client is not None:
        await client.sign_out_user(user_id, connection, context.activity.channel_id)
    elif isinstance(context.adapter, ExtendedUserTokenProvider):
        await context.adapter.sign_out_user(context, connection, user_id)


def exchange_invoke_response(
    status: int, exchange_id: str | None, connection: str, failure: str | None = None
) -> Activity:
    """An ``invokeResponse`` activity carrying a ``TokenExchangeInvokeResponse``."""
    body = TokenExchangeInvokeResponse(id=exchange_id, connection_name=connection, failure_detail=failure)
    return Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=status, body=body))


def _exchange_value(context: TurnContext) -> dict[str, Any]:
    value = context.activity.value
    if isinstance(value, dict):
        return value
    return value.serialize() if hasattr(value, "serialize") else {}


MAX_MAGIC_CODE = 256


def _valid_verify_state(context: TurnContext) -> bool:
    """True when a ``signin/verifyState`` value is ``{"state": <1..256 chars>}``."""
    value = context.activity.value
    state = value.get("state") if isinstance(value, dict) else None
    return isinstance(state, str) and 0 < len(state) <= MAX_MAGIC_CODE


class SafeOAuthPrompt(OAuthPrompt):
    """``OAuthPrompt`` whose token exchange cannot crash on an ``ErrorResponse`` (answers 412)."""

    def __init__(self, dialog_id: str, settings: OAuthPromptSettings) -> None:
        super().__init__(dialog_id, settings)
        self._connection = settings.connection_name

    async def _recognize_token(self, dialog_context: DialogContext) -> PromptRecognizerResult:
        context = dialog_context.context
        if self._is_teams_verification_invoke(context) and not _valid_verify_state(context):
            await context.send_activity(
                Activity(  # the SDK would crash on a non-object value
                    type=ActivityTypes.invoke_response, value=InvokeResponse(status=HTTPStatus.NOT_FOUND)
                )
            )
            return PromptRecognizerResult()
        if not self._is_token_exchange_request_invoke(context):
            return await super()._recognize_token(dialog_context)
        value = _exchange_value(context)
        exchange_id, sso = value.get("id"), value.get("token")
        if value.get("connectionName") != self._connection or not sso:
            await context.send_activity(
                exchange_invoke_response(
                    HTTPStatus.BAD_REQUEST,
                    exchange_id,
                    self._connection,
                    "The token exchange request is missing or for another connection.",
                )
            )
            return PromptRecognizerResult()
        token = await exchange_sso_token(context, self._connection, str(sso))
        if token is None:
            await context.send_activity(
                exchange_invoke_response(
                    HTTPStatus.PRECONDITION_FAILED, exchange_id, self._connection, EXCHANGE_FAILED
                )
            )
            return PromptRecognizerResult()
        await context.send_activity(exchange_invoke_response(HTTPStatus.OK, exchange_id, self._connection))
        return PromptRecognizerResult(
            True,
            TokenResponse(
                channel_id=context.activity.channel_id, connection_name=self._connection, token=token
            ),
        )


class SsoExchangeMiddleware(Middleware):
    """Exchange first (412 on failure), then dedupe ``signin/tokenExchange`` across Teams clients.

    Dedupe writes a create-only item keyed ``sso/{channel}/{conversation}/{exchange id}`` to the
    durable storage; the second writer gets an eTag conflict and a plain 200, and the bot is not
    called again.
    """

    def __init__(self, storage: Storage, connection: str) -> None:
        self._storage = storage
        self._connection = connection

    async def on_turn(self, context: TurnContext, logic: Callable[[], Awaitable[None]]) -> None:
        activity = context.activity
        if (
            activity.type != ActivityTypes.invoke
            or activity.name != SignInConstants.token_exchange_operation_name
        ):
            await logic()
            return
        value = _exchange_value(context)
        exchange_id = value.get("id")
        if value.get("connectionName") != self._connection or not value.get("token") or not exchange_id:
            await context.send_activity(
                exchange_invoke_response(
                    HTTPStatus.BAD_REQUEST,
                    exchange_id,
                    self._connection,
                    "The token exchange request is missing or for another connection.",
                )
            )
            return
        if await exchange_sso_token(context, self._connection, str(value["token"])) is None:
            await context.send_activity(
                exchange_invoke_response(
                    HTTPStatus.PRECONDITION_FAILED, exchange_id, self._connection, EXCHANGE_FAILED
                )
            )
            return
        if not await self._first_writer(context, str(exchange_id)):
            await context.send_activity(
                exchange_invoke_response(HTTPStatus.OK, exchange_id, self._connection)
            )
            return
        await logic()

    async def _first_writer(self, context: TurnContext, exchange_id: str) -> bool:
        conversation = context.activity.conversation.id if context.activity.conversation else ""
        key = f"sso/{context.activity.channel_id}/{conversation}/{exchange_id}"[:512]
        try:
            await self._storage.write({key: {"seen": True}})
        except KeyError:
            return False
        return True
