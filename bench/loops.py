"""Loop search benchmark (issue 17): the loop engine alone, and with the availability read from devtenant.

Workload (seeded, deterministic): a 4-session onsite (Intro 30 min -> System design 60 -> Coding 60 ->
Values 45) with order constraints (Intro first, Values last, the middle two in either order), breaks of
0-15 minutes, one day, a panel of 6 interviewers over 3 zones (two each in America/Los_Angeles,
America/New_York and Europe/London, working 08:00-18:00 Monday-Friday), each session with its own
panel of two and any of 2 rooms. Every person and room has ``EVENTS_PER_MAILBOX`` timed busy events
of 15-60 minutes placed at random over the ``HORIZON_DAYS`` calendar horizon; the search window is the
5 working days in the middle of it, and the engine is asked for the top ``K`` loops.

- *engine*: per-mailbox free time (``availability.free_time``, as the Calendar Service computes it)
  plus :func:`calendar_backend.loops.find_loops`, p50/p95 over ``ENGINE_RUNS`` calls.
- *round trip*: the same mailboxes served by devtenant (events written into a copy of the sample
  tenant) with 100 ms added to every Graph request; one sample = ``POST /v1/loops/search`` answered
  by the real Calendar Service (``template_json``: the same loop as a template): lock 1 (token),
  lock 3 (schema), lock 2 (tenant credential), the mailbox gate for every person and room (the room
  list it checks rooms against is reused for a minute, like the allow-list's groups: warm here, as
  after the warm-up search; a cold one costs one more Graph round trip), the on-behalf-of token
  (fetched while the gate decides), ONE availability read (default source getSchedule: one
  request for up to 20 mailboxes; ``calendar_view`` is measured too) alongside the manager's
  mailbox zone, free time, the loop engine and the audit row. The floor is one direct
  ``getSchedule`` round trip for the same mailboxes, sampled alternately.

*pooled* (issue 18): the same loop with each session's panel "2 from a pool of ``POOL_SIZE``" (four
pools of 10 further people over the same 3 zones, their own ``EVENTS_PER_MAILBOX`` busy events each,
a few interviews already booked for some members): the search reads the pools and loads, every
member through the gate and the one availability read (48 mailboxes), the engine with the seats,
then picks members on the top candidates (`calendar_backend.loop_pools`).

Last line: ``loops p95_ms=<end-to-end p95> options=<k found> floor_ratio=<median wall / median floor>``.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as wall
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from bench.stack import ORGANIZER, SAMPLE, calendar_runtime, start_devtenant
from calendar_backend import storage
from calendar_backend.availability import (
    BusyBlock,
    BusyRules,
    PersonAvailability,
    ShowAs,
    SlotQuery,
    WorkingHours,
    free_time,
)
from calendar_backend.graph import schedule_body
from calendar_backend.loops import LoopResult, LoopSpec, Session, find_loops
from calendar_backend.pools import Member, Pool
from calendar_backend.runtime import Runtime
from calendar_backend.slots import Interval
from devtenant.tenant import tenant_from_dict

K = 5
EVENTS_PER_MAILBOX = 200
HORIZON_DAYS = 28
ENGINE_RUNS = 40
TRIP_RUNS = 15
LATENCY_MS = 100
ZONES = ("America/Los_Angeles", "America/New_York", "Europe/London")
HORIZON_START = datetime(2027, 1, 4, tzinfo=UTC)  # a Monday; the window is the next week's Mon-Fri
WINDOW = Interval(HORIZON_START + timedelta(days=7), HORIZON_START + timedelta(days=12))
PEOPLE = tuple(f"loop{i}@contoso.example" for i in range(6))
ROOMS = ("loopa@contoso.example", "loopb@contoso.example")
RULES = BusyRules()
POOL_SIZE = 10
POOL_NAMES = tuple(f"Bench pool {k}" for k in range(4))
POOLS = {
    name: tuple(f"pool{k}m{i}@contoso.example" for i in range(POOL_SIZE)) for k, name in enumerate(POOL_NAMES)
}
POOL_PEOPLE = tuple(a for members in POOLS.values() for a in members)


def pool_zone(address: str) -> str:
    """A pool member's zone (round-robin over ``ZONES``)."""
    return ZONES[POOL_PEOPLE.index(address) % len(ZONES)]


