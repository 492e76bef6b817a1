"""`python -m bench --only watcher`: the drift watcher against devtenant, 200 random changes.

The real Calendar Service (served on 127.0.0.1 so devtenant can post notifications to it) books
``CHANGES`` interviews of one interviewer each through its API, watches them (subscriptions per
mailbox), then devtenant's test controls make one random change per interview: a decline (half
of them with "Do not send a response"), a move by the organizer, a delete, or a new meeting of the
interviewer at the interview's time. devtenant drops ``DROP_RATE`` of the notifications (seeded);
the watcher's worker drains what arrives and its sweep runs every ``SWEEP_S`` seconds.

A change is *caught* when a drift row of its interview and kind exists; its latency is from the
change to the drift row. ``subjects_read`` counts devtenant's logged event reads whose ``$select``
is missing or names subject/body. The last line is
``watcher caught=<n>/<N> p95_s=<x> subjects_read=<n>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import requests
from aiohttp import web

from bench.stack import (
    ORGANIZER,
    DevTenantThread,
    calendar_app,
    grown_tenant,
    service_settings,
    start_devtenant,
)
from calendar_backend.app import SERVICE_KEY
from calendar_backend.contract import format_time, parse_time
from calendar_backend.storage import watch as store_watch
from calendar_backend.watch import Watcher
from devtenant.app import bind_socket

CHANGES = 200
DROP_RATE = 0.3
SWEEP_S = 10.0
KINDS = ("declined", "declined_silent", "moved", "deleted", "conflict")


@dataclass(frozen=True)
class Change:
    interview: str
    kind: str  # the drift kind expected
    at: datetime


@dataclass(frozen=True)
class WatcherFigures:
    caught: int
    total: int
    p95_s: float
    subjects_read: int
    dropped_notifications: int
    sweeps: int

    def line(self) -> str:
        return (
            f"watcher caught={self.caught}/{self.total} p95_s={self.p95_s:.2f} "
            f"subjects_read={self.subjects_read}"
        )


def _control(dt: DevTenantThread, method: str, path: str, body: Any = None) -> Any:
    with requests.Session() as s:
        s.trust_env = False
        s.verify = str(dt.ca_path)
        response = s.request(method, f"{dt.base_url}/_devtenant/{path}", json=body, timeout=60)
        response.raise_for_status()
        return response.json()


async def _book(
    http: aiohttp.ClientSession, url: str, token: str, person: str, lo: datetime
) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    find = {
        "interviewers": [person],
        "duration_min": 30,
        "start": format_time(lo),
        "end": format_time(lo + timedelta(days=14)),
        "limit": 1,
    }
    async with http.post(f"{url}/v1/slots/find", json=find, headers=auth) as resp:
        doc = await resp.json()
    if not doc.get("slots"):
        raise RuntimeError(f"no slot for an interviewer: {doc.get('blockers') or doc.get('error')}")
    slot = doc["slots"][0]
    body = {
        "interviewers": [person],
        "start": slot["start"],
        "end": slot["end"],
        "candidate": {"name": "Dana Smith", "email": f"dana.{uuid.uuid4().hex[:8]}@example.com"},
        "idempotency_key": f"watch-{uuid.uuid4().hex[:16]}",
    }
    async with http.post(f"{url}/v1/interviews", json=body, headers=auth) as resp:
        made = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"booking failed: {resp.status} {made.get('error')}")
        return dict(made)


async def _change(dt: DevTenantThread, watcher: Watcher, row: dict[str, Any], kind: str) -> Change:
    copies = await watcher.copies(row["id"])
    person = row["attendees"][0].lower()
    call: tuple[str, str, dict[str, Any]]
    if kind.startswith("declined"):
        body: dict[str, Any] = {"response": "declined", "sendResponse": kind == "declined"}
        call = ("POST", f"mailboxes/{person}/events/{copies[person]}/respond", body)
    elif kind == "moved":
        hours = timedelta(hours=random.choice((1, 2, 3, 24)))
        later = {k: format_time(parse_time(row[k]) + hours) for k in ("start", "end")}
        call = ("POST", f"mailboxes/{ORGANIZER}/events/{copies[ORGANIZER]}/move", later)
    elif kind == "deleted":
        call = ("POST", f"mailboxes/{ORGANIZER}/events/{copies[ORGANIZER]}/delete", {})
    else:
        call = (
            "POST",
            f"mailboxes/{person}/events",
            {"start": row["start"], "end": row["end"], "showAs": "busy"},
        )
    at = datetime.now(UTC)
    await asyncio.to_thread(_control, dt, *call)
    return Change(row["id"], "declined" if kind.startswith("declined") else kind, at)


async def run(tmp: Path, changes: int = CHANGES, seed: int = 19) -> WatcherFigures:
    """Book, watch, change, wait (at most 2 sweeps after the last change), count."""
    rng = random.Random(seed)
    random.seed(seed)
    tenant, upns = grown_tenant(60)
    dt = start_devtenant(tenant, tmp / "devtenant")
    try:
        settings = service_settings(dt, tmp / "service")
        async with calendar_app(dt, settings) as (_rt, app):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            sock = bind_socket("127.0.0.1", 0)
            await web.SockSite(runner, sock).start()
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            try:
                return await _measure(dt, app[SERVICE_KEY].watch, url, upns, changes, rng)
            finally:
                await runner.cleanup()
    finally:
        dt.stop()


async def _book_all(dt: DevTenantThread, url: str, upns: list[str], count: int) -> list[dict[str, Any]]:
    """Book ``count`` interviews of one interviewer each (people the organizer may not read skipped)."""
    lo = (datetime.now(UTC) + timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    token = dt.user_token()
    booked: list[dict[str, Any]] = []
    refused: set[str] = set()  # the sample's sharing: some calendars are not readable by the organizer
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        i = 0
        while len(booked) < count and len(refused) < len(upns):
            person = upns[i % len(upns)]
            i += 1
            if person in refused:
                continue
            try:
                booked.append(await _book(http, url, token, person, lo))
            except RuntimeError:
                refused.add(person)
    return booked


async def _watched(watcher: Watcher, booked: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The first ``n`` booked interviews the watcher watches (organizer and interviewer copies):
    a mailbox the app-only token may not read (access policy) is not watched."""
    await watcher.ensure()
    watched = []
    for row in booked:
        if {ORGANIZER, row["attendees"][0].lower()} <= set(await watcher.copies(row["id"])):
            watched.append(row)
    print(f"booked {len(booked)} interviews, {len(watched)} watched (the rest: mailbox gate / policy)")
    return watched[:n]


