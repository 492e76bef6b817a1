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
from dataclasses import dataclass, field

import aiohttp
import jwt
from aiohttp import web
from botbuilder.core import Middleware, TurnContext
from botbuilder.core.serializer_helper import serializer_helper
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AppCredentials,
    AuthenticateRequestResult,
    ClaimsIdentity,
    ConnectorFactory,
    MicrosoftAppCredentials,
)
from botframework.connector.auth._user_token_client_impl import _UserTokenClientImpl
from botframework.connector.auth.user_token_client import UserTokenClient
from botframework.connector.token_api import TokenApiClientConfiguration
from msrest.universal_http.requests import ClientRetryPolicy

from calendar_backend.client import CalendarServiceApi, CalendarServiceClient
from calendar_backend.contract import (
    OutboundPolicy,
    OutboundUrlError,
    check_outbound_url,
    install_http_log_redaction,
)
from dialogs import msrest_json
from dialogs.candidate_page import (
    CandidatePageConfig,
    RedactingAccessLogger,
    form_key,
    mount_candidate_pages,
)
from dialogs.conversation_state import JsonConversationState
from dialogs.drop_audit import DropAudit
from dialogs.form_nonces import SqlNonceLedger
from dialogs.legal_pages import mount_legal_pages
from dialogs.rate_limit import InboundRateLimit, PacedCloudAdapter, SendPacer, rate_limit_scope
from dialogs.services import DialogServices
from dialogs.sql_storage import SqlStorage
from dialogs.sso import SsoExchangeMiddleware
from dialogs.state_seal import StateSealer, state_key
from dialogs.teams_bot import OpenSlotBot
from dialogs.token_service import TokenServiceClient
from dialogs.turn_log import log_turn_failure
from dialogs.watch_push import PushConfig, mount_drift_push, watch_feed_key

LOG = logging.getLogger("openslot.bot")
# msrest builds every client's retry list as `[i for i in range(999) if i not in safe_codes]` with
# `safe_codes` a 502-item list: ~4 ms of CPU per client, and botbuilder builds two clients per turn
# (connector + user-token). The same codes as a frozenset give the identical retry policy in ~50 us.
ClientRetryPolicy.safe_codes = frozenset(ClientRetryPolicy.safe_codes)  # type: ignore[assignment]
msrest_json.install()  # card content serialised as plain JSON, output identical (see module)
MAX_BODY_BYTES = 256 * 1024
DEDUPE_SIZE = 4096
PLAYGROUND_CHANNELS = frozenset({"msteams"})
CHANNEL_ISSUER = "https://api.botframework.com"  # iss of channel tokens; scope of outbound ones
BOTFRAMEWORK_LOGIN_URL = "https://login.microsoftonline.com/botframework.com"


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
    allowed_service_hosts: tuple[str, ...]  # serviceUrl hosts (dot-suffix match), see outbound.py
    token_service_url: str
    connection_name: str
    calendar_service_url: str
    database_url: str
    ca_bundle: str | None
    channel_openid_metadata_url: str = ""
    login_url: str = ""
    trust_forwarded_for: bool = False  # candidate page rate limits: trust X-Forwarded-For
    rate_tenant_per_min: int = 3000  # inbound activities per tenant (§7 #22)
    rate_conversation_per_min: int = 120  # inbound activities per conversation (§7 #22)
    rate_sends_per_second: int = 7  # outgoing activities per conversation (§7 #27)
    connector_timeout_s: float = 10.0  # one Bot Connector request, no retries, no redirects (#9)
    form_key: bytes = field(default=b"", repr=False)  # candidate page form nonces (candidate_page.form_key)
    allowed_service_ports: frozenset[int] = frozenset()  # non-default serviceUrl ports allowed
    state_key: bytes = field(default=b"", repr=False)  # seals bot_state rows (dialogs/state_seal.py)
    watch_feed_key: str = field(default="", repr=False)  # the drift feed (dialogs/watch_feed.py); "" = off
    watch_poll_s: float = 3.0

    @property
    def is_dev(self) -> bool:
        """True only in the explicit dev profile."""
        return self.env == "dev"

    @property
    def service_url_policy(self) -> OutboundPolicy:
        """Where replies and notices may be sent (`calendar_backend.outbound`)."""
        return OutboundPolicy(self.allowed_service_hosts, self.allowed_service_ports, self.is_dev)

    def __repr__(self) -> str:
        return f"BotSettings(env={self.env!r}, app_id={self.app_id!r}, password=***)"


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip().lower() for v in value.split(",") if v.strip())