def loop_spec(window: Interval = WINDOW) -> LoopSpec:
    """The benchmark loop: Intro first, Values last, design and coding in either order.

    Panels run west with the day: London with New York first, then New York with Los Angeles.
    """
    p = PEOPLE
    sessions = (
        Session("Intro", timedelta(minutes=30), (p[4], p[2]), ROOMS),
        Session("System design", timedelta(minutes=60), (p[5], p[3]), ROOMS),
        Session("Coding", timedelta(minutes=60), (p[2], p[0]), ROOMS),
        Session("Values", timedelta(minutes=45), (p[1], p[3]), ROOMS),
    )
    before = frozenset({(0, 1), (0, 2), (0, 3), (1, 3), (2, 3)})
    return LoopSpec(
        sessions,
        zone=ZoneInfo("America/New_York"),
        window=window,
        not_before=window.start,
        fixed_order=False,
        before=before,
        min_break=timedelta(0),
        max_break=timedelta(minutes=15),
        candidate_zone=ZoneInfo("America/New_York"),
    )


def _events(rng: random.Random) -> list[Interval]:
    found = []
    for _ in range(EVENTS_PER_MAILBOX):
        start = HORIZON_START + timedelta(minutes=15 * rng.randrange(HORIZON_DAYS * 24 * 4))
        found.append(Interval(start, start + timedelta(minutes=15 * rng.randint(1, 4))))
    return found


