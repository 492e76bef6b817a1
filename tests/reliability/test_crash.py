"""Crash safety (security.md requirement 26): kill the Calendar Service at each step of a booking.

Real processes: `python -m calendar_backend serve` on a random port, with the dev-only test hook
`OPENSLOT_CRASH_AT=<point>` making it `os._exit(137)` (no cleanup, like SIGKILL) at that step. devtenant
runs in this process and outlives the restarts. After a restart with recovery (at `serve` start-up, or
`python -m calendar_backend recovery run`):

- exactly one Outlook event per confirmed booking (and none without one), no pending row left;
- the audit chain verifies; the recovery decision is audited;
- the conversation resumes: the bot's retry with the same idempotency key ends in one booking.

The bot dying mid-request is the client vanishing: the retry with the same key books once.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.stack import onboard
from calendar_backend import storage
from calendar_backend.audit import audit_log, verify_audit
from calendar_backend.contract import format_time, parse_time
from calendar_backend.invites import candidate_transaction_id
from calendar_backend.keyring import create_keyring, load_keyring
from calendar_backend.runtime import open_runtime
from calendar_backend.settings import BackendSettings
from devtenant.zones import to_utc
from tests.devtenant.fixtures import DevTenantHandle
from tests.reliability.conftest import faults, organizer_events, running_stack
from tests.service.conftest import ALEX, make_settings, next_week

ROOT = Path(__file__).resolve().parents[2]
MEGAN = "meganb@contoso.example"


@dataclass
class Service:
    """One running `serve` process."""

    proc: asyncio.subprocess.Process
    url: str


def _env(dt: DevTenantHandle, settings: BackendSettings, tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSLOT_")}
    env.update(
        {
            "OPENSLOT_ENV": "dev",
            "OPENSLOT_DATABASE_URL": settings.database_url,
            "OPENSLOT_KEY_FILE": str(settings.key_file),
            "OPENSLOT_AUTHORITY_HOST": dt.base_url,
            "OPENSLOT_GRAPH_BASE_URL": f"{dt.base_url}/v1.0",
            "OPENSLOT_CA_BUNDLE": str(dt.ca_path),
            "OPENSLOT_CLIENT_ID": settings.client_id,
            "OPENSLOT_CALENDAR_SERVICE_PORT": "0",
            "OPENSLOT_DEFAULT_NOTICE_MIN": "0",
            "OPENSLOT_AUDIT_CHECKPOINT_FILE": str(tmp / "checkpoints.jsonl"),
            **{f"OPENSLOT_{k.upper()}": v for k, v in extra.items()},
        }
    )
    return env


@asynccontextmanager
async def serve(env: dict[str, str], tmp: Path) -> AsyncIterator[Service]:
    """Start `python -m calendar_backend serve`; kill it on exit if it still runs."""
    log = (tmp / "serve.log").open("ab")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "calendar_backend",
        "serve",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert b"listening on http://" in line, (tmp / "serve.log").read_text()[-2000:]
        yield Service(proc, line.decode().split()[-1])
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        log.close()


@pytest.fixture
async def prepared(devtenant: DevTenantHandle, tmp_path: Path) -> BackendSettings:
    """A keyring and an onboarded SQLite database in tmp_path."""
    settings = make_settings(devtenant, tmp_path)
    create_keyring(settings.key_file)
    async with open_runtime(settings) as rt:
        await onboard(rt, devtenant)
    return settings


async def _call(
    http: aiohttp.ClientSession, svc: Service, path: str, body: Any, token: str
) -> tuple[int, Any]:
    async with http.post(svc.url + path, json=body, headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json()


async def _slot(http: aiohttp.ClientSession, svc: Service, token: str) -> dict[str, str]:
    start, end = next_week(datetime.now(UTC))
    status, doc = await _call(
        http,
        svc,
        "/v1/slots/find",
        {"interviewers": [MEGAN], "duration_min": 30, "start": format_time(start), "end": format_time(end)},
        token,
    )
    assert status == 200, doc
    return doc["slots"][2]  # type: ignore[no-any-return]


def _booking(slot: dict[str, str], key: str) -> dict[str, Any]:
    return {
        "candidate": {"name": "Dana Smith", "email": "dana.smith@example.com"},
        "interviewers": [MEGAN],
        "start": slot["start"],
        "end": slot["end"],
        "idempotency_key": key,
    }


async def _rows(settings: BackendSettings) -> list[storage.InterviewRow]:
    engine = storage.create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            found = await conn.execute(storage.interviews.select())
            return [storage.interview_row(r) for r in found]
    finally:
        await engine.dispose()


async def _audit(settings: BackendSettings) -> tuple[bool, list[tuple[str, str]]]:
    engine = storage.create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            report = await verify_audit(conn, signing_key=dict(load_keyring(settings.key_file).signing))
            rows = await conn.execute(audit_log.select().order_by(audit_log.c.seq))
            return report.ok, [(r.operation, r.result) for r in rows]
    finally:
        await engine.dispose()


async def _assert_invariants(
    dt: DevTenantHandle, settings: BackendSettings, slot: dict[str, str]
) -> list[storage.InterviewRow]:
    rows = await _rows(settings)
    assert [r for r in rows if r.status is storage.InterviewStatus.PENDING] == []
    confirmed = [r for r in rows if r.status is storage.InterviewStatus.CONFIRMED]
    ours = [e for e in organizer_events(dt, ALEX) if e.get("transactionId")]
    # each confirmed booking is exactly two events: the panel's and the candidate's own
    assert sorted(e["id"] for e in ours) == sorted(
        [str(r.event_id) for r in confirmed] + [str(r.candidate_event_id) for r in confirmed]
    )
    for row in confirmed:
        assert [e["transactionId"] for e in ours if e["id"] == row.event_id] == [row.transaction_id]
        theirs = [e for e in ours if e["id"] == row.candidate_event_id]
        assert [e["transactionId"] for e in theirs] == [candidate_transaction_id(row.transaction_id)]
        assert [a["emailAddress"]["address"] for a in theirs[0]["attendees"]] == ["dana.smith@example.com"]
    at_slot = [e for e in organizer_events(dt, MEGAN) if to_utc(e["start"]) == parse_time(slot["start"])]
    assert len(at_slot) == len(confirmed) <= 1
    ok, _ = await _audit(settings)
    assert ok
    return rows


async def _wait_recovered(settings: BackendSettings) -> None:
    for _ in range(150):
        if not [r for r in await _rows(settings) if r.status is storage.InterviewStatus.PENDING]:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("start-up recovery left a pending booking")


async def _recovery_cli(env: dict[str, str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "calendar_backend",
        "recovery",
        "run",
        "--stale-min",
        "0",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out
    return out.decode()


@pytest.mark.parametrize(
    ("point", "outcome", "via"),
    [
        ("after_pending", "failed", "cli"),
        ("after_graph_create", "confirmed", "startup"),
        ("during_audit", "confirmed", "startup"),
        ("after_candidate_create", "confirmed", "cli"),
    ],
)
async def test_a_crash_at_each_step_is_recovered(
    devtenant: DevTenantHandle, tmp_path: Path, prepared: BackendSettings, point: str, outcome: str, via: str
) -> None:
    token = devtenant.mint_user_token(ALEX)
    async with aiohttp.ClientSession() as http:
        async with serve(_env(devtenant, prepared, tmp_path, crash_at=point), tmp_path) as svc:
            slot = await _slot(http, svc, token)
            with pytest.raises(aiohttp.ClientError):
                await _call(http, svc, "/v1/interviews", _booking(slot, "flow-1"), token)
            assert await svc.proc.wait() == 137
        pending = [r.status for r in await _rows(prepared)]
        assert pending == [storage.InterviewStatus.PENDING]
        env = _env(devtenant, prepared, tmp_path, recovery_stale_min="0", recovery_interval_s="0")
        if via == "cli":
            assert f'"{outcome}": 1' in await _recovery_cli(env)
        async with serve(env, tmp_path) as svc:
            await _wait_recovered(prepared)
            rows = await _assert_invariants(devtenant, prepared, slot)
            assert [r.status.value for r in rows] == [outcome]
            assert ("interview.recover", outcome) in (await _audit(prepared))[1]
            # The conversation resumes: the manager presses Confirm again (same idempotency key).
            status, doc = await _call(http, svc, "/v1/interviews", _booking(slot, "flow-1"), token)
            assert status == 201, doc
            assert doc["status"] == "confirmed"
            rows = await _assert_invariants(devtenant, prepared, slot)
    assert sum(r.status is storage.InterviewStatus.CONFIRMED for r in rows) == 1


async def test_a_retry_after_a_crash_finishes_the_booking_without_recovery(
    devtenant: DevTenantHandle, tmp_path: Path, prepared: BackendSettings
) -> None:
    """Before any reconciler runs, the retry itself finds the created event by transactionId."""
    token = devtenant.mint_user_token(ALEX)
    async with aiohttp.ClientSession() as http:
        env = _env(devtenant, prepared, tmp_path, crash_at="after_graph_create")
        async with serve(env, tmp_path) as svc:
            slot = await _slot(http, svc, token)
            with pytest.raises(aiohttp.ClientError):
                await _call(http, svc, "/v1/interviews", _booking(slot, "flow-2"), token)
        async with serve(_env(devtenant, prepared, tmp_path), tmp_path) as svc:
            status, doc = await _call(http, svc, "/v1/interviews", _booking(slot, "flow-2"), token)
    assert status == 201, doc
    rows = await _assert_invariants(devtenant, prepared, slot)
    assert [r.event_id for r in rows] == [doc["event_id"]]


async def test_the_bot_vanishing_mid_booking_still_books_once(
    devtenant: DevTenantHandle, tmp_path: Path
) -> None:
    async with running_stack(devtenant, tmp_path) as stack:
        start, end = next_week(datetime.now(UTC))
        status, doc = await stack.post(
            "/v1/slots/find",
            {
                "interviewers": [MEGAN],
                "duration_min": 30,
                "start": format_time(start),
                "end": format_time(end),
            },
            stack.token(),
        )
        slot = doc["slots"][4]
        faults(devtenant, latency_ms=250)
        request = asyncio.ensure_future(stack.post("/v1/interviews", _booking(slot, "flow-3"), stack.token()))
        await asyncio.sleep(0.4)
        request.cancel()  # the bot process died: its connection is gone
        await asyncio.gather(request, return_exceptions=True)
        await asyncio.sleep(1.5)
        faults(devtenant)
        status, doc = await stack.post("/v1/interviews", _booking(slot, "flow-3"), stack.token())
        assert status == 201, doc
        assert (
            len([e for e in organizer_events(devtenant, ALEX) if e.get("transactionId")]) == 2
        )  # the panel's and the candidate's
