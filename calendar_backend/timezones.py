"""Time-zone names and Graph ``dateTimeTimeZone`` values, converted to aware UTC.

Graph names zones the Windows way by default ("Pacific Standard Time") and sometimes the IANA
way ("America/Los_Angeles"); both resolve here, Windows names through the CLDR mapping that
``tzlocal.windows_tz.win_tz`` ships. A ``customTimeZone`` ("Customized Time Zone") has no name
that identifies it, so it is refused rather than guessed.

Local wall-clock times become instants with :func:`localize`, which defines the rule used
everywhere in the engine: the instant is the *earliest* UTC instant whose local wall time is at or
after the given wall time. So a time inside a fold maps to its first occurrence, and a time inside
a DST gap maps to the first valid instant after the gap (the transition itself).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

from calendar_backend.slots import require_aware

_UTC_ALIASES = frozenset({"UTC", "Etc/UTC", "tzone://Microsoft/Utc", "Coordinated Universal Time"})
_CUSTOM_ZONE_NAME = "Customized Time Zone"
_MAX_NAME_LENGTH = 64
_ALLOWED_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 _+-/.()&")
_WINDOWS_BY_FOLDED_NAME = {name.casefold(): iana for name, iana in win_tz.items()}
_GRAPH_FRACTION_DIGITS = 7


class UnknownTimeZoneError(ValueError):
    """A zone name that is neither a known Windows name nor an IANA name (or is a custom zone)."""


def resolve_zone(name: str) -> ZoneInfo:
    """Resolve a Windows or IANA zone name (as Graph returns them) to a ``ZoneInfo``.

    Windows names match case-insensitively ("India Standard Time" -> Asia/Calcutta); UTC spellings
    ("UTC", "tzone://Microsoft/Utc") give ``ZoneInfo("UTC")``.

    Raises:
        UnknownTimeZoneError: the name is a "Customized Time Zone", malformed, or unknown.
    """
    if name in _UTC_ALIASES:
        return ZoneInfo("UTC")
    if name == _CUSTOM_ZONE_NAME:
        raise UnknownTimeZoneError(
            "custom time zones (Customized Time Zone) are not supported; "
            "set a named zone in the mailbox settings"
        )
    if not name or len(name) > _MAX_NAME_LENGTH or not set(name) <= _ALLOWED_CHARACTERS:
        raise UnknownTimeZoneError("time zone name is empty, too long or malformed")
    iana = win_tz.get(name) or _WINDOWS_BY_FOLDED_NAME.get(name.casefold())
    if iana is not None:
        return ZoneInfo(iana)
    return _load_iana(name)


def zone_or_utc(name: str | None) -> ZoneInfo:
    """:func:`resolve_zone` of an IANA or Windows name, or UTC when it is missing or unknown."""
    try:
        return resolve_zone(name or "UTC")
    except UnknownTimeZoneError:
        return ZoneInfo("UTC")


def _load_iana(name: str) -> ZoneInfo:
    if name.startswith("/") or ".." in name.split("/"):
        raise UnknownTimeZoneError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, IsADirectoryError) as exc:
        raise UnknownTimeZoneError(f"unknown time zone {name!r}") from exc


def localize(wall: datetime, zone: ZoneInfo) -> datetime:
    """The earliest UTC instant whose wall time in ``zone`` is at or after the naive ``wall``.

    Folds resolve to the first occurrence; times in a DST gap resolve to the transition instant
    (the first valid instant after the gap). The result is aware and in UTC.

    Raises:
        ValueError: ``wall`` is not naive.
    """
    if wall.tzinfo is not None:
        raise ValueError("localize expects a naive wall-clock datetime")
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)  # PEP 495: fold=0 is the earlier
    if _wall_time(instant, zone) == wall:
        return instant
    return _gap_end(wall, zone)


def _wall_time(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """Binary-search the transition that skips ``wall`` (tzdata transitions are whole seconds)."""
    candidates = [wall.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1)]
    low, high = min(candidates), max(candidates)  # wall(low) < wall <= wall(high)
    if _wall_time(high, zone) < wall:
        raise ValueError(f"cannot resolve wall time {wall.isoformat()} in {zone.key}")
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) // 2
        if _wall_time(middle, zone) < wall:
            low = middle
        else:
            high = middle
    whole_second = high.replace(microsecond=0)
    return whole_second if _wall_time(whole_second, zone) >= wall else high


def parse_graph_datetime(value: str, tz_name: str) -> datetime:
    """Parse a Graph ``dateTimeTimeZone`` pair, e.g. ("2019-03-15T12:00:00.0000000", "UTC").

    Up to 7 fractional digits are accepted (100 ns ticks are truncated to microseconds). A naive
    value is read as wall time in ``tz_name`` via :func:`localize`; a value carrying its own offset
    is taken as that instant. Returns an aware UTC datetime.

    Raises:
        ValueError: the value is not ISO 8601.
        UnknownTimeZoneError: ``tz_name`` does not resolve (see :func:`resolve_zone`).
    """
    zone = resolve_zone(tz_name)
    parsed = datetime.fromisoformat(_truncate_fraction(value.strip()))
    if parsed.tzinfo is not None:
        return require_aware(parsed, "dateTime")
    return localize(parsed, zone)


def _truncate_fraction(value: str) -> str:
    head, dot, tail = value.partition(".")
    if not dot:
        return value
    digits = len(tail) - len(tail.lstrip("0123456789"))
    if digits > _GRAPH_FRACTION_DIGITS:
        raise ValueError(f"too many fractional digits in {value!r}")
    return f"{head}.{tail[:digits][:6].ljust(6, '0')}{tail[digits:]}"


def to_graph_datetime(instant: datetime) -> dict[str, str]:
    """Format an aware instant as a Graph ``dateTimeTimeZone`` in UTC with 7 fractional digits.

    Raises:
        ValueError: ``instant`` is naive.
    """
    utc = require_aware(instant, "instant")
    return {"dateTime": utc.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0", "timeZone": "UTC"}
