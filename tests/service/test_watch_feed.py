"""The drift feed (issue 19, the push to the bot): an interview booked from Teams keeps its
conversation reference sealed; a decline becomes a feed item with the interview's title and time,
the repairs (names, no addresses) and the opened reference; ack marks it delivered; the shared key
is required (constant-time compare), a wrong or missing one is refused and audited."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from calendar_backend.app import SERVICE_KEY
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.security.gate_env import ADELE, MEGAN, audit_rows, find_body, interview_body
from tests.service.conftest import Stack, service_for
from tests.service.test_watch import acontrol, copy_of, watcher_of

KEY = "feed-key-" + "x" * 40
REF = {
    "serviceUrl": "https://smba.trafficmanager.net/emea/",
    "channelId": "msteams",
    "conversation": {"id": "a:conv-alex"},
    "bot": {"id": "28:bot"},
    "user": {"id": "29:alex"},
}


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path, watch_feed_key=KEY) as running:
        yield running


async def feed(stack: Stack, key: str | None = KEY, path: str = "/v1/watch/feed", body: Any = None) -> Any:
    headers = {"X-OpenSlot-Feed-Key": key} if key is not None else {}
    resp = await stack.client.post(path, json=body if body is not None else {}, headers=headers)
    return resp.status, await resp.json()


async def book_from_teams(stack: Stack, ref: dict[str, Any] | None = REF) -> tuple[int, Any]:
    status, doc = await stack.post("/v1/slots/find", find_body([MEGAN], limit=5), stack.token())
    assert status == 200, doc
    slot = doc["slots"][0]
    body = interview_body([MEGAN], f"f-{uuid.uuid4().hex[:12]}", slot["start"], slot["end"], optional=[ADELE])
    if ref is not None:
        body["conversation_ref"] = ref
    return await stack.post("/v1/interviews", body, stack.token())


async def test_a_decline_reaches_the_feed_once_with_the_sealed_reference(stack: Stack) -> None:
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    status, booked = await book_from_teams(stack)
    assert status == 201, booked
    async with stack.runtime.store.transaction() as tx:
        raw = (await tx.execute(text("SELECT conversation_ref FROM interviews"))).scalar_one()
    assert raw is not None
    assert b"trafficmanager" not in bytes(raw)  # sealed, never plain
    await watcher.ensure()
    copy = await copy_of(stack, booked["id"], MEGAN)
    await acontrol(
        dt,
        "POST",
        f"mailboxes/{MEGAN}/events/{copy}/respond",
        {"response": "declined", "sendResponse": False},
    )
    await watcher.drain()
    await watcher.sweep()
    status, doc = await feed(stack)
    assert status == 200, doc
    (item,) = doc["items"]
    assert item["kind"] == "declined"
    assert item["interview_id"] == booked["id"]
    assert item["title"] == booked["subject"]
    assert item["start"] == booked["start"]
    assert item["conversation_ref"] == REF
    assert item["who"] == "Megan Bowen"  # the directory's display name, never the address
    # the organizer's Outlook zone (app-only mailboxSettings, through the gate): the card's "your time"
    assert item["time_zone"] == "America/Los_Angeles"
    assert len(item["repairs"]) >= 2
    assert "@" not in str(item["repairs"])
    assert any(r.get("in_name") == "Adele Vance" for r in item["repairs"]), item["repairs"]
    status, acked = await feed(stack, path="/v1/watch/feed/ack", body={"ids": [item["id"]]})
    assert (status, acked) == (200, {"acked": 1})
    status, doc = await feed(stack)
    assert doc["items"] == []  # delivered: not again
    status, drift = await stack.get("/v1/watch/drift", stack.token())
    assert [d["id"] for d in drift["drift"]] == [item["id"]]  # still open for the manager's tap


async def test_the_feed_refuses_a_wrong_or_missing_key_and_audits(stack: Stack) -> None:
    before = len(await audit_rows(stack))
    for key in (None, "", "wrong-" + "x" * 40, KEY[:-1]):
        status, doc = await feed(stack, key)
        assert status == 401, doc
        status, doc = await feed(stack, key, "/v1/watch/feed/ack", {"ids": ["x"]})
        assert status == 401, doc
    rows = (await audit_rows(stack))[before:]
    assert len(rows) == 8
    assert {r[0] for r in rows} == {"watch.feed"}
    assert {r[2] for r in rows} == {"denied:key", "denied:no_key"}
    status, doc = await stack.post("/v1/watch/feed", {}, stack.token())  # a user token is not the key
    assert status == 401


async def test_a_foreign_conversation_reference_is_refused_before_booking(stack: Stack) -> None:
    updates = int(stack.devtenant.tenant.counters["graph.events.create"])
    status, doc = await book_from_teams(stack, {**REF, "serviceUrl": "https://evil.example/"})
    assert status == 400, doc
    assert doc["field"] == "conversation_ref"
    other = {**REF, "conversation": {"id": "a:c", "tenantId": "00000000-0000-0000-0000-00000000beef"}}
    status, doc = await book_from_teams(stack, other)
    assert status == 400, doc
    assert int(stack.devtenant.tenant.counters["graph.events.create"]) == updates
    status, booked = await book_from_teams(stack, None)  # booked outside Teams: no reference, fine
    assert status == 201, booked


def test_the_feed_key_is_required_in_prod_while_the_watcher_is_on() -> None:
    from calendar_backend.errors import ValidationError
    from calendar_backend.settings import _feed_key

    assert _feed_key("dev", {}) == ""
    assert _feed_key("prod", {}) == ""  # the watcher's notifications are off: no push, no key needed
    assert _feed_key("prod", {"OPENSLOT_WATCH_FEED_KEY": KEY}) == KEY
    with pytest.raises(ValidationError):
        _feed_key("prod", {"OPENSLOT_WATCH_NOTIFICATION_URL": "https://bot.example/api/graph/notifications"})
    with pytest.raises(ValidationError):
        _feed_key("dev", {"OPENSLOT_WATCH_FEED_KEY": "short"})


async def test_a_loop_booked_from_teams_keeps_the_reference_on_every_session(stack: Stack) -> None:
    from tests.service.test_loop_booking import body as loop_body
    from tests.service.test_loop_booking import loop_options

    panels = [[MEGAN], [ADELE]]
    start = (await loop_options(stack, panels))[0]
    status, doc = await stack.post(
        "/v1/loops", loop_body(panels, start, "feed-loop", conversation_ref=REF), stack.token()
    )
    assert status == 201, doc
    ids = {s["interview_id"] for s in doc["sessions"]}
    async with stack.runtime.store.transaction() as tx:
        rows = (await tx.execute(text("SELECT id, conversation_ref FROM interviews"))).all()
    sealed = {r[0] for r in rows if r[1] is not None}
    assert ids <= sealed
    status, doc = await stack.post(
        "/v1/loops",
        loop_body(
            panels, start, "feed-loop-2", conversation_ref={**REF, "serviceUrl": "https://evil.example/"}
        ),
        stack.token(),
    )
    assert status == 400, doc


async def test_the_feed_with_its_key_refuses_unknown_fields(stack: Stack) -> None:
    for path in ("/v1/watch/feed", "/v1/watch/feed/ack"):
        status, doc = await feed(stack, KEY, path, {"evil": 1, "ids": []})
        assert status == 400, doc
        assert doc["error"] == "invalid_request"
    status, doc = await feed(stack, KEY, "/v1/watch/feed/ack", {"ids": ["x" * 65]})
    assert status == 400, doc


async def declined_in_feed(stack: Stack) -> str:
    """Book from Teams, Megan declines: one undelivered drift row; its id."""
    dt = stack.devtenant
    await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    watcher = watcher_of(stack)
    status, booked = await book_from_teams(stack)
    assert status == 201, booked
    await watcher.ensure()
    copy = await copy_of(stack, booked["id"], MEGAN)
    await acontrol(
        dt,
        "POST",
        f"mailboxes/{MEGAN}/events/{copy}/respond",
        {"response": "declined", "sendResponse": False},
    )
    await watcher.drain()
    await watcher.sweep()
    async with stack.runtime.store.transaction() as tx:
        (drift_id,) = (await tx.execute(text("SELECT id FROM watch_drift"))).scalars().all()
    return str(drift_id)


async def test_two_pollers_never_get_the_same_item_at_once(stack: Stack) -> None:
    """Scale-out: two bot replicas poll the same feed. Before the lease both got the item (two cards)."""
    drift_id = await declined_in_feed(stack)
    first, second = await asyncio.gather(
        feed(stack, body={"poller": "bot-a"}), feed(stack, body={"poller": "bot-b"})
    )
    got = [i["id"] for status, doc in (first, second) for i in doc["items"]]
    assert got == [drift_id]  # exactly one of them holds it
    holder = "bot-a" if first[1]["items"] else "bot-b"
    other = "bot-b" if holder == "bot-a" else "bot-a"
    assert (await feed(stack, body={"poller": other}))[1]["items"] == []  # still leased
    again = (await feed(stack, body={"poller": holder}))[1]["items"]
    assert [i["id"] for i in again] == [drift_id]  # the holder's own retry gets it at once
    assert (await feed(stack))[1]["items"] == []  # an anonymous poller neither


async def test_a_lease_that_runs_out_passes_the_item_to_another_poller(stack: Stack) -> None:
    """The holder crashed before acking: after the lease another replica gets the item."""
    drift_feed = stack.client.app[SERVICE_KEY].drift_feed
    drift_feed.lease_s = 0.2
    drift_id = await declined_in_feed(stack)
    assert [i["id"] for i in (await feed(stack, body={"poller": "bot-a"}))[1]["items"]] == [drift_id]
    assert (await feed(stack, body={"poller": "bot-b"}))[1]["items"] == []
    await asyncio.sleep(0.3)
    assert [i["id"] for i in (await feed(stack, body={"poller": "bot-b"}))[1]["items"]] == [drift_id]
    status, acked = await feed(stack, path="/v1/watch/feed/ack", body={"ids": [drift_id]})
    assert (status, acked) == (200, {"acked": 1})
    await asyncio.sleep(0.3)
    assert (await feed(stack, body={"poller": "bot-a"}))[1]["items"] == []  # delivered: never again
    status, doc = await feed(stack, body={"poller": "bad poller!"})
    assert status == 400, doc


async def test_a_row_waits_for_its_repairs_before_it_is_handed_out(stack: Stack) -> None:
    """The watcher commits a drift row, then plans its repairs (Graph calls) and stores them: a feed
    call in between must not hand out the row, or the one card shown would carry no repair button."""
    from datetime import UTC, datetime, timedelta

    from calendar_backend import storage as store
    from calendar_backend.storage import watch as store_watch

    status, booked = await book_from_teams(stack)
    assert status == 201, booked
    async with stack.runtime.store.transaction() as tx:
        row = await store.get_interview(tx, booked["id"])
        assert row is not None
        drift = await store_watch.record_drift(
            tx, row, "declined", MEGAN, "notification", "fp-plan", datetime.now(UTC)
        )
    assert drift is not None
    assert (await feed(stack, body={"poller": "bot-a"}))[1]["items"] == []  # repairs not planned yet
    async with stack.runtime.store.transaction() as tx:
        await store_watch.set_repairs(tx, drift.id, [{"id": "release", "kind": "release"}])
    (item,) = (await feed(stack, body={"poller": "bot-a"}))[1]["items"]
    assert item["repairs"] == [{"id": "release", "kind": "release"}]
    # a row whose planning found nothing (or failed) is handed out after a grace period, buttonless
    async with stack.runtime.store.transaction() as tx:
        old = await store_watch.record_drift(
            tx, row, "conflict", MEGAN, "sweep", "fp-old", datetime.now(UTC) - timedelta(seconds=30)
        )
    assert old is not None
    got = [i["id"] for i in (await feed(stack, body={"poller": "bot-a"}))[1]["items"]]
    assert sorted(got) == sorted([drift.id, old.id])
