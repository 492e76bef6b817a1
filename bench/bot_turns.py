"""Bot turn overhead (section 3), through the real aiohttp app and CloudAdapter.

The bot (``bot.build_app``: ActivityGate, SSO middleware, SQL conversation state on SQLite) is
served on 127.0.0.1; a local connector + token service records its replies. The Calendar Service
is an in-memory stub answering at once, so a scheduling turn's time is the bot's own overhead with
zero Graph time. The floor is an echo bot swapped in behind the very same adapter, middleware and
storage. Turns are HTTP POSTs of Bot Framework activities to ``/api/messages``.

On its own, ``python -m bench.bot_turns [--rounds N] [--profile FILE]`` also prints the median of
each step of the scheduling conversation, and with ``--profile`` writes a cProfile of the
scheduling conversations (the bot, and the client and connector sharing its event loop; the
aiosqlite and msrest/requests worker threads are not in it). Profiled figures are not results.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from botbuilder.core import ActivityHandler, TurnContext

import bot as bot_module
from bench.serving import serve_http
from calendar_backend.contract import PersonCheckOut, PersonOut, SlotOut, SlotsResult
from devtenant.bot_connector import FakeBotConnector
from dialogs.sql_storage import METADATA, SqlStorage

TENANT = "6f2d5c1e-8d3b-4a7e-9f41-2b7c9e0d1a55"
COMMAND = "schedule Dana Smith (dana@example.com) with Megan and Adele, 45 min, next week"
SCHEDULE_TURNS = (COMMAND, "India", "none")
PEOPLE = {
    "megan": PersonOut("meganb@contoso.example", "Megan Bowen", "America/Los_Angeles"),
    "adele": PersonOut("adelev@contoso.example", "Adele Vance", "Europe/London"),
}


class StubCalendar:
    """Answers the two calls a scheduling conversation makes, at once (zero Graph time)."""

    async def resolve_people(self, token: str, queries: list[str]) -> list[list[PersonOut]]:  # noqa: ARG002
        """Directory lookup by first name or address."""
        return [[p for key, p in PEOPLE.items() if key in q.lower()] for q in queries]

    async def my_time_zone(self, token: str) -> str | None:  # noqa: ARG002
        """No mailbox zone: the activity's zone is used."""
        return None

    async def check_people(self, token: str, queries: list[str]) -> list[PersonCheckOut]:
        """resolve_people, each single match "ok" (the bench panel is all valid)."""
        found = await self.resolve_people(token, queries)
        return [
            PersonCheckOut(q, "ok", m[0])
            if len(m) == 1
            else PersonCheckOut(q, "ambiguous" if m else "not_found", choices=tuple(m))
            for q, m in zip(queries, found, strict=True)
        ]

    async def find_slots(
        self,
        token: str,  # noqa: ARG002
        *,
        interviewers: list[str],
        duration_min: int,
        start: datetime,
        end: datetime,  # noqa: ARG002
        buffer_min: int = 0,  # noqa: ARG002
        rooms: list[str] | None = None,  # noqa: ARG002
        limit: int = 8,
        candidate_time_zone: str | None = None,  # noqa: ARG002
        candidate_day: tuple[str, str] | None = None,  # noqa: ARG002
    ) -> SlotsResult:
        """Eight slots from ``start``, on the hour."""
        first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        slots = tuple(
            SlotOut(first + timedelta(hours=h), first + timedelta(hours=h, minutes=duration_min))
            for h in range(1, limit + 1)
        )
        return SlotsResult(slots, tuple(p for p in PEOPLE.values() if p.address in interviewers), ())


class EchoBot(ActivityHandler):  # type: ignore[misc]
    """The floor: says the text back."""

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        """Echo one message."""
        await turn_context.send_activity(f"echo: {turn_context.activity.text}")


@dataclass(frozen=True, slots=True)
class TurnFigures:
    """Per-turn seconds (median) for scheduling and echo turns on the same adapter."""

    schedule_s: float
    echo_s: float
    steps_s: tuple[float, ...] = ()  # median of each step of the scheduling conversation


@dataclass
class BotUnderTest:
    """The served bot app and where to post."""

    url: str
    connector_url: str
    app: web.Application

    def use(self, handler: object) -> None:
        """Swap the activity handler behind the same adapter and middleware."""
        self.app[bot_module.BOT_KEY]["bot"] = handler  # type: ignore[assignment]