def _positive(environ: Mapping[str, str], name: str, default: str) -> float:
    try:
        value = float(environ.get(name, default))
    except ValueError:
        raise SettingsError(f"{name} must be a number") from None
    if not 0 < value < 1e9:
        raise SettingsError(f"{name} must be positive")
    return value


def load_bot_settings(environ: Mapping[str, str]) -> BotSettings:
    """Build the frozen settings from OPENSLOT_* variables.

    An unset or empty ``OPENSLOT_ENV`` is the prod profile: only an explicit ``OPENSLOT_ENV=dev``
    runs the bot anonymously (no app id, channel requests unauthenticated).

    Raises:
        SettingsError: unknown profile; prod without app id/password; no allowed tenant;
            a non-positive rate or timeout.
    """
    get = environ.get
    env = get("OPENSLOT_ENV", "").strip().lower() or "prod"
    if env not in {"dev", "prod"}:
        raise SettingsError("OPENSLOT_ENV must be dev or prod")
    app_id, password = get("OPENSLOT_BOT_APP_ID", "").strip(), get("OPENSLOT_BOT_APP_PASSWORD", "")
    if env == "prod" and (not app_id or not password):
        unset = "" if get("OPENSLOT_ENV", "").strip() else " (OPENSLOT_ENV is unset, so prod applies)"
        raise SettingsError(
            f"the prod profile{unset} needs OPENSLOT_BOT_APP_ID and "
            "OPENSLOT_BOT_APP_PASSWORD; only OPENSLOT_ENV=dev may run anonymously"
        )
    tenants = set(_csv(get("OPENSLOT_BOT_ALLOWED_TENANTS", "")))
    if env == "dev" and get("OPENSLOT_DEV_TENANT_ID"):
        tenants.add(get("OPENSLOT_DEV_TENANT_ID", "").strip().lower())
    if not tenants:
        raise SettingsError("no allowed tenant: set OPENSLOT_BOT_ALLOWED_TENANTS")
    return BotSettings(
        env=env,
        host=get("OPENSLOT_BOT_HOST", "127.0.0.1"),
        port=int(get("OPENSLOT_BOT_PORT", "3978")),
        app_id=app_id,
        app_password=password,
        app_tenant_id=get("OPENSLOT_BOT_APP_TENANT_ID", ""),
        allowed_tenants=frozenset(tenants),
        allowed_service_hosts=_csv(get("OPENSLOT_ALLOWED_SERVICE_URL_HOSTS", "smba.trafficmanager.net")),
        token_service_url=get("OPENSLOT_TOKEN_SERVICE_URL", "https://token.botframework.com"),
        connection_name=get("OPENSLOT_OAUTH_CONNECTION_NAME", "openslot"),
        calendar_service_url=get("OPENSLOT_CALENDAR_SERVICE_URL", "http://127.0.0.1:8780"),
        database_url=get("OPENSLOT_DATABASE_URL", "sqlite+aiosqlite:///.data/openslot.db"),
        ca_bundle=get("OPENSLOT_CA_BUNDLE") or None,
        channel_openid_metadata_url=get("OPENSLOT_BOT_CHANNEL_OPENID_METADATA_URL", "").strip(),
        login_url=get("OPENSLOT_BOT_LOGIN_URL", "").strip(),
        trust_forwarded_for=get("OPENSLOT_TRUST_FORWARDED_FOR", "false").strip().lower()
        in {"1", "true", "yes"},
        rate_tenant_per_min=int(_positive(environ, "OPENSLOT_BOT_RATE_TENANT_PER_MIN", "3000")),
        rate_conversation_per_min=int(_positive(environ, "OPENSLOT_BOT_RATE_CONVERSATION_PER_MIN", "120")),
        rate_sends_per_second=int(_positive(environ, "OPENSLOT_BOT_RATE_SENDS_PER_SECOND", "7")),
        connector_timeout_s=_positive(environ, "OPENSLOT_BOT_CONNECTOR_TIMEOUT_S", "10"),
        form_key=_form_key(get("OPENSLOT_BOT_FORM_KEY", ""), password),
        allowed_service_ports=_ports(get("OPENSLOT_ALLOWED_SERVICE_URL_PORTS", "")),
        state_key=_state_key(get("OPENSLOT_BOT_STATE_KEY", ""), password),
        watch_feed_key=watch_feed_key(environ, env),
        watch_poll_s=_positive(environ, "OPENSLOT_BOT_WATCH_POLL_S", "3"),
    )


