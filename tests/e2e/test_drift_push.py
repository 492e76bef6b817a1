"""Issue 19 end to end, in-process: devtenant + the real Calendar Service + the real bot app + a fake
Teams Bot Connector. The manager books an interview from the bot (the whole conversation over
``/api/messages``), the interviewer declines in devtenant, Graph's notification goes to the BOT's
public receiver (forwarded to the Calendar Service), the bot's poller posts the repair card to the
manager's conversation within 5 s; one tap applies a repair with one Outlook update of the panel
(and the candidate's own invite, as the time changes); a second tap writes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from calendar_backend.app import SERVICE_KEY
from calendar_backend.storage import watch as store_watch
from devtenant.bot_connector import FakeBotConnector
from tests.candidate.conftest import bot_instance
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.service.conftest import ALEX, Stack, service_for
from tests.service.test_watch import acontrol, copy_of, watcher_of

KEY = "e2e-feed-key-" + "y" * 40
CARD = "application/vnd.microsoft.card.adaptive"
MEGAN = "meganb@contoso.example"


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path, watch_feed_key=KEY) as running:
        yield running


def activity(stack: Stack, teams: FakeBotConnector, conversation: str, **fields: Any) -> dict[str, Any]:
    user = stack.devtenant.tenant.find_user(ALEX)
    assert user is not None
    oid = str(user["id"])
    doc: dict[str, Any] = {
        "type": "message",
        "id": secrets.token_hex(6),
        "channelId": "msteams",
        "serviceUrl": teams.url,
        "locale": "en-US",
        "localTimezone": "Europe/London",
        "from": {"id": f"29:{oid}", "aadObjectId": oid, "name": "Alex Wilber"},
        "recipient": {"id": "28:openslot", "name": "OpenSlot"},
        "conversation": {
            "id": conversation,
            "tenantId": stack.devtenant.tenant_id,
            "conversationType": "personal",
        },
        "channelData": {"tenant": {"id": stack.devtenant.tenant_id}},
    }
    doc.update(fields)
    return doc


def cards_in(posted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a["content"] for p in posted for a in p.get("attachments") or [] if a.get("contentType") == CARD]


def executes(node: object, verb: str) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        own = [node["data"]] if node.get("type") == "Action.Execute" and node.get("verb") == verb else []
        return own + [a for v in node.values() for a in executes(v, verb)]
    if isinstance(node, list):
        return [a for v in node for a in executes(v, verb)]
    return []


async def say(
    bot: TestClient[Any, Any], stack: Stack, teams: FakeBotConnector, conv: str, text: str
) -> list[Any]:
    before = len(teams.replies(conv))
    resp = await bot.post("/api/messages", json=activity(stack, teams, conv, text=text))
    assert resp.status in (200, 201, 202), await resp.text()
    return teams.replies(conv)[before:]


async def press(
    bot: TestClient[Any, Any], stack: Stack, teams: FakeBotConnector, conv: str, data: dict[str, Any]
) -> dict[str, Any]:
    doc = activity(
        stack,
        teams,
        conv,
        type="invoke",
        name="adaptiveCard/action",
        value={"action": {"type": "Action.Execute", "verb": data["verb"], "data": data}, "trigger": "manual"},
    )
    resp = await bot.post("/api/messages", json=doc)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["type"] == CARD, body
    card: dict[str, Any] = body["value"]
    return card


async def test_a_decline_reaches_the_managers_chat_and_one_tap_repairs_it(
    stack: Stack, tmp_path: Path
) -> None:
    dt = stack.devtenant
    teams = FakeBotConnector(token=stack.token())
    async with (
        teams.serving(),
        bot_instance(
            stack, teams, tmp_path / "bot.db", OPENSLOT_WATCH_FEED_KEY=KEY, OPENSLOT_BOT_WATCH_POLL_S="0.25"
        ) as bot,
    ):
        conv = f"a:drift-{secrets.token_hex(4)}"
        # Book from the bot: the whole conversation, then choose and confirm the first slot.
        for text in (
            "schedule",
            "Dana Smith",
            "dana@example.com",
            "Megan, Adele",
            "45 min",
            "next week",
            "UTC",
        ):
            await say(bot, stack, teams, conv, text)
        picker = cards_in(await say(bot, stack, teams, conv, "none"))[-1]
        choose = executes(picker, "choose_slot")[0]
        confirmation = await press(bot, stack, teams, conv, choose)
        booked = await press(bot, stack, teams, conv, executes(confirmation, "confirm")[0])
        assert "booked" in str(booked).lower(), booked
        async with stack.runtime.store.transaction() as tx:
            rows = await store_watch.upcoming_confirmed(
                tx, datetime.now(UTC), datetime.now(UTC) + timedelta(days=30)
            )
        (row,) = rows
        # Graph notifications go to the bot's public receiver, which forwards them.
        await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
        watcher = watcher_of(stack)
        watcher.config = dataclasses.replace(
            watcher.config, notification_url=str(bot.make_url("/api/graph/notifications"))
        )
        await watcher.ensure()
        worker = asyncio.create_task(watcher.run_worker())
        try:
            copy = await copy_of(stack, row.id, MEGAN)
            before = len(teams.replies(conv))
            started = time.monotonic()
            await acontrol(
                dt,
                "POST",
                f"mailboxes/{MEGAN}/events/{copy}/respond",
                {"response": "declined", "sendResponse": False},
            )
            drift_card = None
            while time.monotonic() - started < 5:
                found = [c for c in cards_in(teams.replies(conv)[before:]) if executes(c, "apply_repair")]
                if found:
                    drift_card = found[0]
                    break
                await asyncio.sleep(0.05)
            assert drift_card is not None, "no repair card within 5 s"
        finally:
            worker.cancel()
        text = str(drift_card)
        assert "declined" in text
        assert MEGAN not in text  # a display name, never the address
        assert "Megan Bowen declined" in text
        taps = executes(drift_card, "apply_repair")
        assert len(taps) >= 2
        replace = taps[0]  # a new time (Adele is on the panel, so no replacement is offered)
        assert replace["repair"] == "time-1"
        updates = int(dt.tenant.counters["graph.events.update"])
        applied = await press(bot, stack, teams, conv, replace)
        assert "Applied:" in str(applied), applied
        # ONE update of the panel event, plus the candidate's own invite since the time changed
        assert int(dt.tenant.counters["graph.events.update"]) == updates + 2
        again = await press(bot, stack, teams, conv, replace)
        assert "already handled" in str(again)
        assert int(dt.tenant.counters["graph.events.update"]) == updates + 2  # the second tap wrote nothing
        assert stack.client.app[SERVICE_KEY].drift_feed is not None
