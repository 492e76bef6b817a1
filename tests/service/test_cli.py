"""`python -m calendar_backend slots` and `audit verify` as real subprocesses.

The Calendar Service listens on a real TCP port (aiohttp AppRunner + TCPSite on 127.0.0.1:0) in the
test's loop; the CLI signs in against devtenant with the authorization-code flow (login_hint +
prompt=none, redirect URI `http://localhost/openslot-cli`) and calls the API over HTTP.
The shipped sample tenant must register that redirect URI on the OpenSlot app
(`test_the_sample_app_accepts_the_cli_redirect_uri`).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from calendar_backend.cli_slots import CLI_REDIRECT_URI
from calendar_backend.contract import format_time
from calendar_backend.settings import BackendSettings
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.service.conftest import ALEX, mailbox_addresses, next_week, running_service

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LiveService:
    """A Calendar Service on a real port plus what a CLI subprocess needs to reach it."""

    url: str
    devtenant: DevTenantHandle
    settings: BackendSettings
    db_path: Path

    def env(self) -> dict[str, str]:
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OPENSLOT_", "REQUESTS_CA_BUNDLE", "SSL_CERT"))
        }
        return {
            **keep,
            "OPENSLOT_ENV": "dev",
            "OPENSLOT_DATABASE_URL": self.settings.database_url,
            "OPENSLOT_KEY_FILE": str(self.settings.key_file),
            "OPENSLOT_AUDIT_CHECKPOINT_FILE": str(self.settings.audit_checkpoint_file),
            "OPENSLOT_AUTHORITY_HOST": self.devtenant.base_url,
            "OPENSLOT_GRAPH_BASE_URL": f"{self.devtenant.base_url}/v1.0",
            "OPENSLOT_CA_BUNDLE": str(self.devtenant.ca_path),
            "OPENSLOT_CLIENT_ID": self.settings.client_id,
            "OPENSLOT_DEFAULT_NOTICE_MIN": "0",
            "PYTHONPATH": str(ROOT),
        }

    async def api_slots(self, body: dict[str, Any]) -> tuple[int, Any]:
        token = self.devtenant.mint_user_token(ALEX)
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{self.url}/v1/slots/find", json=body, headers={"Authorization": f"Bearer {token}"}
            ) as resp,
        ):
            return resp.status, await resp.json()


@asynccontextmanager
async def live_service(dt: DevTenantHandle, tmp: Path) -> AsyncIterator[LiveService]:
    """The service on 127.0.0.1 with a random port, onboarded to `dt`'s tenant."""
    async with running_service(dt, tmp) as (rt, app):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        try:
            yield LiveService(f"http://{host}:{port}", dt, rt.settings, tmp / "openslot.db")
        finally:
            await runner.cleanup()


@pytest.fixture
async def live(
    devtenant: DevTenantHandle,
    tmp_path: Path,
) -> AsyncIterator[LiveService]:
    async with live_service(devtenant, tmp_path) as service:
        yield service


async def run_cli(service: LiveService, *args: str) -> tuple[int, str, str]:
    """Run `python -m calendar_backend ARGS` without blocking the loop serving the API."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "calendar_backend",
        *args,
        cwd=str(ROOT),
        env=service.env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _slots_args(
    service: LiveService, people: list[str], start: datetime, end: datetime, *extra: str
) -> list[str]:
    args = [
        "slots",
        "--as",
        ALEX,
        "--duration",
        "45",
        "--start",
        format_time(start),
        "--end",
        format_time(end),
        "--json",
        "--service-url",
        service.url,
        *extra,
    ]
    for address in people:
        args += ["--interviewer", address]
    return args


def test_the_sample_app_accepts_the_cli_redirect_uri(devtenant_server: DevTenantHandle) -> None:
    """The shipped sample tenant must let `slots` sign in silently (DESIGN.md promises the CLI)."""
    dt = devtenant_server
    app_id = str(dt.tenant.applications()[0]["appId"])
    resp = dt.session().get(
        f"{dt.base_url}/{dt.tenant_id}/oauth2/v2.0/authorize",
        params={
            "client_id": app_id,
            "response_type": "code",
            "redirect_uri": CLI_REDIRECT_URI,
            "scope": f"api://botid-{app_id}/access_as_user",
            "login_hint": ALEX,
            "prompt": "none",
            "state": "s",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 302, resp.text[:200]
    assert resp.headers["Location"].startswith(CLI_REDIRECT_URI + "?code=")


async def test_slots_json_equals_the_api_answer(live: LiveService) -> None:
    people = mailbox_addresses(live.devtenant, 2, exclude=ALEX)
    start, end = next_week(datetime.now(UTC))
    code, out, err = await run_cli(live, *_slots_args(live, people, start, end))
    assert code == 0, err[-2000:]
    doc = json.loads(out)
    assert set(doc) <= {"slots", "blockers"}
    assert doc["slots"], "a free week for two sample interviewers must have slots"
    assert all(
        set(s) == {"start", "end"} and s["start"].endswith("Z") and s["end"].endswith("Z")
        for s in doc["slots"]
    )
    status, api = await live.api_slots(
        {
            "interviewers": people,
            "duration_min": 45,
            "start": format_time(start),
            "end": format_time(end),
            "step_min": 15,
            "buffer_min": 0,
            "all": False,
            "limit": 20,
        }
    )
    assert status == 200, api
    assert doc["slots"] == api["slots"]


async def test_slots_all_gives_every_valid_slot(live: LiveService) -> None:
    people = mailbox_addresses(live.devtenant, 2, exclude=ALEX)
    start, end = next_week(datetime.now(UTC))
    code, out, err = await run_cli(live, *_slots_args(live, people, start, end, "--all"))
    assert code == 0, err[-2000:]
    every = json.loads(out)["slots"]
    code, out, err = await run_cli(live, *_slots_args(live, people, start, end))
    assert code == 0, err[-2000:]
    ranked = json.loads(out)["slots"]
    status, api = await live.api_slots(
        {
            "interviewers": people,
            "duration_min": 45,
            "start": format_time(start),
            "end": format_time(end),
            "all": True,
            "limit": 500,
        }
    )
    assert status == 200, api
    assert every == api["slots"]
    assert len(every) > len(ranked)
    assert every == sorted(every, key=lambda s: s["start"])
    assert all(s in every for s in ranked)


async def test_audit_verify_passes_then_names_the_tampered_row(live: LiveService) -> None:
    people = mailbox_addresses(live.devtenant, 1, exclude=ALEX)
    start, end = next_week(datetime.now(UTC))
    for _ in range(2):
        code, _out, err = await run_cli(live, *_slots_args(live, people, start, end))
        assert code == 0, err[-2000:]
    code, out, err = await run_cli(live, "audit", "verify")
    assert code == 0, out + err[-2000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["ok"] is True
    assert report["rows"] >= 2
    with sqlite3.connect(live.db_path) as db:
        changed = db.execute("UPDATE audit_log SET result='x' WHERE seq=2").rowcount
    assert changed == 1
    code, out, err = await run_cli(live, "audit", "verify")
    assert code == 1, out + err[-2000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["ok"] is False
    assert report["first_broken_seq"] == 2
