"""OpenSlot bot composition root: settings → storage, adapter, dialogs → aiohttp app → run.

`POST /api/messages` (CloudAdapter), `GET /healthz`. Before any handler runs, `ActivityGate`
drops activities from other tenants, other channels, non-allow-listed serviceUrls and duplicate
activity ids (nothing is sent back). Malformed or oversized bodies get 400/413, never 500.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from botbuilder.core import ConversationState, Middleware, TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity
from botframework.connector.auth import ClaimsIdentity, MicrosoftAppCredentials
from botframework.connector.auth._user_token_client_impl import _UserTokenClientImpl
from botframework.connector.auth.user_token_client import UserTokenClient
from botframework.connector.token_api import TokenApiClientConfiguration

from calendar_backend.client import CalendarServiceApi, CalendarServiceClient
from dialogs.services import DialogServices
from dialogs.sql_storage import SqlStorage
from dialogs.sso import SsoExchangeMiddleware
from dialogs.teams_bot import OpenSlotBot

LOG = logging.getLogger("openslot.bot")
MAX_BODY_BYTES = 256 * 1024
DEDUPE_SIZE = 4096
PLAYGROUND_CHANNELS = frozenset({"msteams"})


class SettingsError(ValueError):
    """The environment does not describe a runnable bot."""


@dataclass(frozen=True)
class BotSettings:
    """Everything the bot process reads from the environment (once, in `load_bot_settings`)."""

    env: str
    host: str
    port: int
    app_id: str
    app_password: str
    app_tenant_id: str
    allowed_tenants: frozenset[str]
    allowed_service_hosts: tuple[str, ...]
    token_service_url: str
    connection_name: str
    calendar_service_url: str
    database_url: str
    ca_bundle: str | None

    @property
    def is_dev(self) -> bool:
        """True only in the explicit dev profile."""
        return self.env == "dev"

    def __repr__(self) -> str:
        return f"BotSettings(env={self.env!r}, app_id={self.app_id!r}, password=***)"


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip().lower() for v in value.split(",") if v.strip())


def load_bot_settings(environ: Mapping[str, str]) -> BotSettings:
    """Build the frozen settings from OPENSLOT_* variables.

    Raises:
        SettingsError: unknown profile; prod without app id/password; no allowed tenant.
    """
    get = environ.get
    env = get("OPENSLOT_ENV", "dev").strip().lower()
    if env not in {"dev", "prod"}:
        raise SettingsError("OPENSLOT_ENV must be dev or prod")
    app_id, password = get("OPENSLOT_BOT_APP_ID", "").strip(), get("OPENSLOT_BOT_APP_PASSWORD", "")
    if env == "prod" and (not app_id or not password):
        raise SettingsError("prod needs OPENSLOT_BOT_APP_ID and OPENSLOT_BOT_APP_PASSWORD")
    tenants = set(_csv(get("OPENSLOT_BOT_ALLOWED_TENANTS", "")))
    if env == "dev" and get("OPENSLOT_DEV_TENANT_ID"):
        tenants.add(get("OPENSLOT_DEV_TENANT_ID", "").strip().lower())
    if not tenants:
        raise SettingsError("no allowed tenant: set OPENSLOT_BOT_ALLOWED_TENANTS")
    return BotSettings(
        env=env, host=get("OPENSLOT_BOT_HOST", "127.0.0.1"),
        port=int(get("OPENSLOT_BOT_PORT", "3978")), app_id=app_id, app_password=password,
        app_tenant_id=get("OPENSLOT_BOT_APP_TENANT_ID", ""), allowed_tenants=frozenset(tenants),
        allowed_service_hosts=_csv(get("OPENSLOT_ALLOWED_SERVICE_URL_HOSTS",
                                       "smba.trafficmanager.net")),
        token_service_url=get("OPENSLOT_TOKEN_SERVICE_URL", "https://token.botframework.com"),
        connection_name=get("OPENSLOT_OAUTH_CONNECTION_NAME", "openslot"),
        calendar_service_url=get("OPENSLOT_CALENDAR_SERVICE_URL", "http://127.0.0.1:8780"),
        database_url=get("OPENSLOT_DATABASE_URL", "sqlite+aiosqlite:///.data/openslot.db"),
        ca_bundle=get("OPENSLOT_CA_BUNDLE") or None)


def host_allowed(service_url: str | None, suffixes: tuple[str, ...]) -> bool:
    """True when ``service_url``'s host equals or ends with ``.`` + an allowed suffix."""
    host = (urlsplit(service_url or "").hostname or "").lower()
    return bool(host) and any(host == s or host.endswith("." + s) for s in suffixes)


def tenant_of(activity: Activity) -> str:
    """The activity's tenant id (channelData.tenant.id, else conversation.tenantId), lower-case."""
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = (data.get("tenant") or {}).get("id") if isinstance(data.get("tenant"), dict) else None
    if not tenant and activity.conversation is not None:
        tenant = activity.conversation.tenant_id
    return str(tenant or "").lower()


