"""devtenant.graph: Graph v1.0 pipeline, authorization, directory, calendarView and getSchedule.

Contract tests against a real aiohttp server on 127.0.0.1 (random port). Tokens are signed with a
test RSA key and checked by a PyJWT verifier, as devtenant's app does with its own key. Expected
times are derived by hand (US DST ends Sunday 2026-11-01), never copied from the implementation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from devtenant.app import build_app
from devtenant.tenant import DevTenant, FaultPlan, tenant_from_dict
from tests.devtenant.graph_harness import KEY, Client
from tests.devtenant.graph_harness import sign as harness_sign

JsonDict = dict[str, Any]
TID = "11111111-1111-1111-1111-111111111111"
APP = "aaaaaaaa-0000-0000-0000-000000000001"
RESTRICTED_APP = "aaaaaaaa-0000-0000-0000-000000000002"
DENIED_APP = "aaaaaaaa-0000-0000-0000-000000000003"
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
APP_ROLES = ["Calendars.ReadWrite", "MailboxSettings.Read", "User.Read.All", "Place.Read.All"]


def user(uid: str, nick: str, zone: str, **extra: Any) -> JsonDict:
    return {
        "id": uid,
        "displayName": f"{nick.title()} Person",
        "givenName": nick.title(),
        "surname": "Person",
        "userPrincipalName": f"{nick}@contoso.example",
        "mail": f"{nick}@contoso.example",
        "accountEnabled": True,
        "mailboxSettings": {"timeZone": zone},
        "events": [],
        **extra,
    }


def event(eid: str, start: str, end: str, zone: str = "UTC", **extra: Any) -> JsonDict:
    return {
        "id": eid,
        "type": "singleInstance",
        "subject": f"subject {eid}",
        "showAs": "busy",
        "start": {"dateTime": start, "timeZone": zone},
        "end": {"dateTime": end, "timeZone": zone},
        **extra,
    }


def tenant_doc() -> JsonDict:
    standup = event(
        "standup",
        "2026-10-26T09:00:00",
        "2026-10-26T09:30:00",
        "Pacific Standard Time",
        type="seriesMaster",
        recurrence={
            "pattern": {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            },
            "range": {"type": "endDate", "startDate": "2026-10-26", "endDate": "2026-11-06"},
        },
    )
    megan = user(
        "u-megan",
        "megan",
        "Pacific Standard Time",
        calendarPermissions=[
            {"emailAddress": {"name": "My Organization", "address": ""}, "role": "freeBusyRead"},
            {"emailAddress": {"address": "alex@contoso.example"}, "role": "read"},
        ],
    )
    megan["events"] = [
        standup,
        event("doctor", "2026-12-01T15:00:00", "2026-12-01T16:00:00", sensitivity="private"),
        event("review", "2026-12-01T17:00:00", "2026-12-01T18:00:00", showAs="tentative"),
        *[
            event(
                f"many-{i:02d}",
                f"2026-12-03T{i % 10:02d}:{(i // 10) * 20:02d}:00",
                f"2026-12-03T{i % 10:02d}:{(i // 10) * 20 + 10:02d}:00",
            )
            for i in range(23)
        ],
    ]
    return {
        "schemaVersion": 1,
        "tenant": {"id": TID, "displayName": "Contoso", "defaultDomain": "contoso.example"},
        "applications": [{"appId": APP}, {"appId": RESTRICTED_APP}, {"appId": DENIED_APP}],
        "groups": [
            {
                "id": "g-sched",
                "mail": "schedulable@contoso.example",
                "members": ["u-megan", "u-alex", "r-101"],
            }
        ],
        "applicationAccessPolicies": [
            {
                "appId": RESTRICTED_APP,
                "accessRight": "RestrictAccess",
                "policyScopeGroupId": "schedulable@contoso.example",
            },
            {"appId": DENIED_APP, "accessRight": "DenyAccess", "policyScopeGroupId": "g-sched"},
        ],
        "users": [
            megan,
            user("u-alex", "alex", "W. Europe Standard Time"),
            user(
                "u-adele",
                "adele",
                "UTC",
                calendarPermissions=[
                    {"emailAddress": {"name": "My Organization", "address": ""}, "role": "none"}
                ],
            ),
            user("u-gone", "gone", "UTC", accountEnabled=False),
            user("u-nobox", "nobox", "UTC", hasMailbox=False),
        ],
        "rooms": [
            {
                "id": f"r-{n}",
                "displayName": f"Room {n}",
                "emailAddress": f"room{n}@contoso.example",
                "capacity": 6,
                "bookingType": "standard",
                "events": [],
            }
            for n in range(101, 104)
        ],
    }


def sign(claims: JsonDict, key: rsa.RSAPrivateKey = KEY) -> str:
    return harness_sign(TID, claims, key)


def app_token(roles: list[str] = APP_ROLES, app_id: str = APP) -> dict[str, str]:
    return {"Authorization": "Bearer " + sign({"azp": app_id, "roles": roles})}


def user_token(
    oid: str, scp: str = "Calendars.ReadWrite MailboxSettings.Read User.ReadBasic.All"
) -> dict[str, str]:
    return {"Authorization": "Bearer " + sign({"azp": APP, "scp": scp, "oid": oid})}


def view_path(who: str, start: str, end: str) -> str:
    return f"/v1.0/users/{who}/calendarView?startDateTime={start}&endDateTime={end}"


def assert_graph_error(body: JsonDict, code: str) -> None:
    assert body["error"]["code"] == code
    assert set(body["error"]["innerError"]) == {"date", "request-id", "client-request-id"}


# ---- calendarView --------------------------------------------------------------------------


async def test_calendar_view_expands_weekly_series_across_dst_in_windows_zone(client: Client) -> None:
    resp = await client.get(
        view_path("megan@contoso.example", "2026-10-28T00:00:00Z", "2026-11-04T00:00:00Z"),
        headers=app_token(),
    )
    assert resp.status == 200
    starts = [(e["start"]["dateTime"][:16], e["start"]["timeZone"]) for e in (await resp.json())["value"]]
    # 09:00 Pacific is 16:00Z while PDT (to Nov 1) and 17:00Z after; no weekend occurrences.
    assert starts == [
        ("2026-10-28T16:00", "UTC"),
        ("2026-10-29T16:00", "UTC"),
        ("2026-10-30T16:00", "UTC"),
        ("2026-11-02T17:00", "UTC"),
        ("2026-11-03T17:00", "UTC"),
    ]


async def test_calendar_view_prefer_timezone_converts_and_echoes(client: Client) -> None:
    headers = {**app_token(), "Prefer": 'outlook.timezone="Pacific Standard Time"'}
    resp = await client.get(
        view_path("u-megan", "2026-10-30T00:00:00-07:00", "2026-11-03T00:00:00-08:00"), headers=headers
    )
    assert resp.headers["Preference-Applied"] == 'outlook.timezone="Pacific Standard Time"'
    value = (await resp.json())["value"]
    assert [e["start"] for e in value] == [
        {"dateTime": "2026-10-30T09:00:00.0000000", "timeZone": "Pacific Standard Time"},
        {"dateTime": "2026-11-02T09:00:00.0000000", "timeZone": "Pacific Standard Time"},
    ]


async def test_calendar_view_pages_follow_absolute_next_link(client: Client) -> None:
    url = view_path("u-megan", "2026-12-03T00:00:00", "2026-12-04T00:00:00")
    seen: list[str] = []
    pages = 0
    while url:
        resp = await client.session.get(
            url if url.startswith("http") else client.make_url(url), headers=app_token()
        )
        body = await resp.json()
        assert resp.status == 200
        assert len(body["value"]) <= 10
        seen += [e["id"] for e in body["value"]]
        url = body.get("@odata.nextLink", "")
        assert not url or url.startswith(f"http://127.0.0.1:{client.port}/v1.0/")
        pages += 1
    assert pages == 3
    assert sorted(seen) == [f"many-{i:02d}" for i in range(23)]


async def test_calendar_view_maxpagesize_and_top(client: Client) -> None:
    path = view_path("u-megan", "2026-12-03T00:00:00", "2026-12-04T00:00:00")
    resp = await client.get(path, headers={**app_token(), "Prefer": "odata.maxpagesize=20"})
    assert len((await resp.json())["value"]) == 20
    assert resp.headers["Preference-Applied"] == "odata.maxpagesize=20"
    resp = await client.get(path + "&$top=5000", headers=app_token())
    body = await resp.json()
    assert len(body["value"]) == 23
    assert "@odata.nextLink" not in body


async def test_calendar_view_select_keeps_id_and_requested_fields(client: Client) -> None:
    path = view_path("u-megan", "2026-12-01T00:00:00", "2026-12-02T00:00:00")
    resp = await client.get(path + "&$select=subject,showAs", headers=app_token())
    for item in (await resp.json())["value"]:
        assert set(item) <= {"id", "subject", "showAs", "@odata.etag"}


async def test_calendar_view_requires_time_window(client: Client) -> None:
    resp = await client.get("/v1.0/users/u-megan/calendarView", headers=app_token())
    assert resp.status == 400
    assert_graph_error(await resp.json(), "ErrorInvalidParameter")
    assert resp.headers["request-id"]


# ---- getSchedule ---------------------------------------------------------------------------


def schedule_body(
    schedules: list[str],
    *,
    start: str = "2026-12-01T14:00:00",
    end: str = "2026-12-01T19:00:00",
    interval: int | None = 60,
) -> JsonDict:
    body: JsonDict = {
        "schedules": schedules,
        "startTime": {"dateTime": start, "timeZone": "UTC"},
        "endTime": {"dateTime": end, "timeZone": "UTC"},
    }
    if interval is not None:
        body["availabilityViewInterval"] = interval
    return body


async def test_get_schedule_availability_view_and_unknown_address(client: Client) -> None:
    resp = await client.post(
        "/v1.0/users/megan@contoso.example/calendar/getSchedule",
        json=schedule_body(["megan@contoso.example", "who@nowhere.example", "room101@contoso.example"]),
        headers=app_token(),
    )
    assert resp.status == 200
    megan, unknown, room = (await resp.json())["value"]
    assert megan["availabilityView"] == "02010"  # 15-16 private busy, 17-18 tentative
    assert megan["workingHours"]["timeZone"] == {"name": "Pacific Standard Time"}
    assert unknown["error"] == {
        "message": "Unable to resolve e-mail address who@nowhere.example to an Active Directory object.",
        "responseCode": "5009",
    }
    assert room["availabilityView"] == "00000"


async def test_get_schedule_prefer_timezone_and_default_interval(client: Client) -> None:
    headers = {**app_token(), "Prefer": 'outlook.timezone="W. Europe Standard Time"'}
    resp = await client.post(
        "/v1.0/users/u-megan/calendar/getSchedule",
        headers=headers,
        json=schedule_body(["megan@contoso.example"], interval=None),
    )
    info = (await resp.json())["value"][0]
    assert len(info["availabilityView"]) == 10  # 5 hours / 30 minutes
    assert info["scheduleItems"][0]["start"] == {
        "dateTime": "2026-12-01T16:00:00.0000000",
        "timeZone": "W. Europe Standard Time",
    }
    assert resp.headers["Preference-Applied"] == 'outlook.timezone="W. Europe Standard Time"'


@pytest.mark.parametrize(
    "body",
    [
        schedule_body([f"u{i}@contoso.example" for i in range(21)]),
        schedule_body(["megan@contoso.example"], start="2026-12-01T00:00:00", end="2027-02-01T00:00:00"),
        schedule_body(["megan@contoso.example"], interval=4),
        schedule_body(["megan@contoso.example"], interval=1441),
        schedule_body([]),
    ],
)
async def test_get_schedule_rejects_out_of_limit_requests(client: Client, body: JsonDict) -> None:
    resp = await client.post("/v1.0/users/u-megan/calendar/getSchedule", json=body, headers=app_token())
    assert resp.status == 400
    assert_graph_error(await resp.json(), "ErrorInvalidParameter")


async def test_get_schedule_accepts_twenty_schedules_and_61_day_window(client: Client) -> None:
    body = schedule_body(
        [f"u{i}@contoso.example" for i in range(20)],
        start="2026-12-01T00:00:00",
        end="2027-01-30T23:00:00",
        interval=1440,
    )
    resp = await client.post("/v1.0/users/u-megan/calendar/getSchedule", json=body, headers=app_token())
    assert resp.status == 200
    assert len((await resp.json())["value"]) == 20


# ---- delegated access ----------------------------------------------------------------------


async def test_free_busy_only_caller_gets_schedule_but_not_calendar_view(client: Client) -> None:
    headers = user_token("u-adele")  # megan shares freeBusyRead with "My Organization"
    resp = await client.post(
        "/v1.0/me/calendar/getSchedule", headers=headers, json=schedule_body(["megan@contoso.example"])
    )
    info = (await resp.json())["value"][0]
    assert info["availabilityView"] == "02010"
    assert all("subject" not in item for item in info["scheduleItems"])
    resp = await client.get(
        view_path("megan@contoso.example", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"), headers=headers
    )
    assert resp.status == 403
    assert_graph_error(await resp.json(), "ErrorAccessDenied")


async def test_read_share_sees_details_but_not_private_subjects(client: Client) -> None:
    resp = await client.get(
        view_path("u-megan", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"), headers=user_token("u-alex")
    )
    assert resp.status == 200
    by_id = {e["id"]: e for e in (await resp.json())["value"]}
    assert "subject" not in by_id["doctor"]
    assert "body" not in by_id["doctor"]
    assert by_id["review"]["subject"] == "subject review"


async def test_owner_sees_private_subject_and_none_role_gets_schedule_error(client: Client) -> None:
    resp = await client.get(
        "/v1.0/me/calendarView?startDateTime=2026-12-01T00:00:00Z&endDateTime=2026-12-02T00:00:00Z",
        headers=user_token("u-megan"),
    )
    assert {e["subject"] for e in (await resp.json())["value"]} >= {"subject doctor"}
    resp = await client.post(
        "/v1.0/me/calendar/getSchedule",
        headers=user_token("u-megan"),
        json=schedule_body(["adele@contoso.example"]),
    )
    assert (await resp.json())["value"][0]["error"]["responseCode"] == "ErrorNoFreeBusyAccess"


async def test_disabled_user_token_is_rejected(client: Client) -> None:
    resp = await client.get("/v1.0/me", headers=user_token("u-gone"))
    assert resp.status == 401
    assert_graph_error(await resp.json(), "InvalidAuthenticationToken")


async def test_delegated_caller_cannot_read_other_mailbox_settings(client: Client) -> None:
    resp = await client.get("/v1.0/users/u-alex/mailboxSettings", headers=user_token("u-megan"))
    assert resp.status == 403
    resp = await client.get("/v1.0/me/mailboxSettings/timeZone", headers=user_token("u-megan"))
    assert (await resp.json())["value"] == "Pacific Standard Time"


# ---- app-only permissions and access policy -----------------------------------------------


async def test_missing_role_is_access_denied(client: Client) -> None:
    resp = await client.get(
        view_path("u-megan", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"),
        headers=app_token(["User.Read.All"]),
    )
    assert resp.status == 403
    body = await resp.json()
    assert_graph_error(body, "ErrorAccessDenied")
    assert body["error"]["message"] == "Access is denied. Check credentials and try again."


@pytest.mark.parametrize(
    ("app_id", "mailbox", "allowed"),
    [
        (RESTRICTED_APP, "megan@contoso.example", True),
        (RESTRICTED_APP, "adele@contoso.example", False),
        (RESTRICTED_APP, "room101@contoso.example", True),
        (RESTRICTED_APP, "room102@contoso.example", False),
        (DENIED_APP, "megan@contoso.example", False),
        (DENIED_APP, "adele@contoso.example", True),
    ],
)
async def test_access_policy_scopes_app_only_calendar_and_settings(
    client: Client, app_id: str, mailbox: str, allowed: bool
) -> None:
    headers = app_token(app_id=app_id)
    for path in (
        view_path(mailbox, "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"),
        f"/v1.0/users/{mailbox}/mailboxSettings",
    ):
        resp = await client.get(path, headers=headers)
        assert resp.status == (200 if allowed else 403)
        if not allowed:
            body = await resp.json()
            assert_graph_error(body, "ErrorAccessDenied")
            assert body["error"]["message"] == "Access to OData is disabled."


async def test_access_policy_does_not_restrict_directory_or_places(client: Client) -> None:
    headers = app_token(app_id=RESTRICTED_APP)
    assert (await client.get("/v1.0/users/adele@contoso.example", headers=headers)).status == 200
    assert (await client.get("/v1.0/places/microsoft.graph.room", headers=headers)).status == 200


async def test_access_policy_denial_is_a_per_schedule_error(client: Client) -> None:
    resp = await client.post(
        "/v1.0/users/u-megan/calendar/getSchedule",
        json=schedule_body(["megan@contoso.example", "adele@contoso.example"]),
        headers=app_token(app_id=RESTRICTED_APP),
    )
    megan, adele = (await resp.json())["value"]
    assert "error" not in megan
    assert adele["error"]["responseCode"] == "ErrorAccessDenied"


async def test_token_problems_are_401_with_www_authenticate(client: Client) -> None:
    bad = {"Authorization": "Bearer " + sign({"azp": APP, "roles": APP_ROLES}, OTHER_KEY)}
    expired = {
        "Authorization": "Bearer " + sign({"azp": APP, "roles": APP_ROLES, "exp": int(time.time()) - 10})
    }
    for headers in ({}, bad, expired, {"Authorization": "Bearer " + sign({"azp": APP})}):
        resp = await client.get("/v1.0/users", headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer realm=")
        assert_graph_error(await resp.json(), "InvalidAuthenticationToken")


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        (
            "/v1.0/users/nobody@contoso.example/calendarView?startDateTime=2026-12-01T00:00:00Z"
            "&endDateTime=2026-12-02T00:00:00Z",
            404,
            "ErrorInvalidUser",
        ),
        ("/v1.0/users/nobody@contoso.example", 404, "Request_ResourceNotFound"),
        ("/v1.0/users/nobox@contoso.example/mailboxSettings", 404, "MailboxNotEnabledForRESTAPI"),
        (
            "/v1.0/me/calendarView?startDateTime=2026-12-01T00:00:00Z&endDateTime=2026-12-02T00:00:00Z",
            400,
            "BadRequest",
        ),
        ("/v1.0/users/u-megan/nonsense", 400, "BadRequest"),
    ],
)
async def test_lookup_errors(client: Client, path: str, status: int, code: str) -> None:
    resp = await client.get(path, headers=app_token())
    assert resp.status == status
    assert_graph_error(await resp.json(), code)


# ---- directory -----------------------------------------------------------------------------


async def test_users_filter_search_select_and_paging(client: Client) -> None:
    resp = await client.get(
        "/v1.0/users", params={"$filter": "startswith(displayName,'meg')"}, headers=app_token()
    )
    assert [u["id"] for u in (await resp.json())["value"]] == ["u-megan"]
    resp = await client.get(
        "/v1.0/users",
        headers=app_token(),
        params={"$filter": "mail eq 'ALEX@contoso.example' or startswith(mail,'adele')"},
    )
    assert [u["id"] for u in (await resp.json())["value"]] == ["u-alex", "u-adele"]
    resp = await client.get("/v1.0/users", params={"$filter": "jobTitle ne 'x'"}, headers=app_token())
    assert resp.status == 400
    search = {"$search": '"displayName:person"', "$select": "id,displayName", "$top": "2"}
    resp = await client.get("/v1.0/users", params=search, headers=app_token())
    assert resp.status == 400  # no ConsistencyLevel
    resp = await client.get(
        "/v1.0/users", params=search, headers={**app_token(), "ConsistencyLevel": "eventual"}
    )
    body = await resp.json()
    assert all(set(u) == {"id", "displayName"} for u in body["value"])
    assert len(body["value"]) == 2
    assert "@odata.nextLink" in body


async def test_read_basic_hides_non_basic_fields(client: Client) -> None:
    resp = await client.get(
        "/v1.0/users/u-alex",
        params={"$select": "displayName,jobTitle,mail"},
        headers=user_token("u-megan", "User.ReadBasic.All"),
    )
    assert set(await resp.json()) - {"@odata.context"} == {"id", "displayName", "mail"}


async def test_users_delta_reports_disabled_and_removed(client: Client, tenant: DevTenant) -> None:
    resp = await client.get("/v1.0/users/delta", headers=app_token())
    first = await resp.json()
    assert {u["id"] for u in first["value"]} == {u["id"] for u in tenant.users()}
    tenant.set_account_enabled("u-alex", False)
    tenant.remove_user("u-adele")
    resp = await client.session.get(first["@odata.deltaLink"], headers=app_token())
    second = await resp.json()
    assert second["value"] == [
        {**second["value"][0], "id": "u-alex", "accountEnabled": False},
        {"id": "u-adele", "@removed": {"reason": "deleted"}},
    ]
    resp = await client.session.get(second["@odata.deltaLink"], headers=app_token())
    assert (await resp.json())["value"] == []


async def test_mailbox_settings_and_working_hours(client: Client) -> None:
    resp = await client.get(
        "/v1.0/users/alex@contoso.example/mailboxSettings/workingHours", headers=app_token()
    )
    hours = await resp.json()
    assert hours["timeZone"] == {"name": "W. Europe Standard Time"}
    assert hours["daysOfWeek"][0] == "monday"


async def test_rooms_are_paged(client: Client) -> None:
    resp = await client.get("/v1.0/places/microsoft.graph.room?$top=2", headers=app_token())
    body = await resp.json()
    assert [r["emailAddress"] for r in body["value"]] == [
        "room101@contoso.example",
        "room102@contoso.example",
    ]
    assert "events" not in body["value"][0]
    resp = await client.session.get(body["@odata.nextLink"], headers=app_token())
    assert [r["id"] for r in (await resp.json())["value"]] == ["r-103"]


# ---- faults and counters -------------------------------------------------------------------


async def test_throttling_answers_429_with_retry_after(client: Client, tenant: DevTenant) -> None:
    tenant.faults = FaultPlan(throttle_rate=1.0, retry_after_s=2.5)
    resp = await client.get("/v1.0/users", headers=app_token())
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "2.5"
    body = await resp.json()
    assert_graph_error(body, "TooManyRequests")
    assert body["error"]["message"] == "Please retry again later."
    tenant.faults = FaultPlan(unavailable_rate=1.0)
    resp = await client.get("/v1.0/users", headers=app_token())
    assert resp.status == 503
    assert_graph_error(await resp.json(), "serviceNotAvailable")


async def test_throttling_is_deterministic_per_seed(client: Client, tenant: DevTenant) -> None:
    async def statuses() -> list[int]:
        tenant.faults = FaultPlan(throttle_rate=0.5, seed=7)
        return [(await client.get("/v1.0/me", headers=user_token("u-megan"))).status for _ in range(12)]

    first = await statuses()
    assert set(first) == {200, 429}
    assert await statuses() == first


async def test_latency_is_added(client: Client, tenant: DevTenant) -> None:
    tenant.faults = FaultPlan(latency_ms=150)
    began = datetime.now(UTC)
    assert (await client.get("/v1.0/me", headers=user_token("u-megan"))).status == 200
    assert datetime.now(UTC) - began >= timedelta(milliseconds=150)


async def test_requests_are_counted_per_operation(client: Client, tenant: DevTenant) -> None:
    await client.get("/v1.0/users", headers=app_token())
    await client.get("/v1.0/users", headers={})
    await client.post(
        "/v1.0/users/u-megan/calendar/getSchedule",
        headers=app_token(),
        json=schedule_body(["megan@contoso.example"]),
    )
    await client.get(
        view_path("u-megan", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"), headers=app_token()
    )
    assert tenant.counters["graph"] == 4
    assert tenant.counters["graph.users.list"] == 1  # the unauthenticated one never routed
    assert tenant.counters["graph.getSchedule"] == 1
    assert tenant.counters["graph.calendarView"] == 1


async def test_every_response_has_request_id(client: Client) -> None:
    for resp in (await client.get("/v1.0/users", headers=app_token()), await client.get("/v1.0/users")):
        assert len(resp.headers["request-id"]) == 36


async def test_mailbox_concurrency_limit_is_four_per_app_and_mailbox(
    client: Client, tenant: DevTenant
) -> None:
    tenant.faults = FaultPlan(latency_ms=400)
    path = view_path("u-megan", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z")
    same = await asyncio.gather(*(client.get(path, headers=app_token()) for _ in range(6)))
    assert sorted(r.status for r in same) == [200, 200, 200, 200, 429, 429]
    throttled = next(r for r in same if r.status == 429)
    assert_graph_error(await throttled.json(), "ApplicationThrottled")
    assert "Retry-After" in throttled.headers
    others = [
        view_path(who, "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z")
        for who in ("u-megan", "u-alex", "u-adele", "r-101", "r-102", "r-103")
    ]
    spread = await asyncio.gather(*(client.get(p, headers=app_token()) for p in others))
    assert [r.status for r in spread] == [200] * 6


async def test_calendar_view_accepts_iana_prefer_zone(client: Client) -> None:
    headers = {**app_token(), "Prefer": 'outlook.timezone="America/New_York"'}
    resp = await client.get(
        view_path("u-megan", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"), headers=headers
    )
    first = (await resp.json())["value"][0]
    assert first["start"] == {"dateTime": "2026-12-01T10:00:00.0000000", "timeZone": "America/New_York"}
    headers["Prefer"] = 'outlook.timezone="Mars Standard Time"'
    resp = await client.get(
        view_path("u-megan", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"), headers=headers
    )
    assert "Preference-Applied" not in resp.headers
    assert (await resp.json())["value"][0]["start"]["timeZone"] == "UTC"


@pytest.mark.parametrize("size", [1, 3, 7, 22, 23, 24])
async def test_calendar_view_paging_returns_each_instance_once(client: Client, size: int) -> None:
    url: str = client.make_url(
        view_path("u-megan", "2026-12-03T00:00:00Z", "2026-12-04T00:00:00Z") + f"&$top={size}"
    ).human_repr()
    seen: list[str] = []
    starts: list[str] = []
    while url:
        body = await (await client.session.get(url, headers=app_token())).json()
        assert 0 < len(body["value"]) <= size
        seen += [e["id"] for e in body["value"]]
        starts += [e["start"]["dateTime"] for e in body["value"]]
        url = body.get("@odata.nextLink", "")
    assert starts == sorted(starts)
    assert sorted(seen) == [f"many-{i:02d}" for i in range(23)]


async def test_broken_calendar_data_answers_graph_shaped_500(client: Client, tenant: DevTenant) -> None:
    megan = tenant.find_user("u-megan")
    assert megan is not None
    megan["events"].append(event("bad", "not-a-date", "2026-12-01T10:00:00"))
    resp = await client.get(
        view_path("u-megan", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"), headers=app_token()
    )
    assert resp.status == 500
    assert_graph_error(await resp.json(), "generalException")


async def test_graph_accepts_app_tokens_from_devtenant_entra(
    tmp_path: Path, aiohttp_client: Callable[[web.Application], Awaitable[Client]]
) -> None:
    doc = tenant_doc()
    doc["applications"][0].update(
        {
            "passwordCredentials": [{"keyId": "k1", "secretText": "dev-secret"}],
            "requiredResourceAccess": {"application": ["Calendars.Read"]},
            "adminConsent": {"granted": True},
        }
    )
    tenant = tenant_from_dict(doc)
    client = await aiohttp_client(
        build_app(tenant, base_url="https://127.0.0.1:1", data_dir=tmp_path, enable_controls=False)
    )
    resp = await client.post(
        f"/{TID}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": APP,
            "client_secret": "dev-secret",
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    token = (await resp.json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    resp = await client.get(
        view_path("u-megan", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"), headers=headers
    )
    assert resp.status == 200
    resp = await client.get("/v1.0/users/u-megan/mailboxSettings", headers=headers)
    assert resp.status == 403  # MailboxSettings.Read was not granted to this app
    assert tenant.counters["graph"] == 2