async def _measure(
    dt: DevTenantThread, watcher: Watcher, url: str, upns: list[str], n: int, rng: random.Random
) -> WatcherFigures:
    watcher.config = dataclasses.replace(
        watcher.config,
        notification_url=f"{url}/v1/watch/notifications",
        dev=True,
        near=timedelta(days=30),
        sweep_every=timedelta(seconds=SWEEP_S),
    )
    await asyncio.to_thread(_control, dt, "PUT", "subscriptions/delivery", {"allow_http": True})
    booked = await _watched(watcher, await _book_all(dt, url, upns, n + n // 10 + 5), n)
    plan = {"drop_rate": DROP_RATE, "seed": rng.randrange(1 << 30)}
    await asyncio.to_thread(_control, dt, "PUT", "subscriptions/delivery", plan)
    sweeps = 0

    async def sweeping() -> None:
        nonlocal sweeps
        while True:
            await asyncio.sleep(SWEEP_S)
            await watcher.sweep()
            sweeps += 1

    tasks = [asyncio.create_task(watcher.run_worker(idle_s=0.5)), asyncio.create_task(sweeping())]
    made: list[Change] = []
    try:
        for row in rng.sample(booked, len(booked)):
            made.append(await _change(dt, watcher, row, rng.choice(KINDS)))
        deadline = time.monotonic() + 2 * SWEEP_S + 5
        while time.monotonic() < deadline:
            if len(_caught(made, await _drift(watcher))) == len(made):
                break
            await asyncio.sleep(0.25)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    caught = _caught(made, await _drift(watcher))
    latencies = sorted(caught.values())
    p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) >= 2 else sum(latencies)
    reads = list(dt.tenant.read_log)
    leaky = sum(
        1 for r in reads if r["select"] is None or {"subject", "body", "bodyPreview"} & set(r["select"])
    )
    return WatcherFigures(len(caught), len(made), max(0.0, p95), leaky, watcher.stats.dropped, sweeps)


async def _drift(watcher: Watcher) -> list[store_watch.DriftRow]:
    return await watcher.drift_rows()


def _caught(made: list[Change], rows: list[store_watch.DriftRow]) -> dict[int, float]:
    """Change index -> seconds from the change to its drift row."""
    first: dict[tuple[str, str], datetime] = {}
    for d in rows:
        key = (d.interview_id, d.kind)
        first[key] = min(first.get(key, d.detected_at), d.detected_at)
    return {
        i: max(0.0, (first[(c.interview, c.kind)] - c.at).total_seconds())
        for i, c in enumerate(made)
        if (c.interview, c.kind) in first
    }
