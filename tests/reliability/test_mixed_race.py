"""Fifty parallel, mixed book/reschedule requests on overlapping times (issue 12 finding 3), on
SQLite and on PostgreSQL.

Managers book new interviews, move booked ones and cancel a few of them; candidates book open
links and move their booked ones; all aim at four overlapping 30-minute times (15 minutes apart)
of two interviewers, some panels holding both. Afterwards: no 5xx; in each interviewer's
calendar no two OpenSlot events overlap; the database's confirmed interviews are exactly the
organizer's OpenSlot events in Outlook, at the same times; nothing is left pending; the audit
chain verifies.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from calendar_backend import storage
from calendar_backend.audit import verify_audit
from calendar_backend.contract import format_time, parse_time
from calendar_backend.keyring import load_keyring
from devtenant.zones import to_utc
from tests.devtenant.fixtures import DevTenantHandle
from tests.reliability.conftest import organizer_events, running_stack
from tests.service.conftest import ALEX, Stack, next_week

MEGAN = "meganb@contoso.example"
DIEGO = "diegos@contoso.example"
PANELS = ([MEGAN], [DIEGO], [MEGAN, DIEGO])
REQUESTS = 50
MINUTES = 30
Span = tuple[datetime, datetime]
OURS = ("Interview: New ", "Interview: Pre ", "Interview: Link ")  # this test's candidates


def _slot(start: datetime) -> dict[str, str]:
    return {"start": format_time(start), "end": format_time(start + timedelta(minutes=MINUTES))}


async def _free_starts(stack: Stack) -> list[datetime]:
    start, end = next_week(datetime.now(UTC))
    status, doc = await stack.post(
        "/v1/slots/find",
        {
            "interviewers": [MEGAN, DIEGO],
            "duration_min": MINUTES,
            "start": format_time(start),
            "end": format_time(end),
            "all": True,
            "limit": 500,
        },
        stack.token(),
    )
    assert status == 200, doc
    return sorted(parse_time(s["start"]) for s in doc["slots"])


def _targets_and_others(free: list[datetime]) -> tuple[list[datetime], list[datetime]]:
    """Four overlapping targets (free for both) and spread-out other free times, far from them."""
    have = set(free)
    base = next(t for t in free if all(t + timedelta(minutes=15 * k) in have for k in range(4)))
    targets = [base + timedelta(minutes=15 * k) for k in range(4)]
    others: list[datetime] = []
    for t in free:
        far = abs(t - base) > timedelta(hours=3)
        if far and all(abs(t - o) >= timedelta(hours=1) for o in others):
            others.append(t)
    return targets, others


async def _offer(stack: Stack, people: list[str], n: int) -> str:
    start, end = next_week(datetime.now(UTC))
    status, doc = await stack.post(
        "/v1/offers",
        {
            "interviewers": people,
            "duration_min": MINUTES,
            "window_start": format_time(start),
            "window_end": format_time(end),
            "candidate_name": f"Link {n}",
            "candidate_email": f"link{n}@example.com",
        },
        stack.token(),
    )
    assert status == 201, doc
    return str(doc["url"]).rsplit("/c/", 1)[1]


async def _setup(stack: Stack) -> tuple[list[datetime], list[str], list[str], list[str]]:
    """Targets, booked manager interviews, booked links and open links."""
    targets, others = _targets_and_others(await _free_starts(stack))
    spare = iter(others)
    interviews = []
    for n in range(6):
        body = {
            "candidate": {"name": f"Pre {n}", "email": f"pre{n}@example.com"},
            "interviewers": PANELS[n % 2],
            **_slot(next(spare)),
            "idempotency_key": f"pre-{n}",
        }
        status, doc = await stack.post("/v1/interviews", body, stack.token())
        assert status == 201, doc
        interviews.append(str(doc["id"]))
    booked_links = []
    for n in range(3):
        token = await _offer(stack, PANELS[n % 2], n)
        status, doc = await stack.post(
            "/v1/candidate/book", {"token": token, "start": _slot(next(spare))["start"]}
        )
        assert status == 201, doc
        booked_links.append(token)
    open_links = [await _offer(stack, PANELS[n % 3], 10 + n) for n in range(3)]
    return targets, interviews, booked_links, open_links


def _calls(
    stack: Stack, targets: list[datetime], interviews: list[str], booked: list[str], open_links: list[str]
) -> list[Any]:
    rng = random.Random(12)  # a fixed, reproducible mix
    calls: list[Any] = []
    for i in range(REQUESTS):
        slot = _slot(rng.choice(targets))
        kind = i % 5
        if i % 10 == 9:  # a cancel racing the moves of the same interviews
            calls.append(stack.post(f"/v1/interviews/{rng.choice(interviews)}/cancel", {}, stack.token()))
        elif kind in (0, 1):
            body = {
                "candidate": {"name": f"New {i}", "email": f"new{i}@example.com"},
                "interviewers": rng.choice(PANELS),
                **slot,
                "idempotency_key": f"race-{i}",
            }
            calls.append(stack.post("/v1/interviews", body, stack.token()))
        elif kind == 2:
            calls.append(
                stack.post(f"/v1/interviews/{rng.choice(interviews)}/reschedule", slot, stack.token())
            )
        elif kind == 3:
            calls.append(
                stack.post("/v1/candidate/reschedule", {"token": rng.choice(booked), "start": slot["start"]})
            )
        else:
            calls.append(
                stack.post("/v1/candidate/book", {"token": rng.choice(open_links), "start": slot["start"]})
            )
    return calls


def _openslot_events(stack: Stack, mailbox: str) -> list[dict[str, Any]]:
    return [
        e for e in organizer_events(stack.devtenant, mailbox) if str(e.get("subject", "")).startswith(OURS)
    ]


async def _check(stack: Stack, results: list[tuple[int, Any]]) -> None:
    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 201, 409}, [r for r in results if r[0] >= 500][:3]
    assert any(s in {200, 201} for s in statuses)
    print("statuses:", sorted(statuses))  # noqa: T201 - shown with -s
    for mailbox in (MEGAN, DIEGO):
        spans = sorted((to_utc(e["start"]), to_utc(e["end"])) for e in _openslot_events(stack, mailbox))
        clashes = [(a, b) for a, b in itertools.pairwise(spans) if b[0] < a[1]]
        assert not clashes, f"{mailbox} double-booked: {clashes}"
    outlook = {(e["id"], to_utc(e["start"]), to_utc(e["end"])) for e in _openslot_events(stack, ALEX)}
    async with stack.runtime.store.transaction() as tx:
        rows = [storage.interview_row(r) for r in await tx.execute(sa.select(storage.interviews))]
    live = [r for r in rows if r.status is storage.InterviewStatus.CONFIRMED]
    # each booking is the panel's event and the candidate's own, both at the booked time
    confirmed = {(r.event_id, r.start, r.end) for r in live} | {
        (r.candidate_event_id, r.start, r.end) for r in live
    }
    assert confirmed == outlook
    assert not [r for r in rows if r.status is storage.InterviewStatus.PENDING]
    ring = load_keyring(stack.settings.key_file)
    async with stack.runtime.store.engine.connect() as conn:
        report = await verify_audit(conn, signing_key=dict(ring.signing))
    assert report.ok, report


async def _race(stack: Stack) -> None:
    targets, interviews, booked, open_links = await _setup(stack)
    results = await asyncio.gather(*_calls(stack, targets, interviews, booked, open_links))
    await _check(stack, list(results))


async def test_fifty_mixed_bookings_and_moves_on_sqlite(devtenant: DevTenantHandle, tmp_path: Path) -> None:
    async with running_stack(devtenant, tmp_path) as stack:
        await _race(stack)


@pytest.mark.postgres
async def test_fifty_mixed_bookings_and_moves_on_postgres(
    devtenant: DevTenantHandle, tmp_path: Path, fresh_pg_url: str
) -> None:
    async with running_stack(devtenant, tmp_path, fresh_pg_url) as stack:
        await _race(stack)
