"""devtenant.graph_batch: JSON batching limits, dependsOn, order, per-item auth and throttling."""

from __future__ import annotations

from typing import Any

import pytest

from devtenant.tenant import DevTenant, FaultPlan
from tests.devtenant.graph_harness import Client, bearer, person

JsonDict = dict[str, Any]
TID = "33333333-3333-3333-3333-333333333333"
RESTRICTED = "app-restricted"


def tenant_doc() -> JsonDict:
    tokyo = {"timeZone": "Tokyo Standard Time"}
    return {
        "schemaVersion": 1,
        "tenant": {"id": TID, "displayName": "Contoso"},
        "users": [
            person("u-megan", "megan", role=None, mailboxSettings=tokyo),
            person("u-alex", "alex", role=None, mailboxSettings=tokyo),
        ],
        "groups": [{"id": "g-1", "mail": "ok@contoso.example", "members": ["u-megan"]}],
        "applicationAccessPolicies": [
            {"appId": RESTRICTED, "accessRight": "RestrictAccess", "policyScopeGroupId": "ok@contoso.example"}
        ],
    }


def auth(
    app_id: str = "app", roles: tuple[str, ...] = ("Calendars.ReadWrite", "MailboxSettings.Read")
) -> dict[str, str]:
    return bearer(TID, azp=app_id, roles=list(roles))


def settings_item(item_id: str, who: str = "megan@contoso.example", **extra: Any) -> JsonDict:
    return {"id": item_id, "method": "GET", "url": f"/users/{who}/mailboxSettings/timeZone", **extra}


def create_item(item_id: str, **extra: Any) -> JsonDict:
    return {
        "id": item_id,
        "method": "POST",
        "url": "/users/u-megan/events",
        "headers": {"Content-Type": "application/json"},
        "body": {
            "subject": "x",
            "start": {"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"},
        },
        **extra,
    }


async def batch(client: Client, requests: list[JsonDict], **kw: Any) -> tuple[int, JsonDict]:
    resp = await client.post("/v1.0/$batch", json={"requests": requests}, headers=kw.get("headers", auth()))
    return resp.status, await resp.json()


async def test_batch_runs_items_and_reverses_order(client: Client) -> None:
    status, body = await batch(client, [settings_item(str(i)) for i in range(1, 5)] + [create_item("5")])
    assert status == 200
    ids = [r["id"] for r in body["responses"]]
    assert ids == ["5", "4", "3", "2", "1"]
    by_id = {r["id"]: r for r in body["responses"]}
    assert by_id["1"]["status"] == 200
    assert by_id["1"]["body"]["value"] == "Tokyo Standard Time"
    assert by_id["5"]["status"] == 201
    assert by_id["5"]["headers"]["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "requests",
    [
        [settings_item(str(i)) for i in range(21)],
        [settings_item("1"), settings_item("1")],
        [{**create_item("1"), "headers": {}}],
        [{"id": "1", "method": "GET"}],
        [settings_item("1", dependsOn=["9"])],
        [settings_item("1", dependsOn=["2"]), settings_item("2", dependsOn=["1"])],
        [],
    ],
)
async def test_malformed_batch_is_400_and_runs_nothing(
    client: Client, tenant: DevTenant, requests: list[JsonDict]
) -> None:
    status, body = await batch(client, requests)
    assert status == 400
    assert body["error"]["code"] == "BadRequest"
    assert tenant.counters["graph.batch_items"] == 0


async def test_twenty_items_are_accepted(client: Client, tenant: DevTenant) -> None:
    status, body = await batch(client, [settings_item(str(i)) for i in range(20)])
    assert status == 200
    assert len(body["responses"]) == 20
    assert tenant.counters["graph.batch_items"] == 20
    assert tenant.counters["graph.mailboxSettings"] == 20
    assert tenant.counters["graph.batch"] == 1
    assert tenant.counters["graph"] == 1


async def test_failed_dependency_gives_424(client: Client) -> None:
    status, body = await batch(
        client,
        [
            settings_item("1", who="nobody@contoso.example"),
            settings_item("2", dependsOn=["1"]),
            settings_item("3", dependsOn=["2"]),
            settings_item("4"),
        ],
    )
    assert status == 200
    by_id = {r["id"]: r["status"] for r in body["responses"]}
    assert by_id == {"1": 404, "2": 424, "3": 424, "4": 200}


async def test_dependency_runs_first_even_if_listed_later(client: Client, tenant: DevTenant) -> None:
    _status, body = await batch(client, [settings_item("a", dependsOn=["b"]), create_item("b")])
    assert [r["id"] for r in body["responses"]] == ["a", "b"]  # reverse of completion b, a
    assert {r["status"] for r in body["responses"]} == {200, 201}


async def test_items_are_authorized_individually(client: Client) -> None:
    status, body = await batch(
        client, [settings_item("1"), settings_item("2", who="alex@contoso.example")], headers=auth(RESTRICTED)
    )
    by_id = {r["id"]: r for r in body["responses"]}
    assert by_id["1"]["status"] == 200
    assert by_id["2"]["status"] == 403
    assert by_id["2"]["body"]["error"]["message"] == "Access to OData is disabled."
    status, body = await batch(client, [settings_item("1")], headers=auth(roles=()))
    assert status == 401


async def test_items_are_throttled_individually(client: Client, tenant: DevTenant) -> None:
    tenant.faults = FaultPlan(throttle_rate=0.5, retry_after_s=0.75, seed=3)
    status, body = await batch(client, [settings_item(str(i)) for i in range(20)])
    assert status == 200
    throttled = [r for r in body["responses"] if r["status"] == 429]
    assert 0 < len(throttled) < 20
    assert all(r["headers"]["Retry-After"] == "0.75" for r in throttled)
    assert all(r["body"]["error"]["code"] == "TooManyRequests" for r in throttled)


async def test_absolute_or_nested_urls_fail_per_item(client: Client) -> None:
    status, body = await batch(
        client,
        [
            {"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/me"},
            {
                "id": "2",
                "method": "POST",
                "url": "/$batch",
                "headers": {"Content-Type": "application/json"},
                "body": {"requests": []},
            },
            settings_item("3"),
        ],
    )
    by_id = {r["id"]: r["status"] for r in body["responses"]}
    assert status == 200
    assert by_id == {"1": 400, "2": 400, "3": 200}