def _state_key(configured: str, password: str) -> bytes:
    try:
        return state_key(configured, password)
    except ValueError as err:
        raise SettingsError(str(err)) from None


def _ports(value: str) -> frozenset[int]:
    try:
        return OutboundPolicy.from_csv("", ports=value).ports
    except ValueError as err:
        raise SettingsError(f"OPENSLOT_ALLOWED_SERVICE_URL_PORTS: {err}") from None


def _form_key(configured: str, password: str) -> bytes:
    try:
        return form_key(configured, password)
    except ValueError as err:
        raise SettingsError(str(err)) from None


def service_url_allowed(service_url: str | None, policy: OutboundPolicy) -> bool:
    """True when the outbound-URL validator lets the bot send to ``service_url``."""
    try:
        check_outbound_url(service_url, policy)
    except OutboundUrlError as err:
        LOG.warning("serviceUrl refused: %s", err.reason)
        return False
    return True


def tenant_of(activity: Activity) -> str:
    """The activity's tenant id (channelData.tenant.id, else conversation.tenantId), lower-case."""
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = (data.get("tenant") or {}).get("id") if isinstance(data.get("tenant"), dict) else None
    if not tenant and activity.conversation is not None:
        tenant = activity.conversation.tenant_id
    return str(tenant or "").lower()


class ActivityGate(Middleware):
    """Drops foreign tenants/channels, non-allow-listed serviceUrls and duplicate ids."""

    def __init__(self, settings: BotSettings, audit: DropAudit | None = None) -> None:
        self._settings = settings
        self._audit = audit  # refusals other than duplicates are recorded (§7 #8)
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
        elif not service_url_allowed(activity.service_url, self._settings.service_url_policy):
            reason = "service_url"
        elif self._is_duplicate(activity):
            reason = "duplicate"
        if reason is not None:
            await self.drop(activity, reason)
            return
        await logic()

    async def drop(self, activity: Activity, reason: str) -> None:
        """Log a dropped activity (and, except duplicates, its audit record: `dialogs.drop_audit`)."""
        LOG.warning("activity dropped: %s", reason)
        if self._audit is not None and reason != "duplicate":
            sender = activity.from_property
            self._audit.record(
                reason,
                tenant_id=tenant_of(activity),
                actor_oid=sender.aad_object_id if sender else None,
                activity_id=activity.id,
            )


class _ConfiguredUserTokenClient(_UserTokenClientImpl):
    """botbuilder's user-token client with a 10 s timeout and the CA bundle.

    They are set on the configuration msrest's pipeline already holds: a replacement config
    object passed to the constructor is ignored by the pipeline (the CA bundle never applied).
    """

    def __init__(
        self, app_id: str, credentials: AppCredentials, endpoint: str, ca_bundle: str | None
    ) -> None:
        super().__init__(app_id, credentials, endpoint)
        config: TokenApiClientConfiguration = self._client.config
        config.connection.timeout = 10
        if ca_bundle:
            config.connection.verify = ca_bundle


