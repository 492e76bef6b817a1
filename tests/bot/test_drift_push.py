"""The bot side of the drift watcher (issue 19): the public Graph receiver, the drift feed poller
(with a fake feed and a recording adapter) and a tap on the repair card (with a fake Calendar
Service)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botbuilder.schema import ResourceResponse

from calendar_backend import errors
from calendar_backend.contract import InterviewOut, OutboundPolicy
from dialogs.sql_storage import SqlStorage
from dialogs.watch_feed import DriftPoller, StorageLedger
from dialogs.watch_push import same_key, watch_feed_key
from dialogs.watch_receiver import ReceiverConfig, mount_watch_receiver
from tests.bot.conftest import NOW, TOKEN, FakeCalendarService, make_adapter, make_bot
from tests.bot.test_schedule_dialog import actions_of, invoke, invoke_body, say

POLICY = OutboundPolicy(("smba.trafficmanager.net",), frozenset(), False)
REF = {
    "serviceUrl": "https://smba.trafficmanager.net/emea/",
    "channelId": "msteams",
    "conversation": {"id": "a:conv1"},
    "bot": {"id": "28:bot"},
    "user": {"id": "29:alex"},
}
START = NOW + timedelta(days=20, hours=7)  # Tue 15 Dec 2026, 16:00 UTC
REPAIRS = [
    {
        "id": "replace-1",
        "kind": "replace",
        "out": "adelev@contoso.example",
        "in": "megan@contoso.example",
        "in_name": "Megan Bowen",
    },
    {"id": "time-1", "kind": "move", "start": "2026-12-16T09:00:00Z", "end": "2026-12-16T10:00:00Z"},
]


def feed_item(drift_id: str = "d1", ref: dict[str, Any] | None = REF) -> dict[str, Any]:
    return {
        "id": drift_id,
        "tenant_id": "t1",
        "kind": "declined",
        "who": "Adele Vance",
        "title": "System design",
        "start": START.isoformat().replace("+00:00", "Z"),
        "time_zone": "UTC",
        "repairs": REPAIRS,
        "conversation_ref": ref,
    }


# ---- the public receiver ---------------------------------------------------------------------------
async def _upstream(delay: float = 0.0) -> tuple[web.Application, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    async def notifications(request: web.Request) -> web.Response:
        seen.append(
            {
                "query": request.rel_url.raw_query_string,
                "body": await request.read(),
                "type": request.headers.get("Content-Type"),
            }
        )
        await asyncio.sleep(delay)
        if "validationToken" in request.query:
            return web.Response(text=request.query["validationToken"], content_type="text/plain")
        return web.json_response({"queued": 1, "dropped": 0}, status=202)

    app = web.Application()
    app.router.add_post("/v1/watch/notifications", notifications)
    return app, seen


async def _receiver(url: str, timeout_s: float = 2.5) -> tuple[TestClient, list[int]]:
    pokes: list[int] = []
    app = web.Application()
    mount_watch_receiver(
        app, ReceiverConfig(url, timeout_s=timeout_s, ip_burst=2, ip_rate_per_min=1), lambda: pokes.append(1)
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    return client, pokes


async def test_receiver_forwards_unchanged_and_relays() -> None:
    upstream, seen = await _upstream()
    async with TestServer(upstream) as server:
        client, pokes = await _receiver(str(server.make_url("/")))
        try:
            resp = await client.post("/api/graph/notifications?validationToken=abc%20def")
            assert resp.status == 200
            assert await resp.text() == "abc def"
            assert resp.content_type == "text/plain"
            assert pokes == []
            body = b'{"value": [{"subscriptionId": "s", "clientState": "c"}]}'
            resp = await client.post(
                "/api/graph/notifications",
                data=body,
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
            assert resp.status == 202
            assert await resp.json() == {"queued": 1, "dropped": 0}
            assert seen[-1] == {"query": "", "body": body, "type": "application/json; charset=utf-8"}
            assert seen[0]["query"] == "validationToken=abc%20def"
            assert pokes == [1]  # the poller looks at once
        finally:
            await client.close()


async def test_receiver_answers_503_when_the_service_is_slow_and_limits_rate() -> None:
    upstream, _seen = await _upstream(delay=1.0)
    async with TestServer(upstream) as server:
        client, pokes = await _receiver(str(server.make_url("/")), timeout_s=0.2)
        try:
            resp = await client.post("/api/graph/notifications", data=b"{}")
            assert resp.status == 503  # never a 202 of its own: nothing was queued, Graph retries
            assert pokes == []
            big = await client.post("/api/graph/notifications", data=b"x" * (64 * 1024 + 1))
            assert big.status == 413
            limited = await client.post("/api/graph/notifications", data=b"{}")
            assert limited.status == 429
            assert limited.headers["Retry-After"]
        finally:
            await client.close()


async def test_receiver_unreachable_service_is_503() -> None:
    client, _ = await _receiver("http://127.0.0.1:9")
    try:
        resp = await client.post("/api/graph/notifications", data=b"{}")
        assert resp.status == 503
    finally:
        await client.close()


# ---- the feed poller -------------------------------------------------------------------------------
@dataclass
class FakeFeed:
    items: list[dict[str, Any]]
    acked: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    ack_fails: bool = False
    pollers: list[str | None] = field(default_factory=list)

    async def watch_feed(self, feed_key: str, poller: str | None = None) -> list[dict[str, Any]]:
        self.keys.append(feed_key)
        self.pollers.append(poller)
        return [i for i in self.items if i["id"] not in self.acked]

    async def watch_feed_ack(self, feed_key: str, ids: list[str]) -> int:
        self.keys.append(feed_key)
        if self.ack_fails:  # the bot dies (or the service is unreachable) after the post, before the ack
            raise errors.GraphUnavailableError("The calendar service is not reachable.")
        self.acked.extend(ids)
        return len(ids)


@dataclass
class RecordingAdapter:
    sent: list[tuple[str, Any]] = field(default_factory=list)
    fail: bool = False

    async def continue_conversation(self, reference: Any, callback: Any, bot_id: str) -> None:
        if self.fail:
            raise ConnectionError("teams down")

        class Context:
            async def send_activity(_self, activity: Any) -> ResourceResponse:  # noqa: N805
                self.sent.append((reference.service_url, activity))
                return ResourceResponse(id=f"act-{len(self.sent)}")

        await callback(Context())


async def test_poller_posts_the_card_once_and_acks() -> None:
    feed, adapter = FakeFeed([feed_item()]), RecordingAdapter()
    poller = DriftPoller(feed, "k" * 32, adapter, "bot-id", POLICY)
    assert await poller.round() == 1
    assert await poller.round() == 0  # acknowledged: not posted again
    assert feed.acked == ["d1"]
    assert set(feed.keys) == {"k" * 32}
    [(url, activity)] = adapter.sent
    assert url == REF["serviceUrl"]
    assert not activity.text  # the card says it once; the preview is the summary
    assert activity.summary == "Adele Vance declined System design (Tue 15 Dec, 16:00 UTC)"
    card = activity.attachments[0].content
    titles = [a["title"] for a in actions_of(card)]
    assert titles == ["Replace with Megan Bowen at the same time", "Move to Wed 16 Dec, 09:00 UTC"]
    assert "contoso.example" not in str(card)  # display names only, never an address


async def test_poller_refuses_a_foreign_service_url_and_retries_a_failed_post() -> None:
    evil = {**REF, "serviceUrl": "https://evil.example/"}
    feed, adapter = FakeFeed([feed_item("d1", evil), feed_item("d2", None)]), RecordingAdapter()
    poller = DriftPoller(feed, "k" * 32, adapter, "bot-id", POLICY)
    assert await poller.round() == 0
    assert adapter.sent == []
    assert feed.acked == ["d1", "d2"]  # never deliverable: not asked again
    down = RecordingAdapter(fail=True)
    feed2 = FakeFeed([feed_item("d3")])
    poller2 = DriftPoller(feed2, "k" * 32, down, "bot-id", POLICY)
    assert await poller2.round() == 0
    assert feed2.acked == []  # Teams unreachable: the next round tries again
    down.fail = False
    assert await poller2.round() == 1
    assert feed2.acked == ["d3"]


async def test_poller_run_is_poked_at_once() -> None:
    feed, adapter = FakeFeed([]), RecordingAdapter()
    poller = DriftPoller(feed, "k" * 32, adapter, "bot-id", POLICY, interval_s=60)
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.sleep(0.05)
        feed.items.append(feed_item())
        poller.poke()
        for _ in range(50):
            if adapter.sent:
                break
            await asyncio.sleep(0.02)
        assert len(adapter.sent) == 1
    finally:
        task.cancel()


def test_feed_key_settings() -> None:
    assert watch_feed_key({}, "prod") == ""
    assert watch_feed_key({"OPENSLOT_WATCH_FEED_KEY": "k" * 32}, "prod") == "k" * 32
    with pytest.raises(ValueError, match="32"):
        watch_feed_key({"OPENSLOT_WATCH_FEED_KEY": "short"}, "dev")
    with pytest.raises(ValueError, match="OPENSLOT_WATCH_FEED_KEY"):
        watch_feed_key(
            {"OPENSLOT_WATCH_NOTIFICATION_URL": "https://bot.example/api/graph/notifications"}, "prod"
        )
    assert same_key("k" * 32, "k" * 32)
    assert not same_key("k" * 31 + "x", "k" * 32)
    assert not same_key("", "")


# ---- a tap on the card ------------------------------------------------------------------------------
@dataclass
class DriftCalendar(FakeCalendarService):
    drift: list[dict[str, Any]] = field(default_factory=list)
    applied: list[tuple[str, str]] = field(default_factory=list)
    taken: bool = False

    async def list_drift(self, token: str) -> list[dict[str, Any]]:
        self._check(token, "list_drift")
        return [d for d in self.drift if d["status"] == "open"]

    async def apply_repair(self, token: str, drift_id: str, repair: str) -> dict[str, Any]:
        self._check(token, "apply_repair")
        if self.taken:
            self.taken = False
            self.drift[0]["repairs"] = [REPAIRS[0]]
            raise errors.SlotTakenError()
        self.applied.append((drift_id, repair))
        self.drift[0]["status"] = "applied"
        return {"id": drift_id, "status": "applied", "repair": repair, "interview_id": "i1"}


def _drift_calendar() -> DriftCalendar:
    cal = DriftCalendar()
    cal.interviews["i1"] = InterviewOut(
        "i1",
        "booked",
        START,
        START + timedelta(hours=1),
        "System design",
        ("adelev@contoso.example",),
        "Dana",
        None,
        "e1",
    )
    cal.drift = [
        {
            "id": "d1",
            "interview_id": "i1",
            "kind": "declined",
            "who": "adelev@contoso.example",
            "source": "notification",
            "detected_at": "2026-11-25T09:00:00Z",
            "status": "open",
            "repairs": [dict(r) for r in REPAIRS],
        }
    ]
    return cal


def _tap(repair: str) -> dict[str, Any]:
    return {"verb": "apply_repair", "flow": "drift-d1", "drift_id": "d1", "repair": repair}


async def test_tap_applies_the_repair_once(storage: SqlStorage) -> None:
    cal = _drift_calendar()
    adapter = make_adapter(make_bot(storage, cal))
    body = invoke_body(await say(adapter, invoke(_tap("replace-1"))))
    card = str(body["value"])
    assert "Applied: Replace with Megan Bowen at the same time." in card
    assert "adelev@contoso.example" not in card
    assert cal.applied == [("d1", "replace-1")]
    again = str(invoke_body(await say(adapter, invoke(_tap("replace-1"))))["value"])
    assert "already handled" in again
    assert cal.applied == [("d1", "replace-1")]


async def test_tap_on_a_taken_time_refreshes_the_card(storage: SqlStorage) -> None:
    cal = _drift_calendar()
    cal.taken = True
    adapter = make_adapter(make_bot(storage, cal))
    body = invoke_body(await say(adapter, invoke(_tap("time-1"))))
    card = body["value"]
    assert "can no longer be applied" in str(card)
    assert [a["data"]["repair"] for a in actions_of(card)] == ["replace-1"]
    assert cal.applied == []


async def test_tap_without_a_token_asks_to_sign_in(storage: SqlStorage) -> None:
    cal = _drift_calendar()
    adapter = make_adapter(make_bot(storage, cal), signed_in=False)
    body = invoke_body(await say(adapter, invoke(_tap("replace-1"))))
    assert "sign in" in str(body["value"]).lower()
    assert cal.applied == []
    assert TOKEN  # the fake checks the token on every call


async def test_a_crash_between_post_and_ack_never_shows_a_second_card(storage: SqlStorage) -> None:
    """Before the ledger: the restarted bot got the unacked item again and posted a second card."""
    feed, adapter = FakeFeed([feed_item()], ack_fails=True), RecordingAdapter()
    first = DriftPoller(feed, "k" * 32, adapter, "bot-id", POLICY, ledger=StorageLedger(storage))
    with pytest.raises(errors.GraphUnavailableError):
        await first.round()  # posted, then the ack failed (or the process died there)
    assert len(adapter.sent) == 1
    assert feed.acked == []
    feed.ack_fails = False
    restarted = DriftPoller(  # another process (a restart, or a second replica) on the same bot storage
        feed, "k" * 32, adapter, "bot-id", POLICY, ledger=StorageLedger(SqlStorage(storage.engine))
    )
    assert await restarted.round() == 0
    assert len(adapter.sent) == 1  # the card once
    assert feed.acked == ["d1"]  # acked without a second post
    assert await StorageLedger(storage).posted("d1") is None  # forgotten once acked: no growth


async def test_a_lost_ack_is_retried_without_a_second_post() -> None:
    feed, adapter = FakeFeed([feed_item()], ack_fails=True), RecordingAdapter()
    poller = DriftPoller(feed, "k" * 32, adapter, "bot-id", POLICY)
    for _ in range(3):
        with pytest.raises(errors.GraphUnavailableError):
            await poller.round()
    feed.ack_fails = False
    assert await poller.round() == 0
    assert len(adapter.sent) == 1
    assert feed.acked == ["d1"]
    assert len(set(feed.pollers)) == 1  # one stable poller id (the lease's holder)
    assert feed.pollers[0]


async def test_a_loop_booked_from_the_bot_sends_its_conversation_reference(storage: SqlStorage) -> None:
    """Issue 19 (a): the loop's booking carries the chat's reference, as the single booking does."""
    from tests.bot.loop_fakes import FakeLoopCalendar
    from tests.bot.test_loop_dialog import card_of, heading, press, to_options

    loops = FakeLoopCalendar()
    chat = make_adapter(make_bot(storage, loops))
    confirm = card_of(await press(chat, await to_options(chat), "Pick option 1"))
    booked = card_of(await press(chat, confirm, "Book the loop"))
    assert heading(booked) == "Interview loop booked"
    [booking] = loops.loop_bookings
    ref = booking["conversation_ref"]
    assert isinstance(ref, dict)
    assert ref["conversation"]["id"] == "a:conv1"  # the chat it was booked from (make_adapter's)
    assert ref["serviceUrl"] == "https://smba.trafficmanager.net/x/"
    assert ref["user"]["id"] == "29:alex"


async def test_the_storage_ledger_records_once_and_forgets(storage: SqlStorage) -> None:
    ledger = StorageLedger(storage)
    assert await ledger.posted("d9") is None
    await ledger.remember("d9", "act-1")
    await ledger.remember("d9", "act-2")  # a second record of the same drift keeps the first
    assert await ledger.posted("d9") == "act-1"
    await ledger.forget(["d9", "never"])
    assert await ledger.posted("d9") is None
