"""Both availability sources against one calendar, at every share level (issue 15).

The same tenant-file calendar is rendered by devtenant's own Graph code exactly as a caller of each
share level receives it (calendarView fields after `$select`, getSchedule's scheduleInformation),
parsed by the Calendar Service's two sources (`schedule`: getSchedule only; `calendar_view`:
calendarView with getSchedule as its fallback) and searched with the slot engine. The answers are
compared with each other and with an independent oracle (tests/service/conftest.py) that knows
every fact of the calendar:

- `calendar_view` at limitedRead or more equals the oracle (it sees isAllDay; where it cannot see
  `responseStatus` it takes the timed blocks from free/busy, which leaves declined meetings out);
- free/busy (either source at freeBusyRead, `schedule` always) equals the oracle wherever the
  free/busy facts are unambiguous, and otherwise never offers a slot the oracle refuses;
- so `schedule` and `calendar_view` agree wherever both can see the same facts.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calendar_backend.availability import SlotQuery, find_panel_slots
from calendar_backend.calendar_view import VIEW_FIELDS, _combine, _View
from calendar_backend.calendar_view import availability_of as _availability
from calendar_backend.calendar_view import read_availability as _read_availability
from calendar_backend.graph import schedules_from
from calendar_backend.slots import Interval
from devtenant import freebusy, recurrence
from devtenant.graph import mailbox_settings
from devtenant.graph_access import ROLE_RANK, render_event
from devtenant.graph_http import select_fields
from devtenant.zones import to_utc
from tests.service.conftest import oracle_slots

JsonDict = dict[str, Any]
Span = tuple[datetime, datetime]
ADDRESS = "owner@contoso.example"
SHARES = ("freeBusyRead", "limitedRead", "read", "delegateWithPrivateEventAccess")
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]


# ---- the pipeline ----------------------------------------------------------------------------------
def owner(
    zone: str,
    events: list[JsonDict],
    hours: tuple[str, str] = ("09:00", "17:00"),
    days: list[str] | None = None,
) -> JsonDict:
    return {
        "id": "u1",
        "mail": ADDRESS,
        "userPrincipalName": ADDRESS,
        "mailboxSettings": {
            "timeZone": zone,
            "workingHours": {
                "daysOfWeek": days or WEEKDAYS,
                "startTime": f"{hours[0]}:00.0000000",
                "endTime": f"{hours[1]}:00.0000000",
                "timeZone": {"name": zone},
            },
        },
        "events": events,
    }


def event(eid: str, start: str, end: str, zone: str, **extra: Any) -> JsonDict:
    ev: JsonDict = {
        "id": eid,
        "subject": f"event {eid}",
        "start": {"dateTime": f"{start}.0000000", "timeZone": zone},
        "end": {"dateTime": f"{end}.0000000", "timeZone": zone},
        "showAs": "busy",
        "isAllDay": False,
        "isCancelled": False,
        "sensitivity": "normal",
        "type": "singleInstance",
        "responseStatus": {"response": "accepted"},
    }
    ev.update(extra)
    return ev


def all_day(eid: str, first: str, end: str, zone: str, **extra: Any) -> JsonDict:
    return event(eid, f"{first}T00:00:00", f"{end}T00:00:00", zone, isAllDay=True, **extra)


def source_slots(
    person: JsonDict, share: str, source: str, start: datetime, end: datetime, minutes: int
) -> set[Span]:
    """Every slot `source` finds for `person` read by a caller holding `share`, as the service
    computes it (fetch window padded by a day, devtenant's rendering of both Graph answers)."""
    rank = ROLE_RANK.get(share, 99)
    fetch_start, fetch_end = start - timedelta(days=1), end + timedelta(days=1)
    occurrences = recurrence.expand(copy.deepcopy(person["events"]), fetch_start, fetch_end)
    info = freebusy.schedule_information(
        ADDRESS,
        occurrences,
        fetch_start,
        fetch_end,
        15,
        working_hours=mailbox_settings(person)["workingHours"],
        can_see_details=rank >= ROLE_RANK["limitedRead"],
        out_zone="UTC",
    )
    schedule = schedules_from({"value": [info]}, [ADDRESS])[ADDRESS]
    if source == "schedule":
        availability = _availability(schedule, is_room=False)
    else:
        query = {"$select": ",".join(VIEW_FIELDS)}
        view = (
            _View(events=tuple(select_fields(render_event(e, "UTC", rank), query) for e in occurrences))
            if rank >= ROLE_RANK["limitedRead"]
            else _View(status=403)
        )
        availability = _read_availability(_combine(schedule, view), False)
    query_ = SlotQuery(
        window=Interval(start, end),
        duration=timedelta(minutes=minutes),
        step=timedelta(minutes=15),
        not_before=start,
    )
    return {(s.start, s.end) for s in find_panel_slots([availability], query_).slots}


def all_answers(
    person: JsonDict, start: datetime, end: datetime, minutes: int
) -> dict[tuple[str, str], set[Span]]:
    return {
        (source, share): source_slots(person, share, source, start, end, minutes)
        for source in ("schedule", "calendar_view")
        for share in SHARES
    }


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


# ---- the cases, fixed ------------------------------------------------------------------------
def test_london_mailbox_with_a_tokyo_all_day_event() -> None:
    """Thu 2027-03-18 all day in Tokyo = Mar 17 15:00Z - Mar 18 15:00Z: busy on Wednesday
    afternoon in London (its span) and all of Thursday (London's day it names)."""
    person = owner("GMT Standard Time", [all_day("t", "2027-03-18", "2027-03-19", "Tokyo Standard Time")])
    start, end = utc(2027, 3, 17), utc(2027, 3, 19)
    expected = oracle_slots([person], start, end, 60, start)
    assert len(expected) == 21
    assert max(s for s, _ in expected) == utc(2027, 3, 17, 14)
    for key, got in all_answers(person, start, end, 60).items():
        assert got == expected, key


def test_weekly_all_day_series_in_lord_howe_on_a_utc_mailbox() -> None:
    series = all_day(
        "s",
        "2027-03-15",
        "2027-03-16",
        "Lord Howe Standard Time",
        type="seriesMaster",
        recurrence={
            "pattern": {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": ["monday", "wednesday"],
                "firstDayOfWeek": "sunday",
            },
            "range": {
                "type": "endDate",
                "startDate": "2027-03-15",
                "endDate": "2027-04-14",
                "recurrenceTimeZone": "Lord Howe Standard Time",
            },
        },
    )
    person = owner("UTC", [series], hours=("00:00", "23:45"), days=[*WEEKDAYS, "saturday", "sunday"])
    start, end = utc(2027, 3, 29), utc(2027, 4, 9)  # Lord Howe's DST ends 2027-04-04
    expected = oracle_slots([person], start, end, 60, start)
    for key, got in all_answers(person, start, end, 60).items():
        assert got == expected, key


def test_declined_meeting_does_not_block_at_any_share_level() -> None:
    person = owner(
        "UTC",
        [
            event(
                "d",
                "2027-03-17T10:00:00",
                "2027-03-17T11:00:00",
                "UTC",
                responseStatus={"response": "declined"},
            )
        ],
    )
    start, end = utc(2027, 3, 17), utc(2027, 3, 18)
    expected = oracle_slots([person], start, end, 60, start)
    assert (utc(2027, 3, 17, 10), utc(2027, 3, 17, 11)) in expected
    for key, got in all_answers(person, start, end, 60).items():
        assert got == expected, key


def test_sydney_all_day_leave_across_dst_end_blocks_the_london_days() -> None:
    """Apr 3-6 2027 all day in Sydney lasts 73 h (DST ends Apr 4); on a London calendar it blocks
    Saturday to Monday in London, so Monday 15:00-17:00 BST (after its span ends) is busy too."""
    person = owner(
        "GMT Standard Time",
        [all_day("l", "2027-04-03", "2027-04-06", "AUS Eastern Standard Time", showAs="oof")],
    )
    start, end = utc(2027, 4, 5), utc(2027, 4, 7)
    expected = oracle_slots([person], start, end, 60, start)
    assert min(s for s, _ in expected) == utc(2027, 4, 6, 8)  # nothing on Monday
    for key, got in all_answers(person, start, end, 60).items():
        assert got == expected, key


def test_a_timed_24_hour_block_is_timed_wherever_is_all_day_is_visible() -> None:
    """Tue 14:00Z -> Wed 14:00Z is midnight to midnight in Brisbane, so free/busy alone cannot tell
    it from an all-day event there: free/busy blocks the owner's Wednesday (missing slots, never
    offering busy time). calendarView at limitedRead or more sees isAllDay and offers Wednesday
    afternoon."""
    person = owner("UTC", [event("x", "2027-03-16T14:00:00", "2027-03-17T14:00:00", "UTC")])
    start, end = utc(2027, 3, 16), utc(2027, 3, 18)
    expected = oracle_slots([person], start, end, 60, start)
    wednesday_afternoon = {s for s in expected if s[0] >= utc(2027, 3, 17, 14)}
    assert wednesday_afternoon
    answers = all_answers(person, start, end, 60)
    for (source, share), got in answers.items():
        if source == "calendar_view" and share != "freeBusyRead":
            assert got == expected, (source, share)
        else:
            assert got == expected - wednesday_afternoon, (source, share)


def test_a_24_hour_block_at_no_zones_midnight_is_timed() -> None:
    person = owner("UTC", [event("x", "2027-03-16T14:20:00", "2027-03-17T14:20:00", "UTC")])
    start, end = utc(2027, 3, 16), utc(2027, 3, 18)
    expected = oracle_slots([person], start, end, 60, start)
    for key, got in all_answers(person, start, end, 60).items():
        assert got == expected, key


# ---- generated calendars ---------------------------------------------------------------------------
OWNER_ZONES = [
    "UTC",
    "GMT Standard Time",
    "Tokyo Standard Time",
    "Pacific Standard Time",
    "Eastern Standard Time",
    "AUS Eastern Standard Time",
    "Lord Howe Standard Time",
    "Nepal Standard Time",
    "Asia/Kathmandu",
    "Europe/Berlin",
    "India Standard Time",
    "Australia/Lord_Howe",
    "Hawaiian Standard Time",
    "New Zealand Standard Time",
]
# Zones whose midnights no zone of another date shares (UTC offset strictly between -10 and +12):
# free/busy can tell the dates of their all-day events exactly.
CLEAR_ZONES = [
    "UTC",
    "GMT Standard Time",
    "Tokyo Standard Time",
    "Pacific Standard Time",
    "Eastern Standard Time",
    "AUS Eastern Standard Time",
    "Lord Howe Standard Time",
    "Nepal Standard Time",
    "Asia/Kathmandu",
    "W. Europe Standard Time",
    "India Standard Time",
    "America/Sao_Paulo",
    "Pacific/Chatham",
    "Pacific SA Standard Time",
    "Cuba Standard Time",
]  # DST gaps at midnight
# ... and zones whose midnights another zone shares a day apart (UTC+12..+14, UTC-10..-12).
AMBIGUOUS_ZONES = [
    "Hawaiian Standard Time",
    "New Zealand Standard Time",
    "Pacific/Kiritimati",
    "Tonga Standard Time",
    "Pacific/Pago_Pago",
    "Fiji Standard Time",
]
SHOW_AS = [None, "free", "tentative", "busy", "oof", "workingElsewhere", "unknown", "somethingNew"]
RESPONSES = ["accepted", "declined", "organizer", "tentativelyAccepted", "notResponded", "none"]
FIRST_DAY = date(2027, 3, 6)  # the window starts 0-30 days later: US, EU, AU and Lord Howe DST


def _wall(day: date, minutes: int) -> str:
    return (datetime.combine(day, datetime.min.time()) + timedelta(minutes=minutes)).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )


