"""The Calendar Service running for real against devtenant, plus the shared slot oracle.

Stacks: `running_service` builds the real runtime (keyring, SQLite, migrations) onboarded to a
devtenant, through bench/stack.py's harness; `service_for` wraps it in an aiohttp test client as a
`Stack` (logs captured).
Fixtures: `calendar_stack` (sample tenant, getSchedule), `adversarial_tenant` and
`readable_tenant` (the crafted tenant of adversarial_tenant.py, without and with `read` rights).

The oracle (`oracle_busy`, `oracle_ok`, `oracle_slots`) expands raw tenant-file calendars with
devtenant's recurrence engine and applies DESIGN.md "Slot semantics" independently of the service:
working hours in the mailbox zone (DST-aware); showAs busy, oof, tentative and unknown block
(missing = busy, an unrecognised value = unknown); free, workingElsewhere, cancelled and declined
do not; an all-day event blocks the owner's whole local dates it names (read in the event's own
zone) and also the UTC span it occupies, unless free.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bench.stack import calendar_app, service_settings
from calendar_backend.contract import format_time, parse_time
from calendar_backend.runtime import Runtime
from calendar_backend.settings import BackendSettings
from devtenant.recurrence import expand
from devtenant.tenant import tenant_from_dict
from devtenant.zones import to_utc, zone_for
from tests.devtenant.fixtures import (  # noqa: F401
    DevTenantHandle,
    devtenant,
    devtenant_server,
    start_devtenant,
)
from tests.service.adversarial_tenant import ALEX as ALEX
from tests.service.adversarial_tenant import adversarial_doc, readable_adversarial_doc

JsonDict = dict[str, Any]
Span = tuple[datetime, datetime]
BLOCKING = frozenset({"busy", "oof", "tentative", "unknown"})
KNOWN_SHOW_AS = BLOCKING | {"free", "workingElsewhere"}
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
STEP = timedelta(minutes=15)


# ---- the stack ----------------------------------------------------------------------------------
@dataclass
class Stack:
    """A running Calendar Service wired to a running devtenant."""

    client: TestClient[Any, Any]
    devtenant: DevTenantHandle
    runtime: Runtime
    settings: BackendSettings
    log: io.StringIO
    db_path: Path

    @property
    def app_id(self) -> str:
        return str(self.devtenant.tenant.applications()[0]["appId"])

    def token(self, upn: str = ALEX, **kw: Any) -> str:
        return self.devtenant.mint_user_token(upn, **kw)

    def graph_requests(self) -> int:
        return int(self.devtenant.tenant.counters["graph"])

    async def post(self, path: str, body: Any, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await self.client.post(path, json=body, headers=headers)
        return resp.status, await resp.json()

    async def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await self.client.get(path, headers=headers)
        return resp.status, await resp.json()

    async def send(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        """Any method (PUT, DELETE, ...); ``body`` ``None``: no body."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await self.client.request(method, path, json=body, headers=headers)
        return resp.status, await resp.json()


def make_settings(dt: DevTenantHandle, tmp: Path, **overrides: Any) -> BackendSettings:
    """Dev settings pointing at `dt`, with the database and key file under `tmp` (bench's harness,
    with quick Graph retries and the loopback connector allowed)."""
    test_defaults: dict[str, Any] = {
        "graph_max_backoff_s": 0.05,
        "allowed_service_hosts": ("smba.trafficmanager.net", "127.0.0.1"),
    }
    return service_settings(dt, tmp, **{**test_defaults, **overrides})


@asynccontextmanager
async def running_service(
    dt: DevTenantHandle, tmp: Path, **overrides: Any
) -> AsyncIterator[tuple[Runtime, web.Application]]:
    """The real runtime (fresh keyring, SQLite under `tmp`) onboarded to `dt`, and its web app.

    `overrides` replace `BackendSettings` fields (e.g. availability_source="calendar_view").
    """
    async with calendar_app(dt, make_settings(dt, tmp, **overrides)) as (rt, app):
        yield rt, app


@asynccontextmanager
async def captured_logs() -> AsyncIterator[io.StringIO]:
    """Everything logged at INFO or above while inside; the root logger is restored after."""
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@asynccontextmanager
async def service_for(dt: DevTenantHandle, tmp: Path, **overrides: Any) -> AsyncIterator[Stack]:
    """A `Stack`: the service behind an aiohttp test client, its logs captured in `Stack.log`."""
    async with (
        captured_logs() as log,
        running_service(dt, tmp, **overrides) as (rt, app),
        TestClient(TestServer(app)) as client,
    ):
        yield Stack(client, dt, rt, rt.settings, log, tmp / "openslot.db")


