"""Pure parsers for what a hiring manager types. Stdlib only: no botbuilder, no I/O, no clock.

Every parser takes the text and, where dates are involved, an explicit ``today`` (a ``date`` in the
manager's zone). They return ``None`` (or an empty value) when the text does not say anything they
understand; they never guess silently.

Units: durations are whole minutes; date ranges are inclusive ``(first_day, last_day)`` local dates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

MIN_DURATION_MIN: Final = 15
MAX_DURATION_MIN: Final = 240
MAX_BUFFER_MIN: Final = 120
MAX_RANGE_DAYS: Final = 60
DEFAULT_WORKING_DAYS: Final = 5

EMAIL_RE: Final = re.compile(r"[A-Za-z0-9._%+'\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_DURATION_RE: Final = re.compile(
    r"(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>h|hr|hrs|hour|hours|m|min|mins|minute|minutes)\b", re.I
)
_BARE_NUMBER_RE: Final = re.compile(r"^\s*(\d{1,3})\s*$")
_ISO_DATE_RE: Final = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

#: Common names people type for a zone, mapped to IANA names (lower-case keys).
ZONE_ALIASES: Final[dict[str, str]] = {
    "india": "Asia/Kolkata",
    "ist": "Asia/Kolkata",
    "mumbai": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata",
    "bengaluru": "Asia/Kolkata",
    "delhi": "Asia/Kolkata",
    "london": "Europe/London",
    "uk": "Europe/London",
    "gmt": "Europe/London",
    "bst": "Europe/London",
    "britain": "Europe/London",
    "dublin": "Europe/Dublin",
    "ireland": "Europe/Dublin",
    "paris": "Europe/Paris",
    "france": "Europe/Paris",
    "berlin": "Europe/Berlin",
    "germany": "Europe/Berlin",
    "cet": "Europe/Berlin",
    "amsterdam": "Europe/Amsterdam",
    "madrid": "Europe/Madrid",
    "spain": "Europe/Madrid",
    "new york": "America/New_York",
    "nyc": "America/New_York",
    "eastern": "America/New_York",
    "et": "America/New_York",
    "est": "America/New_York",
    "edt": "America/New_York",
    "central": "America/Chicago",
    "cst": "America/Chicago",
    "chicago": "America/Chicago",
    "mountain": "America/Denver",
    "denver": "America/Denver",
    "pacific": "America/Los_Angeles",
    "pst": "America/Los_Angeles",
    "pdt": "America/Los_Angeles",
    "pt": "America/Los_Angeles",
    "seattle": "America/Los_Angeles",
    "san francisco": "America/Los_Angeles",
    "toronto": "America/Toronto",
    "sao paulo": "America/Sao_Paulo",
    "brazil": "America/Sao_Paulo",
    "japan": "Asia/Tokyo",
    "tokyo": "Asia/Tokyo",
    "jst": "Asia/Tokyo",
    "singapore": "Asia/Singapore",
    "sydney": "Australia/Sydney",
    "china": "Asia/Shanghai",
    "shanghai": "Asia/Shanghai",
    "beijing": "Asia/Shanghai",
    "dubai": "Asia/Dubai",
    "uae": "Asia/Dubai",
    "utc": "UTC",
}


@dataclass(frozen=True, slots=True)
class CommandPrefill:
    """What a one-message ``schedule ...`` command said. Unsaid fields are ``None``/empty."""

    candidate_name: str | None = None
    candidate_email: str | None = None
    interviewers: tuple[str, ...] = ()
    duration_min: int | None = None
    range_text: str | None = None


def parse_email(text: str) -> str | None:
    """Return the single e-mail address ``text`` consists of (lower-cased), else ``None``."""
    cleaned = text.strip().strip("<>()").strip()
    return cleaned.lower() if EMAIL_RE.fullmatch(cleaned) else None


def parse_name(text: str) -> str | None:
    """Return a display name (1..120 chars, no control characters or ``<>``), else ``None``."""
    name = " ".join(text.split())
    if not 1 <= len(name) <= 120 or re.search(r"[\x00-\x1f<>@]", name):
        return None
    return name


def parse_duration(text: str) -> int | None:
    """Return minutes for "45", "45 min", "1 hour", "1.5h", "1h 30m"; ``None`` if not understood.

    The value is not range-checked here; see ``check_duration``.
    """
    bare = _BARE_NUMBER_RE.match(text)
    if bare:
        return int(bare.group(1))
    total = 0.0
    for match in _DURATION_RE.finditer(text):
        num = float(match.group("num"))
        total += num * 60 if match.group("unit").lower().startswith("h") else num
    return round(total) if total > 0 else None


def check_duration(minutes: int) -> str | None:
    """Return a user-facing complaint when ``minutes`` is outside 15..240, else ``None``."""
    if not MIN_DURATION_MIN <= minutes <= MAX_DURATION_MIN:
        return f"An interview must be between {MIN_DURATION_MIN} and {MAX_DURATION_MIN} minutes long."
    return None


def parse_buffer(text: str) -> int | None:
    """Return buffer minutes (0..120) for "none", "no", "0", "10", "10 min"; else ``None``."""
    if text.strip().lower() in {"none", "no", "skip", "0", "no buffer"}:
        return 0
    minutes = parse_duration(text)
    return minutes if minutes is not None and 0 <= minutes <= MAX_BUFFER_MIN else None


def parse_time_zone(text: str) -> str | None:
    """Return the IANA zone name for an IANA name (any case) or a common alias; else ``None``."""
    cleaned = " ".join(text.strip().split())
    alias = ZONE_ALIASES.get(cleaned.lower())
    if alias is not None:
        return alias
    candidate = cleaned.replace(" ", "_")
    by_lower = {name.lower(): name for name in available_timezones()}
    name = by_lower.get(candidate.lower())
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


_DAY_HOURS_RE: Final = re.compile(
    r"[,;]?\s*(?:from\s+)?(\d{1,2})(?::(\d{2}))?\s*(?:-|\u2013|to|until)\s*(\d{1,2})(?::(\d{2}))?"
    r"\s*(?:h|hrs?)?\s*$",
    re.I,
)


def parse_zone_and_day(text: str) -> tuple[str, tuple[str, str] | None] | None:
    """Read "India", or "India 09:00-18:00" / "London, 9-17": the candidate's zone and, when
    given, their working day as ("HH:MM", "HH:MM") (24-hour clock; "24" means midnight).

    Returns ``None`` when the zone is unknown or the hours are not a day that starts before it ends.
    """
    day: tuple[str, str] | None = None
    hours = _DAY_HOURS_RE.search(text)
    if hours:
        start_h, start_m, end_h, end_m = (int(g or 0) for g in hours.groups())
        if start_h > 23 or end_h > 24 or start_m > 59 or end_m > 59 or (end_h == 24 and end_m):
            return None
        if (end_h, end_m) != (24, 0) and (start_h, start_m) >= (end_h, end_m):
            return None
        day = (f"{start_h:02d}:{start_m:02d}", f"{end_h % 24:02d}:{end_m:02d}")
        text = text[: hours.start()]
    zone = parse_time_zone(text.strip(" ,;"))
    return None if zone is None else (zone, day)


def next_working_days(today: date, count: int = DEFAULT_WORKING_DAYS) -> tuple[date, date]:
    """Return the inclusive range covering the next ``count`` Monday-Friday days after ``today``."""
    days: list[date] = []
    day = today
    while len(days) < count:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days[0], days[-1]


def _week_of(day: date) -> tuple[date, date]:
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=4)


def _named_range(text: str, today: date) -> tuple[date, date] | None:
    if text in {"", "default", "any", "anytime", "soon", "asap"}:
        return next_working_days(today)
    if text == "tomorrow":
        tomorrow = today + timedelta(days=1)
        return tomorrow, tomorrow
    if text == "today":
        return today, today
    if text == "this week":
        start, end = _week_of(today)
        return max(start, today), end if end >= today else today
    if text == "next week":
        return _week_of(today + timedelta(days=7))
    if text in _WEEKDAYS:
        ahead = (_WEEKDAYS.index(text) - today.weekday()) % 7 or 7
        day = today + timedelta(days=ahead)
        return day, day
    return None


def parse_date_range(text: str, today: date) -> tuple[date, date] | None:
    """Return an inclusive local date range for "next week", "tomorrow", "this week", a weekday,
    "2026-12-01", "2026-12-01 to 2026-12-04"; empty/"default" means the next 5 working days.

    Returns ``None`` if not understood, if the range ends before ``today``, or if it is longer than
    60 days.
    """
    cleaned = " ".join(text.strip().lower().split())
    named = _named_range(cleaned, today)
    if named is not None:
        return named
    found = [
        date(int(y), int(m), int(d))
        for y, m, d in _ISO_DATE_RE.findall(cleaned)
        if _valid_date(int(y), int(m), int(d))
    ]
    if not found or len(found) > 2:
        return None
    first, last = found[0], found[-1]
    if last < first or last < today or (last - first).days >= MAX_RANGE_DAYS:
        return None
    return max(first, today), last


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def split_people(text: str, limit: int | None = 20) -> tuple[str, ...]:
    """Split "Megan, Adele and isaiahl@x.com" into ``("Megan", "Adele", "isaiahl@x.com")``
    (the first ``limit`` people; ``None`` for all)."""
    parts = re.split(r"\s*(?:,|;|\band\b|&|\+)\s*", text.strip(), flags=re.I)
    return tuple(p.strip() for p in parts if p.strip())[:limit]


_MONTHS: Final = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_RANGE_WORDS: Final = (
    r"(next week|this week|tomorrow|today|yesterday|the week after next|"
    r"(?:next |this |last )?(?:" + "|".join(_WEEKDAYS) + r")|"
    r"in (?:\d+|a|an|one|two|three|four|five|six) (?:days?|weeks?)|"
    r"(?:between |from )?" + _MONTHS + r" \d{1,2}\b|\d{1,2}(?:st|nd|rd|th)? " + _MONTHS + r"|"
    r"\d{1,2}[/.]\d{1,2}(?:[/.]\d{2,4})?)"
)


def parse_command(text: str) -> CommandPrefill | None:
    """Parse "schedule Dana Smith (dana@example.com) with Megan and Adele, 45 min, next week".

    Returns ``None`` unless the text starts with "schedule"; otherwise a ``CommandPrefill`` with
    whatever could be read (possibly nothing).
    """
    match = re.match(
        r"^\s*schedule(?:\s+an?)?(?:\s+interview)?(?:\s+(?:for|with))?\b(.*)$", text, flags=re.I | re.S
    )
    if match is None:
        return None
    rest = match.group(1)
    email_match = EMAIL_RE.search(rest.split(" with ")[0]) if rest else None
    email = email_match.group(0).lower() if email_match else None
    duration = parse_duration(rest) if _DURATION_RE.search(rest) else None
    range_match = re.search(r"\b" + _RANGE_WORDS + r"|\d{4}-\d{2}-\d{2}", rest, flags=re.I)
    head, _, panel = rest.partition(" with ")
    name = (
        parse_name(re.sub(r"\(?\s*" + re.escape(email) + r"\s*\)?", "", head) if email else head)
        if head.strip()
        else None
    )
    interviewers = split_people(_strip_tail(panel)) if panel else ()
    return CommandPrefill(
        candidate_name=name,
        candidate_email=email,
        interviewers=interviewers,
        duration_min=duration,
        range_text=_dates_tail(rest[range_match.start() :]) if range_match else None,
    )


def _dates_tail(text: str) -> str:
    """The date words of a command tail, durations cut out: "600 min, yesterday" → "yesterday"."""
    return " ".join(_DURATION_RE.sub(" ", text).replace(",", " ").split()).lower()


def _strip_tail(panel: str) -> str:
    """Cut the duration/date tail off "Megan and Adele, 45 min, next week"."""
    cut = re.split(
        r",?\s*(?:\d+(?:\.\d+)?\s*(?:h|hr|hrs|hour|hours|m|min|mins|minute|minutes)\b"
        r"|" + _RANGE_WORDS + r"|\d{4}-\d{2}-\d{2})",
        panel,
        maxsplit=1,
        flags=re.I,
    )
    return cut[0].strip(" ,")
