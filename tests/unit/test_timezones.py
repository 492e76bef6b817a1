"""Tests for calendar_backend.timezones: zone names, Graph dateTimeTimeZone, local-to-UTC rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calendar_backend.timezones import (
    UnknownTimeZoneError,
    localize,
    parse_graph_datetime,
    resolve_zone,
    to_graph_datetime,
)

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)
JUNE = datetime(2026, 6, 1, 12)
JANUARY = datetime(2026, 1, 15, 12)


@pytest.mark.parametrize(
    ("name", "key", "june_offset"),
    [
        ("Pacific Standard Time", "America/Los_Angeles", timedelta(hours=-7)),
        ("India Standard Time", "Asia/Calcutta", timedelta(hours=5, minutes=30)),
        ("Nepal Standard Time", "Asia/Katmandu", timedelta(hours=5, minutes=45)),
        ("W. Europe Standard Time", "Europe/Berlin", timedelta(hours=2)),
        ("pacific standard time", "America/Los_Angeles", timedelta(hours=-7)),
        ("Europe/London", "Europe/London", timedelta(hours=1)),
        ("Australia/Lord_Howe", "Australia/Lord_Howe", timedelta(hours=10, minutes=30)),
        ("Asia/Kolkata", "Asia/Kolkata", timedelta(hours=5, minutes=30)),
    ],
)
def test_resolve_zone_windows_and_iana_names(name: str, key: str, june_offset: timedelta) -> None:
    zone = resolve_zone(name)
    assert zone.key == key
    assert zone.utcoffset(JUNE) == june_offset


@pytest.mark.parametrize("name", ["UTC", "Etc/UTC", "tzone://Microsoft/Utc"])
def test_resolve_zone_utc_spellings(name: str) -> None:
    zone = resolve_zone(name)
    assert zone.utcoffset(JUNE) == timedelta(0)
    assert zone.utcoffset(JANUARY) == timedelta(0)


@pytest.mark.parametrize(
    "name",
    [
        "Customized Time Zone",
        "Mars/Olympus_Mons",
        "Not A Windows Zone",
        "",
        "../../etc/passwd",
        "/etc/localtime",
        "Europe/" + "x" * 80,
        "Europe/London\n",
        "Europe",
    ],
)
def test_resolve_zone_rejects_custom_unknown_and_malformed(name: str) -> None:
    with pytest.raises(UnknownTimeZoneError):
        resolve_zone(name)


def test_unknown_zone_error_is_a_value_error_and_explains_custom_zones() -> None:
    with pytest.raises(ValueError, match="custom time zones"):
        resolve_zone("Customized Time Zone")


@pytest.mark.parametrize(
    ("value", "zone", "expected"),
    [
        ("2019-03-15T12:00:00.0000000", "UTC", datetime(2019, 3, 15, 12, tzinfo=UTC)),
        (
            "2019-03-15T12:00:00.0000000",
            "Pacific Standard Time",
            datetime(2019, 3, 15, 19, tzinfo=UTC),
        ),
        (
            "2026-06-01T09:00:00.0000000",
            "Nepal Standard Time",
            datetime(2026, 6, 1, 3, 15, tzinfo=UTC),
        ),
        ("2026-06-01T09:00:00", "India Standard Time", datetime(2026, 6, 1, 3, 30, tzinfo=UTC)),
        # Europe/London 2026-03-29 01:30 does not exist: the first valid instant is 01:00Z.
        ("2026-03-29T01:30:00.0000000", "GMT Standard Time", datetime(2026, 3, 29, 1, tzinfo=UTC)),
        # America/New_York 2026-11-01 01:30 happens twice: the first (EDT) occurrence wins.
        (
            "2026-11-01T01:30:00.0000000",
            "Eastern Standard Time",
            datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
        ),
        (
            "2026-10-04T02:10:00.0000000",
            "Australia/Lord_Howe",
            datetime(2026, 10, 3, 15, 30, tzinfo=UTC),
        ),
        (
            "2019-03-15T12:00:00.1234567",
            "UTC",
            datetime(2019, 3, 15, 12, 0, 0, 123456, tzinfo=UTC),
        ),
        ("2019-03-15T12:00:00.5", "UTC", datetime(2019, 3, 15, 12, 0, 0, 500000, tzinfo=UTC)),
        (
            "2026-06-01T09:00:00+05:30",
            "Pacific Standard Time",
            datetime(2026, 6, 1, 3, 30, tzinfo=UTC),
        ),
    ],
)
def test_parse_graph_datetime(value: str, zone: str, expected: datetime) -> None:
    parsed = parse_graph_datetime(value, zone)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("value", ["2019-03-15T12:00:00.12345678", "15/03/2019 12:00", "soon"])
def test_parse_graph_datetime_rejects_malformed_values(value: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - both malformed digits and fromisoformat
        parse_graph_datetime(value, "UTC")


def test_parse_graph_datetime_rejects_custom_zone() -> None:
    with pytest.raises(UnknownTimeZoneError):
        parse_graph_datetime("2019-03-15T12:00:00.0000000", "Customized Time Zone")


def test_to_graph_datetime_is_utc_with_seven_digits() -> None:
    kolkata = datetime(2026, 6, 1, 9, 0, 0, 123456, tzinfo=ZoneInfo("Asia/Kolkata"))
    assert to_graph_datetime(kolkata) == {
        "dateTime": "2026-06-01T03:30:00.1234560",
        "timeZone": "UTC",
    }
    with pytest.raises(ValueError, match="timezone-aware"):
        to_graph_datetime(datetime(2026, 6, 1, 9))


def test_localize_rejects_aware_input() -> None:
    with pytest.raises(ValueError, match="naive"):
        localize(datetime(2026, 6, 1, tzinfo=UTC), ZoneInfo("UTC"))


def test_localize_skipped_day_in_samoa() -> None:
    # Pacific/Apia skipped 2011-12-30 entirely; any time that day maps to the start of Dec 31.
    assert localize(datetime(2011, 12, 30, 10), ZoneInfo("Pacific/Apia")) == datetime(
        2011, 12, 30, 10, tzinfo=UTC
    )


@PROPERTY_SETTINGS
@given(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2037, 12, 31), timezones=st.timezones())
)
def test_graph_datetime_round_trip_preserves_the_instant(instant: datetime) -> None:
    graph = to_graph_datetime(instant)
    parsed = parse_graph_datetime(graph["dateTime"], graph["timeZone"])
    assert parsed == instant.astimezone(UTC)
    assert parsed.tzinfo is UTC


@PROPERTY_SETTINGS
@given(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2037, 12, 31)),
    st.timezones(),
)
def test_localize_is_the_earliest_instant_at_or_after_the_wall_time(wall: datetime, zone: ZoneInfo) -> None:
    instant = localize(wall, zone)
    assert instant.tzinfo is UTC
    here = instant.astimezone(zone).replace(tzinfo=None)
    before = (instant - timedelta(microseconds=1)).astimezone(zone).replace(tzinfo=None)
    assert here >= wall
    assert before < wall
    if here != wall:  # only a DST gap may move the time, and then `instant` is the transition
        # ZoneInfo.utcoffset(dt) reads dt's wall fields, so convert the instants first
        after_offset = instant.astimezone(zone).utcoffset()
        before_offset = (instant - timedelta(microseconds=1)).astimezone(zone).utcoffset()
        assert after_offset != before_offset
