"""Candidate-link fixtures: devtenant + the real Calendar Service + the real bot app + a fake Teams
connector, each a real server on 127.0.0.1 with a random port.

`candidate_env` yields an `Env`: `make_offer(...)` mints a link through the Calendar Service's API
with Alex's user token and the conversation reference of a Teams chat whose serviceUrl is the fake
connector; `page_url(token)` is the link on the bot app; `teams.posted` records proactive messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import create_async_engine

import bot as bot_module
from calendar_backend.contract import format_time
from devtenant.bot_connector import FakeBotConnector
from dialogs.candidate_page import RedactingAccessLogger
from dialogs.sql_storage import METADATA, SqlStorage
from tests.devtenant.fixtures import devtenant, devtenant_server  # noqa: F401
from tests.service.conftest import Stack, calendar_stack, next_week, user  # noqa: F401


@dataclass
class Env:
    stack: Stack
    teams: FakeBotConnector
    bot: TestClient[Any, Any]

    def reference(self) -> dict[str, Any]:
        return {
            "activityId": "m1",
            "user": {"id": "29:alex", "name": "Alex Wilber"},
            "bot": {"id": "28:openslot", "name": "OpenSlot"},
            "conversation": {"id": "a:conv-alex", "tenantId": self.stack.devtenant.tenant_id},
            "channelId": "msteams",
            "serviceUrl": self.teams.url,
        }

    def person(self, name: str) -> str:
        return str(user(self.stack, name)["mail"])

    async def make_offer(self, people: list[str], **extra: Any) -> tuple[str, dict[str, Any]]:
        start, end = next_week(datetime.now(UTC))
        body = {
            "interviewers": people,
            "duration_min": 45,
            "window_start": format_time(start),
            "window_end": format_time(end),
            "candidate_name": "Dana Smith",
            "candidate_email": "dana.smith@example.com",
            "candidate_time_zone": "Asia/Kathmandu",
            "conversation_ref": self.reference(),
            **extra,
        }
        status, doc = await self.stack.post("/v1/offers", body, self.stack.token())
        assert status == 201, doc
        return str(doc["url"]).rsplit("/c/", 1)[1], doc

    def page_url(self, token: str) -> str:
        return str(self.bot.make_url(f"/c/{token}"))


@pytest.fixture
async def teams() -> AsyncIterator[FakeBotConnector]:
    """Teams' Bot Connector (no user-token service: the candidate page needs none)."""
    fake = FakeBotConnector()
    async with fake.serving():
        yield fake


@asynccontextmanager
async def bot_instance(
    stack: Stack, teams: FakeBotConnector, db_path: Path, **env: str
) -> AsyncIterator[TestClient[Any, Any]]:
    """One real bot app (dev profile) on its own port and database, plus any extra OPENSLOT_* ``env``."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{db_path}")
    async with engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    settings = bot_module.load_bot_settings(
        {
            "OPENSLOT_ENV": "dev",
            "OPENSLOT_DEV_TENANT_ID": stack.devtenant.tenant_id,
            "OPENSLOT_TOKEN_SERVICE_URL": teams.url,
            "OPENSLOT_ALLOWED_SERVICE_URL_HOSTS": "127.0.0.1",
            "OPENSLOT_CALENDAR_SERVICE_URL": str(stack.client.make_url("/")).rstrip("/"),
            **env,
        }
    )
    app = bot_module.build_app(settings, storage=SqlStorage(engine))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log_class=RedactingAccessLogger)  # no tokens in logs
    try:
        async with TestClient(server) as client:
            yield client
    finally:
        await engine.dispose()


@pytest.fixture
async def candidate_env(
    calendar_stack: Stack,
    teams: FakeBotConnector,
    tmp_path: Path,
) -> AsyncIterator[Env]:
    async with bot_instance(calendar_stack, teams, tmp_path / "bot.db") as client:
        yield Env(calendar_stack, teams, client)
