"""devtenant Graph change notifications: a real devtenant HTTPS server and a real HTTPS receiver.

The receiver runs on its own loop thread with a certificate from devtenant's CA (which devtenant
trusts when it calls receivers). It records validation handshakes and notifications and can be
told to fail, answer slowly or echo a wrong validation token.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web

from devtenant.app import bind_socket, start_site
from devtenant.entra import GRAPH_RESOURCE
from devtenant.tenant import tenant_from_dict
from devtenant.tls import server_ssl_context
from tests.devtenant.fixtures import DevTenantHandle, start_devtenant
from tests.devtenant.graph_harness import person

JsonDict = dict[str, Any]
TID = "33333333-3333-3333-3333-333333333333"
APP_ID = "aaaaaaaa-0000-0000-0000-00000000000a"
OTHER_APP = "bbbbbbbb-0000-0000-0000-00000000000b"
MEGAN, ALEX, ADELE = "u-megan", "u-alex", "u-adele"
SECRET_SUBJECT = "Top secret reorg interview"


def tenant_doc() -> JsonDict:
    return {
        "schemaVersion": 1,
        "tenant": {"id": TID, "displayName": "Contoso"},
        "users": [person(MEGAN, "megan"), person(ALEX, "alex"), person(ADELE, "adele", role="none")],
    }


# ---- the receiver ---------------------------------------------------------------------------------


@dataclass
class Receiver:
    """An HTTPS webhook receiver on 127.0.0.1 (its own loop thread)."""

    base_url: str = ""
    handshakes: list[tuple[str, str]] = field(default_factory=list)  # (path, token)
    notes: list[tuple[str, JsonDict]] = field(default_factory=list)  # (path, one value item)
    fail_next: int = 0  # answer 500 to the next N notification posts
    sleep_next: int = 0  # answer the next N notification posts after `sleep_s`
    sleep_s: float = 0.0
    always_fail: bool = False  # answer 500 to every change notification (/notify)
    handshake_mode: str = "echo"  # echo | wrong | json | slow
    attempts: int = 0

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def items(self, path: str = "/notify") -> list[JsonDict]:
        return [item for p, item in self.notes if p == path]

    async def handle(self, request: web.Request) -> web.Response:
        token = request.query.get("validationToken")
        if token is not None:
            self.handshakes.append((request.path, token))
            if self.handshake_mode == "wrong":
                return web.Response(text=token + "x", content_type="text/plain")
            if self.handshake_mode == "json":
                return web.json_response({"token": token})
            if self.handshake_mode == "slow":
                await asyncio.sleep(1.0)
            return web.Response(text=token, content_type="text/plain")
        self.attempts += 1
        if self.sleep_next > 0:
            self.sleep_next -= 1
            await asyncio.sleep(self.sleep_s)
        if request.path == "/notify" and (self.always_fail or self.fail_next > 0):
            self.fail_next = max(self.fail_next - 1, 0)
            return web.Response(status=500)
        for item in (await request.json())["value"]:
            self.notes.append((request.path, item))
        return web.Response(status=202)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("subs")


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[DevTenantHandle]:
    handle, stop = start_devtenant(tenant_from_dict(tenant_doc()), data_dir)
    try:
        yield handle
    finally:
        stop()


@pytest.fixture
def dt(server: DevTenantHandle) -> Iterator[DevTenantHandle]:
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def receiver(data_dir: Path) -> Iterator[Receiver]:
    yield from _serve_receiver(data_dir, tls=True)


@pytest.fixture
def http_receiver(data_dir: Path) -> Iterator[Receiver]:
    yield from _serve_receiver(data_dir, tls=False)


def _serve_receiver(data_dir: Path, *, tls: bool) -> Iterator[Receiver]:
    recv = Receiver()
    loop, ready = asyncio.new_event_loop(), threading.Event()
    sock = bind_socket("127.0.0.1", 0)
    recv.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{sock.getsockname()[1]}"
    app = web.Application()
    app.router.add_post("/{tail:.*}", recv.handle)
    holder: dict[str, web.AppRunner] = {}

    async def start() -> None:
        if tls:
            holder["runner"] = await start_site(app, sock, server_ssl_context(data_dir))
        else:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            holder["runner"] = runner
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield recv
    asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


# ---- helpers -------------------------------------------------------------------------------------


def app_headers(dt: DevTenantHandle, *roles: str, app_id: str = APP_ID) -> dict[str, str]:
    token = dt.issuer.access_token(
        client_id=app_id, audience=GRAPH_RESOURCE, user=None, roles=list(roles or ("Calendars.ReadWrite",))
    )
    return {"Authorization": f"Bearer {token}"}


def user_headers(dt: DevTenantHandle, upn: str, scp: str = "Calendars.ReadWrite") -> dict[str, str]:
    user = dt.tenant.find_user(upn)
    token = dt.issuer.access_token(client_id=APP_ID, audience=GRAPH_RESOURCE, user=user, scp=scp.split())
    return {"Authorization": f"Bearer {token}"}


def graph(
    dt: DevTenantHandle, method: str, path: str, headers: dict[str, str], body: Any = None
) -> requests.Response:
    return dt.session().request(method, f"{dt.base_url}/v1.0/{path}", headers=headers, json=body, timeout=30)


def control(dt: DevTenantHandle, method: str, path: str, body: Any = None) -> Any:
    response = dt.session().request(method, f"{dt.base_url}/_devtenant/{path}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def now_of(dt: DevTenantHandle) -> datetime:
    return dt.tenant.clock()


def iso(dt_: datetime) -> str:
    return dt_.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def subscribe(
    dt: DevTenantHandle,
    receiver: Receiver,
    resource: str = f"/users/{MEGAN}/events",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> requests.Response:
    body = {
        "changeType": "created,updated,deleted",
        "resource": resource,
        "notificationUrl": receiver.url("/notify"),
        "lifecycleNotificationUrl": receiver.url("/lifecycle"),
        "clientState": "s3cret-state",
        "expirationDateTime": iso(now_of(dt) + timedelta(days=2)),
        **extra,
    }
    return graph(dt, "POST", "subscriptions", headers or app_headers(dt, "Calendars.Read"), body)


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def meeting(*attendees: str, start: str = "2026-12-15T16:00:00") -> JsonDict:
    begin = datetime.fromisoformat(start)
    return {
        "subject": SECRET_SUBJECT,
        "body": {"contentType": "text", "content": "secret body"},
        "start": {"dateTime": start, "timeZone": "UTC"},
        "end": {"dateTime": (begin + timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": a}, "type": "required"} for a in attendees],
    }


# ---- subscriptions -------------------------------------------------------------------------------


def test_create_validates_both_urls_then_notifies_created_updated_deleted_without_content(
    dt: DevTenantHandle, receiver: Receiver
) -> None:
    answer = subscribe(dt, receiver)
    assert answer.status_code == 201, answer.text
    sub = answer.json()
    assert sub["changeType"] == "created,updated,deleted"
    assert sub["clientState"] == "s3cret-state"
    assert sub["applicationId"] == APP_ID
    assert sub["resource"] == f"/users/{MEGAN}/events"
    assert sub["includeResourceData"] is False
    assert [p for p, _ in receiver.handshakes] == ["/notify", "/lifecycle"]

    writer = app_headers(dt)
    created = graph(dt, "POST", f"users/{MEGAN}/events", writer, meeting()).json()
    wait_until(lambda: len(receiver.items()) == 1)
    note = receiver.items()[0]
    assert note["changeType"] == "created"
    assert note["subscriptionId"] == sub["id"]
    assert note["clientState"] == "s3cret-state"
    assert note["tenantId"] == TID
    assert note["resource"] == f"Users/{MEGAN}/Events/{created['id']}"
    assert note["subscriptionExpirationDateTime"] == sub["expirationDateTime"]
    assert set(note["resourceData"]) == {"@odata.type", "@odata.id", "@odata.etag", "id"}
    assert note["resourceData"]["id"] == created["id"]

    graph(
        dt, "PATCH", f"users/{MEGAN}/events/{created['id']}", writer, {"location": {"displayName": "Room 7"}}
    )
    wait_until(lambda: len(receiver.items()) == 2)
    graph(dt, "DELETE", f"users/{MEGAN}/events/{created['id']}", writer)
    wait_until(lambda: len(receiver.items()) == 3)
    assert [n["changeType"] for n in receiver.items()] == ["created", "updated", "deleted"]
    assert SECRET_SUBJECT not in json.dumps(receiver.notes)
    assert "secret body" not in json.dumps(receiver.notes)


def test_change_types_filter_what_is_sent(dt: DevTenantHandle, receiver: Receiver) -> None:
    assert subscribe(dt, receiver, changeType="deleted").status_code == 201
    writer = app_headers(dt)
    created = graph(dt, "POST", f"users/{MEGAN}/events", writer, meeting()).json()
    graph(dt, "PATCH", f"users/{MEGAN}/events/{created['id']}", writer, {"subject": "x"})
    graph(dt, "DELETE", f"users/{MEGAN}/events/{created['id']}", writer)
    wait_until(lambda: len(receiver.items()) == 1)
    time.sleep(0.3)
    assert [n["changeType"] for n in receiver.items()] == ["deleted"]


@pytest.mark.parametrize("mode", ["wrong", "json"])
def test_a_bad_validation_answer_refuses_the_subscription(
    dt: DevTenantHandle, receiver: Receiver, mode: str
) -> None:
    receiver.handshake_mode = mode
    answer = subscribe(dt, receiver)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "ValidationError"
    assert control(dt, "GET", "subscriptions")["value"] == []


def test_a_slow_validation_answer_or_a_dead_url_refuses_the_subscription(
    dt: DevTenantHandle, receiver: Receiver
) -> None:
    control(dt, "PUT", "subscriptions/delivery", {"validation_timeout_s": 0.3})
    receiver.handshake_mode = "slow"
    answer = subscribe(dt, receiver)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "ValidationError"
    dead = subscribe(dt, receiver, notificationUrl="https://127.0.0.1:9/notify")
    assert dead.status_code == 400
    assert dead.json()["error"]["code"] == "ValidationError"


def test_notification_url_must_be_https_and_client_state_short(
    dt: DevTenantHandle, receiver: Receiver
) -> None:
    plain = subscribe(dt, receiver, notificationUrl=receiver.url("/notify").replace("https:", "http:"))
    assert plain.status_code == 400
    assert subscribe(dt, receiver, clientState="x" * 129).status_code == 400
    assert subscribe(dt, receiver, changeType="created,moved").status_code == 400
    assert subscribe(dt, receiver, resource=f"/users/{MEGAN}/messages").status_code == 400
    assert receiver.handshakes == []


def test_an_http_receiver_only_when_allowed(dt: DevTenantHandle, http_receiver: Receiver) -> None:
    assert subscribe(dt, http_receiver).status_code == 400
    assert http_receiver.handshakes == []
    control(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    assert subscribe(dt, http_receiver).status_code == 201
    graph(dt, "POST", f"users/{MEGAN}/events", app_headers(dt), meeting())
    wait_until(lambda: len(http_receiver.items()) == 1)


def test_cli_options_for_receivers() -> None:
    from devtenant.__main__ import parse_args

    args = parse_args(
        [
            "--tenant",
            "t.json",
            "--notification-ca",
            "a.pem",
            "--notification-ca",
            "b.pem",
            "--allow-http-notifications",
        ]
    )
    assert args.notification_ca == [Path("a.pem"), Path("b.pem")]
    assert args.allow_http_notifications is True
    assert parse_args(["--tenant", "t.json"]).allow_http_notifications is False


def test_expiry_is_limited_to_10080_minutes_and_renewed_by_patch(
    dt: DevTenantHandle, receiver: Receiver
) -> None:
    start = datetime(2026, 12, 14, 9, 0, tzinfo=UTC)
    control(dt, "PUT", "clock", {"now": start.isoformat(), "freeze": True})
    too_far = subscribe(dt, receiver, expirationDateTime=iso(start + timedelta(minutes=10081)))
    assert too_far.status_code == 400
    assert too_far.json()["error"] == {
        **too_far.json()["error"],
        "code": "ExtensionError",
        "message": "Subscription expiration can only be 10080 minutes in the future.",
    }
    past = subscribe(dt, receiver, expirationDateTime=iso(start - timedelta(minutes=1)))
    assert past.status_code == 400
    ok = subscribe(dt, receiver, expirationDateTime=iso(start + timedelta(minutes=10080)))
    assert ok.status_code == 201, ok.text
    sub_id = ok.json()["id"]

    # six days later: renew for another full week
    control(dt, "PUT", "clock", {"advance_s": 6 * 86400})
    reader = app_headers(dt, "Calendars.Read")
    renewed_to = now_of(dt) + timedelta(minutes=10080)
    patch = graph(dt, "PATCH", f"subscriptions/{sub_id}", reader, {"expirationDateTime": iso(renewed_to)})
    assert patch.status_code == 200, patch.text
    assert patch.json()["expirationDateTime"] == renewed_to.strftime("%Y-%m-%dT%H:%M:%SZ")
    beyond = graph(
        dt,
        "PATCH",
        f"subscriptions/{sub_id}",
        reader,
        {"expirationDateTime": iso(now_of(dt) + timedelta(minutes=10081))},
    )
    assert beyond.status_code == 400
    assert beyond.json()["error"]["code"] == "ExtensionError"
    assert (
        graph(
            dt, "PATCH", f"subscriptions/{sub_id}", reader, {"notificationUrl": receiver.url("/x")}
        ).status_code
        == 400
    )

    # past the renewed expiry the subscription is gone and nothing is delivered any more
    control(dt, "PUT", "clock", {"advance_s": 7 * 86400 + 1})
    wait_until(
        lambda: (
            graph(dt, "GET", f"subscriptions/{sub_id}", app_headers(dt, "Calendars.Read")).status_code == 404
        )
    )
    graph(dt, "POST", f"users/{MEGAN}/events", app_headers(dt), meeting())
    time.sleep(0.3)
    assert receiver.items() == []


def test_renewing_every_six_days_keeps_a_subscription_alive_for_30_days(
    dt: DevTenantHandle, receiver: Receiver
) -> None:
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    control(dt, "PUT", "clock", {"now": start.isoformat(), "freeze": True})
    sub_id = subscribe(dt, receiver, expirationDateTime=iso(start + timedelta(minutes=10080))).json()["id"]
    for day in range(6, 31, 6):
        control(dt, "PUT", "clock", {"now": (start + timedelta(days=day)).isoformat(), "freeze": True})
        renewed = graph(
            dt,
            "PATCH",
            f"subscriptions/{sub_id}",
            app_headers(dt, "Calendars.Read"),
            {"expirationDateTime": iso(now_of(dt) + timedelta(minutes=10080))},
        )
        assert renewed.status_code == 200, renewed.text
        graph(dt, "POST", f"users/{MEGAN}/events", app_headers(dt), meeting())
        expected = day // 6
        wait_until(lambda: len(receiver.items()) == expected)  # noqa: B023 - called at once
    assert receiver.items("/lifecycle") == []  # never close enough to expiry to be asked


def test_get_list_delete_and_visibility_per_app(dt: DevTenantHandle, receiver: Receiver) -> None:
    sub_id = subscribe(dt, receiver).json()["id"]
    reader = app_headers(dt, "Calendars.Read")
    assert graph(dt, "GET", f"subscriptions/{sub_id}", reader).json()["id"] == sub_id
    assert [s["id"] for s in graph(dt, "GET", "subscriptions", reader).json()["value"]] == [sub_id]
    other = app_headers(dt, "Calendars.Read", app_id=OTHER_APP)
    assert graph(dt, "GET", "subscriptions", other).json()["value"] == []
    assert graph(dt, "GET", f"subscriptions/{sub_id}", other).status_code == 404
    assert graph(dt, "DELETE", f"subscriptions/{sub_id}", other).status_code == 404
    assert graph(dt, "DELETE", f"subscriptions/{sub_id}", reader).status_code == 204
    assert graph(dt, "GET", f"subscriptions/{sub_id}", reader).status_code == 404
    graph(dt, "POST", f"users/{MEGAN}/events", app_headers(dt), meeting())
    time.sleep(0.3)
    assert receiver.items() == []


def test_permissions_app_only_and_delegated(dt: DevTenantHandle, receiver: Receiver) -> None:
    no_calendar = subscribe(dt, receiver, headers=app_headers(dt, "User.Read.All"))
    assert no_calendar.status_code == 403
    assert no_calendar.json()["error"]["code"] == "ExtensionError"
    assert subscribe(dt, receiver, resource="/me/events").status_code == 400  # app-only /me

    alex = user_headers(dt, "alex@contoso.example", scp="Calendars.Read")
    mine = subscribe(dt, receiver, resource="/me/events", headers=alex)
    assert mine.status_code == 201, mine.text
    # megan shares "read" with the organization: alex may watch her calendar
    assert subscribe(dt, receiver, headers=alex).status_code == 201
    # adele shares nothing ("none"): alex may not
    denied = subscribe(dt, receiver, resource=f"/users/{ADELE}/events", headers=alex)
    assert denied.status_code == 403
    assert (
        subscribe(dt, receiver, headers=user_headers(dt, "alex@contoso.example", scp="User.Read")).status_code
        == 403
    )
    # alex sees only his own subscriptions, not the ones megan made with the same app
    megan = user_headers(dt, "megan@contoso.example", scp="Calendars.Read")
    assert subscribe(dt, receiver, resource="/me/events", headers=megan).status_code == 201
    assert len(graph(dt, "GET", "subscriptions", alex).json()["value"]) == 2

    graph(dt, "POST", f"users/{ALEX}/events", app_headers(dt), meeting())
    wait_until(lambda: len(receiver.items()) == 1)
    assert receiver.items()[0]["subscriptionId"] == mine.json()["id"]


# ---- delivery: retries, slowness, drops, delays ------------------------------------------------


def test_a_failing_receiver_is_retried_with_backoff(dt: DevTenantHandle, receiver: Receiver) -> None:
    control(dt, "PUT", "subscriptions/delivery", {"retry_first_s": 0.2})
    subscribe(dt, receiver)
    receiver.fail_next = 2
    graph(dt, "POST", f"users/{MEGAN}/events", app_headers(dt), meeting())
    wait_until(lambda: len(receiver.items()) == 1)
    log = [d for d in control(dt, "GET", "subscriptions/deliveries")["value"] if d["kind"] == "change"]
    assert [(d["attempt"], d["status"]) for d in log] == [(1, "failed:500"), (2, "failed:500"), (3, "202")]
    times = [datetime.fromisoformat(d["at"].replace("Z", "+00:00")) for d in log]
    assert times[2] - times[1] >= timedelta(seconds=0.3)  # the second wait doubled


def test_retries_follow_the_tenant_clock_and_give_up_with_missed(
    dt: DevTenantHandle, receiver: Receiver
) -> None:
    control(dt, "PUT", "subscriptions/delivery", {"retry_first_s": 600})
    subscribe(dt, receiver)
    receiver.fail_next = 1
    graph(dt, "POST", f"users/{MEGAN}/events", app_headers(dt), meeting())
    wait_until(lambda: receiver.attempts == 1)
    time.sleep(0.3)
    assert receiver.items() == []  # the retry waits 10 tenant minutes...
    control(dt, "PUT", "clock", {"advance_s": 601})
    wait_until(lambda: len(receiver.items()) == 1)  # ...which the clock skips

    receiver.always_fail = True
    graph(dt, "POST", f"users/{MEGAN}/events", app_headers(dt), meeting())
    wait_until(lambda: receiver.attempts >= 3)
    control(dt, "PUT", "clock", {"advance_s": 4 * 3600 + 60})
    wait_until(lambda: len(receiver.items("/lifecycle")) == 1)
    missed = receiver.items("/lifecycle")[0]
    assert missed["lifecycleEvent"] == "missed"
    assert missed["clientState"] == "s3cret-state"
    assert any(d["status"] == "given-up" for d in control(dt, "GET", "subscriptions/deliveries")["value"])
    assert len(receiver.items()) == 1  # the given-up change never arrives


def test_a_receiver_slower_than_the_timeout_is_retried(dt: DevTenantHandle, receiver: Receiver) -> None:
    control(dt, "PUT", "subscriptions/delivery", {"response_timeout_s": 0.3, "retry_first_s": 0.1})
    subscribe(dt, receiver)
    receiver.sleep_next, receiver.sleep_s = 1, 0.8
    graph(dt, "POST", f"users/{MEGAN}/events", app_headers(dt), meeting())
    wait_until(lambda: len(receiver.items()) >= 1)
    statuses = [
        d["status"] for d in control(dt, "GET", "subscriptions/deliveries")["value"] if d["kind"] == "change"
    ]
    assert statuses[0] == "failed:timeout"
    assert statuses[-1] == "202"


def test_a_mostly_slow_receiver_gets_its_notifications_dropped(
    dt: DevTenantHandle, receiver: Receiver
) -> None:
    control(dt, "PUT", "subscriptions/delivery", {"slow_after_s": 0.05})
    subscribe(dt, receiver)
    receiver.sleep_next, receiver.sleep_s = 10, 0.1
    writer = app_headers(dt)
    for _ in range(10):
        graph(dt, "POST", f"users/{MEGAN}/events", writer, meeting())
    wait_until(lambda: len(receiver.items()) == 10)
    graph(dt, "POST", f"users/{MEGAN}/events", writer, meeting())
    wait_until(
        lambda: any(
            d["status"] == "dropped-slow" for d in control(dt, "GET", "subscriptions/deliveries")["value"]
        )
    )
    assert len(receiver.items()) == 10


def test_drop_next_and_delay_next(dt: DevTenantHandle, receiver: Receiver) -> None:
    subscribe(dt, receiver)
    writer = app_headers(dt)
    control(dt, "PUT", "subscriptions/delivery", {"drop_next": 1})
    first = graph(dt, "POST", f"users/{MEGAN}/events", writer, meeting()).json()
    second = graph(dt, "POST", f"users/{MEGAN}/events", writer, meeting()).json()
    wait_until(lambda: len(receiver.items()) == 1)
    assert receiver.items()[0]["resourceData"]["id"] == second["id"]
    dropped = [d for d in control(dt, "GET", "subscriptions/deliveries")["value"] if d["status"] == "dropped"]
    assert [d["resource"] for d in dropped] == [f"Users/{MEGAN}/Events/{first['id']}"]

    control(dt, "PUT", "subscriptions/delivery", {"delay_next": 1, "delay_next_s": 3600})
    third = graph(dt, "POST", f"users/{MEGAN}/events", writer, meeting()).json()
    time.sleep(0.4)
    assert len(receiver.items()) == 1
    control(dt, "PUT", "clock", {"advance_s": 3600})
    wait_until(lambda: len(receiver.items()) == 2)
    assert receiver.items()[1]["resourceData"]["id"] == third["id"]


def test_delay_rate_delays_a_seeded_share_until_the_clock_moves(
    dt: DevTenantHandle, receiver: Receiver
) -> None:
    subscribe(dt, receiver)
    control(dt, "PUT", "subscriptions/delivery", {"delay_rate": 0.5, "delay_s": 3600, "seed": 3})
    writer = app_headers(dt)
    for _ in range(20):
        graph(dt, "POST", f"users/{MEGAN}/events", writer, meeting())
    wait_until(lambda: len(receiver.items()) + control(dt, "GET", "subscriptions")["waiting"] == 20)
    at_once = len(receiver.items())
    assert 3 <= at_once <= 17
    control(dt, "PUT", "clock", {"advance_s": 3600})
    wait_until(lambda: len(receiver.items()) == 20)


def _dropped_with_seed(dt: DevTenantHandle, receiver: Receiver, seed: int) -> list[str]:
    control(dt, "PUT", "subscriptions/delivery", {"drop_rate": 0.3, "seed": seed})
    writer = app_headers(dt)
    ids = [graph(dt, "POST", f"users/{MEGAN}/events", writer, meeting()).json()["id"] for _ in range(30)]
    wait_until(
        lambda: (
            len(receiver.items())
            + sum(d["status"] == "dropped" for d in control(dt, "GET", "subscriptions/deliveries")["value"])
            == 30
        )
    )
    delivered = {n["resourceData"]["id"] for n in receiver.items()}
    return [str(ids.index(i)) for i in ids if i not in delivered]


def test_drop_rate_is_seeded(dt: DevTenantHandle, receiver: Receiver) -> None:
    subscribe(dt, receiver)
    first = _dropped_with_seed(dt, receiver, 7)
    assert 2 <= len(first) <= 20
    control(dt, "POST", "reset")
    receiver.notes.clear()
    subscribe(dt, receiver)
    assert _dropped_with_seed(dt, receiver, 7) == first


# ---- lifecycle ---------------------------------------------------------------------------------


def test_lifecycle_notifications(dt: DevTenantHandle, receiver: Receiver) -> None:
    start = datetime(2026, 12, 14, 9, 0, tzinfo=UTC)
    control(dt, "PUT", "clock", {"now": start.isoformat(), "freeze": True})
    sub = subscribe(dt, receiver, expirationDateTime=iso(start + timedelta(hours=3))).json()
    control(dt, "POST", f"subscriptions/{sub['id']}/lifecycle", {"lifecycleEvent": "reauthorizationRequired"})
    wait_until(lambda: len(receiver.items("/lifecycle")) == 1)
    note = receiver.items("/lifecycle")[0]
    assert note == {
        "subscriptionId": sub["id"],
        "lifecycleEvent": "reauthorizationRequired",
        "clientState": "s3cret-state",
        "tenantId": TID,
        "subscriptionExpirationDateTime": sub["expirationDateTime"],
    }
    # within an hour of expiry devtenant asks for reauthorization by itself, once
    control(dt, "PUT", "clock", {"advance_s": 2 * 3600 + 60})
    wait_until(lambda: len(receiver.items("/lifecycle")) == 2)
    time.sleep(0.3)
    assert len(receiver.items("/lifecycle")) == 2
    control(dt, "POST", f"subscriptions/{sub['id']}/lifecycle", {"lifecycleEvent": "subscriptionRemoved"})
    wait_until(lambda: len(receiver.items("/lifecycle")) == 3)
    assert receiver.items("/lifecycle")[2]["lifecycleEvent"] == "subscriptionRemoved"
    assert (
        graph(dt, "GET", f"subscriptions/{sub['id']}", app_headers(dt, "Calendars.Read")).status_code == 404
    )


def test_expire_control_removes_the_subscription(dt: DevTenantHandle, receiver: Receiver) -> None:
    sub = subscribe(dt, receiver).json()
    control(dt, "POST", f"subscriptions/{sub['id']}/expire")
    assert (
        graph(dt, "GET", f"subscriptions/{sub['id']}", app_headers(dt, "Calendars.Read")).status_code == 404
    )
    graph(dt, "POST", f"users/{MEGAN}/events", app_headers(dt), meeting())
    time.sleep(0.3)
    assert receiver.items() == []


# ---- changes as a given user ---------------------------------------------------------------------


def test_decline_without_response_changes_only_the_attendee_copy(
    dt: DevTenantHandle, receiver: Receiver
) -> None:
    on_megan = subscribe(dt, receiver).json()["id"]
    on_alex = subscribe(dt, receiver, resource=f"/users/{ALEX}/events").json()["id"]
    organizer_event = graph(
        dt, "POST", f"users/{MEGAN}/events", app_headers(dt), meeting("alex@contoso.example")
    ).json()
    wait_until(lambda: len(receiver.items()) == 2)  # megan: created, alex: created (copy)
    receiver.notes.clear()
    ical = organizer_event["iCalUId"]

    control(
        dt,
        "POST",
        f"mailboxes/alex@contoso.example/events/{ical}/respond",
        {"response": "declined", "sendResponse": False},
    )
    wait_until(lambda: len(receiver.items()) == 1)
    time.sleep(0.3)
    assert [n["subscriptionId"] for n in receiver.items()] == [on_alex]
    megan_view = graph(dt, "GET", f"users/{MEGAN}/events/{organizer_event['id']}", app_headers(dt)).json()
    assert megan_view["attendees"][0]["status"]["response"] == "none"

    receiver.notes.clear()
    control(
        dt,
        "POST",
        f"mailboxes/alex@contoso.example/events/{ical}/respond",
        {"response": "tentativelyAccepted"},
    )
    wait_until(lambda: len(receiver.items()) == 2)
    assert {n["subscriptionId"] for n in receiver.items()} == {on_megan, on_alex}
    megan_view = graph(dt, "GET", f"users/{MEGAN}/events/{organizer_event['id']}", app_headers(dt)).json()
    assert megan_view["attendees"][0]["status"]["response"] == "tentativelyAccepted"


def test_graph_decline_as_the_attendee_with_and_without_a_response(
    dt: DevTenantHandle, receiver: Receiver
) -> None:
    on_megan = subscribe(dt, receiver).json()["id"]
    on_alex = subscribe(dt, receiver, resource=f"/users/{ALEX}/events").json()["id"]
    writer = app_headers(dt)
    organizer_event = graph(
        dt, "POST", f"users/{MEGAN}/events", writer, meeting("alex@contoso.example")
    ).json()
    wait_until(lambda: len(receiver.items()) == 2)
    receiver.notes.clear()
    copy_id = dt.tenant.find_user(ALEX)["events"][0]["id"]  # type: ignore[index]
    own = graph(dt, "POST", f"users/{MEGAN}/events/{organizer_event['id']}/decline", writer, {})
    assert own.status_code == 400

    alex = user_headers(dt, "alex@contoso.example")
    silent = graph(
        dt, "POST", f"me/events/{copy_id}/decline", alex, {"comment": "busy", "sendResponse": False}
    )
    assert silent.status_code == 202
    wait_until(lambda: len(receiver.items()) == 1)
    time.sleep(0.3)
    assert [n["subscriptionId"] for n in receiver.items()] == [on_alex]
    mine = graph(dt, "GET", f"me/events/{copy_id}?$select=responseStatus", alex).json()
    assert mine["responseStatus"]["response"] == "declined"

    receiver.notes.clear()
    assert graph(dt, "POST", f"me/events/{copy_id}/accept", alex, {}).status_code == 202
    wait_until(lambda: len(receiver.items()) == 2)
    assert {n["subscriptionId"] for n in receiver.items()} == {on_megan, on_alex}
    seen = graph(dt, "GET", f"users/{MEGAN}/events/{organizer_event['id']}", writer).json()
    assert seen["attendees"][0]["status"]["response"] == "accepted"


def test_move_delete_and_conflict_controls_notify(dt: DevTenantHandle, receiver: Receiver) -> None:
    on_megan = subscribe(dt, receiver).json()["id"]
    on_alex = subscribe(dt, receiver, resource=f"/users/{ALEX}/events").json()["id"]
    event = graph(
        dt, "POST", f"users/{MEGAN}/events", app_headers(dt), meeting("alex@contoso.example")
    ).json()
    wait_until(lambda: len(receiver.items()) == 2)
    receiver.notes.clear()

    control(
        dt,
        "POST",
        f"mailboxes/megan@contoso.example/events/{event['id']}/move",
        {"start": "2026-12-16T10:00:00Z", "end": "2026-12-16T11:00:00Z"},
    )
    wait_until(lambda: len(receiver.items()) == 2)
    assert {(n["subscriptionId"], n["changeType"]) for n in receiver.items()} == {
        (on_megan, "updated"),
        (on_alex, "updated"),
    }
    alex_copy = dt.tenant.find_user(ALEX)["events"][0]  # type: ignore[index]
    assert alex_copy["start"]["dateTime"].startswith("2026-12-16T10:00")
    receiver.notes.clear()

    conflict = control(
        dt,
        "POST",
        "mailboxes/alex@contoso.example/events",
        {"start": "2026-12-16T10:30:00Z", "end": "2026-12-16T11:30:00Z", "subject": "Dentist"},
    )
    wait_until(lambda: len(receiver.items()) == 1)
    assert receiver.items()[0]["changeType"] == "created"
    assert receiver.items()[0]["resourceData"]["id"] == conflict["id"]
    receiver.notes.clear()

    control(dt, "POST", f"mailboxes/megan@contoso.example/events/{event['id']}/delete")
    wait_until(lambda: len(receiver.items()) == 2)
    assert {(n["subscriptionId"], n["changeType"]) for n in receiver.items()} == {
        (on_megan, "deleted"),
        (on_alex, "updated"),
    }  # alex's copy is cancelled


def test_event_reads_record_their_select(dt: DevTenantHandle) -> None:
    writer = app_headers(dt)
    event = graph(dt, "POST", f"users/{MEGAN}/events", writer, meeting()).json()
    control(dt, "DELETE", "graph/event-reads")
    graph(dt, "GET", f"users/{MEGAN}/events/{event['id']}?$select=start,end,isCancelled", writer)
    graph(dt, "GET", f"users/{MEGAN}/events", writer)
    graph(
        dt,
        "GET",
        f"users/{MEGAN}/calendarView?startDateTime=2026-12-14T00:00:00Z"
        "&endDateTime=2026-12-20T00:00:00Z&$select=responseStatus",
        writer,
    )
    reads = control(dt, "GET", "graph/event-reads")["value"]
    assert [(r["op"], r["select"], r["mailbox"], r["app"]) for r in reads] == [
        ("events.get", ["end", "isCancelled", "start"], MEGAN, APP_ID),
        ("events.list", None, MEGAN, APP_ID),
        ("calendarView", ["responseStatus"], MEGAN, APP_ID),
    ]
