"""Dates as typed by a hiring manager (dialogs.dates): well-known phrases, never the past."""

from __future__ import annotations

from datetime import date

import pytest

from dialogs import dates, parse

MON = date(2026, 12, 7)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dec 15", (date(2026, 12, 15), date(2026, 12, 15))),
        ("15 December", (date(2026, 12, 15), date(2026, 12, 15))),
        ("15/12", (date(2026, 12, 15), date(2026, 12, 15))),
        ("12/15", (date(2026, 12, 15), date(2026, 12, 15))),
        ("15.12.2026", (date(2026, 12, 15), date(2026, 12, 15))),
        ("next tuesday", (date(2026, 12, 15), date(2026, 12, 15))),
        ("in two weeks", (date(2026, 12, 21), date(2026, 12, 25))),
        ("in 3 days", (date(2026, 12, 10), date(2026, 12, 10))),
        ("Dec 15 to Dec 18", (date(2026, 12, 15), date(2026, 12, 18))),
        ("dec 15-18", (date(2026, 12, 15), date(2026, 12, 18))),
        ("Dec 28 to Jan 3", (date(2026, 12, 28), date(2027, 1, 3))),
        ("next week", (date(2026, 12, 14), date(2026, 12, 18))),
        ("tomorrow", (date(2026, 12, 8), date(2026, 12, 8))),
        ("Dec 1", None),  # this year's is past, next year's is > 60 days away
        ("yesterday", None),
        ("whenever", None),
    ],
)
def test_read_dates(text: str, expected: tuple[date, date] | None) -> None:
    assert dates.read_dates(text, MON).span == expected


def test_year_wraps_to_the_next_occurrence() -> None:
    assert dates.read_dates("Jan 5", MON).span == (date(2027, 1, 5), date(2027, 1, 5))
    assert dates.read_dates("5/1", MON).span == (date(2027, 1, 5), date(2027, 1, 5))


def test_the_past_is_said_not_dropped() -> None:
    reading = dates.read_dates("yesterday", MON)
    assert reading.span is None
    assert "yesterday" in reading.problems[0]
    assert "past" in reading.problems[0]


def test_complaint_names_the_text_and_gives_future_examples() -> None:
    complaint = dates.range_complaint("someday maybe", MON)
    assert complaint is not None
    assert "someday maybe" in complaint
    assert "Dec 15" in complaint
    assert "2026-12-01" not in complaint
    assert dates.range_complaint("Dec 15", MON) is None


@pytest.mark.parametrize("today", [date(2026, 1, 1), date(2026, 6, 30), date(2026, 12, 31)])
def test_examples_are_never_past(today: date) -> None:
    text = dates.examples(today)
    for example in ("next week", "tomorrow", "next tuesday", "in two weeks"):
        reading = dates.read_dates(example, today)
        assert example in text
        assert reading.span is not None
        assert reading.span[0] > today


@pytest.mark.parametrize(
    ("text", "panel", "range_text"),
    [
        (
            "schedule Dana (dana@example.com) with Megan and Rainier, 45 min, Dec 15",
            ("Megan", "Rainier"),
            "dec 15",
        ),
        ("schedule Dana (dana@example.com) with Megan, 15/12", ("Megan",), "15/12"),
        ("schedule Dana (dana@example.com) with Megan, next tuesday, 1 hour", ("Megan",), "next tuesday"),
        ("schedule Dana (dana@example.com) with Megan, 600 min, yesterday", ("Megan",), "yesterday"),
        ("schedule Dana (dana@example.com) with Megan, in two weeks", ("Megan",), "in two weeks"),
    ],
)
def test_one_message_dates_are_cut_from_the_panel(text: str, panel: tuple[str, ...], range_text: str) -> None:
    got = parse.parse_command(text)
    assert got is not None
    assert got.interviewers == panel
    assert got.range_text == range_text
