"""devtenant.freebusy: Graph scheduleInformation digits/items and calendarView paging.

The expected availabilityView strings are worked out by hand from the event table in each test.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtenant.freebusy import calendar_view_page, schedule_information
from devtenant.recurrence import expand
from devtenant.zones import to_utc

JsonDict = dict[str, Any]
WORKING_HOURS = {
    "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
    "startTime": "08:00:00.0000000",
    "endTime": "17:00:00.0000000",
    "timeZone": {"name": "Pacific Standard Time"},
}


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def event(ev_id: str, start: str, end: str, show_as: str = "busy", **extra: Any) -> JsonDict:
    return {
        "id": ev_id,
        "subject": f"subject {ev_id}",
        "location": {"displayName": f"room {ev_id}"},
        "showAs": show_as,
        "start": {"dateTime": f"2026-12-01T{start}:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": f"2026-12-01T{end}:00.0000000", "timeZone": "UTC"},
        **extra,
    }


def known_calendar() -> list[JsonDict]:
    return [
        event("before", "08:00", "09:00"),  # ends at the window start: not listed
        event("busy", "09:00", "10:00"),
        event("tentative", "10:15", "10:45", "tentative"),  # not aligned to 30 or 60
        event("oof", "10:40", "11:00", "oof"),
        event("elsewhere", "11:00", "12:00", "workingElsewhere"),
        event("free", "11:30", "12:30", "free"),
        event("declined", "12:00", "13:00", responseStatus={"response": "declined"}),
        event("cancelled", "12:30", "13:00", isCancelled=True),
    ]


WINDOW_START = datetime(2026, 12, 1, 9, tzinfo=UTC)
WINDOW_END = datetime(2026, 12, 1, 13, tzinfo=UTC)


def schedule(
    events: list[JsonDict],
    interval_min: int,
    *,
    start: datetime = WINDOW_START,
    end: datetime = WINDOW_END,
    can_see_details: bool = True,
    out_zone: str = "UTC",
    working_hours: JsonDict | None = WORKING_HOURS,
) -> JsonDict:
    return schedule_information(
        "adelev@contoso.example", events, start, end, interval_min,
        working_hours=working_hours, can_see_details=can_see_details, out_zone=out_zone,
    )  # fmt: skip


# slot by slot, 30 min: 09:00 busy, 09:30 busy, 10:00 tentative, 10:30 oof beats tentative,
# 11:00 and 11:30 workingElsewhere beats free, 12:00 free, 12:30 (declined/cancelled) free.
@pytest.mark.parametrize(("interval_min", "view"), [(30, "22134400"), (60, "2340"), (240, "3")])
def test_availability_view_digits_for_a_known_calendar(interval_min: int, view: str) -> None:
    assert schedule(known_calendar(), interval_min)["availabilityView"] == view


def test_partial_last_slot_is_included() -> None:
    info = schedule(known_calendar(), 30, end=utc(2026, 12, 1, 10, 15))
    assert info["availabilityView"] == "220"  # 10:00-10:15 ends before the tentative starts


def test_window_not_aligned_to_events() -> None:
    info = schedule(known_calendar(), 60, start=utc(2026, 12, 1, 9, 30), end=utc(2026, 12, 1, 12))
    # 09:30-10:30 busy+tentative, 10:30-11:30 oof+elsewhere, 11:30-12:00 elsewhere+free
    assert info["availabilityView"] == "234"


def test_schedule_items_exclude_declined_cancelled_and_outside_events() -> None:
    info = schedule(known_calendar(), 30)
    assert info["scheduleId"] == "adelev@contoso.example"
    assert [item["subject"] for item in info["scheduleItems"]] == [
        "subject busy", "subject tentative", "subject oof", "subject elsewhere", "subject free"
    ]  # fmt: skip
    assert [item["status"] for item in info["scheduleItems"]] == [
        "busy", "tentative", "oof", "workingElsewhere", "free"
    ]  # fmt: skip
    first = info["scheduleItems"][0]
    assert first == {
        "isPrivate": False,
        "status": "busy",
        "start": {"dateTime": "2026-12-01T09:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-01T10:00:00.0000000", "timeZone": "UTC"},
        "subject": "subject busy",
        "location": "room busy",
    }
    assert "declined" not in json.dumps(info)
    assert "cancelled" not in json.dumps(info)


def test_items_are_written_in_the_requested_zone() -> None:
    info = schedule(known_calendar(), 30, out_zone="Pacific Standard Time")
    assert info["scheduleItems"][0]["start"] == {
        "dateTime": "2026-12-01T01:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }


@pytest.mark.parametrize("sensitivity", ["private", "confidential"])
def test_private_items_never_expose_subject_or_location(sensitivity: str) -> None:
    secret = event("s", "09:00", "10:00", subject="Secret: offer for Kim",
                   sensitivity=sensitivity, location={"displayName": "HR corner"})  # fmt: skip
    info = schedule([secret], 30, can_see_details=True)
    assert info["availabilityView"][:2] == "22"
    assert info["scheduleItems"] == [
        {
            "isPrivate": True,
            "status": "busy",
            "start": {"dateTime": "2026-12-01T09:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-01T10:00:00.0000000", "timeZone": "UTC"},
        }
    ]
    dumped = json.dumps(info)
    assert "Secret" not in dumped
    assert "HR corner" not in dumped


def test_free_busy_only_callers_see_status_but_no_details() -> None:
    info = schedule([event("p", "09:00", "10:00", sensitivity="personal")], 30,
                    can_see_details=False)  # fmt: skip
    assert set(info["scheduleItems"][0]) == {"isPrivate", "status", "start", "end"}
    shown = schedule([event("p", "09:00", "10:00", sensitivity="personal")], 30)
    assert shown["scheduleItems"][0]["subject"] == "subject p"


def test_working_hours_pass_through_or_are_omitted() -> None:
    assert schedule([], 60)["workingHours"] == WORKING_HOURS
    info = schedule([], 60, working_hours=None)
    assert "workingHours" not in info
    assert info["availabilityView"] == "0000"
    assert info["scheduleItems"] == []


def test_unknown_status_blocks_like_busy_and_missing_show_as_is_busy() -> None:
    unknown = event("u", "09:00", "09:30", "unknown")
    unset = {k: v for k, v in event("n", "10:00", "10:30").items() if k != "showAs"}
    info = schedule([unknown, unset], 30)
    assert info["availabilityView"] == "20200000"
    assert [item["status"] for item in info["scheduleItems"]] == ["unknown", "busy"]


def test_zero_length_event_is_listed_but_blocks_nothing() -> None:
    info = schedule([event("z", "09:10", "09:10")], 30)
    assert info["availabilityView"] == "00000000"
    assert len(info["scheduleItems"]) == 1


def test_recurring_series_with_cancelled_occurrence_and_declined_series() -> None:
    master = {
        **event("standup", "09:00", "09:30"),
        "type": "seriesMaster",
        "recurrence": {
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "noEnd", "startDate": "2026-11-30"},
        },
    }
    skipped = {"id": "skip", "type": "exception", "seriesMasterId": "standup",
               "originalStart": "2026-12-02T09:00:00Z", "isCancelled": True}  # fmt: skip
    declined = {**master, "id": "allhands", "responseStatus": {"response": "declined"}}
    start, end = utc(2026, 12, 1), utc(2026, 12, 4)
    occurrences = expand([master, skipped, declined], start, end)
    info = schedule(occurrences, 1440, start=start, end=end)
    assert info["availabilityView"] == "202"
    assert [to_utc(item["start"]) for item in info["scheduleItems"]] == [
        utc(2026, 12, 1, 9), utc(2026, 12, 3, 9)
    ]  # fmt: skip


@pytest.mark.parametrize("interval_min", [0, 4, 1441, True])
def test_interval_outside_graph_limits_raises(interval_min: int) -> None:
    with pytest.raises(ValueError, match="interval_min"):
        schedule([], interval_min)


def test_bad_window_or_zone_raises() -> None:
    with pytest.raises(ValueError, match="window"):
        schedule([], 30, start=utc(2026, 12, 1, 13))
    with pytest.raises(ValueError, match="window"):
        schedule([], 30, start=datetime(2026, 12, 1, 9))
    with pytest.raises(ValueError, match="time zone"):
        schedule([], 30, out_zone="Atlantis Standard Time")


def test_calendar_view_page_slices_and_reports_more() -> None:
    items = [{"id": str(i)} for i in range(25)]
    pages = [calendar_view_page(items, skip, 10) for skip in (0, 10, 20, 30)]
    assert [[ev["id"] for ev in page] for page, _ in pages] == [
        [str(i) for i in range(10)], [str(i) for i in range(10, 20)],
        [str(i) for i in range(20, 25)], [],
    ]  # fmt: skip
    assert [more for _, more in pages] == [True, True, False, False]
    assert calendar_view_page(items[:10], 0, 10) == (items[:10], False)
    with pytest.raises(ValueError, match="top"):
        calendar_view_page(items, 0, 0)
    with pytest.raises(ValueError, match="skip"):
        calendar_view_page(items, -1, 10)


_STATUSES = ["free", "tentative", "busy", "oof", "workingElsewhere"]
_STRENGTH = {"0": 0, "4": 1, "1": 2, "2": 3, "3": 4}


@st.composite
def calendars(draw: st.DrawFn) -> list[JsonDict]:
    count = draw(st.integers(0, 6))
    out = []
    for i in range(count):
        start_min = draw(st.integers(-60, 300))
        length = draw(st.integers(0, 200))
        begin = utc(2026, 12, 1, 9) + timedelta(minutes=start_min)
        out.append({
            "id": f"e{i}", "showAs": draw(st.sampled_from(_STATUSES)),
            "start": {"dateTime": begin.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {"dateTime": (begin + timedelta(minutes=length)).strftime("%Y-%m-%dT%H:%M:%S"),
                    "timeZone": "UTC"},
        })  # fmt: skip
    return out


@settings(max_examples=200, deadline=None)
@given(events=calendars(), extra=calendars(), interval_min=st.sampled_from([5, 15, 30, 45, 60]))
def test_adding_events_never_weakens_any_slot(
    events: list[JsonDict], extra: list[JsonDict], interval_min: int
) -> None:
    for i, ev in enumerate(extra):
        ev["id"] = f"x{i}"
    before = schedule(events, interval_min)["availabilityView"]
    after = schedule(events + extra, interval_min)["availabilityView"]
    assert len(before) == len(after) == -(-240 // interval_min)
    assert all(_STRENGTH[b] <= _STRENGTH[a] for b, a in zip(before, after, strict=True))
