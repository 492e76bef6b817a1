"""Test controls under `/_devtenant/...` (JSON; not a Microsoft API). A dev tool: never expose it.

Routes (all JSON):
  POST /_devtenant/tokens/user        {upn, audience?, scp?, expires_in?, client_id?}
                                      -> {access_token, claims}
  POST /_devtenant/tokens/channel     {app_id, service_url} -> {access_token}
  PUT  /_devtenant/faults             any `FaultPlan` fields -> the plan
  PUT  /_devtenant/clock              {now: ISO 8601, freeze?: bool} | {advance_s} | {real: true}
  POST /_devtenant/keys/rollover      {set?: "entra" | "channel"} -> {kid, kids}
  POST /_devtenant/users/{id}/disable | enable | remove | revoke  (revoke: its refresh tokens)
  POST /_devtenant/apps/{app_id}/consent/grant | revoke
  GET  /_devtenant/requests           counters by surface;  POST /_devtenant/requests/reset
  GET  /_devtenant/mailboxes/{addr}/events   the raw event store of a user or room
  POST /_devtenant/reset              restore the loaded tenant (real clock, no faults, counters 0,
                                      no subscriptions, empty event-read log)
  Change notifications (devtenant/subscriptions.py, README "Change notifications"):
  GET  /_devtenant/subscriptions      every subscription + pending deliveries
  GET|PUT /_devtenant/subscriptions/delivery     the DeliveryPlan (drop/delay/retry settings)
  GET  /_devtenant/subscriptions/deliveries      attempts, drops, removals (no clientState)
  POST /_devtenant/subscriptions/{id}/expire | lifecycle {lifecycleEvent}
  GET|DELETE /_devtenant/graph/event-reads       the $select of every events read
  POST /_devtenant/mailboxes/{addr}/events       create an event as addr {start, end, ...}
  POST /_devtenant/mailboxes/{addr}/events/{id|iCalUId}/respond {response, sendResponse?}
                                                 | move {start, end} | delete
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from aiohttp import web

from devtenant.botframework import CHANNEL_KEYS, SSO_SCOPE, connection_app, mint_channel_token
from devtenant.entra import ISSUER_KEY, TokenIssuer
from devtenant.subscriptions import add_subscription_controls, hub_for
from devtenant.tenant import FaultPlan

JsonDict = dict[str, Any]


class TenantClock:
    """A clock that is real time plus an offset, or frozen at an instant. Always returns UTC."""

    def __init__(self, real: Callable[[], datetime] | None = None) -> None:
        self._real = real or (lambda: datetime.now(UTC))
        self.offset = timedelta(0)
        self.frozen_at: datetime | None = None

    def __call__(self) -> datetime:
        if self.frozen_at is not None:
            return self.frozen_at
        return (self._real() + self.offset).astimezone(UTC)

    def set(self, now: datetime, *, freeze: bool) -> None:
        """Jump to `now` (must be timezone-aware); keep ticking unless `freeze`."""
        if now.tzinfo is None:
            raise ValueError("now must carry a UTC offset")
        now = now.astimezone(UTC)
        self.frozen_at = now if freeze else None
        self.offset = now - self._real()

    def advance(self, seconds: float) -> None:
        if self.frozen_at is not None:
            self.frozen_at += timedelta(seconds=seconds)
        self.offset += timedelta(seconds=seconds)


@dataclasses.dataclass
class ControlState:
    """What /_devtenant/reset restores: the tenant data as loaded."""

    original_data: JsonDict


CONTROL_KEY = web.AppKey("devtenant.control", ControlState)


def install_clock(issuer: TokenIssuer) -> TenantClock:
    """Give the tenant a controllable clock (idempotent) and return it."""
    clock = issuer.tenant.clock
    if isinstance(clock, TenantClock):
        return clock
    fresh = TenantClock()
    issuer.tenant.clock = fresh
    return fresh


def add_control_routes(app: web.Application) -> None:
    """Register `/_devtenant/...`; needs `ISSUER_KEY` and `CHANNEL_KEYS` already set."""
    issuer = app[ISSUER_KEY]
    install_clock(issuer)
    app[CONTROL_KEY] = ControlState(copy.deepcopy(issuer.tenant.data))
    r = app.router
    r.add_post("/_devtenant/tokens/user", _user_token)
    r.add_post("/_devtenant/tokens/channel", _channel_token)
    r.add_put("/_devtenant/faults", _faults)
    r.add_put("/_devtenant/clock", _clock)
    r.add_post("/_devtenant/keys/rollover", _rollover)
    r.add_post("/_devtenant/users/{id}/{action:disable|enable|remove|revoke}", _user_action)
    r.add_post("/_devtenant/apps/{app_id}/consent/{action:grant|revoke}", _consent)
    r.add_get("/_devtenant/requests", _requests)
    r.add_post("/_devtenant/requests/reset", _requests_reset)
    r.add_get("/_devtenant/mailboxes/{addr}/events", _events)
    r.add_post("/_devtenant/reset", _reset)
    add_subscription_controls(app, lambda request: request.app[ISSUER_KEY].tenant)


def mint_user_token(
    issuer: TokenIssuer,
    upn: str,
    *,
    audience: str | None = None,
    scp: str | None = None,
    expires_in: int | None = None,
    client_id: str | None = None,
) -> str:
    """A v2 user token as Teams SSO gives it (default aud = connection app, scp access_as_user).

    Raises `KeyError` for an unknown user. The user need not be enabled (tests of disabled users).
    """
    user = issuer.tenant.find_user(upn)
    if user is None:
        raise KeyError(upn)
    app_id = str(connection_app(issuer)["appId"])
    lifetime = timedelta(seconds=expires_in) if expires_in is not None else timedelta(hours=1)
    return issuer.access_token(
        client_id=client_id or "5e3ce6c0-2b1f-4285-8d4b-75ee78787346",
        audience=audience or app_id,
        user=user,
        scp=(scp or SSO_SCOPE).split(),
        lifetime=lifetime,
    )


async def _body(request: web.Request) -> JsonDict:
    if not request.can_read_body:
        return {}
    doc = await request.json()
    if not isinstance(doc, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return doc


async def _user_token(request: web.Request) -> web.Response:
    issuer, body = request.app[ISSUER_KEY], await _body(request)
    try:
        token = mint_user_token(
            issuer,
            str(body.get("upn", "")),
            audience=body.get("audience"),
            scp=body.get("scp"),
            expires_in=body.get("expires_in"),
            client_id=body.get("client_id"),
        )
    except KeyError:
        raise web.HTTPNotFound(text="unknown user") from None
    return web.json_response(
        {"access_token": token, "claims": jwt.decode(token, options={"verify_signature": False})}
    )


async def _channel_token(request: web.Request) -> web.Response:
    issuer, body = request.app[ISSUER_KEY], await _body(request)
    if not body.get("app_id") or not body.get("service_url"):
        raise web.HTTPBadRequest(text="app_id and service_url are required")
    token = mint_channel_token(
        request.app[CHANNEL_KEYS],
        app_id=str(body["app_id"]),
        service_url=str(body["service_url"]),
        now=issuer.tenant.clock(),
    )
    return web.json_response({"access_token": token})


async def _faults(request: web.Request) -> web.Response:
    issuer, body = request.app[ISSUER_KEY], await _body(request)
    names = {f.name for f in dataclasses.fields(FaultPlan)}
    unknown = set(body) - names
    if unknown:
        raise web.HTTPBadRequest(text=f"unknown fault fields: {sorted(unknown)}")
    issuer.tenant.faults = dataclasses.replace(FaultPlan(), **body)
    return web.json_response(dataclasses.asdict(issuer.tenant.faults))


async def _clock(request: web.Request) -> web.Response:
    issuer, body = request.app[ISSUER_KEY], await _body(request)
    clock = install_clock(issuer)
    if not ({"real", "now", "advance_s"} & set(body)):
        raise web.HTTPBadRequest(text="give now, advance_s or real")
    try:
        if body.get("real"):
            clock.frozen_at, clock.offset = None, timedelta(0)
        elif "now" in body:
            clock.set(datetime.fromisoformat(str(body["now"])), freeze=bool(body.get("freeze")))
        else:
            clock.advance(float(body["advance_s"]))
    except (TypeError, ValueError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    return web.json_response({"now": clock().isoformat().replace("+00:00", "Z")})


async def _rollover(request: web.Request) -> web.Response:
    issuer, body = request.app[ISSUER_KEY], await _body(request)
    keys = request.app[CHANNEL_KEYS] if body.get("set") == "channel" else issuer.keys
    key = keys.rollover()
    return web.json_response({"kid": key.kid, "kids": keys.kids})


async def _user_action(request: web.Request) -> web.Response:
    issuer = request.app[ISSUER_KEY]
    user_id, action = request.match_info["id"], request.match_info["action"]
    user = issuer.tenant.find_user(user_id)
    if user is None:
        raise web.HTTPNotFound(text="unknown user")
    oid = str(user["id"])
    if action in ("disable", "enable"):
        issuer.tenant.set_account_enabled(oid, action == "enable")
    elif action == "remove":
        issuer.tenant.remove_user(oid)
    revoked = 0
    if action == "revoke":
        for record in issuer.tenant.refresh_tokens.values():
            if record["oid"] == oid and not record["revoked"]:
                record["revoked"] = True
                revoked += 1
    return web.json_response({"id": oid, "action": action, "revokedRefreshTokens": revoked})


async def _consent(request: web.Request) -> web.Response:
    issuer = request.app[ISSUER_KEY]
    app = issuer.tenant.find_application(request.match_info["app_id"])
    if app is None:
        raise web.HTTPNotFound(text="unknown application")
    granted = request.match_info["action"] == "grant"
    app.setdefault("adminConsent", {})["granted"] = granted
    return web.json_response({"appId": app["appId"], "adminConsent": {"granted": granted}})


async def _requests(request: web.Request) -> web.Response:
    return web.json_response(dict(request.app[ISSUER_KEY].tenant.counters))


async def _requests_reset(request: web.Request) -> web.Response:
    request.app[ISSUER_KEY].tenant.counters.clear()
    return web.json_response({})


async def _events(request: web.Request) -> web.Response:
    tenant = request.app[ISSUER_KEY].tenant
    mailbox = tenant.find_mailbox(request.match_info["addr"])
    if mailbox is None:
        raise web.HTTPNotFound(text="unknown mailbox")
    return web.json_response({"value": tenant.events_of(mailbox)})


async def _reset(request: web.Request) -> web.Response:
    """Restore the tenant in place (Graph routes keep their reference to the same object)."""
    tenant = request.app[ISSUER_KEY].tenant
    tenant.data = copy.deepcopy(request.app[CONTROL_KEY].original_data)
    for store in (
        tenant.counters,
        tenant.bot_tokens,
        tenant.refresh_tokens,
        tenant.auth_codes,
        tenant.transactions,
    ):
        store.clear()
    tenant.directory_log.clear()
    tenant.read_log.clear()
    hub_for(tenant).reset()
    tenant.faults = FaultPlan()
    tenant.clock = TenantClock()
    return web.json_response({"reset": True})