class ActivityGate(Middleware):
    """Drops foreign tenants/channels, non-allow-listed serviceUrls and duplicate ids."""

    def __init__(self, settings: BotSettings) -> None:
        self._settings = settings
        self._seen: OrderedDict[str, None] = OrderedDict()

    def _is_duplicate(self, activity: Activity) -> bool:
        if not activity.id:
            return False
        key = f"{activity.conversation.id if activity.conversation else ''}/{activity.id}"
        if key in self._seen:
            return True
        self._seen[key] = None
        while len(self._seen) > DEDUPE_SIZE:
            self._seen.popitem(last=False)
        return False

    async def on_turn(self, context: TurnContext, logic: Callable[[], Awaitable[None]]) -> None:
        activity = context.activity
        reason = None
        if activity.channel_id not in PLAYGROUND_CHANNELS:
            reason = "channel"
        elif tenant_of(activity) not in self._settings.allowed_tenants:
            reason = "tenant"
        elif not host_allowed(activity.service_url, self._settings.allowed_service_hosts):
            reason = "service_url"
        elif self._is_duplicate(activity):
            reason = "duplicate"
        if reason is not None:
            LOG.warning("activity dropped: %s", reason)
            return
        await logic()


class OpenSlotAuthentication(ConfigurationBotFrameworkAuthentication):
    """Built-in channel auth (anonymous only when the app id is empty, i.e. dev), with the user
    token client pointed at OPENSLOT_TOKEN_SERVICE_URL (devtenant in dev), trusting the CA bundle
    and with explicit timeouts. Avoids the parameterized path's empty-header crash (§I.7)."""

    def __init__(self, settings: BotSettings) -> None:
        super().__init__(_SdkConfig(settings))
        self._settings = settings

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:  # noqa: ARG002
        s = self._settings
        creds = (MicrosoftAppCredentials(s.app_id, s.app_password,
                                         channel_auth_tenant=s.app_tenant_id or None)
                 if s.app_id else MicrosoftAppCredentials.empty())
        config = TokenApiClientConfiguration(s.token_service_url)
        config.connection.timeout = 10
        if s.ca_bundle:
            config.connection.verify = s.ca_bundle
        return _UserTokenClientImpl(s.app_id, creds, s.token_service_url, config)


class _SdkConfig:
    """The attribute names botbuilder's configuration factory reads."""

    def __init__(self, settings: BotSettings) -> None:
        self.APP_ID = settings.app_id
        self.APP_PASSWORD = settings.app_password
        self.APP_TYPE = "SingleTenant" if settings.app_tenant_id else "MultiTenant"
        self.APP_TENANTID = settings.app_tenant_id


async def _messages(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return web.json_response({"error": "malformed JSON"}, status=400)
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        return web.json_response({"error": "not an activity"}, status=400)
    try:
        Activity().deserialize(doc)
    except Exception:
        return web.json_response({"error": "not an activity"}, status=400)
    adapter, bot = request.app[ADAPTER_KEY], request.app[BOT_KEY]["bot"]
    response = await adapter.process(request, bot)
    return response if response is not None else web.Response(status=202)


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


ADAPTER_KEY = web.AppKey("adapter", CloudAdapter)
BOT_KEY = web.AppKey("bot", dict[str, OpenSlotBot])


def build_app(settings: BotSettings, *, calendar: CalendarServiceApi | None = None,
              storage: SqlStorage | None = None) -> web.Application:
    """The aiohttp app. ``calendar``/``storage`` default to the real client and SQL storage."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    store = storage or SqlStorage.from_url(settings.database_url)
    adapter = CloudAdapter(OpenSlotAuthentication(settings))
    adapter.use(ActivityGate(settings))
    adapter.use(SsoExchangeMiddleware(store, settings.connection_name))

    async def on_error(context: TurnContext, error: Exception) -> None:
        LOG.error("turn failed: %s", type(error).__name__)
        await context.send_activity("Sorry, something went wrong. Please try again.")

    adapter.on_turn_error = on_error

    async def lifecycle(app_: web.Application):  # type: ignore[no-untyped-def]
        session = aiohttp.ClientSession()
        client = calendar or CalendarServiceClient(settings.calendar_service_url, session)
        services = DialogServices(client, settings.connection_name, ConversationState(store))
        app_[BOT_KEY]["bot"] = OpenSlotBot(services)
        yield
        await session.close()
        await store.close()

    app[ADAPTER_KEY] = adapter
    app[BOT_KEY] = {}
    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/api/messages", _messages)
    app.router.add_get("/healthz", _healthz)
    return app


def main(environ: Mapping[str, str]) -> int:
    """Run the bot until interrupted; non-zero exit when the settings are not runnable."""
    logging.basicConfig(level=logging.INFO)
    try:
        settings = load_bot_settings(environ)
    except (SettingsError, ValueError) as err:
        LOG.error("refusing to start: %s", err)  # noqa: TRY400
        return 2
    web.run_app(build_app(settings), host=settings.host, port=settings.port)
    return 0


if __name__ == "__main__":
    import os

    sys.exit(main(os.environ))
