"""Slot search with OPENSLOT_AVAILABILITY_SOURCE=calendar_view, against real devtenant servers.

The service reads calendarView through `$batch` where the caller may read events and getSchedule
(in the same batch) where only free/busy is shared. Answers are checked against an independent
oracle that expands the raw tenant-file calendars with devtenant's recurrence engine and applies
DESIGN.md "Slot semantics" (all-day events block the owner's local dates they name).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from calendar_backend.availability import ShowAs
from calendar_backend.calendar_view import (
    VIEW_FIELDS,
    CalendarRead,
    all_day_dates,
    blocks_from_events,
    read_calendars,
)
from calendar_backend.graph import BatchItem, CallStats, GraphClient
from devtenant.entra import GRAPH_RESOURCE
from devtenant.recurrence import expand
from devtenant.tenant import FaultPlan
from devtenant.zones import to_utc
from tests.devtenant.fixtures import DevTenantHandle, devtenant, devtenant_server  # noqa: F401
from tests.service.adversarial_tenant import (
    ALEX,
    BUSY,
    LENA,
    LORD,
    NIMA,
    OLIVIA,
    PAT,
    PEOPLE,
    TOKYO_HOLIDAY,
    WINDOW_END,
    WINDOW_START,
    JsonDict,
)
from tests.service.conftest import (
    Stack,
    canary_owners,
    find_all,
    mailbox_addresses,
    next_week,
    no_mailbox_address,
    oracle_slots,
    person,
    service_for,
    user,
    user_in_zone,
)


# ---- service and tokens --------------------------------------------------------------------------
@pytest.fixture
async def sample(devtenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    """The sample tenant behind the service with availability_source=calendar_view."""
    async with service_for(devtenant, tmp_path, availability_source="calendar_view") as stack:
        yield stack


@pytest.fixture
async def adversarial(readable_tenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(readable_tenant, tmp_path, availability_source="calendar_view") as stack:
        yield stack


def graph_token(stack: Stack, upn: str | None = ALEX) -> str:
    """A Graph access token: delegated for `upn`, app-only (the OpenSlot app) when None."""
    dt = stack.devtenant
    scopes = ["Calendars.ReadWrite", "MailboxSettings.Read"]
    if upn is None:
        return dt.issuer.access_token(
            client_id=stack.app_id, audience=GRAPH_RESOURCE, user=None, roles=scopes
        )
    return dt.issuer.access_token(
        client_id=stack.app_id, audience=GRAPH_RESOURCE, user=dt.tenant.find_user(upn), scp=scopes
    )


def graph_client(stack: Stack) -> GraphClient:
    return GraphClient(stack.runtime.session, stack.settings.graph_base_url, max_backoff_s=0.05)


# ---- sample tenant ---------------------------------------------------------------------------------
async def test_sample_panel_matches_the_oracle_with_mixed_rights(sample: Stack) -> None:
    """Megan and Nestor share `read` with Alex (calendarView); Diego and the New York interviewer
    only free/busy (getSchedule fallback). The answer equals the oracle either way."""
    people = [
        user(sample, "Megan Bowen"),
        user(sample, "Nestor Wilke"),
        user(sample, "Diego Siciliani"),
        user_in_zone(sample, "America/New_York"),
    ]
    start, end = next_week(datetime.now(UTC))
    got, doc = await find_all(sample, [p["mail"] for p in people], start, end, 45)
    assert got == oracle_slots(people, start, end, 45, datetime.now(UTC))
    assert got, "an empty answer would prove little"
    assert [p["time_zone"] for p in doc["people"]] == [
        p["mailboxSettings"]["workingHours"]["timeZone"]["name"] for p in people
    ]
    reads = await read_calendars(
        graph_client(sample), graph_token(sample), ALEX, [p["mail"] for p in people], start, end
    )
    assert [reads[p["mail"]].from_view for p in people] == [True, True, False, False]


@pytest.mark.parametrize("name", ["Megan Bowen", "Isaiah Langer", "Nestor Wilke", "Raul Razo"])
async def test_each_sample_calendar_matches_the_oracle(sample: Stack, name: str) -> None:
    p = user(sample, name)
    start, end = next_week(datetime.now(UTC))
    got, _ = await find_all(sample, [p["mail"]], start, end, 30)
    assert got == oracle_slots([p], start, end, 30, datetime.now(UTC))


async def test_free_busy_only_and_unreadable_calendars(sample: Stack) -> None:
    """Free/busy-only falls back to getSchedule; share role `none` and no mailbox are named."""
    start, end = next_week(datetime.now(UTC))
    fb_only = user(sample, "Diego Siciliani")
    got, doc = await find_all(sample, [fb_only["mail"]], start, end, 30)
    assert got == oracle_slots([fb_only], start, end, 30, datetime.now(UTC)) != set()
    no_access = user(sample, "Miriam Graham")["mail"]
    gone = no_mailbox_address(sample)
    got, doc = await find_all(sample, [user(sample, "Megan Bowen")["mail"], no_access, gone], start, end, 30)
    assert got == set()
    assert sorted(b["address"] for b in doc["blockers"] if b["reason"] == "unreadable") == sorted(
        [no_access, gone]
    )


async def test_ten_interviewers_are_one_batch_and_one_audit_row(sample: Stack) -> None:
    people = mailbox_addresses(sample.devtenant, 10)
    start, end = next_week(datetime.now(UTC))
    await find_all(sample, people[:1], start, end, 30)  # OBO once, so only Graph calls remain
    counters = sample.devtenant.tenant.counters
    before = dict(counters)
    async with sample.runtime.store.transaction() as tx:
        rows_before = (await tx.execute(text("SELECT count(*) FROM audit_log"))).scalar_one()
    _, doc = await find_all(sample, people, start, end, 30)
    assert counters["graph"] - before.get("graph", 0) == 1
    assert counters["graph.batch"] - before.get("graph.batch", 0) == 1
    assert counters["graph.batch_items"] - before.get("graph.batch_items", 0) == 11
    async with sample.runtime.store.transaction() as tx:
        rows = (await tx.execute(text("SELECT operation, targets FROM audit_log ORDER BY seq"))).all()
    assert len(rows) - rows_before == 1
    assert rows[-1][0] == "slots.find"
    assert all(p.lower() in str(rows[-1][1]) for p in people)
    assert len(doc["people"]) == 10


async def test_thirty_interviewers_are_two_concurrent_batches(sample: Stack) -> None:
    people = mailbox_addresses(sample.devtenant, 30)
    assert len(people) == 30
    start, end = next_week(datetime.now(UTC))
    before = sample.devtenant.tenant.counters["graph.batch"]
    stats = CallStats()
    reads = await read_calendars(
        graph_client(sample), graph_token(sample), ALEX, people, start, end, stats=stats
    )
    assert stats.requests == 2
    assert sample.devtenant.tenant.counters["graph.batch"] - before == 2
    assert set(reads) == {p.lower() for p in people}


async def test_pages_are_followed_on_graph_only(adversarial: Stack) -> None:
    busy = person(adversarial, BUSY)
    stats = CallStats()
    reads = await read_calendars(
        graph_client(adversarial),
        graph_token(adversarial),
        ALEX,
        [BUSY],
        WINDOW_START,
        WINDOW_END,
        stats=stats,
        page_size=7,
    )
    events = expand(busy["events"], WINDOW_START, WINDOW_END)
    pages = -(-len(events) // 7)
    assert pages > 3
    assert stats.requests == 1 + (pages - 1)
    got = sorted((b.interval.start, b.interval.end) for b in reads[BUSY].blocks)
    assert got == sorted((to_utc(e["start"]), to_utc(e["end"])) for e in events)


async def test_throttled_sub_requests_are_retried(sample: Stack) -> None:
    people = mailbox_addresses(sample.devtenant, 8)
    start, end = next_week(datetime.now(UTC))
    client, token = graph_client(sample), graph_token(sample)
    calm = await read_calendars(client, token, ALEX, people, start, end)
    before = sample.devtenant.tenant.counters["graph.batch"]
    sample.devtenant.tenant.faults = FaultPlan(throttle_rate=0.4, retry_after_s=0.01, seed=3)
    try:
        stats = CallStats()
        stormy = await read_calendars(client, token, ALEX, people, start, end, stats=stats)
    finally:
        sample.devtenant.tenant.faults = FaultPlan()
    assert stats.requests == sample.devtenant.tenant.counters["graph.batch"] - before > 1
    assert stormy == calm


async def test_app_only_reads_every_calendar_in_full(sample: Stack) -> None:
    people = [user(sample, n)["mail"] for n in ("Diego Siciliani", "Miriam Graham")]
    start, end = next_week(datetime.now(UTC))
    reads = await read_calendars(
        graph_client(sample), graph_token(sample, None), people[0], people, start, end
    )
    assert all(isinstance(r, CalendarRead) and r.from_view for r in reads.values())


async def test_no_calendar_content_leaves_graph(sample: Stack) -> None:
    """$select keeps subjects, bodies and locations out even for an app that may read them all."""
    owners = canary_owners(sample.devtenant)
    assert owners
    start, end = datetime.now(UTC) - timedelta(days=30), datetime.now(UTC) + timedelta(days=30)
    select = ",".join(VIEW_FIELDS)
    items = [
        BatchItem(
            str(i),
            "GET",
            f"/users/{a}/calendarView?startDateTime="
            f"{start:%Y-%m-%dT%H:%M:%SZ}&endDateTime={end:%Y-%m-%dT%H:%M:%SZ}"
            f"&$select={select}&$top=1000",
        )
        for i, a in enumerate(owners[:10])
    ]
    unselected = [dataclasses.replace(i, id=f"all{i.id}", url=i.url.split("&$select")[0]) for i in items]
    answers = await graph_client(sample).batch(graph_token(sample, None), items + unselected)
    full = json.dumps([a.body for k, a in answers.items() if k.startswith("all")])
    assert "CANARY-" in full, "the canaries must be there for $select to keep them out"
    ok = [a for k, a in answers.items() if not k.startswith("all") and a.status == 200]
    assert len(ok) >= len(items) - 2  # the access policy hides the CEO and CFO from the app
    raw = json.dumps([a.body for a in ok])
    assert "CANARY-" not in raw
    assert '"subject"' not in raw
    assert '"location"' not in raw
    _, doc = await find_all(sample, owners[:8], *next_week(datetime.now(UTC)), 30)
    assert "CANARY-" not in json.dumps(doc)
    assert "CANARY-" not in sample.log.getvalue()
    assert "eyJ" not in sample.log.getvalue()


# ---- adversarial tenant (Alex may read every calendar) ----------------------------------------------
@pytest.mark.parametrize("address", PEOPLE)
async def test_each_adversarial_calendar_matches_the_oracle(adversarial: Stack, address: str) -> None:
    got, _ = await find_all(adversarial, [address], WINDOW_START, WINDOW_END, 30)
    expected = oracle_slots([person(adversarial, address)], WINDOW_START, WINDOW_END, 30, WINDOW_START)
    assert expected
    assert sorted(got ^ expected)[:5] == []


async def test_adversarial_panel_matches_the_oracle_from_calendar_view(adversarial: Stack) -> None:
    panel = [PAT, LENA, NIMA, LORD]
    got, _ = await find_all(adversarial, panel, WINDOW_START, WINDOW_END, 45)
    assert got == oracle_slots(
        [person(adversarial, a) for a in panel], WINDOW_START, WINDOW_END, 45, WINDOW_START
    )
    reads = await read_calendars(
        graph_client(adversarial), graph_token(adversarial), ALEX, panel, WINDOW_START, WINDOW_END
    )
    assert all(reads[a].from_view for a in panel)


async def test_tokyo_holiday_blocks_the_london_day_it_names(adversarial: Stack) -> None:
    reads = await read_calendars(
        graph_client(adversarial), graph_token(adversarial), ALEX, [OLIVIA, LENA], WINDOW_START, WINDOW_END
    )
    holiday = reads[OLIVIA].all_day
    assert [(b.first_day, b.end_day_exclusive, b.status) for b in holiday] == [
        (TOKYO_HOLIDAY, TOKYO_HOLIDAY + timedelta(days=1), ShowAs.OOF)
    ]
    leave = [b for b in reads[LENA].all_day if b.status == ShowAs.OOF]
    assert [(b.first_day, b.end_day_exclusive) for b in leave] == [
        (date(2027, 3, 26), date(2027, 3, 30))
    ]  # across the EU change, still whole days
    got, _ = await find_all(adversarial, [OLIVIA], WINDOW_START, WINDOW_END, 30)
    assert not {s for s in got if s[0].date() == TOKYO_HOLIDAY}
    assert {s for s in got if s[0].date() == TOKYO_HOLIDAY + timedelta(days=1)}


# ---- pure mapping ----------------------------------------------------------------------------------
def _ev(start: str, end: str, **extra: Any) -> JsonDict:
    return {
        "start": {"dateTime": start, "timeZone": "UTC"},
        "end": {"dateTime": end, "timeZone": "UTC"},
        **extra,
    }


def test_cancelled_declined_and_masters_are_dropped_and_show_as_kept() -> None:
    events = [
        _ev("2027-01-04T09:00:00.0000000", "2027-01-04T10:00:00.0000000", showAs="busy"),
        _ev("2027-01-04T11:00:00", "2027-01-04T12:00:00", showAs="free"),
        _ev("2027-01-04T13:00:00", "2027-01-04T14:00:00", showAs="somethingNew"),
        _ev("2027-01-04T15:00:00", "2027-01-04T16:00:00", isCancelled=True),
        _ev("2027-01-04T15:00:00", "2027-01-04T16:00:00", responseStatus={"response": "declined"}),
        _ev("2027-01-04T15:00:00", "2027-01-04T16:00:00", type="seriesMaster"),
        _ev("2027-01-04T17:00:00", "2027-01-04T17:00:00"),
    ]
    blocks, all_day = blocks_from_events(events)
    assert [(b.interval.start.hour, b.status) for b in blocks] == [
        (9, ShowAs.BUSY),
        (11, ShowAs.FREE),
        (13, ShowAs.UNKNOWN),
    ]
    assert all_day == ()


@pytest.mark.parametrize(
    ("start", "end", "zone", "first", "days"),
    [
        ("2027-03-21T15:00:00", "2027-03-22T15:00:00", "Tokyo Standard Time", "2027-03-22", 1),
        ("2027-03-22T00:00:00", "2027-03-23T00:00:00", "Tokyo Standard Time", "2027-03-22", 1),
        ("2027-03-22T07:00:00", "2027-03-24T07:00:00", "Pacific Standard Time", "2027-03-22", 2),
        ("2027-03-22T00:00:00", "2027-03-23T00:00:00", "Pacific Standard Time", "2027-03-22", 1),
        ("2027-03-21T11:00:00", "2027-03-22T11:00:00", "Tonga Standard Time", "2027-03-22", 1),
        ("2027-03-13T08:00:00", "2027-03-15T07:00:00", "Pacific Standard Time", "2027-03-13", 2),
        ("2027-03-21T15:00:00", "2027-03-22T15:00:00", None, "2027-03-22", 1),
    ],
)
def test_all_day_dates_are_the_dates_the_event_names(
    start: str, end: str, zone: str | None, first: str, days: int
) -> None:
    event = _ev(start, end, isAllDay=True)
    if zone:
        event.update(originalStartTimeZone=zone, originalEndTimeZone=zone)
    got = all_day_dates(event)
    assert got == (date.fromisoformat(first), date.fromisoformat(first) + timedelta(days=days))