class OpenSlotAuthentication(ConfigurationBotFrameworkAuthentication):
    """Built-in channel auth (anonymous only when the app id is empty, i.e. dev), with the user
    token client pointed at OPENSLOT_TOKEN_SERVICE_URL (devtenant in dev), trusting the CA bundle
    and with explicit timeouts. Avoids the parameterized path's empty-header crash (§I.7)."""

    def __init__(self, settings: BotSettings) -> None:
        config = _SdkConfig(settings)
        self._credential_factory = _CredentialFactory(config, settings)
        super().__init__(config, credentials_factory=self._credential_factory)
        self._settings = settings
        self._token_client: TokenServiceClient | None = None
        self._connectors = ConnectorClients()

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        """Fail closed outside dev: no header, no channel id, or any validation error → 401.

        Raises:
            PermissionError: the request is not a valid Bot Framework channel request.
        """
        if self._settings.is_dev:
            return self._harden(await super().authenticate_request(activity, auth_header))
        if not auth_header or not activity.channel_id:
            raise PermissionError("unauthorized")
        if not _integer_time_claims(auth_header):
            LOG.warning("channel token rejected: time claims")
            raise PermissionError("unauthorized")
        try:
            return self._harden(await super().authenticate_request(activity, auth_header))
        except PermissionError:
            raise
        except Exception as exc:  # malformed/unknown-kid/unsigned tokens must be 401, never 500
            LOG.warning("channel token rejected: %s", type(exc).__name__)
            raise PermissionError("unauthorized") from exc

    def _harden(self, result: AuthenticateRequestResult) -> AuthenticateRequestResult:
        """The turn's replies use this factory (not ``create_connector_factory``)."""
        if result.connector_factory is not None:
            result.connector_factory = _HardenedConnectorFactory(
                result.connector_factory, self._settings, self._connectors
            )
        return result

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return _HardenedConnectorFactory(
            super().create_connector_factory(claims_identity), self._settings, self._connectors
        )

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:  # noqa: ARG002
        """One client per process (botbuilder asks on every turn): its MSAL cache and HTTP
        connections are reused; see ``dialogs/token_service.py``."""
        if self._token_client is None:
            s = self._settings
            # As botbuilder builds them (same factory, scope and authority as the connector's),
            # once: MSAL's cache of the bot token then lasts for the process.
            creds = (
                await self._credential_factory.create_credentials(
                    s.app_id, CHANNEL_ISSUER, s.login_url or BOTFRAMEWORK_LOGIN_URL, True
                )
                if s.app_id
                else MicrosoftAppCredentials.empty()
            )
            inner = _ConfiguredUserTokenClient(s.app_id, creds, s.token_service_url, s.ca_bundle)
            built = TokenServiceClient(inner, s.token_service_url, creds, ca_bundle=s.ca_bundle, timeout_s=10)
            if self._token_client is None:  # a concurrent first turn may have built one
                self._token_client = built
        return self._token_client

    async def close(self) -> None:
        """Close the token service and Bot Connector clients' connections (on the app's shutdown)."""
        if self._token_client is not None:
            await self._token_client.close()
        await self._connectors.close()


def _integer_time_claims(auth_header: str) -> bool:
    """False when the token's exp/nbf/iat is present but not an integer (the SDK's PyJWT reads
    ``int(exp)``, so "9999999999", 9.9e9 or true would pass). Unparseable tokens are left to the
    SDK's validator, which refuses them."""
    try:
        claims = jwt.decode(auth_header.partition(" ")[2], options={"verify_signature": False})
    except jwt.PyJWTError:
        return True
    return all(type(claims[c]) is int for c in ("exp", "nbf", "iat") if c in claims)


class ConnectorClients:
    """The process's Bot Connector clients, one per (service URL, audience), newest last.

    botbuilder builds a new ``ConnectorClient`` for every turn, and each brings its own
    ``requests`` session: every reply opened a new TCP and TLS connection to the Bot Connector
    (in Teams, a round trip to smba.trafficmanager.net and a handshake per turn) and left the old
    socket to the garbage collector. Kept here, a client's session keeps its connections alive
    across turns. A client holds no per-turn or per-user state: msrest signs every request afresh
    from the credentials' MSAL cache, so a renewed bot token is picked up. Only allow-listed
    service URLs get here (``ActivityGate``); at most ``limit`` are kept (an evicted client is
    left to the garbage collector, as before, since a turn may still be using it).
    """

    def __init__(self, limit: int = 64) -> None:
        self._clients: OrderedDict[tuple[str, str | None], ConnectorClient] = OrderedDict()
        self._limit = limit

    async def get(
        self, service_url: str, audience: str | None, build: Callable[[], Awaitable[ConnectorClient]]
    ) -> ConnectorClient:
        """The kept client for ``(service_url, audience)``, built with ``build`` the first time."""
        key = (service_url, audience)
        client = self._clients.get(key)
        if client is None:
            client = await build()
            client = self._clients.setdefault(key, client)  # a concurrent first turn may have won
            while len(self._clients) > self._limit:
                self._clients.popitem(last=False)
        self._clients.move_to_end(key)
        return client

    async def close(self) -> None:
        """Close every kept client's connections (on the app's shutdown)."""
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for client in clients:
            await client.__aexit__(None, None, None)  # msrest's async clients close this way


