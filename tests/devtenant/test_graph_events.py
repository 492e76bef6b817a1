"""devtenant.graph_events: creating, updating, deleting and cancelling meetings over real HTTP.

A small tenant (organizer, attendee, two rooms, one of them busy) served on 127.0.0.1; tokens are
signed with a test RSA key and verified with PyJWT.
"""

from __future__ import annotations

from typing import Any

from devtenant.tenant import DevTenant, FaultPlan
from tests.devtenant.graph_harness import Client, bearer, person

JsonDict = dict[str, Any]
TID = "22222222-2222-2222-2222-222222222222"
EVENTS = "/v1.0/users/megan@contoso.example/events"


def tenant_doc() -> JsonDict:
    busy = {
        "id": "taken",
        "type": "singleInstance",
        "subject": "Board",
        "showAs": "busy",
        "iCalUId": "ical-taken",
        "start": {"dateTime": "2026-12-01T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-01T12:00:00", "timeZone": "UTC"},
    }
    return {
        "schemaVersion": 1,
        "tenant": {"id": TID, "displayName": "Contoso"},
        "users": [person("u-megan", "megan"), person("u-alex", "alex")],
        "rooms": [
            {
                "id": "r-1",
                "displayName": "Room 1",
                "emailAddress": "room1@contoso.example",
                "bookingType": "standard",
                "events": [],
            },
            {
                "id": "r-2",
                "displayName": "Room 2",
                "emailAddress": "room2@contoso.example",
                "bookingType": "standard",
                "events": [busy],
            },
        ],
    }


def headers(**claims: Any) -> dict[str, str]:
    return bearer(TID, azp="app", **claims)


APP = headers(roles=["Calendars.ReadWrite"])


def meeting(*attendees: str, start: str = "2026-12-01T10:00:00", **extra: Any) -> JsonDict:
    return {
        "subject": "Interview",
        "start": {"dateTime": start, "timeZone": "UTC"},
        "end": {"dateTime": start[:11] + "11:00:00", "timeZone": "UTC"},
        "attendees": [{"type": "required", "emailAddress": {"address": a}} for a in attendees],
        **extra,
    }


def events_of(tenant: DevTenant, key: str) -> list[JsonDict]:
    mailbox = tenant.find_mailbox(key)
    assert mailbox is not None
    return tenant.events_of(mailbox)


async def test_create_lands_in_attendee_and_room_calendars(client: Client, tenant: DevTenant) -> None:
    resp = await client.post(
        EVENTS, headers=APP, json=meeting("alex@contoso.example", "room1@contoso.example")
    )
    assert resp.status == 201
    created = await resp.json()
    assert created["organizer"]["emailAddress"]["address"] == "megan@contoso.example"
    assert created["start"] == {"dateTime": "2026-12-01T10:00:00.0000000", "timeZone": "UTC"}
    (alex_copy,) = events_of(tenant, "u-alex")
    assert alex_copy["iCalUId"] == created["iCalUId"]
    assert alex_copy["id"] != created["id"]
    assert alex_copy["type"] == "singleInstance"
    assert alex_copy["isOrganizer"] is False
    assert alex_copy["responseStatus"]["response"] == "none"
    (room_copy,) = events_of(tenant, "r-1")
    assert room_copy["responseStatus"]["response"] == "accepted"
    statuses = {a["emailAddress"]["address"]: a["status"]["response"] for a in created["attendees"]}
    assert statuses == {"alex@contoso.example": "none", "room1@contoso.example": "accepted"}


async def test_busy_room_declines(client: Client, tenant: DevTenant) -> None:
    resp = await client.post(EVENTS, headers=APP, json=meeting("room2@contoso.example"))
    created = await resp.json()
    assert created["attendees"][0]["status"]["response"] == "declined"
    copies = [e for e in events_of(tenant, "r-2") if e.get("iCalUId") == created["iCalUId"]]
    assert copies[0]["responseStatus"]["response"] == "declined"


async def test_transaction_id_deduplicates_per_organizer(client: Client, tenant: DevTenant) -> None:
    body = meeting("alex@contoso.example", transactionId="tx-1")
    first = await (await client.post(EVENTS, headers=APP, json=body)).json()
    resp = await client.post(EVENTS, headers=APP, json=body)
    assert resp.status == 201
    assert (await resp.json())["id"] == first["id"]
    assert len(events_of(tenant, "u-megan")) == 1
    assert len(events_of(tenant, "u-alex")) == 1
    assert first["transactionId"] == "tx-1"


async def test_lost_create_response_then_idempotent_retry(client: Client, tenant: DevTenant) -> None:
    tenant.faults = FaultPlan(drop_create_response=1)
    body = meeting("alex@contoso.example", transactionId="tx-lost")
    resp = await client.post(EVENTS, headers=APP, json=body)
    assert resp.status == 504
    assert len(events_of(tenant, "u-megan")) == 1  # created although the answer was lost
    resp = await client.post(EVENTS, headers=APP, json=body)
    assert resp.status == 201
    assert (await resp.json())["id"] == events_of(tenant, "u-megan")[0]["id"]
    assert len(events_of(tenant, "u-alex")) == 1
    assert tenant.faults.drop_create_response == 0


