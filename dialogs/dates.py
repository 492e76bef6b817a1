"""Dates as a hiring manager types them: "Dec 15", "15/12", "next tuesday", "in two weeks".

Reads text with Microsoft's Recognizers-Text date/time model (``recognizers-text-date-time``, the
recogniser the Bot Framework itself uses, installed with ``botbuilder-dialogs``), after the few
fixed phrases of ``dialogs.parse`` ("next week" = Monday to Friday, "default", ...). No I/O and
no clock: callers pass ``today`` (a date in the manager's zone).

Every reading says what it did not understand or could not use ("yesterday" is in the past,
"600 min" is too long) so the dialog never drops a part of a message silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any, Final

from dialogs import parse

_NUMERIC_RE: Final = re.compile(r"\b(\d{1,2})[/.](\d{1,2})(?:[/.](\d{2}|\d{4}))?\b")
MAX_AHEAD_DAYS: Final = 183
_IN_RE: Final = re.compile(
    r"^in (\d{1,2}|a|an|one|two|three|four|five|six|seven|eight) "
    r"(day|week)s?$"
)
_COUNTS: Final = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
}
_EXPLICIT_END_RE: Final = re.compile(r"\b(?:to|till|until|through|thru|and)\b|[-\u2013]")


@dataclass(frozen=True, slots=True)
class DateReading:
    """What a text said about dates: an inclusive local ``span`` (or ``None``) and, in plain words,
    each part that was not understood or cannot be used (``problems``)."""

    span: tuple[date, date] | None
    problems: tuple[str, ...] = ()


@cache
def _model() -> Any:
    from recognizers_date_time import (  # type: ignore[import-untyped]
        Culture,
        DateTimeRecognizer,
    )

    return DateTimeRecognizer(Culture.English).get_datetime_model()


def _day(value: str) -> date:
    return date.fromisoformat(value[:10])


def _numeric_dates(text: str, today: date) -> tuple[list[tuple[date, date]], str]:
    """Read "15/12", "12/15", "15.12.2026": day/month or month/day, whichever is a real date not
    in the past (the soonest when both are); the rest of the text is returned for the model."""
    spans: list[tuple[date, date]] = []
    for match in _NUMERIC_RE.finditer(text):
        a, b = int(match.group(1)), int(match.group(2))
        year = int(match.group(3)) if match.group(3) else None
        if year is not None and year < 100:
            year += 2000
        readings: list[date] = []
        for day, month in ((a, b), (b, a)):
            for y in (year,) if year else (today.year, today.year + 1):
                try:
                    candidate = date(y, month, day)
                except ValueError:
                    continue
                if candidate >= today or year:
                    readings.append(candidate)
                    break
        if readings:
            future = [d for d in readings if d >= today]
            pick = min(future) if future else max(readings)
            spans.append((pick, pick))
    return spans, _NUMERIC_RE.sub(" ", text)


def _pick(values: list[dict[str, str]], today: date, text: str) -> tuple[date, date] | None:
    """The first resolution that is not wholly in the past, as an inclusive span."""
    spans: list[tuple[date, date]] = []
    for value in values:
        kind = value.get("type", "")
        if kind in {"date", "datetime"} and value.get("value"):
            day = _day(value["value"])
            spans.append((day, day))
        elif kind in {"daterange", "datetimerange"} and value.get("start"):
            first = _day(value["start"])
            end = _day(value["end"]) if value.get("end") else first
            explicit = str(value.get("timex", "")).startswith("(") and bool(_EXPLICIT_END_RE.search(text))
            last = end if explicit or end == first else end - timedelta(days=1)
            spans.append((first, max(first, last)))
    for span in spans:
        if span[1] >= today:
            return span
    return spans[-1] if spans else None


def read_dates(text: str, today: date) -> DateReading:
    """Read every date or date range in ``text`` and combine them into one inclusive span.

    The span starts no earlier than ``today`` and is at most 60 days long. Parts that are wholly
    in the past, or a span that is too long, are reported in ``problems`` (and give no span).
    """
    named = parse.parse_date_range(text, today)
    if named is not None:
        return DateReading(named)
    relative = _IN_RE.match(" ".join(text.lower().split()))
    if relative:  # "in two weeks": that week, Monday to Friday; "in 3 days": that day
        count = _COUNTS.get(relative.group(1)) or int(relative.group(1))
        if relative.group(2) == "day":
            day = today + timedelta(days=count)
            return DateReading((day, day))
        monday = today + timedelta(weeks=count, days=-today.weekday())
        return DateReading((monday, monday + timedelta(days=4)))
    spans, rest = _numeric_dates(text, today)
    noon = datetime.combine(today, time(12))
    problems: list[str] = []
    for found in _model().parse(rest, noon):
        kind = str(found.type_name).rsplit(".", 1)[-1]
        if kind not in {"date", "daterange", "datetime", "datetimerange"}:
            continue
        values = (found.resolution or {}).get("values") or []
        span = _pick(values, today, found.text)
        if span is None:
            problems.append(f"I couldn't work out which dates \u201c{found.text}\u201d means.")
        elif span[1] < today:
            problems.append(f"\u201c{found.text}\u201d ({span[1]:%a %d %b}) is in the past.")
        elif (span[0] - today).days > MAX_AHEAD_DAYS:
            problems.append(
                f"\u201c{found.text}\u201d would be {span[0]:%a %d %b %Y}, more than six months ahead."
            )
        else:
            spans.append(span)
    if not spans:
        return DateReading(None, tuple(problems))
    first, last = max(min(s[0] for s in spans), today), max(s[1] for s in spans)
    if (last - first).days >= parse.MAX_RANGE_DAYS:
        problems.append(
            f"{first:%d %b} to {last:%d %b} is longer than "
            f"{parse.MAX_RANGE_DAYS} days; please pick a shorter range."
        )
        return DateReading(None, tuple(problems))
    return DateReading((first, last), tuple(problems))


def examples(today: date) -> str:
    """Date examples that are all in the future from ``today`` (for prompts and complaints)."""
    soon = today + timedelta(days=8)
    later = soon + timedelta(days=3)
    return (
        f"\u201cnext week\u201d, \u201ctomorrow\u201d, \u201cnext tuesday\u201d, "
        f"\u201cin two weeks\u201d, \u201c{soon:%b} {soon.day}\u201d or "
        f"\u201c{soon:%b} {soon.day} to {later:%b} {later.day}\u201d"
    )


def range_complaint(text: str, today: date) -> str | None:
    """``None`` when ``text`` names a usable date range; else what to tell the manager."""
    reading = read_dates(text, today)
    if reading.span is not None:
        return None
    said = " ".join(reading.problems) or f"I didn't understand \u201c{text.strip()[:60]}\u201d as dates."
    return f"{said} Please say e.g. {examples(today)} (up to {parse.MAX_RANGE_DAYS} days, not in the past)."