class _HardenedConnectorFactory(ConnectorFactory):
    """Bot Connector clients that never follow redirects, never retry and give up after
    ``timeout_s`` seconds (msrest's defaults: 30 redirects, 3 retries, 100 s each), kept in
    ``clients`` across turns. Every client for a serviceUrl (replies, proactive notices) is made
    here, so the outbound-URL validator runs here too, at send time."""

    def __init__(self, inner: ConnectorFactory, settings: BotSettings, clients: ConnectorClients) -> None:
        self._inner = inner
        self._timeout_s = settings.connector_timeout_s
        self._policy = settings.service_url_policy
        self._clients = clients

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        """The client for ``service_url``.

        Raises:
            OutboundUrlError: the validator refuses ``service_url`` (nothing is sent).
        """
        check_outbound_url(service_url, self._policy)
        return await self._clients.get(service_url, audience, lambda: self._build(service_url, audience))

    async def _build(self, service_url: str, audience: str | None) -> ConnectorClient:
        client = await self._inner.create(service_url, audience)
        config = client.config  # the object msrest's pipeline reads on every send
        config.redirect_policy.allow = False
        config.retry_policy.retries = 0
        config.connection.timeout = self._timeout_s
        return client


class _SdkConfig:
    """The attribute names botbuilder's configuration factory reads."""

    def __init__(self, settings: BotSettings) -> None:
        self.APP_ID = settings.app_id
        self.APP_PASSWORD = settings.app_password
        self.APP_TYPE = "SingleTenant" if settings.app_tenant_id else "MultiTenant"
        self.APP_TENANTID = settings.app_tenant_id
        if settings.channel_openid_metadata_url:  # a private channel cloud (devtenant in tests)
            self.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = settings.channel_openid_metadata_url
            self.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = CHANNEL_ISSUER
            self.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = CHANNEL_ISSUER
            self.TO_CHANNEL_FROM_BOT_LOGIN_URL = settings.login_url or BOTFRAMEWORK_LOGIN_URL
            self.OAUTH_URL = settings.token_service_url


class _CredentialFactory(ConfigurationServiceClientCredentialFactory):
    """The SDK's factory; with OPENSLOT_BOT_LOGIN_URL the outbound token comes from that
    authority (no Microsoft instance discovery, trusting OPENSLOT_CA_BUNDLE). One MSAL app per
    process, so its token cache is reused across turns."""

    def __init__(self, config: _SdkConfig, settings: BotSettings) -> None:
        super().__init__(config)
        self._settings = settings
        self._msal_app: object | None = None

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> MicrosoftAppCredentials:
        creds = await super().create_credentials(app_id, oauth_scope, login_endpoint, validate_authority)
        s = self._settings
        if s.login_url and s.app_id and isinstance(creds, MicrosoftAppCredentials):
            if self._msal_app is None:
                import msal
                import requests

                http = requests.Session()
                http.trust_env = False
                http.verify = s.ca_bundle or True
                self._msal_app = msal.ConfidentialClientApplication(
                    s.app_id,
                    client_credential=s.app_password,
                    authority=s.login_url,
                    instance_discovery=False,
                    http_client=http,
                    timeout=10,
                )
            creds.app = self._msal_app
        return creds


