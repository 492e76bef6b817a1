"""No double booking (security.md requirement 23), on SQLite and on PostgreSQL.

Fifty concurrent attempts at one interviewer's slot: 49 from ten hiring managers (each with their own
token and idempotency keys) and one from a candidate link. Exactly one wins (201); the other 49 get
409 `slot_taken`, the managers' answers with fresh options that avoid the taken time. devtenant then
holds exactly one event at that time, the store one live booking, and the audit chain verifies.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from calendar_backend import storage
from calendar_backend.audit import verify_audit
from calendar_backend.contract import format_time, parse_time
from calendar_backend.keyring import load_keyring
from devtenant.zones import to_utc
from tests.devtenant.fixtures import DevTenantHandle
from tests.reliability.conftest import organizer_events, running_stack
from tests.service.conftest import ALEX, Stack, next_week

ATTEMPTS = 50
INTERVIEWER = "meganb@contoso.example"


def _managers(dt: DevTenantHandle, n: int) -> list[str]:
    return [
        str(u["mail"])
        for u in dt.tenant.users()
        if u.get("accountEnabled", True)
        and u.get("hasMailbox", True)
        and u.get("mail")
        and u["mail"] != INTERVIEWER
    ][:n]


async def _free_slot(stack: Stack) -> dict[str, str]:
    start, end = next_week(datetime.now(UTC))
    status, doc = await stack.post(
        "/v1/slots/find",
        {
            "interviewers": [INTERVIEWER],
            "duration_min": 30,
            "start": format_time(start),
            "end": format_time(end),
        },
        stack.token(),
    )
    assert status == 200, doc
    return doc["slots"][0]  # type: ignore[no-any-return]


async def _candidate_link(stack: Stack, slot: dict[str, str]) -> str:
    start = parse_time(slot["start"])
    status, offer = await stack.post(
        "/v1/offers",
        {
            "interviewers": [INTERVIEWER],
            "duration_min": 30,
            "window_start": slot["start"],
            "window_end": format_time(start + timedelta(hours=2)),
            "candidate_name": "Sam Lee",
            "candidate_email": "sam.lee@example.com",
        },
        stack.token(ALEX),
    )
    assert status == 201, offer
    return str(offer["url"]).rsplit("/", 1)[-1]


async def _attempt(
    stack: Stack, manager: str, slot: dict[str, str], i: int, token: str
) -> tuple[str, int, Any]:
    body = {
        "candidate": {"name": f"Candidate {i}", "email": f"cand{i}@example.com"},
        "interviewers": [INTERVIEWER],
        "start": slot["start"],
        "end": slot["end"],
        "idempotency_key": f"race-{i}",
    }
    status, doc = await stack.post("/v1/interviews", body, token)
    return "manager", status, doc


async def _candidate(stack: Stack, capability: str, slot: dict[str, str]) -> tuple[str, int, Any]:
    status, doc = await stack.post("/v1/candidate/book", {"token": capability, "start": slot["start"]})
    return "candidate", status, doc


async def _race(stack: Stack) -> tuple[dict[str, str], list[tuple[str, int, Any]]]:
    managers = _managers(stack.devtenant, 10)
    tokens = {m: stack.token(m) for m in managers}
    slot = await _free_slot(stack)
    capability = await _candidate_link(stack, slot)
    calls = [
        _attempt(stack, managers[i % len(managers)], slot, i, tokens[managers[i % len(managers)]])
        for i in range(ATTEMPTS - 1)
    ]
    calls.insert(ATTEMPTS // 2, _candidate(stack, capability, slot))
    return slot, list(await asyncio.gather(*calls))


async def _check(stack: Stack, slot: dict[str, str], results: list[tuple[str, int, Any]]) -> None:
    statuses = sorted(status for _, status, _ in results)
    assert statuses == [201] + [409] * (ATTEMPTS - 1), [r for r in results if r[1] not in (201, 409)][:3]
    losers = [(who, doc) for who, status, doc in results if status == 409]
    assert {doc["error"] for _, doc in losers} == {"slot_taken"}
    taken = (parse_time(slot["start"]), parse_time(slot["end"]))
    offered = [s for who, doc in losers if who == "manager" for s in doc["fresh"]["slots"]]
    assert offered, "the managers who lost get fresh options"
    assert all(not (parse_time(s["start"]) < taken[1] and taken[0] < parse_time(s["end"])) for s in offered)
    events = [e for e in organizer_events(stack.devtenant, INTERVIEWER) if to_utc(e["start"]) == taken[0]]
    assert len(events) == 1
    async with stack.runtime.store.transaction() as tx:
        live = await storage.find_conflicts(tx, stack.devtenant.tenant_id, [INTERVIEWER], *taken)
    assert [r.status for r in live] == [storage.InterviewStatus.CONFIRMED]
    organizer_copy = [
        e for e in organizer_events(stack.devtenant, live[0].organizer_upn) if to_utc(e["start"]) == taken[0]
    ]
    assert sorted(e["id"] for e in organizer_copy) == sorted(  # the panel's, the candidate's
        [live[0].event_id, live[0].candidate_event_id]
    )
    ring = load_keyring(stack.settings.key_file)
    async with stack.runtime.store.engine.connect() as conn:
        report = await verify_audit(conn, signing_key=dict(ring.signing))
    assert report.ok, report


async def test_fifty_concurrent_bookings_one_wins_on_sqlite(
    devtenant: DevTenantHandle, tmp_path: Path
) -> None:
    async with running_stack(devtenant, tmp_path) as stack:
        slot, results = await _race(stack)
        await _check(stack, slot, results)


@pytest.mark.postgres
async def test_fifty_concurrent_bookings_one_wins_on_postgres(
    devtenant: DevTenantHandle, tmp_path: Path, fresh_pg_url: str
) -> None:
    async with running_stack(devtenant, tmp_path, fresh_pg_url) as stack:
        slot, results = await _race(stack)
        await _check(stack, slot, results)
