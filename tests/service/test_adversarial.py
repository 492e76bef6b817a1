"""find_slots against a crafted, adversarial tenant, checked against an independent oracle.

The tenant is built here with FIXED dates around the spring 2027 DST changes (US 2027-03-14, EU
2027-03-28, Lord Howe 2027-04-04, a 30-minute shift). The 2026 autumn changes are already past, and
the service never offers a slot before "now", so a past window would be vacuously empty.

Calendars hold: a weekly "Pacific Standard Time" series across the US change, a series with a moved
exception and a cancelled occurrence, tentative/free/oof/workingElsewhere/unknown events, a
cancelled single event, a declined meeting, a private event, own-zone all-day events (busy, free,
multi-day across the EU change), an all-day Tokyo holiday on a London calendar, people in "Nepal
Standard Time" (+05:45) and "Australia/Lord_Howe" (IANA), and a calendar with 60 events in the
window. The oracle expands the raw calendars with devtenant's recurrence engine and applies DESIGN.md
"Slot semantics" directly: working hours in the mailbox zone, blocking statuses busy, oof, tentative
and unknown, all-day events blocking the owner's whole local dates unless free.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from calendar_backend.__main__ import build_web_app, open_runtime
from calendar_backend.contract import format_time, parse_time
from calendar_backend.keyring import create_keyring
from devtenant.recurrence import expand
from devtenant.tenant import tenant_from_dict
from devtenant.zones import to_utc, zone_for
from tests.devtenant.fixtures import SAMPLE_TENANT, DevTenantHandle, start_devtenant
from tests.service.conftest import ALEX, Stack, make_settings, onboard

JsonDict = dict[str, Any]
BLOCKING = {"busy", "oof", "tentative", "unknown"}
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS = DAYS[:5]
WINDOW_START = datetime(2027, 3, 8, tzinfo=UTC)  # Monday before the US change
WINDOW_END = datetime(2027, 4, 7, tzinfo=UTC)  # after the EU and Lord Howe changes
PAT, LENA, OLIVIA = "pat@contoso.example", "lena@contoso.example", "olivia@contoso.example"
NIMA, LORD, BUSY = "nima@contoso.example", "lord@contoso.example", "busy@contoso.example"
PEOPLE = [PAT, LENA, OLIVIA, NIMA, LORD, BUSY]
TOKYO_HOLIDAY = date(2027, 3, 22)  # a Monday


# ---- the tenant --------------------------------------------------------------------------------
def _dtz(value: str, zone: str) -> JsonDict:
    return {"dateTime": f"{value}.0000000", "timeZone": zone}


def _event(eid: str, start: str, end: str, zone: str, **extra: Any) -> JsonDict:
    event: JsonDict = {"id": eid, "subject": f"event {eid}", "start": _dtz(start, zone),
                       "end": _dtz(end, zone), "showAs": "busy", "isAllDay": False,
                       "isCancelled": False, "sensitivity": "normal", "type": "singleInstance",
                       "responseStatus": {"response": "accepted"}}
    event.update(extra)
    return event


def _weekly(eid: str, start: str, end: str, zone: str, days: list[str], until: str,
            **extra: Any) -> JsonDict:
    recurrence = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": days,
                              "firstDayOfWeek": "sunday"},
                  "range": {"type": "endDate", "startDate": start[:10], "endDate": until,
                            "recurrenceTimeZone": zone}}
    return _event(eid, start, end, zone, type="seriesMaster", recurrence=recurrence, **extra)


def _user(uid: str, address: str, zone: str, days: list[str], hours: tuple[str, str],
          events: list[JsonDict]) -> JsonDict:
    name = address.split("@")[0].title()
    return {"id": uid, "displayName": name, "givenName": name, "surname": "Test",
            "userPrincipalName": address, "mail": address, "accountEnabled": True,
            "hasMailbox": True,
            "mailboxSettings": {"timeZone": zone, "workingHours": {
                "daysOfWeek": days, "startTime": f"{hours[0]}:00.0000000",
                "endTime": f"{hours[1]}:00.0000000", "timeZone": {"name": zone}}},
            "events": events}


def _pat_events() -> list[JsonDict]:
    pst = "Pacific Standard Time"
    standup = _weekly("pat-standup", "2027-03-08T13:00:00", "2027-03-08T13:30:00", pst,
                      WEEKDAYS, "2027-04-09")
    return [
        _weekly("pat-weekly", "2027-03-01T09:00:00", "2027-03-01T10:00:00", pst,
                ["monday", "wednesday"], "2027-04-30"),
        standup,
        # 2027-03-10 13:00 PST = 21:00Z, moved to 15:00; 2027-03-17 13:00 PDT = 20:00Z cancelled.
        _event("pat-moved", "2027-03-10T15:00:00", "2027-03-10T15:30:00", pst,
               type="exception", seriesMasterId="pat-standup", originalStart="2027-03-10T21:00:00Z"),
        _event("pat-dropped", "2027-03-17T13:00:00", "2027-03-17T13:30:00", pst,
               type="exception", seriesMasterId="pat-standup", isCancelled=True,
               originalStart="2027-03-17T20:00:00Z"),
        _event("pat-tentative", "2027-03-09T10:00:00", "2027-03-09T11:00:00", pst,
               showAs="tentative"),
        _event("pat-free", "2027-03-09T11:00:00", "2027-03-09T12:00:00", pst, showAs="free"),
        _event("pat-oof", "2027-03-11T08:00:00", "2027-03-11T12:00:00", pst, showAs="oof"),
        _event("pat-elsewhere", "2027-03-12T08:00:00", "2027-03-12T17:00:00", pst,
               showAs="workingElsewhere"),
        _event("pat-unknown", "2027-03-15T14:00:00", "2027-03-15T15:00:00", pst,
               showAs="unknown"),
        _event("pat-cancelled", "2027-03-16T09:00:00", "2027-03-16T12:00:00", pst,
               isCancelled=True),
        _event("pat-declined", "2027-03-16T14:00:00", "2027-03-16T16:00:00", pst,
               responseStatus={"response": "declined"}),
        _event("pat-private", "2027-03-18T10:00:00", "2027-03-18T11:30:00", pst,
               sensitivity="private"),
        _event("pat-from-berlin", "2027-03-19T18:00:00", "2027-03-19T19:00:00",
               "W. Europe Standard Time"),
    ]


def _lena_events() -> list[JsonDict]:
    gmt = "GMT Standard Time"
    return [
        _weekly("lena-us-sync", "2027-03-02T08:00:00", "2027-03-02T09:00:00",
                "Pacific Standard Time", ["tuesday"], "2027-04-30"),
        _event("lena-offsite", "2027-03-10T00:00:00", "2027-03-11T00:00:00", gmt, isAllDay=True),
        _event("lena-reminder", "2027-03-11T00:00:00", "2027-03-12T00:00:00", gmt, isAllDay=True,
               showAs="free"),
        _event("lena-leave", "2027-03-26T00:00:00", "2027-03-30T00:00:00", gmt, isAllDay=True,
               showAs="oof"),
        _event("lena-lunch", "2027-03-31T12:00:00", "2027-03-31T13:00:00", "Europe/London"),
    ]


def _olivia_events() -> list[JsonDict]:
    day = TOKYO_HOLIDAY.isoformat()
    after = (TOKYO_HOLIDAY + timedelta(days=1)).isoformat()
    return [_event("olivia-tokyo-holiday", f"{day}T00:00:00", f"{after}T00:00:00",
                   "Tokyo Standard Time", isAllDay=True, showAs="oof")]


def _nima_events() -> list[JsonDict]:
    npt = "Nepal Standard Time"
    return [
        _weekly("nima-berlin", "2027-03-01T09:00:00", "2027-03-01T10:00:00",
                "W. Europe Standard Time", ["monday", "thursday"], "2027-04-30"),
        _event("nima-odd", "2027-03-09T10:10:00", "2027-03-09T10:50:00", npt),
        _event("nima-tentative", "2027-03-23T15:00:00", "2027-03-23T16:15:00", npt,
               showAs="tentative"),
    ]


def _lord_events() -> list[JsonDict]:
    lhi = "Australia/Lord_Howe"
    return [
        _weekly("lord-daily", "2027-03-01T09:00:00", "2027-03-01T09:30:00", lhi, WEEKDAYS,
                "2027-04-30"),
        _event("lord-us-call", "2027-03-30T15:00:00", "2027-03-30T16:00:00",
               "Pacific Standard Time"),
        _event("lord-across-change", "2027-04-02T16:00:00", "2027-04-05T10:00:00", lhi,
               showAs="oof"),
    ]


def _busy_events() -> list[JsonDict]:
    est = "Eastern Standard Time"
    events = []
    day = WINDOW_START.date()
    n = 0
    while day < WINDOW_END.date():
        if day.weekday() < 5:
            for hour, minutes in ((9 + n % 3, 45), (14, 30 + 15 * (n % 3))):
                start = datetime.combine(day, time(hour, 15 * (n % 2)))
                end = start + timedelta(minutes=minutes)
                events.append(_event(f"busy-{n}", start.isoformat(), end.isoformat(), est))
                n += 1
        day += timedelta(days=1)
    return events


def adversarial_doc() -> JsonDict:
    """The tenant document: the sample's tenant, app and groups, Alex, and the crafted people."""
    sample = json.loads(SAMPLE_TENANT.read_text(encoding="utf-8"))
    alex = copy.deepcopy(next(u for u in sample["users"] if u["userPrincipalName"] == ALEX))
    alex["events"] = []
    users = [
        alex,
        _user("0a000000-0000-4000-8000-000000000001", PAT, "Pacific Standard Time", WEEKDAYS,
              ("08:00", "17:00"), _pat_events()),
        _user("0a000000-0000-4000-8000-000000000002", LENA, "GMT Standard Time", WEEKDAYS,
              ("09:00", "17:30"), _lena_events()),
        _user("0a000000-0000-4000-8000-000000000003", OLIVIA, "GMT Standard Time", WEEKDAYS,
              ("09:00", "17:00"), _olivia_events()),
        _user("0a000000-0000-4000-8000-000000000004", NIMA, "Nepal Standard Time",
              ["sunday", "monday", "tuesday", "wednesday", "thursday"], ("10:00", "17:00"),
              _nima_events()),
        _user("0a000000-0000-4000-8000-000000000005", LORD, "Australia/Lord_Howe", WEEKDAYS,
              ("09:00", "17:00"), _lord_events()),
        _user("0a000000-0000-4000-8000-000000000006", BUSY, "Eastern Standard Time", WEEKDAYS,
              ("08:00", "18:00"), _busy_events()),
    ]
    return {"schemaVersion": 1, "tenant": sample["tenant"],
            "applications": sample["applications"],
            "applicationAccessPolicies": sample.get("applicationAccessPolicies", []),
            "groups": sample["groups"], "users": users, "rooms": [],
            "botFramework": {"connectionName": "openslot", "signedInUsers": [alex["id"]]}}


