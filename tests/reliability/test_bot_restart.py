"""Issue 7: kill the bot (SIGKILL) at steps of a booking; after a restart the conversation resumes.

Real processes: ``python -m calendar_backend serve`` and ``python bot.py`` (dev profile) on one
SQLite file against devtenant, with a fake Bot Connector recording the replies. The bot is killed
after some questions were answered, after the slot card and after the confirmation card; each
restart uses the same database, the dialog continues at the step it was on, and confirming books
exactly one interview (devtenant's mailbox is the judge).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devtenant.bot_connector import FakeBotConnector
from tests.devtenant.fixtures import DevTenantHandle
from tests.reliability.conftest import organizer_events
from tests.scaleout.conftest import (
    ROOT,
    _base_env,
    _spawn,
    _stop,
    free_port,
    start_connector,
    wait_http,
)
from tests.scaleout.test_scaleout import cards, executes, is_booked, texts

ALEX = "alexw@contoso.example"
CARD = "application/vnd.microsoft.card.adaptive"


@dataclass
class Deployment:
    """One Calendar Service process and a restartable bot process on one SQLite database."""

    devtenant: DevTenantHandle
    env: dict[str, str]
    logs: Path
    connector: FakeBotConnector
    calendar_url: str
    procs: list[subprocess.Popen[bytes]]
    bot: subprocess.Popen[bytes] | None = None
    bot_url: str = ""
    starts: int = 0

    def start_bot(self) -> None:
        port = free_port()
        log = self.logs / f"bot{self.starts}.log"
        self.starts += 1
        self.bot = _spawn(
            [sys.executable, "bot.py"],
            {
                **self.env,
                "OPENSLOT_BOT_PORT": str(port),
                "OPENSLOT_CALENDAR_SERVICE_URL": self.calendar_url,
                "OPENSLOT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            },
            log,
        )
        self.procs.append(self.bot)
        self.bot_url = f"http://127.0.0.1:{port}"
        wait_http(f"{self.bot_url}/healthz", self.bot, log)

    def kill_bot(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed beyond what each turn committed."""
        assert self.bot is not None
        self.bot.kill()
        self.bot.wait(timeout=10)

    def restart_bot(self) -> None:
        self.kill_bot()
        self.start_bot()

    def activity(self, conversation: str, **fields: Any) -> dict[str, Any]:
        user = self.devtenant.tenant.find_user(ALEX)
        assert user is not None
        oid = str(user["id"])
        doc: dict[str, Any] = {
            "type": "message",
            "id": secrets.token_hex(6),
            "channelId": "msteams",
            "serviceUrl": self.connector.url,
            "locale": "en-US",
            "localTimezone": "Europe/London",
            "from": {"id": f"29:{oid}", "aadObjectId": oid, "name": "Alex Wilber"},
            "recipient": {"id": "28:openslot", "name": "OpenSlot"},
            "conversation": {
                "id": conversation,
                "tenantId": self.devtenant.tenant_id,
                "conversationType": "personal",
            },
            "channelData": {"tenant": {"id": self.devtenant.tenant_id}},
        }
        doc.update(fields)
        return doc

    def log_tail(self) -> str:
        return (self.logs / f"bot{self.starts - 1}.log").read_text(errors="replace")[-3000:]


@pytest.fixture
def deployment(devtenant: DevTenantHandle, tmp_path: Path) -> Iterator[Deployment]:
    env = _base_env(devtenant, f"sqlite+aiosqlite:///{tmp_path / 'openslot.db'}", tmp_path)
    for args in (("keys", "init"), ("migrate",), ("tenant", "add", "--tenant-id", devtenant.tenant_id)):
        done = subprocess.run(
            [sys.executable, "-m", "calendar_backend", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    connector, stop_connector = start_connector()
    procs: list[subprocess.Popen[bytes]] = []
    port = free_port()
    log = tmp_path / "calendar.log"
    try:
        calendar = _spawn(
            [sys.executable, "-m", "calendar_backend", "serve"],
            {**env, "OPENSLOT_CALENDAR_SERVICE_PORT": str(port)},
            log,
        )
        procs.append(calendar)
        wait_http(f"http://127.0.0.1:{port}/v1/health", calendar, log)
        dep = Deployment(devtenant, env, tmp_path, connector, f"http://127.0.0.1:{port}", procs)
        dep.start_bot()
        yield dep
    finally:
        _stop(procs)
        stop_connector()


async def say(
    http: aiohttp.ClientSession, dep: Deployment, conversation: str, text: str
) -> list[dict[str, Any]]:
    before = len(dep.connector.replies(conversation))
    async with http.post(f"{dep.bot_url}/api/messages", json=dep.activity(conversation, text=text)) as resp:
        assert resp.status in (200, 201, 202), await resp.text()
    replies = dep.connector.replies(conversation)[before:]
    assert "went wrong" not in texts(replies), dep.log_tail()
    return replies


async def press(
    http: aiohttp.ClientSession, dep: Deployment, conversation: str, data: dict[str, Any]
) -> dict[str, Any]:
    doc = dep.activity(
        conversation,
        type="invoke",
        name="adaptiveCard/action",
        value={"action": {"type": "Action.Execute", "verb": data["verb"], "data": data}, "trigger": "manual"},
    )
    async with http.post(f"{dep.bot_url}/api/messages", json=doc) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    assert body["type"] == CARD, (body, dep.log_tail())
    card: dict[str, Any] = body["value"]
    return card


def dana_events(dep: Deployment) -> list[dict[str, Any]]:
    """The booking's panel events (the candidate's own invite, a second event, left out)."""
    return [
        e
        for e in organizer_events(dep.devtenant, ALEX)
        if "Dana Smith" in str(e.get("subject", "")) and "@example.com" not in str(e.get("attendees"))
    ]


async def test_sigkill_mid_dialog_and_after_cards_resumes_and_books_once(deployment: Deployment) -> None:
    dep = deployment
    conversation = f"a:restart-{secrets.token_hex(4)}"
    async with aiohttp.ClientSession() as http:
        assert "candidate's name" in texts(await say(http, dep, conversation, "schedule"))
        assert "e-mail" in texts(await say(http, dep, conversation, "Dana Smith"))
        assert "Who should interview" in texts(await say(http, dep, conversation, "dana@example.com"))

        dep.restart_bot()  # killed while waiting for the interviewers
        assert "How long" in texts(await say(http, dep, conversation, "Megan, Adele"))
        assert "When?" in texts(await say(http, dep, conversation, "45 min"))

        dep.restart_bot()  # killed while waiting for the date range
        assert "time zone" in texts(await say(http, dep, conversation, "next week"))
        assert "buffer" in texts(await say(http, dep, conversation, "India"))
        [picker] = cards(await say(http, dep, conversation, "none"))
        choose = executes(picker, "choose_slot")[0]

        dep.restart_bot()  # killed after the slot card
        confirmation = await press(http, dep, conversation, choose)
        [confirm] = executes(confirmation, "confirm")

        dep.restart_bot()  # killed after the confirmation card
        assert dana_events(dep) == []
        booked = await press(http, dep, conversation, confirm)
        assert is_booked(booked), booked

        dep.restart_bot()  # killed after booking; pressing confirm again books nothing new
        again = await press(http, dep, conversation, confirm)
    assert is_booked(again)
    assert again["body"] == booked["body"]
    assert len(dana_events(dep)) == 1
