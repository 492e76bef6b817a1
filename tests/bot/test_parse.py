"""Unit tests for the pure parsers in dialogs.parse."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogs import parse

WED = date(2026, 11, 25)


def test_parse_command_prefills_everything() -> None:
    got = parse.parse_command(
        "schedule Dana Smith (dana@example.com) with Megan and Adele, 45 min, next week"
    )
    assert got == parse.CommandPrefill("Dana Smith", "dana@example.com", ("Megan", "Adele"), 45, "next week")


def test_parse_command_bare_and_other_text() -> None:
    assert parse.parse_command("schedule") == parse.CommandPrefill()
    assert parse.parse_command("hello") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("next week", (date(2026, 11, 30), date(2026, 12, 4))),
        ("tomorrow", (date(2026, 11, 26), date(2026, 11, 26))),
        ("this week", (date(2026, 11, 25), date(2026, 11, 27))),
        ("default", (date(2026, 11, 26), date(2026, 12, 2))),
        ("2026-12-01 to 2026-12-04", (date(2026, 12, 1), date(2026, 12, 4))),
        ("2025-01-01", None),
        ("whenever you like", None),
        ("2026-12-01 to 2027-06-01", None),
    ],
)
def test_parse_date_range(text: str, expected: tuple[date, date] | None) -> None:
    assert parse.parse_date_range(text, WED) == expected


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("India", "Asia/Kolkata"),
        ("IST", "Asia/Kolkata"),
        ("london", "Europe/London"),
        ("america/new_york", "America/New_York"),
        ("Mars", None),
    ],
)
def test_parse_time_zone(text: str, zone: str | None) -> None:
    assert parse.parse_time_zone(text) == zone


@pytest.mark.parametrize(
    ("text", "minutes"), [("45", 45), ("1 hour", 60), ("1h 30m", 90), ("1.5h", 90), ("soon", None)]
)
def test_parse_duration(text: str, minutes: int | None) -> None:
    assert parse.parse_duration(text) == minutes


def test_check_duration_bounds() -> None:
    assert parse.check_duration(15) is None
    assert parse.check_duration(240) is None
    assert parse.check_duration(14)
    assert parse.check_duration(241)


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)))
def test_default_range_is_five_working_days_after_today(today: date) -> None:
    first, last = parse.next_working_days(today)
    assert today < first <= last
    assert first.weekday() < 5
    assert last.weekday() < 5
    assert (last - first).days in (4, 6)
