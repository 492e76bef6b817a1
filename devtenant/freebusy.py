"""Free/busy: Graph's `scheduleInformation` (getSchedule) and calendarView paging.

Input is the output of `devtenant.recurrence.expand` (or any Graph instances with `start`/`end`).
As Exchange does, cancelled instances and declined meetings are left out entirely. Every other
instance overlapping the window becomes a `scheduleItem`; its `showAs` drives the
`availabilityView` digits, where a slot shows the strongest status overlapping it:
oof (3) > busy (2) > tentative (1) > workingElsewhere (4) > free (0). A `showAs` of "unknown" (or
one Graph does not define) blocks like busy: no data is never treated as free.

Subject and location appear only when the caller may see details and the item's sensitivity is
normal or personal; private and confidential items never expose them.
Pure: no clock, no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from devtenant.recurrence import overlaps
from devtenant.zones import from_utc, to_utc, zone_for

JsonDict = dict[str, Any]

_DIGITS = {"free": "0", "tentative": "1", "busy": "2", "oof": "3", "workingElsewhere": "4"}
_RANK = {"0": 0, "4": 1, "1": 2, "2": 3, "3": 4}  # digit -> strength
_VISIBLE = frozenset({"normal", "personal"})
_MIN_INTERVAL, _MAX_INTERVAL = 5, 1440


def schedule_information(
    mailbox_address: str,
    occurrences: list[JsonDict],
    start: datetime,
    end: datetime,
    interval_min: int,
    *,
    working_hours: JsonDict | None,
    can_see_details: bool,
    out_zone: str,
) -> JsonDict:
    """One Graph `scheduleInformation` for `mailbox_address` over [start, end).

    `availabilityView` has ceil((end - start) / interval_min) digits, the last slot possibly
    shorter. `scheduleItems` keep each instance's full start/end (not clipped), in `out_zone`
    (Windows or IANA name, echoed), sorted by start. `workingHours` is passed through unchanged
    and omitted when None.

    Raises:
        ValueError: naive or inverted window, interval outside [5, 1440] minutes, unknown
            `out_zone`, or an instance with malformed times.
    """
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise ValueError("window must be aware with start < end")
    if isinstance(interval_min, bool) or not _MIN_INTERVAL <= interval_min <= _MAX_INTERVAL:
        raise ValueError(f"interval_min must be in [{_MIN_INTERVAL}, {_MAX_INTERVAL}]")
    zone_for(out_zone)
    blocking = []
    for ev in occurrences:
        if _counts(ev):
            ev_start, ev_end = _span(ev)
            if overlaps(ev_start, ev_end, start, end):
                blocking.append((ev, ev_start, ev_end))
    blocking.sort(key=lambda item: item[1])
    info: JsonDict = {
        "scheduleId": mailbox_address,
        "availabilityView": _availability_view(blocking, start, end, interval_min),
        "scheduleItems": [_item(ev, s, e, can_see_details, out_zone) for ev, s, e in blocking],
    }
    if working_hours is not None:
        info["workingHours"] = working_hours
    return info


def calendar_view_page(occurrences: list[JsonDict], skip: int, top: int) -> tuple[list[JsonDict], bool]:
    """The page [skip, skip + top) of an already sorted calendarView, and whether more follow.

    Raises:
        ValueError: skip < 0 or top < 1.
    """
    if skip < 0 or top < 1:
        raise ValueError("skip must be >= 0 and top >= 1")
    return occurrences[skip : skip + top], skip + top < len(occurrences)


def _counts(ev: JsonDict) -> bool:
    """Whether an instance takes part in free/busy at all (Exchange drops cancelled/declined)."""
    if ev.get("isCancelled") or ev.get("type") == "seriesMaster":
        return False
    response = ev.get("responseStatus") or {}
    return not (isinstance(response, dict) and response.get("response") == "declined")


def _span(ev: JsonDict) -> tuple[datetime, datetime]:
    try:
        return to_utc(ev["start"]), to_utc(ev["end"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"instance {ev.get('id')!r} needs start and end") from exc


def _status(ev: JsonDict) -> str:
    show_as = ev.get("showAs") or "busy"  # Graph's default for a new event
    return show_as if show_as in _DIGITS else "unknown"


def _availability_view(
    blocking: list[tuple[JsonDict, datetime, datetime]],
    start: datetime,
    end: datetime,
    interval_min: int,
) -> str:
    step = timedelta(minutes=interval_min)
    slots = ["0"] * -(-(end - start) // step)
    for ev, ev_start, ev_end in blocking:
        if ev_end == ev_start:
            continue  # a zero-length instance is listed but occupies no slot
        digit = _DIGITS.get(_status(ev), "2")
        first = max(0, (ev_start - start) // step)
        after = min(len(slots), -(-(ev_end - start) // step))
        for i in range(first, after):
            if _RANK[digit] > _RANK[slots[i]]:
                slots[i] = digit
    return "".join(slots)


def _item(
    ev: JsonDict, ev_start: datetime, ev_end: datetime, can_see_details: bool, out_zone: str
) -> JsonDict:
    sensitivity = ev.get("sensitivity") or "normal"
    item: JsonDict = {
        "isPrivate": sensitivity not in _VISIBLE,
        "status": _status(ev),
        "start": from_utc(ev_start, out_zone),
        "end": from_utc(ev_end, out_zone),
    }
    if can_see_details and sensitivity in _VISIBLE:
        item["subject"] = ev.get("subject") or ""
        item["location"] = _location_name(ev.get("location"))
    return item


def _location_name(location: object) -> str:
    if isinstance(location, dict):
        return str(location.get("displayName") or "")
    return location if isinstance(location, str) else ""