def _hours(mailbox: str) -> WorkingHours:
    if mailbox in ROOMS:
        return WorkingHours(frozenset(range(7)), wall(0), wall(0), ZoneInfo("UTC"))
    zone = ZoneInfo(ZONES[PEOPLE.index(mailbox) // 2])
    return WorkingHours(frozenset(range(5)), wall(8), wall(18), zone)


def calendars(seed: int = 17) -> dict[str, list[Interval]]:
    """Every mailbox's busy events (deterministic)."""
    rng = random.Random(seed)
    return {m: _events(rng) for m in (*PEOPLE, *ROOMS)}


def pool_calendars(seed: int = 18) -> dict[str, list[Interval]]:
    """The pool members' busy events (deterministic; the main case's calendars are untouched)."""
    rng = random.Random(seed)
    return {m: _events(rng) for m in POOL_PEOPLE}


def _query(window: Interval) -> SlotQuery:
    return SlotQuery(window, timedelta(minutes=15), timedelta(minutes=15), window.start)


def search(people: list[PersonAvailability], spec: LoopSpec) -> LoopResult:
    """What a loop search runs once availability is read: free time per mailbox, then the engine."""
    query = _query(spec.window)
    free = {p.mailbox: free_time(p, query, RULES) for p in people}
    return find_loops(spec, free, K)


def availabilities() -> list[PersonAvailability]:
    """The workload as the engine's input (what the Graph read yields)."""
    return [
        PersonAvailability(m, _hours(m), tuple(BusyBlock(e, ShowAs.BUSY) for e in events))
        for m, events in calendars().items()
    ]


def _p95(samples: list[float]) -> float:
    if len(samples) < 2:
        return max(samples)
    return statistics.quantiles(samples, n=20, method="inclusive")[-1]


@dataclass(frozen=True, slots=True)
class EngineFigures:
    """Seconds per engine call and the result's size."""

    p50_s: float
    p95_s: float
    options: int
    runs: int


def measure_engine(runs: int = ENGINE_RUNS) -> EngineFigures:
    """p50/p95 of free time + loop search on the fixed workload (one warm-up call)."""
    people, spec = availabilities(), loop_spec()
    result = search(people, spec)
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        search(people, spec)
        samples.append(time.perf_counter() - began)
    return EngineFigures(statistics.median(samples), _p95(samples), len(result.schedules), runs)


# ---- the round trip through devtenant --------------------------------------------------------------


def _graph_event(template: dict[str, Any], mailbox: str, n: int, span: Interval) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(json.dumps(template))
    event.update(
        {
            "id": f"loopbench-{mailbox.split('@')[0]}-{n}",
            "iCalUId": f"loopbench-{mailbox.split('@')[0]}-{n}",
            "subject": "Busy",
            "type": "singleInstance",
            "recurrence": None,
            "seriesMasterId": None,
            "showAs": "busy",
            "isAllDay": False,
            "isCancelled": False,
            "start": {"dateTime": span.start.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"},
            "end": {"dateTime": span.end.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"},
            "originalStartTimeZone": "UTC",
            "originalEndTimeZone": "UTC",
            "responseStatus": {"response": "accepted", "time": "0001-01-01T00:00:00Z"},
            "attendees": [],
            "location": {"displayName": "", "locationType": "default"},
            "locations": [],
        }
    )
    event.pop("seriesMasterId", None)
    return event


_WINDOWS_ZONE = {
    "America/Los_Angeles": "Pacific Standard Time",
    "America/New_York": "Eastern Standard Time",
    "Europe/London": "GMT Standard Time",
}


def bench_tenant_doc(pooled: bool = False) -> dict[str, Any]:
    """The sample tenant with the benchmark's 6 people and 2 rooms added (ids and events generated);
    ``pooled``: the 40 pool members too."""
    raw: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    events = {**calendars(), **(pool_calendars() if pooled else {})}
    staff = next(u for u in raw["users"] if u.get("events") and u["userPrincipalName"] != ORGANIZER)
    template = next(e for e in staff["events"] if not e.get("recurrence"))
    group = next(g for g in raw["groups"] if g["mail"].startswith("schedulable@"))
    for i, upn in enumerate((*PEOPLE, *(POOL_PEOPLE if pooled else ()))):
        person = json.loads(json.dumps(staff))
        person["id"] = f"00000000-0000-4000-8000-0000000017{i:02d}"
        person["userPrincipalName"] = person["mail"] = upn
        person["displayName"] = f"Loop Person {i}"
        settings = person.setdefault("mailboxSettings", {})
        zone = _WINDOWS_ZONE[ZONES[i // 2] if upn in PEOPLE else pool_zone(upn)]
        settings["timeZone"] = zone
        hours = settings.setdefault("workingHours", {})
        hours.update(
            {
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "startTime": "08:00:00.0000000",
                "endTime": "18:00:00.0000000",
                "timeZone": {"name": zone},
            }
        )
        person["events"] = [_graph_event(template, upn, n, s) for n, s in enumerate(events[upn])]
        raw["users"].append(person)
        group["members"].append(person["id"])
    room_template = raw["rooms"][0]
    for i, address in enumerate(ROOMS):
        room = json.loads(json.dumps(room_template))
        room["id"] = f"00000000-0000-4000-8000-0000000017a{i}"
        room["emailAddress"] = address
        room["displayName"] = room["nickname"] = f"Loop Room {i}"
        room["events"] = [_graph_event(template, address, n, s) for n, s in enumerate(events[address])]
        raw["rooms"].append(room)
    return raw


@dataclass(frozen=True, slots=True)
class TripFigures:
    """End-to-end seconds (read + engine) and the direct getSchedule floor."""

    p50_s: float
    p95_s: float
    floor_s: float
    options: int
    runs: int

    @property
    def floor_ratio(self) -> float:
        """Median end-to-end over median floor (target <= 1.3 when the search space is small)."""
        return self.p50_s / self.floor_s


async def _control(
    http: aiohttp.ClientSession, base: str, method: str, path: str, body: dict[str, Any] | None = None
) -> None:
    async with http.request(method, f"{base}/_devtenant/{path}", json=body) as resp:
        resp.raise_for_status()


def template_json(pooled: bool = False) -> dict[str, Any]:
    """The benchmark loop as a loop template (what a hiring manager saves): the same sessions,
    panels and rooms as `loop_spec`, Intro pinned first and Values last in a free order.
    ``pooled``: each session's panel is 2 from its own pool of ``POOL_SIZE`` instead."""
    p = PEOPLE
    room = {"any_of": list(ROOMS)}
    pools = iter(POOL_NAMES)

    def session(title: str, minutes: int, panel: tuple[str, str], **extra: Any) -> dict[str, Any]:
        if pooled:
            seat = {"pool": {"name": next(pools), "count": 2}}
            return {"title": title, "minutes": minutes, "room": room, **seat, **extra}
        return {"title": title, "minutes": minutes, "interviewers": list(panel), "room": room, **extra}

    return {
        "name": "Bench onsite",
        "order": "free",
        "breaks": {"min_minutes": 0, "max_minutes": 15},
        "max_days": 1,
        "sessions": [
            session("Intro", 30, (p[4], p[2]), position="first"),
            session("System design", 60, (p[5], p[3])),
            session("Coding", 60, (p[2], p[0])),
            session("Values", 45, (p[1], p[3]), position="last"),
        ],
    }


async def _make_pools(rt: Runtime, tenant_id: str) -> None:
    """The benchmark's pools (caps 5/week, 2/day) and a few interviews already booked for members."""
    async with rt.store.transaction() as tx:
        for name, members in POOLS.items():
            pool = Pool(name, "bench", 5, 2, tuple(Member(a, pool_zone(a)) for a in members))
            await storage.create_pool(tx, tenant_id, pool)
        for n, address in enumerate(POOL_PEOPLE[::3]):
            start = WINDOW.start - timedelta(days=1 + n % 5, hours=n % 7)
            await storage.insert_pending(
                tx, tenant_id=tenant_id, organizer_oid="bench", organizer_upn=ORGANIZER,
                transaction_id=f"bench-load-{n}", start=start, end=start + timedelta(hours=1),
                attendees=(address, "candidate@example.com"), candidate_name="Bench", subject="Bench",
                source=storage.InterviewSource.BOT, offer_id=None,
            )  # fmt: skip


async def measure_trip(
    tmp: Path, runs: int = TRIP_RUNS, source: str = "schedule", *, pooled: bool = False
) -> TripFigures:
    """End-to-end loop search THROUGH THE CALENDAR SERVICE against devtenant, ``LATENCY_MS`` per
    Graph request: ``POST /v1/loops/search`` with the benchmark template (all three locks, the
    mailbox gate, one availability read, free time, the loop engine, one audit row).

    ``source`` is the Calendar Service's ``OPENSLOT_AVAILABILITY_SOURCE``: ``schedule`` (its default:
    getSchedule free/busy, one request for up to 20 mailboxes) or ``calendar_view`` (one ``$batch``
    of calendarView reads plus getSchedule for working hours).
    """
    dt = start_devtenant(tenant_from_dict(bench_tenant_doc(pooled)), tmp / "devtenant")
    mailboxes = [*(POOL_PEOPLE if pooled else PEOPLE), *ROOMS]
    fetch = Interval(WINDOW.start - timedelta(days=1), WINDOW.end + timedelta(days=1))
    body = {
        "template": template_json(pooled),
        "start": WINDOW.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": WINDOW.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "candidate_time_zone": "America/New_York",
        "limit": K,
    }
    try:
        ctx = ssl.create_default_context(cafile=str(dt.ca_path))
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=ctx), timeout=aiohttp.ClientTimeout(total=60)
            ) as http,
            calendar_runtime(dt, tmp / "service", availability_source=source) as (url, rt),
        ):
            if pooled:
                await _make_pools(rt, dt.tenant.tenant_id)
            token, graph_token = dt.user_token(), dt.graph_token()

            async def loop_search() -> int:
                headers = {"Authorization": f"Bearer {token}"}
                async with http.post(f"{url}/v1/loops/search", json=body, headers=headers) as resp:
                    doc = await resp.json()
                    if resp.status != 200:
                        raise RuntimeError(f"loop search answered {resp.status}: {doc.get('error')}")
                return len(doc["options"])

            async def floor_chunk(chunk: list[str]) -> None:
                body = schedule_body(chunk, fetch.start, fetch.end, 15)
                headers = {"Authorization": f"Bearer {graph_token}", "Prefer": 'outlook.timezone="UTC"'}
                async with http.post(
                    f"{dt.base_url}/v1.0/users/{ORGANIZER}/calendar/getSchedule", json=body, headers=headers
                ) as resp:
                    await resp.json()  # the same request and decoding as GraphClient.get_schedules
                    resp.raise_for_status()

            async def floor() -> None:  # getSchedule takes up to 20 mailboxes: chunks in parallel
                await asyncio.gather(
                    *(floor_chunk(mailboxes[i : i + 20]) for i in range(0, len(mailboxes), 20))
                )

            options = await loop_search()  # warm-up (JWKS, OBO, allow-list groups, pools) without latency
            await _control(http, dt.base_url, "PUT", "faults", {"latency_ms": LATENCY_MS})
            walls, floors = [], []
            for _ in range(runs):
                began = time.perf_counter()
                await floor()
                floors.append(time.perf_counter() - began)
                began = time.perf_counter()
                options = await loop_search()
                walls.append(time.perf_counter() - began)
            return TripFigures(
                statistics.median(walls), _p95(walls), statistics.median(floors), options, runs
            )
    finally:
        dt.stop()