async def _messages(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # RecursionError: deep nesting
        return web.json_response({"error": "malformed JSON"}, status=400)
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        return web.json_response({"error": "not an activity"}, status=400)
    try:
        activity = Activity().deserialize(doc)
    except Exception:
        return web.json_response({"error": "not an activity"}, status=400)
    adapter, bot = request.app[ADAPTER_KEY], request.app[BOT_KEY]["bot"]
    try:  # not adapter.process(): it re-serialises invoke bodies and crashes (see _invoke_json)
        with rate_limit_scope() as verdict:
            invoke = await adapter.process_activity(
                request.headers.get("Authorization", ""), activity, bot.on_turn
            )
    except PermissionError as exc:
        raise web.HTTPUnauthorized from exc
    except OutboundUrlError:  # authenticated, but its serviceUrl is refused: nothing was sent
        await request.app[GATE_KEY].drop(activity, "service_url")
        return web.Response(status=201)
    if verdict.retry_after_s is not None:  # refused by InboundRateLimit before any handler
        return web.json_response(
            {"error": "rate limited"}, status=429, headers={"Retry-After": verdict.retry_after_header}
        )
    if invoke is None:
        return web.Response(status=201)
    return web.json_response(_invoke_json(invoke.body), status=invoke.status)


def _invoke_json(body: object) -> object:
    """An invoke response body as JSON. botbuilder 4.17.1's ActivityHandler already serialises
    it to a dict and ``CloudAdapter.process`` serialises again, failing with ``AttributeError``
    (every ``adaptiveCard/action`` answered 500); models from middleware are serialised here."""
    if body is None or isinstance(body, dict | list | str | int | float | bool):
        return body
    return serializer_helper(body)


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


ADAPTER_KEY = web.AppKey("adapter", CloudAdapter)
BOT_KEY = web.AppKey("bot", dict[str, OpenSlotBot])
GATE_KEY = web.AppKey("gate", ActivityGate)


def build_app(
    settings: BotSettings, *, calendar: CalendarServiceApi | None = None, storage: SqlStorage | None = None
) -> web.Application:
    """The aiohttp app. ``calendar``/``storage`` default to the real client and SQL storage."""
    install_http_log_redaction()  # parser errors never log request bytes (a token)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    store = storage or SqlStorage.from_url(
        settings.database_url, StateSealer(settings.state_key) if settings.state_key else None
    )
    auth = OpenSlotAuthentication(settings)
    adapter = PacedCloudAdapter(auth, SendPacer(settings.rate_sends_per_second))
    adapter.use(InboundRateLimit(settings.rate_tenant_per_min, settings.rate_conversation_per_min, tenant_of))
    gate = ActivityGate(settings, DropAudit())
    adapter.use(gate)
    adapter.use(SsoExchangeMiddleware(store, settings.connection_name))

    async def on_error(context: TurnContext, error: Exception) -> None:
        log_turn_failure(LOG, context, error)
        try:
            await context.send_activity("Sorry, something went wrong. Please try again.")
        except Exception as send_error:  # the channel is unreachable: log, answer 2xx, never 500
            LOG.error("could not send the apology: %s", type(send_error).__name__)  # noqa: TRY400

    adapter.on_turn_error = on_error

    async def lifecycle(app_: web.Application):  # type: ignore[no-untyped-def]
        session = aiohttp.ClientSession()
        client = calendar or CalendarServiceClient(settings.calendar_service_url, session)
        services = DialogServices(client, settings.connection_name, JsonConversationState(store))
        app_[BOT_KEY]["bot"] = OpenSlotBot(services)
        yield
        await session.close()
        await auth.close()
        await store.close()

    app[ADAPTER_KEY] = adapter
    app[GATE_KEY] = gate
    app[BOT_KEY] = {}
    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/api/messages", _messages)
    app.router.add_get("/healthz", _healthz)
    mount_legal_pages(app)  # /privacy and /terms, linked from the Teams manifest
    mount_drift_push(  # /api/graph/notifications and the drift feed poller (issue 19)
        app,
        PushConfig(
            settings.calendar_service_url,
            settings.watch_feed_key,
            settings.app_id,
            settings.watch_poll_s,
            settings.trust_forwarded_for,
        ),
        adapter=adapter,
        service_url_policy=settings.service_url_policy,
        storage=store,  # the posted-card ledger: each drift card shown once
    )
    mount_candidate_pages(  # the public candidate booking page, /c/{token}
        app,
        CandidatePageConfig(
            settings.calendar_service_url,
            bot_app_id=settings.app_id,
            trust_forwarded_for=settings.trust_forwarded_for,
            nonce_key=settings.form_key or form_key("", settings.app_password),
        ),
        adapter=adapter,
        service_url_policy=settings.service_url_policy,
        nonce_ledger=SqlNonceLedger(store, CandidatePageConfig.nonce_ttl_s),
    )
    app.on_response_prepare.append(_baseline_headers)
    return app


BASELINE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
}


async def _baseline_headers(_request: web.Request, response: web.StreamResponse) -> None:
    """Security headers on every response of the bot app (errors, /healthz and /robots.txt
    included); the candidate pages set their own stricter ones first, which are kept."""
    for name, value in BASELINE_HEADERS.items():
        response.headers.setdefault(name, value)


def main(environ: Mapping[str, str]) -> int:
    """Run the bot until interrupted; non-zero exit when the settings are not runnable."""
    logging.basicConfig(level=logging.INFO)
    try:
        settings = load_bot_settings(environ)
    except (SettingsError, ValueError) as err:
        LOG.error("refusing to start: %s", err)  # noqa: TRY400
        return 2
    web.run_app(
        build_app(settings), host=settings.host, port=settings.port, access_log_class=RedactingAccessLogger
    )
    return 0


if __name__ == "__main__":
    import os

    sys.exit(main(os.environ))
