"""devtenant.zones and devtenant.recurrence: Graph time zones and calendarView expansion.

Every expected date below is derived by hand from the calendar (weekdays, DST dates), never
copied from the implementation. Dates are pinned; nothing reads today's date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtenant.recurrence import MAX_PERIODS, expand, overlaps
from devtenant.zones import from_utc, to_utc, zone_for

JsonDict = dict[str, Any]


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def single(ev_id: str, start: str, end: str, tz: str = "UTC", **extra: Any) -> JsonDict:
    return {
        "id": ev_id,
        "type": "singleInstance",
        "subject": f"subject {ev_id}",
        "start": {"dateTime": start, "timeZone": tz},
        "end": {"dateTime": end, "timeZone": tz},
        **extra,
    }


def series(
    ev_id: str, start: str, end: str, pattern: JsonDict, rng: JsonDict, tz: str = "UTC", **extra: Any
) -> JsonDict:
    range_ = {"type": "noEnd", "startDate": start[:10], **rng}
    return {
        **single(ev_id, start, end, tz, **extra),
        "type": "seriesMaster",
        "recurrence": {"pattern": {"interval": 1, **pattern}, "range": range_},
    }


def exception(master_id: str, ev_id: str, original: str, **extra: Any) -> JsonDict:
    return {"id": ev_id, "type": "exception", "seriesMasterId": master_id,
            "originalStart": original, **extra}  # fmt: skip


def starts(view: list[JsonDict]) -> list[datetime]:
    return [to_utc(ev["start"]) for ev in view]


def local_dates(view: list[JsonDict], tz: str) -> list[date]:
    zone = zone_for(tz)
    return [to_utc(ev["start"]).astimezone(zone).date() for ev in view]


def d(month: int, day: int, year: int = 2026) -> date:
    return date(year, month, day)


# ---- zones --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "offset_min"),
    [
        ("Pacific Standard Time", -8 * 60),
        ("pacific standard time", -8 * 60),
        ("India Standard Time", 5 * 60 + 30),
        ("Nepal Standard Time", 5 * 60 + 45),
        ("W. Europe Standard Time", 60),
        ("UTC", 0),
        ("Europe/Berlin", 60),
        ("Asia/Kolkata", 5 * 60 + 30),
        ("tzone://Microsoft/Utc", 0),
    ],
)
def test_zone_for_resolves_windows_and_iana_names(name: str, offset_min: int) -> None:
    winter = datetime(2026, 12, 1, 12, tzinfo=zone_for(name))
    assert winter.utcoffset() == timedelta(minutes=offset_min)


@pytest.mark.parametrize("name", ["Mars Standard Time", "", "  ", "../etc/passwd", "/etc/localtime"])
def test_zone_for_rejects_unknown_names(name: str) -> None:
    with pytest.raises(ValueError, match="time zone"):
        zone_for(name)


def test_to_utc_reads_graph_datetimes() -> None:
    pst = {"dateTime": "2026-12-01T09:00:00.0000000", "timeZone": "Pacific Standard Time"}
    assert to_utc(pst) == utc(2026, 12, 1, 17)
    frac = {"dateTime": "2026-12-01T09:00:00.1234567", "timeZone": "UTC"}
    assert to_utc(frac) == utc(2026, 12, 1, 9, 0, 0, 123456)
    assert to_utc({"dateTime": "2026-12-01T09:00:00.5", "timeZone": "UTC"}) == utc(
        2026, 12, 1, 9, 0, 0, 500000
    )
    assert to_utc({"dateTime": "2026-12-01T09:00", "timeZone": "UTC"}) == utc(2026, 12, 1, 9)
    assert to_utc({"dateTime": "2026-12-01T09:00:00Z", "timeZone": "Tokyo Standard Time"}) == utc(
        2026, 12, 1, 9
    )


def test_to_utc_moves_a_dst_gap_time_forward() -> None:
    # 2026-03-08 02:30 does not exist in Los Angeles; Exchange shows it at 03:30 PDT (10:30Z).
    gap = {"dateTime": "2026-03-08T02:30:00", "timeZone": "Pacific Standard Time"}
    assert to_utc(gap) == utc(2026, 3, 8, 10, 30)


@pytest.mark.parametrize(
    "bad",
    [{"dateTime": "tomorrow", "timeZone": "UTC"}, {"timeZone": "UTC"},
     {"dateTime": "2026-12-01T09:00:00", "timeZone": "Nowhere Time"}],
)  # fmt: skip
def test_to_utc_rejects_malformed_values(bad: JsonDict) -> None:
    with pytest.raises(ValueError, match=r"dateTime|time zone"):
        to_utc(bad)


def test_from_utc_writes_seven_fraction_digits_and_echoes_the_zone() -> None:
    out = from_utc(utc(2026, 12, 1, 17, 0, 0, 500000), "Pacific Standard Time")
    assert out == {"dateTime": "2026-12-01T09:00:00.5000000", "timeZone": "Pacific Standard Time"}
    assert from_utc(utc(2026, 12, 1, 3, 15), "Nepal Standard Time")["dateTime"] == (
        "2026-12-01T09:00:00.0000000"
    )
    with pytest.raises(ValueError, match="aware"):
        from_utc(datetime(2026, 12, 1), "UTC")


@settings(max_examples=200, deadline=None)
@given(
    instant=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1)),
    zone=st.sampled_from(["UTC", "India Standard Time", "Nepal Standard Time", "Asia/Tokyo"]),
)
def test_from_utc_round_trips_through_to_utc(instant: datetime, zone: str) -> None:
    aware = instant.replace(tzinfo=UTC)
    assert to_utc(from_utc(aware, zone)) == aware


# ---- singles and window edges ----------------------------------------------------------------


def test_expand_window_edges_and_zero_length_events() -> None:
    events = [
        single("ends-at-start", "2026-12-01T08:00:00", "2026-12-01T09:00:00"),
        single("zero-at-start", "2026-12-01T09:00:00", "2026-12-01T09:00:00"),
        single("inside", "2026-12-01T09:30:00", "2026-12-01T10:00:00"),
        single("starts-at-end", "2026-12-01T11:00:00", "2026-12-01T12:00:00"),
        single("spans", "2026-11-30T00:00:00", "2026-12-02T00:00:00"),
    ]
    view = expand(events, utc(2026, 12, 1, 9), utc(2026, 12, 1, 11))
    assert [ev["id"] for ev in view] == ["spans", "zero-at-start", "inside"]
    assert view[1]["start"] == {"dateTime": "2026-12-01T09:00:00.0000000", "timeZone": "UTC"}


def test_expand_sorts_by_start_then_id_and_reports_utc() -> None:
    events = [
        single("b", "2026-12-01T09:00:00", "2026-12-01T10:00:00", "Pacific Standard Time"),
        single("a", "2026-12-01T17:00:00", "2026-12-01T18:00:00"),
        single("c", "2026-12-01T08:00:00", "2026-12-01T09:00:00", "Pacific Standard Time"),
    ]
    view = expand(events, utc(2026, 12, 1), utc(2026, 12, 2))
    assert [ev["id"] for ev in view] == ["c", "a", "b"]
    assert view[2]["start"]["timeZone"] == "UTC"
    assert view[2]["originalStartTimeZone"] == "Pacific Standard Time"
    assert events[0]["start"]["timeZone"] == "Pacific Standard Time"  # input untouched


def test_expand_all_day_single_in_pacific_time_covers_the_local_day() -> None:
    ev = single("holiday", "2026-12-01T00:00:00", "2026-12-02T00:00:00",
                "Pacific Standard Time", isAllDay=True)  # fmt: skip
    assert expand([ev], utc(2026, 12, 1), utc(2026, 12, 1, 8)) == []
    view = expand([ev], utc(2026, 12, 1, 7), utc(2026, 12, 1, 9))
    assert (to_utc(view[0]["start"]), to_utc(view[0]["end"])) == (
        utc(2026, 12, 1, 8),
        utc(2026, 12, 2, 8),
    )


def test_expand_rejects_naive_or_inverted_windows() -> None:
    with pytest.raises(ValueError, match="window"):
        expand([], datetime(2026, 12, 1), utc(2026, 12, 2))
    with pytest.raises(ValueError, match="window"):
        expand([], utc(2026, 12, 2), utc(2026, 12, 1))


# ---- patterns -----------------------------------------------------------------------------------


def test_daily_series_with_end_date_yields_occurrences_not_the_master() -> None:
    master = series("m", "2026-12-01T09:00:00", "2026-12-01T09:30:00", {"type": "daily"},
                    {"type": "endDate", "endDate": "2026-12-05"})  # fmt: skip
    view = expand([master], utc(2026, 11, 1), utc(2027, 1, 1))
    assert starts(view) == [utc(2026, 12, day, 9) for day in range(1, 6)]
    first = view[0]
    assert first["type"] == "occurrence"
    assert first["seriesMasterId"] == "m"
    assert first["originalStart"] == "2026-12-01T09:00:00Z"
    assert first["recurrence"] is None
    assert first["subject"] == "subject m"
    assert to_utc(first["end"]) == utc(2026, 12, 1, 9, 30)
    assert len({ev["id"] for ev in view}) == 5
    assert "m" not in {ev["id"] for ev in view}


def test_daily_interval_three_fast_forwards_to_the_window() -> None:
    # 2026-12-01 is day 334 after 2026-01-01; 334 % 3 == 1, so the next hits are day 336 and 339.
    master = series("m", "2026-01-01T09:00:00", "2026-01-01T10:00:00",
                    {"type": "daily", "interval": 3}, {})  # fmt: skip
    view = expand([master], utc(2026, 12, 1), utc(2026, 12, 8))
    assert local_dates(view, "UTC") == [d(12, 3), d(12, 6)]


def test_long_occurrences_starting_before_the_window_are_included() -> None:
    master = series("m", "2026-12-01T09:00:00", "2026-12-03T09:00:00", {"type": "daily"}, {})
    view = expand([master], utc(2026, 12, 10, 12), utc(2026, 12, 10, 13))
    # Dec 9 09:00 and Dec 10 09:00 last 48 h each and cover Dec 10 12:00; Dec 8's ends at 09:00.
    assert starts(view) == [utc(2026, 12, 9, 9), utc(2026, 12, 10, 9)]


def test_weekly_numbered_counts_occurrences_before_the_window() -> None:
    master = series("m", "2026-11-30T09:00:00", "2026-11-30T10:00:00",
                    {"type": "weekly", "daysOfWeek": ["monday", "wednesday", "friday"]},
                    {"type": "numbered", "numberOfOccurrences": 5})  # fmt: skip
    view = expand([master], utc(2026, 12, 1), utc(2027, 1, 1))
    assert local_dates(view, "UTC") == [d(12, 2), d(12, 4), d(12, 7), d(12, 9)]


def test_numbered_range_exhausted_before_the_window_is_empty() -> None:
    master = series("m", "2026-12-01T09:00:00", "2026-12-01T10:00:00", {"type": "daily"},
                    {"type": "numbered", "numberOfOccurrences": 3})  # fmt: skip
    assert expand([master], utc(2026, 12, 10), utc(2026, 12, 20)) == []
    assert local_dates(expand([master], utc(2026, 12, 2), utc(2026, 12, 20)), "UTC") == [
        d(12, 2), d(12, 3)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("first_day", "expected"),
    [
        # weeks Sun-Sat from Sun Nov 29; every other week: Nov 29.., Dec 13.., Dec 27..
        ("sunday", [d(12, 2), d(12, 14), d(12, 16), d(12, 28), d(12, 30)]),
        # weeks Tue-Mon from Tue Dec 1; every other week: Dec 1.., Dec 15.., Dec 29..
        ("tuesday", [d(12, 2), d(12, 7), d(12, 16), d(12, 21), d(12, 30)]),
    ],
)
def test_biweekly_series_depends_on_first_day_of_week(first_day: str, expected: list[date]) -> None:
    pattern = {"type": "weekly", "interval": 2, "daysOfWeek": ["monday", "wednesday"],
               "firstDayOfWeek": first_day}  # fmt: skip
    master = series("m", "2026-12-02T09:00:00", "2026-12-02T10:00:00", pattern, {})
    assert local_dates(expand([master], utc(2026, 12, 1), utc(2027, 1, 1)), "UTC") == expected


def test_weekly_end_date_is_inclusive() -> None:
    master = series("m", "2026-12-01T09:00:00", "2026-12-01T10:00:00",
                    {"type": "weekly", "daysOfWeek": ["tuesday"]},
                    {"type": "endDate", "endDate": "2026-12-15"})  # fmt: skip
    view = expand([master], utc(2026, 11, 1), utc(2027, 2, 1))
    assert local_dates(view, "UTC") == [d(12, 1), d(12, 8), d(12, 15)]


def test_absolute_monthly_day_31_skips_short_months() -> None:
    master = series("m", "2026-10-31T09:00:00", "2026-10-31T10:00:00",
                    {"type": "absoluteMonthly", "dayOfMonth": 31}, {})  # fmt: skip
    view = expand([master], utc(2026, 10, 1), utc(2027, 4, 1))
    assert local_dates(view, "UTC") == [d(10, 31), d(12, 31), d(1, 31, 2027), d(3, 31, 2027)]


def test_relative_monthly_last_friday() -> None:
    master = series(
        "m",
        "2026-10-01T15:00:00",
        "2026-10-01T16:00:00",
        {"type": "relativeMonthly", "daysOfWeek": ["friday"], "index": "last"},
        {},
    )
    view = expand([master], utc(2026, 10, 1), utc(2027, 2, 1))
    assert local_dates(view, "UTC") == [d(10, 30), d(11, 27), d(12, 25), d(1, 29, 2027)]
    assert starts(view)[0] == utc(2026, 10, 30, 15)


def test_relative_monthly_first_monday_every_other_month() -> None:
    master = series("m", "2026-11-01T09:00:00", "2026-11-01T10:00:00",
                    {"type": "relativeMonthly", "interval": 2, "daysOfWeek": ["monday"],
                     "index": "first"}, {})  # fmt: skip
    view = expand([master], utc(2026, 11, 1), utc(2027, 4, 1))
    assert local_dates(view, "UTC") == [d(11, 2), d(1, 4, 2027), d(3, 1, 2027)]


def test_absolute_yearly_feb_29_only_in_leap_years() -> None:
    master = series("m", "2024-02-29T09:00:00", "2024-02-29T10:00:00",
                    {"type": "absoluteYearly", "month": 2, "dayOfMonth": 29}, {})  # fmt: skip
    view = expand([master], utc(2024, 1, 1), utc(2033, 1, 1))
    assert local_dates(view, "UTC") == [date(2024, 2, 29), date(2028, 2, 29), date(2032, 2, 29)]


def test_relative_yearly_fourth_thursday_of_november() -> None:
    master = series("m", "2026-01-01T12:00:00", "2026-01-01T13:00:00",
                    {"type": "relativeYearly", "month": 11, "daysOfWeek": ["thursday"],
                     "index": "fourth"}, {})  # fmt: skip
    view = expand([master], utc(2026, 1, 1), utc(2029, 1, 1))
    assert local_dates(view, "UTC") == [d(11, 26), d(11, 25, 2027), d(11, 23, 2028)]


def test_graph_shaped_recurrence_with_unused_zero_fields_is_accepted() -> None:
    recurrence = {
        "pattern": {"type": "daily", "interval": 1, "month": 0, "dayOfMonth": 0,
                    "daysOfWeek": [], "firstDayOfWeek": "sunday", "index": "first"},
        "range": {"type": "noEnd", "startDate": "2026-12-01", "endDate": "0001-01-01",
                  "recurrenceTimeZone": "UTC", "numberOfOccurrences": 0},
    }  # fmt: skip
    master = {**single("m", "2026-12-01T09:00:00", "2026-12-01T10:00:00"),
              "type": "seriesMaster", "recurrence": recurrence}  # fmt: skip
    assert len(expand([master], utc(2026, 12, 1), utc(2026, 12, 4))) == 3


# ---- time zones and DST ------------------------------------------------------------------------


def test_weekly_pacific_meeting_keeps_wall_time_across_us_dst_end() -> None:
    # US DST ends Sunday 2026-11-01: 09:00 PDT is 16:00Z before, 09:00 PST is 17:00Z after.
    master = series("m", "2026-10-22T09:00:00", "2026-10-22T10:00:00",
                    {"type": "weekly", "daysOfWeek": ["thursday"]}, {},
                    tz="Pacific Standard Time")  # fmt: skip
    view = expand([master], utc(2026, 10, 20), utc(2026, 11, 15))
    assert starts(view) == [utc(2026, 10, 22, 16), utc(2026, 10, 29, 16),
                            utc(2026, 11, 5, 17), utc(2026, 11, 12, 17)]  # fmt: skip
    walls = [from_utc(s, "Pacific Standard Time")["dateTime"][11:16] for s in starts(view)]
    assert walls == ["09:00"] * 4
    assert [to_utc(ev["end"]) - to_utc(ev["start"]) for ev in view] == [timedelta(hours=1)] * 4


def test_weekly_berlin_meeting_keeps_wall_time_across_eu_dst_end() -> None:
    # EU DST ends Sunday 2026-10-25: 10:00 CEST is 08:00Z, 10:00 CET is 09:00Z.
    master = series("m", "2026-10-14T10:00:00", "2026-10-14T11:00:00",
                    {"type": "weekly", "daysOfWeek": ["wednesday"]}, {},
                    tz="W. Europe Standard Time")  # fmt: skip
    view = expand([master], utc(2026, 10, 12), utc(2026, 11, 9))
    assert starts(view) == [utc(2026, 10, 14, 8), utc(2026, 10, 21, 8),
                            utc(2026, 10, 28, 9), utc(2026, 11, 4, 9)]  # fmt: skip


@pytest.mark.parametrize(
    ("tz", "utc_start"),
    [("India Standard Time", (3, 30)), ("Nepal Standard Time", (3, 15))],
)
def test_half_and_quarter_hour_zone_series(tz: str, utc_start: tuple[int, int]) -> None:
    master = series("m", "2026-12-01T09:00:00", "2026-12-01T09:45:00", {"type": "daily"},
                    {"type": "numbered", "numberOfOccurrences": 3}, tz=tz)  # fmt: skip
    view = expand([master], utc(2026, 11, 30), utc(2026, 12, 10))
    assert starts(view) == [utc(2026, 12, day, *utc_start) for day in (1, 2, 3)]


def test_recurrence_time_zone_overrides_the_start_zone() -> None:
    # Master written in UTC (16:00Z = 09:00 PDT) but repeating in Pacific time: 09:00 PST after DST.
    base = series("m", "2026-10-29T16:00:00", "2026-10-29T17:00:00",
                  {"type": "weekly", "daysOfWeek": ["thursday"]}, {})  # fmt: skip
    pacific = {**base, "recurrence": {**base["recurrence"], "range": {
        **base["recurrence"]["range"], "recurrenceTimeZone": "Pacific Standard Time"}}}  # fmt: skip
    window = (utc(2026, 11, 5), utc(2026, 11, 6))
    assert starts(expand([base], *window)) == [utc(2026, 11, 5, 16)]
    assert starts(expand([pacific], *window)) == [utc(2026, 11, 5, 17)]


def test_daily_series_in_a_dst_gap_moves_forward_that_day_only() -> None:
    master = series("m", "2026-03-07T02:30:00", "2026-03-07T03:00:00", {"type": "daily"},
                    {"type": "numbered", "numberOfOccurrences": 3},
                    tz="Pacific Standard Time")  # fmt: skip
    view = expand([master], utc(2026, 3, 1), utc(2026, 3, 15))
    # Mar 7 02:30 PST; Mar 8 02:30 does not exist -> 03:30 PDT; Mar 9 02:30 PDT.
    assert starts(view) == [utc(2026, 3, 7, 10, 30), utc(2026, 3, 8, 10, 30),
                            utc(2026, 3, 9, 9, 30)]  # fmt: skip


def test_all_day_series_spans_whole_local_days_across_dst() -> None:
    master = series("m", "2026-10-31T00:00:00", "2026-11-01T00:00:00", {"type": "daily"},
                    {"type": "endDate", "endDate": "2026-11-02"},
                    tz="Pacific Standard Time", isAllDay=True)  # fmt: skip
    view = expand([master], utc(2026, 10, 1), utc(2026, 12, 1))
    spans = [(to_utc(ev["start"]), to_utc(ev["end"])) for ev in view]
    assert spans == [
        (utc(2026, 10, 31, 7), utc(2026, 11, 1, 7)),
        (utc(2026, 11, 1, 7), utc(2026, 11, 2, 8)),  # the 25-hour day DST ends on
        (utc(2026, 11, 2, 8), utc(2026, 11, 3, 8)),
    ]
    assert all(ev["isAllDay"] for ev in view)


# ---- exceptions ---------------------------------------------------------------------------------


def _daily_dec_1_to_5() -> JsonDict:
    return series("m", "2026-12-01T09:00:00", "2026-12-01T10:00:00", {"type": "daily"},
                  {"type": "endDate", "endDate": "2026-12-05"}, showAs="busy")  # fmt: skip


def test_exception_moves_an_occurrence_and_cancelled_one_disappears() -> None:
    moved = exception("m", "x3", "2026-12-03T09:00:00Z", subject="moved",
                      start={"dateTime": "2026-12-03T14:00:00", "timeZone": "UTC"},
                      end={"dateTime": "2026-12-03T15:00:00", "timeZone": "UTC"})  # fmt: skip
    deleted = exception("m", "x4", "2026-12-04T09:00:00Z", isCancelled=True)
    view = expand([_daily_dec_1_to_5(), moved, deleted], utc(2026, 12, 1), utc(2026, 12, 6))
    assert starts(view) == [utc(2026, 12, 1, 9), utc(2026, 12, 2, 9), utc(2026, 12, 3, 14),
                            utc(2026, 12, 5, 9)]  # fmt: skip
    third = view[2]
    assert (third["id"], third["type"], third["subject"]) == ("x3", "exception", "moved")
    assert third["showAs"] == "busy"  # inherited from the master
    assert third["seriesMasterId"] == "m"


def test_exception_moved_out_of_and_into_the_window() -> None:
    out = exception("m", "x5", "2026-12-05T09:00:00Z",
                    start={"dateTime": "2026-12-10T09:00:00", "timeZone": "UTC"},
                    end={"dateTime": "2026-12-10T10:00:00", "timeZone": "UTC"})  # fmt: skip
    into = exception("m", "x1", "2026-12-01T09:00:00Z",
                     start={"dateTime": "2026-12-04T12:00:00", "timeZone": "UTC"},
                     end={"dateTime": "2026-12-04T13:00:00", "timeZone": "UTC"})  # fmt: skip
    events = [_daily_dec_1_to_5(), out, into]
    window_view = expand(events, utc(2026, 12, 4), utc(2026, 12, 6))
    assert [(ev["id"], to_utc(ev["start"])) for ev in window_view] == [
        ("m_20261204", utc(2026, 12, 4, 9)),
        ("x1", utc(2026, 12, 4, 12)),
    ]
    assert [ev["id"] for ev in expand(events, utc(2026, 12, 8), utc(2026, 12, 11))] == ["x5"]
    assert [ev["id"] for ev in expand(events, utc(2026, 12, 1), utc(2026, 12, 2))] == []


def test_exception_without_times_keeps_the_original_slot() -> None:
    renamed = exception("m", "x2", "2026-12-02T09:00:00Z", subject="renamed")
    view = expand([_daily_dec_1_to_5(), renamed], utc(2026, 12, 2), utc(2026, 12, 3))
    assert [(ev["id"], ev["subject"], to_utc(ev["start"])) for ev in view] == [
        ("x2", "renamed", utc(2026, 12, 2, 9))
    ]


# ---- malformed input and runaway guards --------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "rng"),
    [
        ({"type": "daily", "interval": 0}, {}),
        ({"type": "daily", "interval": -1}, {}),
        ({"type": "daily", "interval": "2"}, {}),
        ({"type": "hourly"}, {}),
        ({"type": "weekly"}, {}),
        ({"type": "weekly", "daysOfWeek": ["funday"]}, {}),
        ({"type": "absoluteMonthly", "dayOfMonth": 32}, {}),
        ({"type": "absoluteYearly", "month": 2, "dayOfMonth": 30}, {}),
        ({"type": "relativeMonthly", "daysOfWeek": ["monday"], "index": "fifth"}, {}),
        ({"type": "daily"}, {"type": "endDate", "endDate": "2026-11-01"}),
        ({"type": "daily"}, {"type": "numbered", "numberOfOccurrences": 0}),
        ({"type": "daily"}, {"type": "sometimes"}),
    ],
)
def test_malformed_recurrence_raises_value_error(pattern: JsonDict, rng: JsonDict) -> None:
    master = series("m", "2026-12-01T09:00:00", "2026-12-01T10:00:00", pattern, rng)
    with pytest.raises(ValueError, match=r"recurrence|day of week|dayOfMonth"):
        expand([master], utc(2026, 12, 1), utc(2026, 12, 8))


def test_series_master_without_recurrence_raises() -> None:
    master = {**single("m", "2026-12-01T09:00:00", "2026-12-01T10:00:00"), "type": "seriesMaster"}
    with pytest.raises(ValueError, match="recurrence"):
        expand([master], utc(2026, 12, 1), utc(2026, 12, 8))


def test_old_series_expands_cheaply_but_a_huge_window_is_capped() -> None:
    master = series("m", "1990-01-01T09:00:00", "1990-01-01T10:00:00", {"type": "daily"}, {})
    assert len(expand([master], utc(2026, 12, 1), utc(2026, 12, 8))) == 7
    with pytest.raises(ValueError, match=str(MAX_PERIODS)):
        expand([master], utc(1990, 1, 1), utc(2050, 1, 1))


# ---- properties ---------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["daily", "weekly", "absoluteMonthly", "relativeMonthly"]),
    interval=st.integers(1, 3),
    tz=st.sampled_from(["Pacific Standard Time", "W. Europe Standard Time", "India Standard Time"]),
    offset_h=st.integers(0, 24 * 200),
    length_h=st.integers(1, 24 * 40),
    duration_h=st.integers(0, 80),
)
def test_expand_of_a_sub_window_equals_filtering_a_wider_window(
    kind: str, interval: int, tz: str, offset_h: int, length_h: int, duration_h: int
) -> None:
    pattern = {"type": kind, "interval": interval, "daysOfWeek": ["monday", "thursday"],
               "dayOfMonth": 15, "index": "second"}  # fmt: skip
    master_end = datetime(2026, 1, 15, 23, 30) + timedelta(hours=duration_h)
    master = series("m", "2026-01-15T23:30:00", master_end.isoformat(), pattern, {}, tz=tz)
    wide = expand([master], utc(2026, 1, 1), utc(2027, 3, 1))
    start = utc(2026, 1, 10) + timedelta(hours=offset_h)
    end = start + timedelta(hours=length_h)
    expected = [ev for ev in wide if overlaps(to_utc(ev["start"]), to_utc(ev["end"]), start, end)]
    assert expand([master], start, end) == expected
    walls = {from_utc(to_utc(ev["start"]), tz)["dateTime"][11:16] for ev in wide}
    assert walls == {"23:30"}


def test_exception_original_start_off_by_a_dst_hour_still_matches_its_day() -> None:
    # A tenant file shifted by whole weeks across DST keeps "17:00Z" while 09:00 PDT is 16:00Z.
    master = series("m", "2026-10-22T09:00:00", "2026-10-22T10:00:00",
                    {"type": "weekly", "daysOfWeek": ["thursday"]}, {},
                    tz="Pacific Standard Time")  # fmt: skip
    deleted = exception("m", "x", "2026-10-29T17:00:00Z", isCancelled=True)
    view = expand([master, deleted], utc(2026, 10, 20), utc(2026, 11, 7))
    assert starts(view) == [utc(2026, 10, 22, 16), utc(2026, 11, 5, 17)]