def _exception(master: JsonDict, shift: int, cancelled: bool, show_as: str | None) -> JsonDict:
    """The first occurrence of `master` moved by `shift` days (all-day) or hours, or cancelled."""
    step = timedelta(days=shift) if master["isAllDay"] else timedelta(hours=shift)
    moved = {
        key: {
            "dateTime": (datetime.fromisoformat(master[key]["dateTime"][:19]) + step).strftime(
                "%Y-%m-%dT%H:%M:%S"
            ),
            "timeZone": master[key]["timeZone"],
        }
        for key in ("start", "end")
    }
    return {
        "id": f"{master['id']}-x",
        "type": "exception",
        "seriesMasterId": master["id"],
        "originalStart": to_utc(master["start"]).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "isCancelled": cancelled,
        "showAs": show_as,
        **moved,
    }


@st.composite
def calendars(
    draw: st.DrawFn, all_day_zones: list[str], longest_min: int
) -> tuple[JsonDict, datetime, datetime, int]:
    """A mailbox (zone, working hours) with timed, all-day and weekly events, and a window."""
    window_day = FIRST_DAY + timedelta(days=draw(st.integers(0, 30)))
    window_days = draw(st.integers(1, 4))
    events: list[JsonDict] = []
    for n in range(draw(st.integers(0, 7))):
        extra: JsonDict = {
            "showAs": draw(st.sampled_from(SHOW_AS)),
            "isCancelled": draw(st.booleans()) and draw(st.booleans()),
            "responseStatus": {"response": draw(st.sampled_from(RESPONSES))},
        }
        day = window_day + timedelta(days=draw(st.integers(-2, window_days + 1)))
        if draw(st.booleans()):
            zone = draw(st.sampled_from(all_day_zones))
            ev = all_day(
                f"a{n}",
                day.isoformat(),
                (day + timedelta(days=draw(st.integers(1, 4)))).isoformat(),
                zone,
                **extra,
            )
        else:
            zone = draw(st.sampled_from(OWNER_ZONES + AMBIGUOUS_ZONES))
            begin = draw(st.integers(0, 95)) * 15
            length = draw(st.integers(1, longest_min // 15)) * 15
            ev = event(f"t{n}", _wall(day, begin), _wall(day, begin + length), zone, **extra)
        if draw(st.integers(0, 4)) == 0:
            ev["type"] = "seriesMaster"
            ev["recurrence"] = {
                "pattern": {
                    "type": "weekly",
                    "interval": 1,
                    "firstDayOfWeek": "sunday",
                    "daysOfWeek": [day.strftime("%A").lower()],
                },
                "range": {
                    "type": "numbered",
                    "startDate": day.isoformat(),
                    "numberOfOccurrences": draw(st.integers(1, 4)),
                    "recurrenceTimeZone": zone,
                },
            }
            if draw(st.booleans()):
                events.append(
                    _exception(
                        ev, draw(st.integers(-2, 2)), draw(st.booleans()), draw(st.sampled_from(SHOW_AS))
                    )
                )
        events.append(ev)
    begin_h = draw(st.integers(0, 10))
    hours = (f"{begin_h:02d}:00", f"{draw(st.integers(begin_h + 2, 23)):02d}:45")
    person = owner(
        draw(st.sampled_from(OWNER_ZONES)),
        events,
        hours,
        draw(st.sampled_from([WEEKDAYS, [*WEEKDAYS, "saturday", "sunday"]])),
    )
    start = datetime.combine(window_day, datetime.min.time(), UTC)
    return person, start, start + timedelta(days=window_days), draw(st.sampled_from([30, 60]))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calendars(CLEAR_ZONES, longest_min=600))
def test_both_sources_agree_with_the_oracle_where_the_facts_are_clear(
    case: tuple[JsonDict, datetime, datetime, int],
) -> None:
    """Timed events under 22 h and all-day events in zones free/busy can read: every source at
    every share level gives exactly the oracle's slots."""
    person, start, end, minutes = case
    expected = oracle_slots([person], start, end, minutes, start)
    for key, got in all_answers(person, start, end, minutes).items():
        assert got == expected, key


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calendars(CLEAR_ZONES + AMBIGUOUS_ZONES, longest_min=3 * 1440))
def test_no_source_offers_busy_time_and_calendar_view_sees_most(
    case: tuple[JsonDict, datetime, datetime, int],
) -> None:
    """Any calendar (all-day events in zones that share midnights a day apart, timed events of
    whole days): no source at any share level offers a slot the oracle refuses; calendarView at
    `read` equals the oracle; at each share level `schedule` offers no slot `calendar_view` lacks."""
    person, start, end, minutes = case
    expected = oracle_slots([person], start, end, minutes, start)
    answers = all_answers(person, start, end, minutes)
    for key, got in answers.items():
        assert got <= expected, key
    assert answers["calendar_view", "read"] == expected
    for share in SHARES:
        assert answers["schedule", share] <= answers["calendar_view", share], share


def test_an_all_day_event_on_a_day_whose_midnight_does_not_exist() -> None:
    """Santiago skips 00:00-01:00 on 2027-09-05: the all-day event starts at 01:00 local, the first
    instant of that day; free/busy must still see an all-day event and block the London Sunday-Monday."""
    person = owner(
        "GMT Standard Time",
        [all_day("cl", "2027-09-05", "2027-09-07", "Pacific SA Standard Time")],
        hours=("00:00", "23:45"),
        days=[*WEEKDAYS, "saturday", "sunday"],
    )
    start, end = utc(2027, 9, 4), utc(2027, 9, 8)
    expected = oracle_slots([person], start, end, 60, start)
    assert expected
    for key, got in all_answers(person, start, end, 60).items():
        assert got == expected, key