@pytest.fixture
async def calendar_stack(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    """The sample tenant behind the service with the default (getSchedule) availability source."""
    async with service_for(devtenant, tmp_path) as stack:
        yield stack


def _tenant_server(doc: JsonDict, tmp: Path) -> Iterator[DevTenantHandle]:
    handle, stop = start_devtenant(tenant_from_dict(doc), tmp)
    try:
        yield handle
    finally:
        stop()


@pytest.fixture(scope="module")
def adversarial_tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTenantHandle]:
    """A devtenant serving adversarial_tenant.adversarial_doc() (free/busy rights only)."""
    yield from _tenant_server(adversarial_doc(), tmp_path_factory.mktemp("adversarial"))


@pytest.fixture(scope="module")
def readable_tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTenantHandle]:
    """The adversarial tenant with Alex allowed to read every crafted calendar."""
    yield from _tenant_server(readable_adversarial_doc(), tmp_path_factory.mktemp("adversarial-view"))


# ---- finders --------------------------------------------------------------------------------------
def next_week(now: datetime) -> Span:
    """Monday 00:00 UTC of the week after `now`'s, to Saturday 00:00 UTC (five whole UTC days)."""
    monday = (now + timedelta(days=7 - now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return monday, monday + timedelta(days=5)


def user(stack: Stack, name: str) -> JsonDict:
    """The tenant-file user with this display name (StopIteration when none)."""
    return next(u for u in stack.devtenant.tenant.users() if u["displayName"] == name)


def _active(u: JsonDict) -> bool:
    return bool(u.get("accountEnabled", True) and u.get("hasMailbox", True))


def user_in_zone(stack: Stack, zone: str) -> JsonDict:
    """The first enabled user with a mailbox whose mailbox zone is spelled `zone`."""
    return next(
        u for u in stack.devtenant.tenant.users() if _active(u) and u["mailboxSettings"]["timeZone"] == zone
    )


def person(stack: Stack, address: str) -> JsonDict:
    """The tenant-file user with this address (asserts there is one)."""
    found = stack.devtenant.tenant.find_user(address)
    assert found is not None
    return found


def mailbox_addresses(dt: DevTenantHandle, n: int | None = None, *, exclude: str | None = None) -> list[str]:
    """Addresses of enabled users with a mailbox, in tenant-file order, the first `n` (all if None)."""
    found = [str(u["mail"]) for u in dt.tenant.users() if _active(u) and u["userPrincipalName"] != exclude]
    return found if n is None else found[:n]


def canary_owners(dt: DevTenantHandle) -> list[str]:
    """Addresses of enabled mailbox users whose raw events carry a planted `CANARY-` string."""
    return [
        str(u["mail"])
        for u in dt.tenant.users()
        if _active(u) and any("CANARY-" in json.dumps(e) for e in u.get("events", []))
    ]


def no_mailbox_address(stack: Stack) -> str:
    """The lower-cased address of the first user without a mailbox."""
    gone = next(u for u in stack.devtenant.tenant.users() if u.get("hasMailbox") is False)
    return str(gone.get("mail") or gone["userPrincipalName"]).lower()


# ---- API bodies and mailboxes -----------------------------------------------------------------------
def week_query(people: list[str], minutes: int = 30, **extra: Any) -> JsonDict:
    """A find-slots body asking for every slot of next week (from the real clock)."""
    start, end = next_week(datetime.now(UTC))
    return {
        "interviewers": people,
        "duration_min": minutes,
        "start": format_time(start),
        "end": format_time(end),
        "all": True,
        "limit": 500,
        **extra,
    }


async def find_all(
    stack: Stack, addresses: list[str], start: datetime, end: datetime, minutes: int
) -> tuple[set[Span], JsonDict]:
    """Every slot the service offers in [start, end) with no notice, and the whole answer."""
    status, doc = await stack.post(
        "/v1/slots/find",
        {
            "interviewers": addresses,
            "duration_min": minutes,
            "start": format_time(start),
            "end": format_time(end),
            "all": True,
            "limit": 500,
            "notice_min": 0,
        },
        stack.token(),
    )
    assert status == 200, doc
    return {(parse_time(s["start"]), parse_time(s["end"])) for s in doc["slots"]}, doc


def booking_body(people: list[str], slot: dict[str, str], key: str) -> JsonDict:
    """A create-interview body for `slot` with a fixed candidate."""
    return {
        "candidate": {"name": "Dana Smith", "email": "dana.smith@example.com"},
        "interviewers": people,
        "start": slot["start"],
        "end": slot["end"],
        "idempotency_key": key,
    }


def events_at(stack: Stack, address: str, start: str) -> list[JsonDict]:
    """Live (not cancelled) events starting at `start` in a mailbox's raw devtenant store."""
    dt = stack.devtenant
    found = dt.session().get(f"{dt.base_url}/_devtenant/mailboxes/{address}/events", timeout=10).json()
    events = found.get("value", found) if isinstance(found, dict) else found
    return [e for e in events if not e.get("isCancelled") and to_utc(e["start"]) == parse_time(start)]


# ---- the oracle -----------------------------------------------------------------------------------
def _blocks(occ: JsonDict) -> bool:
    response = (occ.get("responseStatus") or {}).get("response")
    if occ.get("isCancelled") or response == "declined":
        return False
    show_as = occ.get("showAs") or "busy"
    return (show_as if show_as in KNOWN_SHOW_AS else "unknown") in BLOCKING


def _own_date(occ: JsonDict, key: str) -> date:
    """The date an all-day occurrence names in its own zone (expand() answers in UTC)."""
    zone = zone_for(occ["originalStartTimeZone" if key == "start" else "originalEndTimeZone"])
    return to_utc(occ[key]).astimezone(zone).date()


def _local_days(first: date, end: date, owner_zone: str) -> Span:
    zone = zone_for(owner_zone)
    return (
        datetime.combine(first, time(), zone).astimezone(UTC),
        datetime.combine(end, time(), zone).astimezone(UTC),
    )


def oracle_busy(p: JsonDict, start: datetime, end: datetime) -> list[Span]:
    """Blocking UTC intervals of tenant-file user `p` from occurrences overlapping [start, end).

    An all-day occurrence gives two intervals: the owner's (mailbox zone) local dates it names,
    midnight to midnight, and the UTC span it occupies. Pad the window by a day or two so all-day
    events of other zones are seen.
    """
    busy = []
    for occ in expand(p.get("events", []), start, end):
        if not _blocks(occ):
            continue
        busy.append((to_utc(occ["start"]), to_utc(occ["end"])))
        if occ.get("isAllDay"):
            busy.append(
                _local_days(_own_date(occ, "start"), _own_date(occ, "end"), p["mailboxSettings"]["timeZone"])
            )
    return busy


def oracle_ok(p: JsonDict, busy: list[Span], s: datetime, e: datetime) -> bool:
    """Whether [s, e) lies in one working day of `p` (its own zone) and overlaps no `busy` span."""
    wh = p["mailboxSettings"]["workingHours"]
    zone = zone_for(wh["timeZone"]["name"])
    local = s.astimezone(zone)
    if DAYS[local.weekday()] not in wh["daysOfWeek"]:
        return False
    day = local.date()
    w_start = datetime.combine(day, time.fromisoformat(wh["startTime"][:8]), zone).astimezone(UTC)
    w_end = datetime.combine(day, time.fromisoformat(wh["endTime"][:8]), zone).astimezone(UTC)
    if not (w_start <= s and e <= w_end):
        return False
    return not any(b0 < e and s < b1 for b0, b1 in busy)


def oracle_slots(
    people: list[JsonDict], start: datetime, end: datetime, minutes: int, not_before: datetime | None = None
) -> set[Span]:
    """Every [s, s+minutes) on the 15-minute grid from `start` (UTC) inside [start, end) that
    starts at or after `not_before` (when given) and suits every person (`oracle_ok`)."""
    pad = timedelta(days=2)
    busy = {p["mail"]: oracle_busy(p, start - pad, end + pad) for p in people}
    expected = set()
    s, duration = start, timedelta(minutes=minutes)
    while s + duration <= end:
        if (not_before is None or s >= not_before) and all(
            oracle_ok(p, busy[p["mail"]], s, s + duration) for p in people
        ):
            expected.add((s, s + duration))
        s += STEP
    return expected
