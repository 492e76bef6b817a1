"""Local-time text for cards: the only place OpenSlot turns UTC instants into wall-clock text.

Output is locale-independent English (fixed day/month names) so golden files are stable.
Zone labels are the zone's abbreviation (``PST``, ``IST``) or, where the tz database has none,
the UTC offset (``UTC+05:45``). When a range crosses a DST change, both ends carry their label.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from cards.views import ZonePair, to_utc

__all__ = ["format_duration", "format_instant", "format_range", "format_slot", "zone_label"]

_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SEPARATOR: Final = " · "
_DASH: Final = "\u2013"  # en dash between the ends of a range


def zone_label(local: datetime) -> str:
    """Return the zone abbreviation of an aware local time, or ``UTC±HH:MM`` if it has none.

    Raises:
        ValueError: if ``local`` is naive.
    """
    offset = local.utcoffset()
    if offset is None:
        raise ValueError("local must be timezone-aware")
    name = local.tzname() or ""
    if name.isalpha():
        return name
    return "UTC" + _format_offset(offset)


def _format_offset(offset: timedelta) -> str:
    if not offset:
        return ""
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes > 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def _day(local: datetime) -> str:
    return f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]}"


def _clock(local: datetime) -> str:
    return f"{local.hour:02d}:{local.minute:02d}"


def format_instant(instant: datetime, tz: ZoneInfo) -> str:
    """Return e.g. ``Tue 2 Dec, 17:00 PST`` for an aware ``instant`` shown in ``tz``."""
    local = to_utc(instant, "instant").astimezone(tz)
    return f"{_day(local)}, {_clock(local)} {zone_label(local)}"


def format_range(start: datetime, end: datetime, tz: ZoneInfo, *, with_day: bool = True) -> str:
    """Return ``[start, end)`` as wall-clock text in ``tz``.

    Example: ``Tue 2 Dec, 09:00\u201309:45 PST`` (en dash).

    The day is omitted when ``with_day`` is False and the range starts and ends on the same
    local day. A range ending on a later local day names both days. Both ends carry a zone label
    when the label changes inside the range (DST).
    """
    first = to_utc(start, "start").astimezone(tz)
    last = to_utc(end, "end").astimezone(tz)
    first_label, last_label = zone_label(first), zone_label(last)
    if first.date() != last.date():
        return (
            f"{_day(first)}, {_clock(first)} {first_label} {_DASH} {_day(last)}, {_clock(last)} {last_label}"
        )
    prefix = f"{_day(first)}, " if with_day else ""
    if first_label != last_label:
        return f"{prefix}{_clock(first)} {first_label}{_DASH}{_clock(last)} {last_label}"
    return f"{prefix}{_clock(first)}{_DASH}{_clock(last)} {first_label}"


def format_slot(start: datetime, end: datetime, zones: ZonePair) -> str:
    """Return a slot in the manager's zone, then the candidate's, joined by `` · ``.

    The candidate part repeats the day only when it differs from the manager's local day.
    Example: ``Tue 2 Dec, 09:00\u201309:45 PST · 22:30\u201323:15 IST`` (en dashes).
    """
    manager_day = to_utc(start, "start").astimezone(zones.manager).date()
    candidate_day = to_utc(start, "start").astimezone(zones.candidate).date()
    manager = format_range(start, end, zones.manager)
    candidate = format_range(start, end, zones.candidate, with_day=candidate_day != manager_day)
    return manager + _SEPARATOR + candidate


def format_duration(duration: timedelta) -> str:
    """Return ``45 min``, ``1 h`` or ``1 h 30 min``.

    Raises:
        ValueError: if ``duration`` is not a positive whole number of minutes.
    """
    seconds = int(duration.total_seconds())
    if seconds <= 0 or seconds % 60:
        raise ValueError("duration must be a positive whole number of minutes")
    hours, minutes = divmod(seconds // 60, 60)
    parts = ([f"{hours} h"] if hours else []) + ([f"{minutes} min"] if minutes else [])
    return " ".join(parts)