# ---- fixtures ----------------------------------------------------------------------------------
@asynccontextmanager
async def service_for(dt: DevTenantHandle, tmp: Path) -> AsyncIterator[Stack]:
    """A Calendar Service (real keyring, SQLite, migrations) onboarded to `dt`'s tenant."""
    settings = make_settings(dt, tmp)
    create_keyring(settings.key_file)
    async with open_runtime(settings) as rt:
        await onboard(rt, dt)
        app = build_web_app(rt)
        assert isinstance(app, web.Application)
        async with TestClient(TestServer(app)) as client:
            yield Stack(client, dt, rt, settings, io.StringIO(), tmp / "openslot.db")


@pytest.fixture(scope="module")
def adversarial_tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTenantHandle]:
    handle, stop = start_devtenant(tenant_from_dict(adversarial_doc()),
                                   tmp_path_factory.mktemp("adversarial"))
    try:
        yield handle
    finally:
        stop()


@pytest.fixture
async def adversarial(adversarial_tenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(adversarial_tenant, tmp_path) as stack:
        yield stack


# ---- the oracle --------------------------------------------------------------------------------
def person(stack: Stack, address: str) -> JsonDict:
    found = stack.devtenant.tenant.find_user(address)
    assert found is not None
    return found


def _local_days(first: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    return (datetime.combine(first, time(), zone).astimezone(UTC),
            datetime.combine(end, time(), zone).astimezone(UTC))


def oracle_busy(p: JsonDict, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Blocking UTC intervals; an all-day event blocks the owner's local dates it names."""
    owner_zone = zone_for(p["mailboxSettings"]["timeZone"])
    raw = {e["id"]: e for e in p.get("events", [])}
    busy = []
    for occ in expand(p.get("events", []), start, end):
        if occ.get("isCancelled") or (occ.get("responseStatus") or {}).get("response") == "declined":
            continue
        if occ.get("showAs", "busy") not in BLOCKING:
            continue
        if occ.get("isAllDay"):
            source = raw[occ["id"]]
            busy.append(_local_days(date.fromisoformat(source["start"]["dateTime"][:10]),
                                    date.fromisoformat(source["end"]["dateTime"][:10]),
                                    owner_zone))
        else:
            busy.append((to_utc(occ["start"]), to_utc(occ["end"])))
    return busy


def oracle_ok(p: JsonDict, busy: list[tuple[datetime, datetime]], s: datetime,
              e: datetime) -> bool:
    wh = p["mailboxSettings"]["workingHours"]
    zone = zone_for(p["mailboxSettings"]["timeZone"])
    local = s.astimezone(zone)
    if DAYS[local.weekday()] not in wh["daysOfWeek"]:
        return False
    day = local.date()
    w_start = datetime.combine(day, time.fromisoformat(wh["startTime"][:8]), zone).astimezone(UTC)
    w_end = datetime.combine(day, time.fromisoformat(wh["endTime"][:8]), zone).astimezone(UTC)
    if not (w_start <= s and e <= w_end):
        return False
    return not any(b0 < e and s < b1 for b0, b1 in busy)


def oracle_slots(people: list[JsonDict], minutes: int) -> set[tuple[datetime, datetime]]:
    pad = timedelta(days=2)
    busy = {p["mail"]: oracle_busy(p, WINDOW_START - pad, WINDOW_END + pad) for p in people}
    expected = set()
    s, duration = WINDOW_START, timedelta(minutes=minutes)
    while s + duration <= WINDOW_END:
        if all(oracle_ok(p, busy[p["mail"]], s, s + duration) for p in people):
            expected.add((s, s + duration))
        s += timedelta(minutes=15)
    return expected


async def service_slots(stack: Stack, addresses: list[str],
                        minutes: int) -> tuple[set[tuple[datetime, datetime]], JsonDict]:
    status, doc = await stack.post("/v1/slots/find", {
        "interviewers": addresses, "duration_min": minutes, "start": format_time(WINDOW_START),
        "end": format_time(WINDOW_END), "all": True, "limit": 500, "notice_min": 0,
    }, stack.token())
    assert status == 200, doc
    return {(parse_time(s["start"]), parse_time(s["end"])) for s in doc["slots"]}, doc


def _z(text: str) -> datetime:
    return parse_time(text)


# ---- tests -------------------------------------------------------------------------------------
@pytest.mark.parametrize("address", [PAT, LENA, NIMA, LORD, BUSY])
async def test_each_calendar_matches_the_oracle(adversarial: Stack, address: str) -> None:
    got, doc = await service_slots(adversarial, [address], 30)
    expected = oracle_slots([person(adversarial, address)], 30)
    assert expected, "the oracle must leave some slot, else the comparison proves little"
    assert sorted(got - expected)[:5] == []
    assert sorted(expected - got)[:5] == []
    zone = person(adversarial, address)["mailboxSettings"]["timeZone"]
    assert [p["time_zone"] for p in doc["people"]] == [zone]


async def test_a_cross_zone_panel_matches_the_oracle(adversarial: Stack) -> None:
    panel = [PAT, LENA, NIMA, LORD]
    got, doc = await service_slots(adversarial, panel, 45)
    expected = oracle_slots([person(adversarial, a) for a in panel], 45)
    assert got == expected
    zones = {p["address"]: p["time_zone"] for p in doc["people"]}
    assert zones == {a: person(adversarial, a)["mailboxSettings"]["timeZone"] for a in panel}


async def test_hand_checked_instants_around_the_dst_changes(adversarial: Stack) -> None:
    """A few answers computed by hand, so a shared recurrence bug cannot hide behind the oracle."""
    free = [
        "2027-03-08T16:00:00Z",  # 08:00 PST, before the weekly 09:00 Pacific meeting
        "2027-03-15T17:00:00Z",  # 10:00 PDT: after the US change the meeting is at 16:00Z
        "2027-03-10T21:00:00Z",  # the standup's original 13:00 PST, moved away
        "2027-03-17T20:00:00Z",  # the cancelled occurrence (13:00 PDT)
        "2027-03-09T19:00:00Z",  # showAs free
        "2027-03-12T18:00:00Z",  # showAs workingElsewhere
        "2027-03-16T16:00:00Z",  # a cancelled single event
        "2027-03-16T21:00:00Z",  # a declined meeting
    ]
    taken = [
        "2027-03-08T17:00:00Z",  # 09:00 PST weekly
        "2027-03-15T16:00:00Z",  # 09:00 PDT weekly
        "2027-03-10T23:00:00Z",  # the standup moved to 15:00 PST
        "2027-03-18T20:00:00Z",  # a normal standup occurrence, 13:00 PDT
        "2027-03-09T18:00:00Z",  # tentative
        "2027-03-11T17:00:00Z",  # oof
        "2027-03-15T21:00:00Z",  # unknown
        "2027-03-18T17:00:00Z",  # private
        "2027-03-19T17:00:00Z",  # 18:00 CET = 10:00 PDT
    ]
    got, _ = await service_slots(adversarial, [PAT], 30)
    starts = {s for s, _ in got}
    assert [t for t in free if _z(t) not in starts] == []
    assert [t for t in taken if _z(t) in starts] == []
    got, _ = await service_slots(adversarial, [NIMA], 30)
    starts = {s for s, _ in got}
    # Nepal +05:45: the working day starts 10:00 = 04:15Z; 04:00Z is outside it.
    assert [t for t in ["2027-03-10T04:15:00Z"] if _z(t) not in starts] == []
    assert [t for t in ["2027-03-10T04:00:00Z"] if _z(t) in starts] == []


async def test_an_all_day_event_from_another_zone_blocks_the_owners_local_day(
        adversarial: Stack) -> None:
    """A Tokyo all-day holiday on a London calendar: DESIGN.md says it blocks the whole local day.

    Graph sends it as 2027-03-21T15:00Z .. 2027-03-22T15:00Z (Tokyo midnight to midnight); the
    oracle blocks London's 2027-03-22 (09:00-17:00 GMT) and leaves 2027-03-23 untouched.
    """
    got, _ = await service_slots(adversarial, [OLIVIA], 30)
    expected = oracle_slots([person(adversarial, OLIVIA)], 30)
    on_holiday = {s for s in got if s[0].date() == TOKYO_HOLIDAY}
    assert on_holiday == set(), sorted(on_holiday)[:3]
    assert got == expected


async def test_more_than_25_events_are_all_seen(adversarial: Stack) -> None:
    busy = person(adversarial, BUSY)
    in_window = list(expand(busy["events"], WINDOW_START, WINDOW_END))
    assert len(in_window) > 25
    got, _ = await service_slots(adversarial, [BUSY], 15)
    overlapping = [(s, e) for s, e in got for o in in_window
                   if to_utc(o["start"]) < e and s < to_utc(o["end"])]
    assert overlapping == []
    last = max(to_utc(o["start"]) for o in in_window)
    assert (last, last + timedelta(minutes=15)) not in got
