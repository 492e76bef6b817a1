"""Issue 19 (c), end to end through the real bot: devtenant + the real Calendar Service (its own
background watcher: the inbox worker and a round every ``OPENSLOT_WATCH_SWEEP_S``) + the real bot app
(its receiver and drift poller) + a fake Teams Bot Connector. Interviews are booked from the bot, each
in its own chat; then

- a move by someone else, a delete and a new conflicting meeting (Graph's notifications go to the
  bot's public receiver) each reach that chat as a repair card within 5 s;
- with every webhook dropped (devtenant's delivery control) a decline reaches the chat within two
  sweep intervals;
- every card is shown ONCE (two bot replicas poll the same feed and share the bot database);
- a loop booked from the bot keeps the chat on every session; a decline on one panel reaches it.

Each test runs its scenario on one stack (phases in order), to keep the runtime small."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from calendar_backend.contract import format_time
from calendar_backend.runtime import start_watch
from calendar_backend.storage import watch as store_watch
from calendar_backend.storage.schema import interviews
from devtenant.bot_connector import FakeBotConnector
from tests.candidate.conftest import bot_instance
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.e2e.test_drift_push import CARD, KEY, MEGAN, activity, cards_in, executes, press, say
from tests.service.conftest import ALEX, Stack, service_for
from tests.service.test_watch import acontrol, copy_of, watcher_of

SWEEP_S = 2  # OPENSLOT_WATCH_SWEEP_S of this stack
WHAT = {"moved": "moved", "deleted": "deleted", "conflict": "has a new conflict with"}


@pytest.fixture
async def stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(devtenant, tmp_path, watch_feed_key=KEY, watch_sweep_s=SWEEP_S) as running:
        yield running


async def book_from_bot(bot: TestClient[Any, Any], stack: Stack, teams: FakeBotConnector, conv: str) -> str:
    """The manager books Megan (Adele optional) from the chat ``conv``; the new interview's id."""
    before = await upcoming_ids(stack)
    for text in ("schedule", "Dana Smith", "dana@example.com", "Megan, Adele", "45 min", "next week", "UTC"):
        await say(bot, stack, teams, conv, text)
    picker = cards_in(await say(bot, stack, teams, conv, "none"))[-1]
    confirmation = await press(bot, stack, teams, conv, executes(picker, "choose_slot")[0])
    booked = await press(bot, stack, teams, conv, executes(confirmation, "confirm")[0])
    assert "booked" in str(booked).lower(), booked
    (new,) = (await upcoming_ids(stack)) - before
    return new


async def upcoming_rows(stack: Stack) -> list[Any]:
    async with stack.runtime.store.transaction() as tx:
        now = datetime.now(UTC)
        return list(await store_watch.upcoming_confirmed(tx, now, now + timedelta(days=30)))


async def upcoming_ids(stack: Stack) -> set[str]:
    return {r.id for r in await upcoming_rows(stack)}


HEADLINE = re.compile(r"^.+ (declined|moved|deleted|has a new conflict with) .+ your time\)$")


def repair_cards(teams: FakeBotConnector, conv: str) -> list[dict[str, Any]]:
    """The drift repair cards posted to ``conv`` (by the headline that names the change)."""
    return [
        c for p in teams.replies(conv) if HEADLINE.match(str(p.get("summary") or "")) for c in cards_in([p])
    ]


async def card_within(teams: FakeBotConnector, conv: str, limit_s: float, started: float) -> dict[str, Any]:
    while time.monotonic() - started < limit_s:
        found = repair_cards(teams, conv)
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"no repair card in {conv} within {limit_s} s: {[a.get('text') for a in teams.posted]}"
    )


async def test_each_change_reaches_the_chat_once_and_dropped_webhooks_within_two_sweeps(
    stack: Stack, tmp_path: Path
) -> None:
    dt = stack.devtenant
    teams = FakeBotConnector(token=stack.token())
    fast = {"OPENSLOT_WATCH_FEED_KEY": KEY, "OPENSLOT_BOT_WATCH_POLL_S": "0.25"}
    async with (
        teams.serving(),
        bot_instance(stack, teams, tmp_path / "bot.db", **fast) as bot,
        # a second replica of the bot on the SAME bot database, polling the same feed
        bot_instance(stack, teams, tmp_path / "bot.db", **fast) as replica,
    ):
        chats = {
            kind: f"a:{kind}-{secrets.token_hex(4)}" for kind in ("moved", "deleted", "conflict", "declined")
        }
        booked = {kind: await book_from_bot(bot, stack, teams, conv) for kind, conv in chats.items()}
        assert replica is not bot
        await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
        watcher = watcher_of(stack)
        watcher.config = dataclasses.replace(
            watcher.config, notification_url=str(bot.make_url("/api/graph/notifications"))
        )
        assert watcher.config.sweep_every == timedelta(seconds=SWEEP_S)
        await watcher.ensure()
        tasks = start_watch(stack.client.app)  # the service's own worker and rounds, as `serve` runs them
        try:
            # Phase 1: notifications delivered (to the bot's receiver). Each kind, its own chat, ≤ 5 s.
            rows = {r.id: r for r in await upcoming_rows(stack)}
            moved, conflicted = rows[booked["moved"]], rows[booked["conflict"]]
            later = {k: format_time(getattr(moved, k) + timedelta(hours=3)) for k in ("start", "end")}
            busy = {
                "start": format_time(conflicted.start),
                "end": format_time(conflicted.end),
                "showAs": "busy",
            }
            steps = [
                ("moved", f"mailboxes/{ALEX}/events/{await copy_of(stack, moved.id, ALEX)}/move", later),
                (
                    "deleted",
                    f"mailboxes/{ALEX}/events/{await copy_of(stack, booked['deleted'], ALEX)}/delete",
                    {},
                ),
                ("conflict", f"mailboxes/{MEGAN}/events", busy),
            ]
            for kind, path, body in steps:
                started = time.monotonic()
                await acontrol(dt, "POST", path, body)
                card = await card_within(teams, chats[kind], 5.0, started)
                assert WHAT[kind] in str(card), (kind, card)
                assert executes(card, "apply_repair"), (kind, card)  # the repairs came with it
            # Phase 2: every webhook dropped; only the sweep (every SWEEP_S) can see the decline.
            await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True, "drop_rate": 1.0})
            copy = await copy_of(stack, booked["declined"], MEGAN)
            await acontrol(
                dt,
                "POST",
                f"mailboxes/{MEGAN}/events/{copy}/respond",
                {"response": "declined", "sendResponse": False},
            )
            started = time.monotonic()  # the decline is in Megan's calendar from here on
            card = await card_within(teams, chats["declined"], 2 * SWEEP_S, started)
            assert "declined" in str(card)
            async with stack.runtime.store.transaction() as tx:
                rows = await store_watch.all_drift(tx)
            assert {d.source for d in rows if d.kind == "declined"} == {"sweep"}
            # Exactly once: a few more poll rounds of both replicas and sweeps later, one card per chat.
            await asyncio.sleep(SWEEP_S + 0.5)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for kind, conv in chats.items():
            assert len(repair_cards(teams, conv)) == 1, (kind, len(repair_cards(teams, conv)))
        assert MEGAN not in str(teams.posted)  # display names, never an address


