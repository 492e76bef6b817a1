"""Time-zone names and Graph `dateTimeTimeZone` values, read and written the way Graph v1.0 does.

Graph names zones with Windows names by default ("Pacific Standard Time") and also accepts IANA
names (platform.md §D). Windows names map to IANA through CLDR's windowsZones table as shipped by
tzlocal (`tzlocal.windows_tz.win_tz`). A `dateTimeTimeZone` is `{"dateTime":
"2026-12-01T09:00:00.0000000", "timeZone": "<name>"}`: a wall-clock time in the named zone, written
with 7 fractional digits.

Wall times that do not exist (inside a spring-forward gap) move forward by the gap, as Exchange
does: 02:30 on the US spring-forward day becomes 03:30 PDT. Ambiguous wall times (fall-back) take
the first, daylight-time instant. Pure: no clock, no environment, no network.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

_WINDOWS_BY_FOLDED = {name.casefold(): iana for name, iana in win_tz.items() if name}
# Names Exchange itself writes into originalStartTimeZone besides Windows/IANA names.
_EXCHANGE_ALIASES = {"tzone://microsoft/utc": "Etc/UTC"}
_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?(Z|[+-]\d{2}:\d{2})?$"
)


@lru_cache(maxsize=512)
def zone_for(name: str) -> ZoneInfo:
    """The zone for a Windows (CLDR) or IANA time-zone name, as Graph accepts both.

    Windows names match case-insensitively ("pacific standard time" works); IANA names are exact.

    Raises:
        ValueError: the name is empty or names no known zone.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError("time zone name is empty")
    folded = name.strip().casefold()
    iana = _WINDOWS_BY_FOLDED.get(folded) or _EXCHANGE_ALIASES.get(folded)
    try:
        return ZoneInfo(iana or name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone: {name!r}") from exc


def parse_wall_time(value: str) -> datetime:
    """Parse a Graph `dateTime` string ("2026-12-01T09:00:00.0000000"); fractions beyond µs drop.

    The result is naive (a wall-clock time) unless the string carries "Z" or an offset, which
    Graph tolerates on input; then it is aware.

    Raises:
        ValueError: the string is not an ISO 8601 date-time of that shape.
    """
    match = _DATE_TIME.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not a Graph dateTime: {value!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0").ljust(7, "0")[:6])
    naive = datetime(  # noqa: DTZ001 - a wall-clock time; its zone is applied by the caller
        int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micros
    )
    if offset is None:
        return naive
    return datetime.fromisoformat(naive.isoformat() + ("+00:00" if offset == "Z" else offset))


def to_utc(dtz: dict[str, Any]) -> datetime:
    """The aware UTC instant of a Graph `dateTimeTimeZone` dict.

    Raises:
        ValueError: missing keys, a malformed `dateTime`, or an unknown `timeZone`.
    """
    try:
        raw, zone_name = dtz["dateTime"], dtz.get("timeZone") or "UTC"
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError("dateTimeTimeZone needs dateTime and timeZone") from exc
    wall = parse_wall_time(raw)
    if wall.tzinfo is not None:
        return wall.astimezone(UTC)
    return wall.replace(tzinfo=zone_for(zone_name)).astimezone(UTC)


def from_utc(dt: datetime, zone_name: str) -> dict[str, str]:
    """Graph's `dateTimeTimeZone` for an aware instant: wall time in `zone_name`, name echoed.

    Raises:
        ValueError: `dt` is naive, or the zone name is unknown.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("from_utc needs an aware datetime")
    local = dt.astimezone(zone_for(zone_name))
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0", "timeZone": zone_name}


def format_utc_z(dt: datetime) -> str:
    """An aware instant as Graph's `Edm.DateTimeOffset` in UTC, e.g. "2026-12-01T17:00:00Z".

    Raises:
        ValueError: `dt` is naive.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("format_utc_z needs an aware datetime")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
