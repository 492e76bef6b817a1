"""find_slots against a crafted, adversarial tenant, checked against an independent oracle.

The tenant is built here with FIXED dates around the spring 2027 DST changes (US 2027-03-14, EU
2027-03-28, Lord Howe 2027-04-04, a 30-minute shift). The 2026 autumn changes are already past, and
the service never offers a slot before "now", so a past window would be vacuously empty.

Calendars hold: a weekly "Pacific Standard Time" series across the US change, a series with a moved
exception and a cancelled occurrence, tentative/free/oof/workingElsewhere/unknown events, a
cancelled single event, a declined meeting, a private event, own-zone all-day events (busy, free,
multi-day across the EU change), an all-day Tokyo holiday on a London calendar, people in "Nepal
Standard Time" (+05:45) and "Australia/Lord_Howe" (IANA), and a calendar with 60 events in the
window. The tenant itself is built in adversarial_tenant.py; the oracle (conftest.py) expands the raw
calendars with devtenant's recurrence engine and applies DESIGN.md "Slot semantics" directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from calendar_backend.contract import parse_time
from devtenant.recurrence import expand
from devtenant.zones import to_utc
from tests.devtenant.fixtures import DevTenantHandle
from tests.service.adversarial_tenant import (
    BUSY,
    LENA,
    LORD,
    NIMA,
    OLIVIA,
    PAT,
    TOKYO_HOLIDAY,
    WINDOW_END,
    WINDOW_START,
    JsonDict,
)
from tests.service.conftest import Stack, find_all, oracle_slots, person, service_for


@pytest.fixture
async def adversarial(adversarial_tenant: DevTenantHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    async with service_for(adversarial_tenant, tmp_path) as stack:
        yield stack


async def service_slots(
    stack: Stack, addresses: list[str], minutes: int
) -> tuple[set[tuple[datetime, datetime]], JsonDict]:
    return await find_all(stack, addresses, WINDOW_START, WINDOW_END, minutes)


def expected_slots(stack: Stack, addresses: list[str], minutes: int) -> set[tuple[datetime, datetime]]:
    return oracle_slots([person(stack, a) for a in addresses], WINDOW_START, WINDOW_END, minutes)


def _z(text: str) -> datetime:
    return parse_time(text)


# ---- tests -------------------------------------------------------------------------------------
@pytest.mark.parametrize("address", [PAT, LENA, NIMA, LORD, BUSY])
async def test_each_calendar_matches_the_oracle(adversarial: Stack, address: str) -> None:
    got, doc = await service_slots(adversarial, [address], 30)
    expected = expected_slots(adversarial, [address], 30)
    assert expected, "the oracle must leave some slot, else the comparison proves little"
    assert sorted(got - expected)[:5] == []
    assert sorted(expected - got)[:5] == []
    zone = person(adversarial, address)["mailboxSettings"]["timeZone"]
    assert [p["time_zone"] for p in doc["people"]] == [zone]


async def test_a_cross_zone_panel_matches_the_oracle(adversarial: Stack) -> None:
    panel = [PAT, LENA, NIMA, LORD]
    got, doc = await service_slots(adversarial, panel, 45)
    expected = expected_slots(adversarial, panel, 45)
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


async def test_an_all_day_event_from_another_zone_blocks_the_owners_local_day(adversarial: Stack) -> None:
    """A Tokyo all-day holiday on a London calendar: DESIGN.md says it blocks the whole local day.

    Graph sends it as 2027-03-21T15:00Z .. 2027-03-22T15:00Z (Tokyo midnight to midnight); the
    oracle blocks London's 2027-03-22 (09:00-17:00 GMT) and leaves 2027-03-23 untouched.
    """
    got, _ = await service_slots(adversarial, [OLIVIA], 30)
    expected = expected_slots(adversarial, [OLIVIA], 30)
    on_holiday = {s for s in got if s[0].date() == TOKYO_HOLIDAY}
    assert on_holiday == set(), sorted(on_holiday)[:3]
    assert got == expected


async def test_more_than_25_events_are_all_seen(adversarial: Stack) -> None:
    busy = person(adversarial, BUSY)
    in_window = list(expand(busy["events"], WINDOW_START, WINDOW_END))
    assert len(in_window) > 25
    got, _ = await service_slots(adversarial, [BUSY], 15)
    overlapping = [
        (s, e) for s, e in got for o in in_window if to_utc(o["start"]) < e and s < to_utc(o["end"])
    ]
    assert overlapping == []
    last = max(to_utc(o["start"]) for o in in_window)
    assert (last, last + timedelta(minutes=15)) not in got