LOOP_TEMPLATE = {
    "name": "Feed loop",
    "role": "Engineer",
    "order": "free",
    "breaks": {"min_minutes": 0, "max_minutes": 30},
    "max_days": 1,
    "candidate_day": {"start": "08:00", "end": "20:00"},
    "sessions": [
        {"title": "Intro", "minutes": 30, "interviewers": [MEGAN]},
        {"title": "Design", "minutes": 30, "interviewers": ["adelev@contoso.example"]},
    ],
}


async def invoke(
    bot: TestClient[Any, Any], stack: Stack, teams: FakeBotConnector, conv: str, data: dict[str, Any]
) -> list[dict[str, Any]]:
    """Press a loop card button; the cards it answered with (the invoke's and any posted)."""
    before = len(teams.replies(conv))
    value = {"action": {"type": "Action.Execute", "verb": data["verb"], "data": data}, "trigger": "manual"}
    doc = activity(stack, teams, conv, type="invoke", name="adaptiveCard/action", value=value)
    resp = await bot.post("/api/messages", json=doc)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    own = [body["value"]] if isinstance(body, dict) and body.get("type") == CARD else []
    return own + cards_in(teams.replies(conv)[before:])


async def test_a_loop_booked_from_the_bot_keeps_its_chat_and_a_decline_reaches_it(
    stack: Stack, tmp_path: Path
) -> None:
    """Issue 19 (a): every session of a loop booked from the bot carries the chat's reference; a
    decline on one session's panel reaches that chat."""
    dt = stack.devtenant
    status, doc = await stack.send(
        "PUT", "/v1/loop-templates/Feed%20loop", {"template": LOOP_TEMPLATE}, stack.token()
    )
    assert status == 200, doc
    teams = FakeBotConnector(token=stack.token())
    async with (
        teams.serving(),
        bot_instance(
            stack, teams, tmp_path / "bot.db", OPENSLOT_WATCH_FEED_KEY=KEY, OPENSLOT_BOT_WATCH_POLL_S="0.25"
        ) as bot,
    ):
        conv = f"a:loop-{secrets.token_hex(4)}"
        builder = cards_in(await say(bot, stack, teams, conv, "schedule a loop"))[-1]
        await invoke(bot, stack, teams, conv, executes(builder, "loop_use_template")[0])
        for text in ("Dana Loop", "dana.loop@example.com", "next week"):
            await say(bot, stack, teams, conv, text)
        options = cards_in(await say(bot, stack, teams, conv, "UTC"))[-1]
        confirm = (await invoke(bot, stack, teams, conv, executes(options, "loop_choose")[0]))[-1]
        booked = (await invoke(bot, stack, teams, conv, executes(confirm, "loop_confirm")[0]))[-1]
        assert "Interview loop booked" in str(booked), booked
        status, loops = await stack.get("/v1/loops", stack.token())
        assert status == 200, loops
        (loop,) = loops["loops"]
        sessions = {s["title"]: s["interview_id"] for s in loop["sessions"]}
        assert set(sessions) == {"Intro", "Design"}
        async with stack.runtime.store.transaction() as tx:
            refs = await tx.execute(
                sa.select(interviews.c.id).where(
                    interviews.c.id.in_(list(sessions.values())), interviews.c.conversation_ref.is_not(None)
                )
            )
            assert {r.id for r in refs} == set(sessions.values())  # a sealed reference on every session
        await acontrol(dt, "PUT", "subscriptions/delivery", {"allow_http": True})
        watcher = watcher_of(stack)
        watcher.config = dataclasses.replace(
            watcher.config, notification_url=str(bot.make_url("/api/graph/notifications"))
        )
        await watcher.ensure()
        worker = asyncio.create_task(watcher.run_worker(idle_s=0.2))
        try:
            copy = await copy_of(stack, sessions["Intro"], MEGAN)
            started = time.monotonic()
            await acontrol(
                dt,
                "POST",
                f"mailboxes/{MEGAN}/events/{copy}/respond",
                {"response": "declined", "sendResponse": False},
            )
            card = await card_within(teams, conv, 5.0, started)
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        assert "Megan Bowen declined" in str(card)
