"""devtenant's per-request state stays bounded in long runs, and still behaves once past its bounds.

Found with `python -m bench --only load --turns 3000 --tracemalloc 6 --trace-process devtenant`:
every on-behalf-of call (MSAL always asks for offline_access) left a refresh-token record behind,
so devtenant grew ~0.4 KiB per scheduling turn for ever. Two smaller keys came from client input:
a mailbox concurrency slot per address ever named in a Graph URL, and a token counter per
`grant_type` value ever sent. Each test fills the structure past its bound.
"""

from __future__ import annotations

import asyncio
import types
from typing import Any

import msal
import pytest
import requests
from aiohttp import web

import devtenant.tenant as tenant_module
from devtenant.graph import GraphSurface, add_graph_routes
from devtenant.tenant import REFRESH_TOKEN_LIMIT, DevTenant, FaultPlan, tenant_from_dict
from tests.devtenant.fixtures import DevTenantHandle
from tests.devtenant.graph_harness import AiohttpClient, bearer, verify

SCOPES = ["https://graph.microsoft.com/Calendars.ReadWrite"]


# ---- refresh tokens ------------------------------------------------------------------------------


def test_refresh_token_records_keep_only_the_newest_at_the_real_limit() -> None:
    tenant = tenant_from_dict({"schemaVersion": 1, "tenant": {"id": "t"}})
    extra = 100
    for i in range(REFRESH_TOKEN_LIMIT + extra):
        tenant.remember_refresh_token(f"rt-{i}", {"oid": "u", "revoked": False, "n": i})
    assert len(tenant.refresh_tokens) == REFRESH_TOKEN_LIMIT
    kept = list(tenant.refresh_tokens)
    assert kept[0] == f"rt-{extra}"  # the oldest ones went first, in issue order
    assert kept[-1] == f"rt-{REFRESH_TOKEN_LIMIT + extra - 1}"
    assert "rt-0" not in tenant.refresh_tokens
    assert tenant.refresh_tokens[f"rt-{extra}"]["n"] == extra


def _cca(dt: DevTenantHandle) -> msal.ConfidentialClientApplication:
    """A fresh client each time, so MSAL's own token cache never answers instead of devtenant."""
    app = dt.tenant.applications()[0]
    return msal.ConfidentialClientApplication(
        app["appId"],
        client_credential=app["passwordCredentials"][0]["secretText"],
        authority=f"{dt.base_url}/{dt.tenant_id}",
        instance_discovery=False,
        http_client=dt.session(),
    )


def _enabled_upn(dt: DevTenantHandle) -> str:
    return str(next(u for u in dt.tenant.users() if u.get("accountEnabled", True))["userPrincipalName"])


def _obo_refresh_token(dt: DevTenantHandle, upn: str) -> str:
    result = _cca(dt).acquire_token_on_behalf_of(dt.mint_user_token(upn), SCOPES)
    assert "refresh_token" in result, result
    return str(result["refresh_token"])


