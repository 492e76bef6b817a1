"""Kill the Calendar Service at each step of a loop booking (issue 17): after the reservation, after
the k-th session's events, before the loop's confirmation. After a restart with recovery, Outlook and
the database agree and no loop is partial: a confirmed loop has every session confirmed with its two
events; any other loop has no live session and no event in Outlook.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from calendar_backend import storage
from calendar_backend.contract import format_time, parse_time
from calendar_backend.settings import BackendSettings
from tests.devtenant.fixtures import DevTenantHandle
from tests.reliability.conftest import organizer_events
from tests.reliability.test_crash import (  # noqa: F401  (the fixture)
    MEGAN,
    _audit,
    _call,
    _env,
    _recovery_cli,
    _rows,
    prepared,
    serve,
)
from tests.service.conftest import ALEX, next_week

DIEGO = "diegos@contoso.example"
PANELS = [[MEGAN], [DIEGO]]


async def _starts(http: aiohttp.ClientSession, svc: Any, token: str, person: str) -> set[datetime]:
    start, end = next_week(datetime.now(UTC))
    body = {
        "interviewers": [person],
        "duration_min": 30,
        "start": format_time(start),
        "end": format_time(end),
    }
    status, doc = await _call(http, svc, "/v1/slots/find", {**body, "all": True, "limit": 500}, token)
    assert status == 200, doc
    return {parse_time(s["start"]) for s in doc["slots"]}


def loop_body(start: datetime, txn: str) -> dict[str, Any]:
    half = timedelta(minutes=30)
    return {
        "template": {
            "name": "Onsite",
            "sessions": [{"title": f"S{k}", "minutes": 30, "interviewers": p} for k, p in enumerate(PANELS)],
        },
        "sessions": [
            {"index": k, "start": format_time(start + k * half), "end": format_time(start + (k + 1) * half)}
            for k in range(len(PANELS))
        ],
        "candidate": {"name": "Dana Smith", "email": "dana.smith@example.com"},
        "transaction_id": txn,
    }


async def _loops(settings: BackendSettings) -> list[str]:
    engine = storage.create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            return [r.status for r in await conn.execute(storage.loops.select())]
    finally:
        await engine.dispose()


async def _assert_whole(dt: DevTenantHandle, settings: BackendSettings) -> list[storage.InterviewRow]:
    rows = await _rows(settings)
    assert [r for r in rows if r.status is storage.InterviewStatus.PENDING] == []
    confirmed = [r for r in rows if r.status is storage.InterviewStatus.CONFIRMED]
    live = sorted(e["id"] for e in organizer_events(dt, ALEX) if e.get("transactionId"))
    assert live == sorted(
        [str(r.event_id) for r in confirmed] + [str(r.candidate_event_id) for r in confirmed]
    )
    loops = await _loops(settings)
    assert "pending" not in loops
    if loops == ["confirmed"]:
        assert len(confirmed) == len(PANELS)
    else:
        assert confirmed == []  # no partial loop
    ok, _ = await _audit(settings)
    assert ok
    return rows


@pytest.mark.parametrize(
    ("point", "outcome"),
    [
        ("loop_after_reserve", "failed"),
        ("after_graph_create", "failed"),  # the first session's panel event written, not its candidate's
        ("after_candidate_create", "failed"),  # both of its events written, the row still pending
        ("loop_after_session_1", "failed"),
        ("loop_after_session_2", "confirmed"),
        ("loop_before_confirm", "confirmed"),
    ],
)
async def test_a_crash_at_each_loop_step_is_recovered(
    devtenant: DevTenantHandle, tmp_path: Path, prepared: BackendSettings, point: str, outcome: str
) -> None:
    token = devtenant.mint_user_token(ALEX)
    async with aiohttp.ClientSession() as http:
        async with serve(_env(devtenant, prepared, tmp_path, crash_at=point), tmp_path) as svc:
            frees = [await _starts(http, svc, token, p[0]) for p in PANELS]
            start = min(t for t in frees[0] if t + timedelta(minutes=30) in frees[1])
            with pytest.raises(aiohttp.ClientError):
                await _call(http, svc, "/v1/loops", loop_body(start, "loop-crash"), token)
            assert await svc.proc.wait() == 137
        assert await _loops(prepared) == ["pending"]
        env = _env(devtenant, prepared, tmp_path, recovery_stale_min="0", recovery_interval_s="0")
        out = await _recovery_cli(env)
        assert ("loops_confirmed" if outcome == "confirmed" else "loops_withdrawn") in out
    await _assert_whole(devtenant, prepared)
    assert await _loops(prepared) == [outcome]


async def test_a_retry_after_a_crash_finishes_the_loop_without_recovery(
    devtenant: DevTenantHandle, tmp_path: Path, prepared: BackendSettings
) -> None:
    """The manager presses Book again (same transaction id) before any reconciler ran: the
    sessions already written are found by their transactionIds, the rest written, the loop whole."""
    token = devtenant.mint_user_token(ALEX)
    async with aiohttp.ClientSession() as http:
        env = _env(devtenant, prepared, tmp_path, crash_at="loop_after_session_1")
        async with serve(env, tmp_path) as svc:
            frees = [await _starts(http, svc, token, p[0]) for p in PANELS]
            start = min(t for t in frees[0] if t + timedelta(minutes=30) in frees[1])
            with pytest.raises(aiohttp.ClientError):
                await _call(http, svc, "/v1/loops", loop_body(start, "loop-retry"), token)
        async with serve(_env(devtenant, prepared, tmp_path), tmp_path) as svc:
            status, doc = await _call(http, svc, "/v1/loops", loop_body(start, "loop-retry"), token)
    assert status == 201, doc
    assert doc["status"] == "confirmed"
    rows = await _assert_whole(devtenant, prepared)
    assert sorted(str(r.event_id) for r in rows) == sorted(s["event_id"] for s in doc["sessions"])