async def test_teams_meeting_gets_unique_join_url(client: Client) -> None:
    urls = []
    for _ in range(2):
        body = meeting("alex@contoso.example", isOnlineMeeting=True, onlineMeetingProvider="teamsForBusiness")
        created = await (await client.post(EVENTS, headers=APP, json=body)).json()
        urls.append(created["onlineMeeting"]["joinUrl"])
    assert all(u.startswith("https://teams.microsoft.com/l/meetup-join/") for u in urls)
    assert urls[0] != urls[1]


async def test_cancel_is_organizer_only(client: Client, tenant: DevTenant) -> None:
    created = await (await client.post(EVENTS, headers=APP, json=meeting("alex@contoso.example"))).json()
    alex_copy_id = events_of(tenant, "u-alex")[0]["id"]
    resp = await client.post(
        f"/v1.0/users/u-alex/events/{alex_copy_id}/cancel", headers=APP, json={"comment": "no"}
    )
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["message"] == "You need to be an organizer to cancel a meeting."
    resp = await client.post(f"{EVENTS}/{created['id']}/cancel", headers=APP, json={})
    assert resp.status == 202
    assert events_of(tenant, "u-megan") == []
    assert events_of(tenant, "u-alex")[0]["isCancelled"] is True


async def test_patch_propagates_and_honours_if_match(client: Client, tenant: DevTenant) -> None:
    created = await (
        await client.post(EVENTS, headers=APP, json=meeting("alex@contoso.example", "room1@contoso.example"))
    ).json()
    url = f"{EVENTS}/{created['id']}"
    new_time = {
        "start": {"dateTime": "2026-12-01T10:30:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-01T11:30:00", "timeZone": "UTC"},
    }
    stale = {**APP, "If-Match": 'W/"not-the-change-key"'}
    resp = await client.patch(url, headers=stale, json=new_time)
    assert resp.status == 412
    resp = await client.patch(
        url,
        headers={**APP, "If-Match": created["@odata.etag"]},
        json={**new_time, "attendees": [{"emailAddress": {"address": "alex@contoso.example"}}]},
    )
    assert resp.status == 200
    assert (await resp.json())["@odata.etag"] != created["@odata.etag"]
    (alex_copy,) = events_of(tenant, "u-alex")
    assert alex_copy["start"]["dateTime"] == "2026-12-01T10:30:00"
    (room_copy,) = events_of(tenant, "r-1")
    assert room_copy["isCancelled"] is True  # the room was removed from the meeting


async def test_delete_by_organizer_cancels_copies(client: Client, tenant: DevTenant) -> None:
    created = await (await client.post(EVENTS, headers=APP, json=meeting("alex@contoso.example"))).json()
    resp = await client.delete(f"{EVENTS}/{created['id']}", headers=APP)
    assert resp.status == 204
    assert events_of(tenant, "u-alex")[0]["isCancelled"] is True
    resp = await client.get(f"{EVENTS}/{created['id']}", headers=APP)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "ErrorItemNotFound"


async def test_list_includes_series_master_and_get_renders_prefer_zone(
    client: Client, tenant: DevTenant
) -> None:
    series = {
        **meeting(),
        "recurrence": {
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": "2026-12-01", "numberOfOccurrences": 3},
        },
    }
    created = await (await client.post(EVENTS, headers=APP, json=series)).json()
    assert created["type"] == "seriesMaster"
    listed = await (await client.get(EVENTS, headers=APP)).json()
    assert [e["id"] for e in listed["value"]] == [created["id"]]
    prefer = {**APP, "Prefer": 'outlook.timezone="Eastern Standard Time"'}
    got = await (await client.get(f"{EVENTS}/{created['id']}", headers=prefer)).json()
    assert got["start"] == {"dateTime": "2026-12-01T05:00:00.0000000", "timeZone": "Eastern Standard Time"}
    view = await (
        await client.get(
            "/v1.0/users/u-megan/calendarView?startDateTime=2026-12-01T00:00:00Z"
            "&endDateTime=2026-12-05T00:00:00Z",
            headers=APP,
        )
    ).json()
    assert len(view["value"]) == 3


async def test_write_needs_readwrite_and_delegated_write_share(client: Client) -> None:
    resp = await client.post(EVENTS, headers=headers(roles=["Calendars.Read"]), json=meeting())
    assert resp.status == 403
    alex = headers(scp="Calendars.ReadWrite", oid="u-alex")
    resp = await client.post(EVENTS, headers=alex, json=meeting())  # alex only has "read"
    assert resp.status == 403
    resp = await client.post("/v1.0/me/events", headers=alex, json=meeting())
    assert resp.status == 201


async def test_invalid_event_body_is_400(client: Client) -> None:
    resp = await client.post(EVENTS, headers=APP, json={"subject": "no times"})
    assert resp.status == 400
    body = meeting()
    body["end"] = {"dateTime": "2026-12-01T09:00:00", "timeZone": "UTC"}
    assert (await client.post(EVENTS, headers=APP, json=body)).status == 400


async def test_creates_are_counted(client: Client, tenant: DevTenant) -> None:
    await client.post(EVENTS, headers=APP, json=meeting())
    await client.get(EVENTS, headers=APP)
    assert tenant.counters["graph.events.create"] == 1
    assert tenant.counters["graph.events.list"] == 1
    assert tenant.counters["graph"] == 2