def test_refresh_tokens_past_the_limit_forget_the_oldest_and_still_rotate(
    devtenant: DevTenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server runs in this process (a thread), so a small limit applies to it too.
    monkeypatch.setattr(tenant_module, "REFRESH_TOKEN_LIMIT", 4)
    issued = [_obo_refresh_token(devtenant, _enabled_upn(devtenant)) for _ in range(7)]
    assert list(devtenant.tenant.refresh_tokens) == issued[-4:]

    forgotten = _cca(devtenant).acquire_token_by_refresh_token(issued[0], SCOPES)
    assert forgotten["error"] == "invalid_grant"
    assert forgotten["error_codes"] == [9002313]  # as for a token devtenant never issued

    rotated = _cca(devtenant).acquire_token_by_refresh_token(issued[-1], SCOPES)
    assert "access_token" in rotated, rotated
    assert len(devtenant.tenant.refresh_tokens) == 4  # the rotation's new token pushed one out
    assert list(devtenant.tenant.refresh_tokens)[-1] == rotated["refresh_token"]
    # A recently rotated token is still remembered as revoked, not as unknown.
    again = _cca(devtenant).acquire_token_by_refresh_token(issued[-1], SCOPES)
    assert again["error_codes"] == [50173]
    second_newest = _cca(devtenant).acquire_token_by_refresh_token(issued[-2], SCOPES)
    assert "access_token" in second_newest, second_newest


# ---- token counters ------------------------------------------------------------------------------


def test_unknown_grant_types_share_one_counter_and_known_ones_keep_theirs(devtenant: DevTenantHandle) -> None:
    counters = devtenant.tenant.counters
    counters.clear()  # what earlier tests on the shared server counted
    token_url = f"{devtenant.base_url}/{devtenant.tenant_id}/oauth2/v2.0/token"
    s: requests.Session = devtenant.session()
    for i in range(50):
        answer = s.post(token_url, data={"grant_type": f"urn:example:grant-{i}"}, timeout=10)
        assert answer.json()["error"] == "unsupported_grant_type"
    s.post(token_url, data={}, timeout=10)
    _obo_refresh_token(devtenant, _enabled_upn(devtenant))
    assert _cca(devtenant).acquire_token_for_client(["https://graph.microsoft.com/.default"])
    token_keys = {k: n for k, n in counters.items() if k.startswith("entra.token.")}
    assert token_keys == {
        "entra.token.unsupported": 50,
        "entra.token.none": 1,
        "entra.token.jwt-bearer": 1,
        "entra.token.client_credentials": 1,
    }
    assert counters["entra.token"] == 53  # every call still counted once


# ---- Graph mailbox concurrency slots -------------------------------------------------------------

TID = "11111111-1111-1111-1111-111111111111"
APP = "aaaaaaaa-0000-0000-0000-000000000001"


def _tenant() -> DevTenant:
    megan = {
        "id": "u-megan",
        "displayName": "Megan",
        "userPrincipalName": "megan@contoso.example",
        "mail": "megan@contoso.example",
        "accountEnabled": True,
        "mailboxSettings": {"timeZone": "UTC"},
        "events": [],
    }
    return tenant_from_dict(
        {"schemaVersion": 1, "tenant": {"id": TID}, "applications": [{"appId": APP}], "users": [megan]}
    )


def _surface(app: web.Application) -> GraphSurface:
    handler: Any = next(iter(app.router.routes())).handler
    assert isinstance(handler, types.MethodType)
    surface = handler.__self__
    assert isinstance(surface, GraphSurface)
    return surface


async def test_idle_mailbox_slots_are_forgotten_and_the_limit_still_holds(
    aiohttp_client: AiohttpClient,
) -> None:
    tenant = _tenant()
    app = web.Application()
    add_graph_routes(app, tenant, verify)
    client = await aiohttp_client(app)
    surface = _surface(app)
    headers = bearer(TID, azp=APP, roles=["Calendars.ReadWrite"])
    window = "calendarView?startDateTime=2026-12-01T00:00:00Z&endDateTime=2026-12-02T00:00:00Z"
    for i in range(200):  # every address takes a slot before it is found unknown
        answer = await client.get(f"/v1.0/users/nobody-{i}@contoso.example/{window}", headers=headers)
        assert answer.status == 404
    assert (await client.get(f"/v1.0/users/u-megan/{window}", headers=headers)).status == 200
    assert len(surface._in_flight) == 0

    tenant.faults = FaultPlan(latency_ms=300)  # 6 at once on one mailbox: 4 slots, 2 refused
    same = await asyncio.gather(
        *(client.get(f"/v1.0/users/u-megan/{window}", headers=headers) for _ in range(6))
    )
    assert sorted(r.status for r in same) == [200, 200, 200, 200, 429, 429]
    assert len(surface._in_flight) == 0
    tenant.faults = FaultPlan()
    assert (await client.get(f"/v1.0/users/u-megan/{window}", headers=headers)).status == 200
