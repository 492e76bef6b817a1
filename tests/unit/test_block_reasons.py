"""Why nobody fits (issue 13 defect 14): a weekend is told apart from other working hours."""

from __future__ import annotations

from calendar_backend.availability import Blocker, BlockReason, find_panel_slots
from tests.unit.test_availability import hours, person, query, span


def test_weekend_window_is_not_working_days() -> None:
    saturday = span("2026-12-12T12:00", "2026-12-14T00:00")  # Sat 04:00 - Sun 16:00 in LA
    megan = person("megan@x.test", hours("America/Los_Angeles", "08:00", "17:00"))
    result = find_panel_slots([megan], query(saturday))
    assert result.blockers == (Blocker("megan@x.test", BlockReason.NOT_WORKING_DAYS),)


def test_weekday_outside_hours_is_no_working_hours() -> None:
    evening = span("2026-12-14T20:00", "2026-12-14T23:00")  # Monday evening, London
    adele = person("adele@x.test", hours("Europe/London", "09:00", "17:00"))
    result = find_panel_slots([adele], query(evening))
    assert result.blockers == (Blocker("adele@x.test", BlockReason.NO_WORKING_HOURS),)


def test_sunday_in_utc_is_monday_in_sydney() -> None:
    sunday_utc = span("2026-12-13T00:00", "2026-12-13T12:00")  # Sun 11:00 - 23:00 in Sydney
    sydney = person("syd@x.test", hours("Australia/Sydney", "09:00", "17:00"))
    assert find_panel_slots([sydney], query(sunday_utc)).blockers == (
        Blocker("syd@x.test", BlockReason.NOT_WORKING_DAYS),
    )
    monday_sydney = span("2026-12-13T12:00", "2026-12-13T20:00")  # Mon 00:00 - 07:00 Sydney
    assert find_panel_slots([sydney], query(monday_sydney)).blockers == (
        Blocker("syd@x.test", BlockReason.NO_WORKING_HOURS),
    )
