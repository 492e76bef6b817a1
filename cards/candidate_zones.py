"""Time zones as a candidate thinks of them (pure, stdlib only).

- `canonical_zone`: a legacy IANA link (``Asia/Calcutta``, ``US/Eastern``) becomes its canonical zone
  (``Asia/Kolkata``, ``America/New_York``): from the system's ``tzdata.zi`` when present, else a built-in
  table of the common ones.
- `COMMON_ZONES`: the short list the page offers first, named the way people say them, and
  `zone_title` for a label such as ``India (IST, UTC+05:30)``.
- `find_zone`: what a typed search (``kolkata``, ``new york``, ``India``, ``Asia/Calcutta``) means.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

__all__ = ["COMMON_ZONES", "all_zones", "canonical_zone", "find_zone", "zone_title"]

COMMON_ZONES: tuple[tuple[str, str], ...] = (
    ("Pacific/Honolulu", "Hawaii"),
    ("America/Anchorage", "Alaska"),
    ("America/Los_Angeles", "US Pacific"),
    ("America/Denver", "US Mountain"),
    ("America/Chicago", "US Central"),
    ("America/New_York", "US Eastern"),
    ("America/Mexico_City", "Mexico City"),
    ("America/Bogota", "Colombia"),
    ("America/Sao_Paulo", "Brazil (São Paulo)"),
    ("America/Argentina/Buenos_Aires", "Argentina"),
    ("UTC", "UTC"),
    ("Europe/London", "UK"),
    ("Europe/Dublin", "Ireland"),
    ("Europe/Lisbon", "Portugal"),
    ("Africa/Lagos", "West Africa (Lagos)"),
    ("Europe/Paris", "Central Europe (Paris)"),
    ("Europe/Berlin", "Germany"),
    ("Europe/Madrid", "Spain"),
    ("Europe/Warsaw", "Poland"),
    ("Africa/Johannesburg", "South Africa"),
    ("Africa/Cairo", "Egypt"),
    ("Europe/Helsinki", "Eastern Europe (Helsinki)"),
    ("Europe/Kyiv", "Ukraine"),
    ("Europe/Istanbul", "Turkey"),
    ("Africa/Nairobi", "East Africa (Nairobi)"),
    ("Asia/Dubai", "Gulf (Dubai)"),
    ("Asia/Karachi", "Pakistan"),
    ("Asia/Kolkata", "India"),
    ("Asia/Kathmandu", "Nepal"),
    ("Asia/Dhaka", "Bangladesh"),
    ("Asia/Jakarta", "Indonesia (Jakarta)"),
    ("Asia/Singapore", "Singapore"),
    ("Asia/Shanghai", "China"),
    ("Asia/Manila", "Philippines"),
    ("Asia/Tokyo", "Japan"),
    ("Asia/Seoul", "Korea"),
    ("Australia/Perth", "Australia Western (Perth)"),
    ("Australia/Sydney", "Australia Eastern (Sydney)"),
    ("Pacific/Auckland", "New Zealand"),
)
_FRIENDLY = dict(COMMON_ZONES)
_BUILTIN_LINKS = {
    "Asia/Calcutta": "Asia/Kolkata",
    "Asia/Katmandu": "Asia/Kathmandu",
    "Asia/Saigon": "Asia/Ho_Chi_Minh",
    "Asia/Rangoon": "Asia/Yangon",
    "Asia/Dacca": "Asia/Dhaka",
    "Asia/Thimbu": "Asia/Thimphu",
    "Asia/Ulan_Bator": "Asia/Ulaanbaatar",
    "Europe/Kiev": "Europe/Kyiv",
    "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
    "America/Indianapolis": "America/Indiana/Indianapolis",
    "Asia/Istanbul": "Europe/Istanbul",
    "US/Eastern": "America/New_York",
    "US/Central": "America/Chicago",
    "US/Mountain": "America/Denver",
    "US/Pacific": "America/Los_Angeles",
    "US/Alaska": "America/Anchorage",
    "US/Hawaii": "Pacific/Honolulu",
    "Etc/UTC": "UTC",
    "Etc/GMT": "UTC",
    "GMT": "UTC",
    "Etc/Universal": "UTC",
    "Zulu": "UTC",
    "Universal": "UTC",
    "Etc/Zulu": "UTC",
    "UCT": "UTC",
    "Etc/UCT": "UTC",
    "Australia/ACT": "Australia/Sydney",
    "Australia/NSW": "Australia/Sydney",
    "Pacific/Truk": "Pacific/Chuuk",
    "Pacific/Ponape": "Pacific/Pohnpei",
    "Atlantic/Faeroe": "Atlantic/Faroe",
    "America/Godthab": "America/Nuuk",
}
_TZDATA_ZI = Path("/usr/share/zoneinfo/tzdata.zi")


@functools.cache
def _links() -> dict[str, str]:
    links = dict(_BUILTIN_LINKS)
    try:
        text = _TZDATA_ZI.read_text(encoding="utf-8")
    except OSError:
        return links
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "L":
            target, alias = parts[1], parts[2]
            links.setdefault(alias, target)
    for alias, target in list(links.items()):  # a link to a link (rare): follow it
        seen = 0
        while target in links and seen < 5:
            target, seen = links[target], seen + 1
        links[alias] = "UTC" if target in {"Etc/UTC", "Etc/GMT"} else target
    return links


@functools.cache
def all_zones() -> tuple[str, ...]:
    """Every canonical zone a candidate may pick (regions only, no legacy links), sorted."""
    links = _links()
    names = {
        z
        for z in available_timezones()
        if "/" in z and not z.startswith(("Etc/", "SystemV/", "US/", "posix/", "right/")) and z not in links
    }
    return tuple(sorted(names | {"UTC"}))


def canonical_zone(name: str | None) -> str | None:
    """The canonical IANA name of ``name`` (a link is followed), or None when unknown."""
    if not name or len(name) > 64:
        return None
    name = _links().get(name, name)
    if name not in all_zones():
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def zone_title(name: str, at: datetime | None = None) -> str:
    """``India (IST, UTC+05:30)``; a zone without a common name reads ``Kathmandu (UTC+05:45)``."""
    local = (at or datetime.now(UTC)).astimezone(ZoneInfo(name))
    offset = local.utcoffset()
    minutes = int(offset.total_seconds()) // 60 if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    utc = f"UTC{sign}{hours:02d}:{mins:02d}"
    abbr = local.tzname() or ""
    place = _FRIENDLY.get(name) or name.rsplit("/", 1)[-1].replace("_", " ")
    if name == "UTC":
        return "UTC (Coordinated Universal Time)"
    return f"{place} ({abbr}, {utc})" if abbr.isalpha() else f"{place} ({utc})"


def find_zone(query: str) -> str | None:
    """The zone a typed search means: an IANA name or link, a city, or a common name."""
    text = query.strip()
    if not text or len(text) > 64:
        return None
    exact = canonical_zone(text)
    if exact:
        return exact
    wanted = _norm(text.split("(")[0])
    if not wanted:
        return None
    for zone, friendly in COMMON_ZONES:
        if _norm(friendly) == wanted or _norm(friendly.split("(")[0]) == wanted:
            return zone
    for zone in all_zones():
        if _norm(zone.rsplit("/", 1)[-1]) == wanted:
            return zone
    for alias, target in _links().items():
        if _norm(alias.rsplit("/", 1)[-1]) == wanted and canonical_zone(target):
            return canonical_zone(target)
    return None


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())