@asynccontextmanager
async def running_bot(tmp: Path) -> AsyncIterator[BotUnderTest]:
    """The real bot app on SQLite in ``tmp`` with a stub Calendar Service and local connector."""
    connector = FakeBotConnector(token="bench-token", keep=False)  # noqa: S106  (counts, keeps nothing)
    async with connector.serving() as conn_url:
        storage = SqlStorage.from_url(f"sqlite+aiosqlite:///{tmp / 'bot.db'}")
        async with storage.engine.begin() as conn:
            await conn.run_sync(METADATA.create_all)
        settings = bot_module.load_bot_settings(
            {
                "OPENSLOT_ENV": "dev",
                "OPENSLOT_DEV_TENANT_ID": TENANT,
                "OPENSLOT_TOKEN_SERVICE_URL": conn_url,
                "OPENSLOT_ALLOWED_SERVICE_URL_HOSTS": "127.0.0.1",
            }
        )
        app = bot_module.build_app(
            settings,
            calendar=StubCalendar(),  # type: ignore[arg-type]
            storage=storage,
        )
        bot_runner, bot_url = await serve_http(app)
        try:
            yield BotUnderTest(bot_url, conn_url, app)
        finally:
            await bot_runner.cleanup()


def _activity(target: BotUnderTest, conversation: str, text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": secrets.token_hex(6),
        "text": text,
        "channelId": "msteams",
        "serviceUrl": target.connector_url,
        "localTimezone": "Europe/London",
        "from": {"id": "29:alex", "name": "Alex"},
        "recipient": {"id": "28:bot"},
        "conversation": {"id": conversation, "tenantId": TENANT},
        "channelData": {"tenant": {"id": TENANT}},
    }


async def turn(http: aiohttp.ClientSession, target: BotUnderTest, conversation: str, text: str) -> float:
    """One turn; returns its wall seconds. Raises ``RuntimeError`` on a non-2xx answer."""
    began = time.perf_counter()
    async with http.post(f"{target.url}/api/messages", json=_activity(target, conversation, text)) as resp:
        await resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"bot answered {resp.status}")
    return time.perf_counter() - began


async def conversation(
    http: aiohttp.ClientSession, target: BotUnderTest, texts: Sequence[str]
) -> list[float]:
    """One fresh conversation through ``texts``; the seconds of each turn."""
    cid = f"a:bench-{secrets.token_hex(6)}"
    return [await turn(http, target, cid, text) for text in texts]


async def overhead(
    target: BotUnderTest, rounds: int = 60, profile: cProfile.Profile | None = None
) -> TurnFigures:
    """Median per-turn time: scheduling conversation turns vs. echo turns.

    Each round runs one scheduling conversation and then one echo conversation of the same
    length, so both are sampled alternately under the same machine load (the host is shared).
    ``profile``, if given, is enabled around the scheduling conversations only.
    """
    schedule_bot = target.app[bot_module.BOT_KEY]["bot"]
    echo_bot = EchoBot()
    schedule: list[list[float]] = []
    echo: list[float] = []
    async with aiohttp.ClientSession() as http:
        try:
            for _ in range(rounds):
                target.use(schedule_bot)
                with profile or nullcontext():
                    schedule.append(await conversation(http, target, SCHEDULE_TURNS))
                target.use(echo_bot)
                echo += await conversation(http, target, ["hello"] * len(SCHEDULE_TURNS))
        finally:
            target.use(schedule_bot)
    steps = tuple(statistics.median(step) for step in zip(*schedule, strict=True))
    return TurnFigures(
        statistics.median(t for turns in schedule for t in turns), statistics.median(echo), steps
    )


async def _standalone(rounds: int, profile: cProfile.Profile | None) -> TurnFigures:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_bot(Path(tmp)) as target:
            return await overhead(target, rounds, profile)


def main(argv: list[str] | None = None) -> int:
    """Section (3) alone, with the per-step medians and an optional profile."""
    parser = argparse.ArgumentParser(prog="python -m bench.bot_turns")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="write a cProfile of the scheduling conversations (slows them)",
    )
    args = parser.parse_args(argv)
    profile = cProfile.Profile() if args.profile else None
    figures = asyncio.run(_standalone(args.rounds, profile))
    steps = ", ".join(
        f"{text.split()[0]!r} {1000 * s:.2f}" for text, s in zip(SCHEDULE_TURNS, figures.steps_s, strict=True)
    )
    print(
        f"scheduling turn {1000 * figures.schedule_s:.2f} ms (steps, ms: {steps}), echo turn "
        f"{1000 * figures.echo_s:.2f} ms, ratio {figures.schedule_s / figures.echo_s:.2f}x"
        + (" (profiled: not a result)" if profile else "")
    )
    if profile is not None:
        profile.dump_stats(args.profile)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(r"dialogs|cards|bot\.py", 25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
