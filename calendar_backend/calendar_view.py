"""Full-fidelity availability: calendarView through Graph JSON batching, getSchedule as fallback.

Round trips: ONE `POST /$batch` per 19 mailboxes (batches run concurrently). Each batch holds every
mailbox's calendarView over the window (`Prefer: outlook.timezone="UTC"`, `$select` of times, status
and flags only: never subject, body, location or attendees; `$top=1000`) and ONE getSchedule for the
same mailboxes. getSchedule supplies every mailbox's working hours (a delegated caller may not read
another user's mailboxSettings: Graph answers 403) and the free/busy of each mailbox whose calendarView
the caller may not read (403/404: a free/busy-only share), so that fallback costs no extra round trip.
Further calendarView pages (`@odata.nextLink`, same Graph host only) are plain GETs, mailboxes
concurrently. Throttled sub-requests are retried individually (`GraphClient.batch`).

Outcome per mailbox (`CalendarRead`): events from calendarView when readable; else getSchedule's
free/busy; a mailbox neither source could read carries `schedule.error` and is never treated as free.
Mapping (`blocks_from_events`): cancelled and declined events are dropped, `showAs` is kept (unknown
values become `unknown`, which blocks by default), all-day events become `AllDayBlock`s on the dates
the event names in its own zone, which the engine places on the owner's local days (DESIGN.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from calendar_backend.availability import AllDayBlock, BusyBlock, ShowAs
from calendar_backend.errors import ReconnectRequiredError
from calendar_backend.graph import (
    MAX_BATCH_ITEMS,
    BatchAnswer,
    BatchItem,
    CallStats,
    GraphClient,
    Schedule,
    merge_schedules,
    schedule_body,
    schedule_path,
    schedule_pieces,
    schedules_from,
)
from calendar_backend.slots import Interval
from calendar_backend.timezones import UnknownTimeZoneError, parse_graph_datetime, resolve_zone

MAILBOXES_PER_BATCH = MAX_BATCH_ITEMS - 1  # one calendarView each + one getSchedule per batch
PAGE_SIZE = 1000
VIEW_FIELDS = ("start", "end", "showAs", "isAllDay", "isCancelled", "responseStatus", "type",
               "originalStartTimeZone", "originalEndTimeZone")
_PREFER_UTC = {"Prefer": 'outlook.timezone="UTC"'}
_FALLBACK_STATUSES = frozenset({403, 404})
_MAX_PAGES = 50
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class CalendarRead:
    """One mailbox as read. `schedule` always carries its working hours (or an `error`).

    `from_view` True: `blocks`/`all_day` come from calendarView and `schedule.items` is unused.
    False: calendarView was not readable and `schedule.items` (free/busy) is the source.
    """

    schedule: Schedule
    from_view: bool = False
    blocks: tuple[BusyBlock, ...] = ()
    all_day: tuple[AllDayBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class _View:
    """A mailbox's calendarView outcome: its events, or the failing HTTP status."""

    events: tuple[dict[str, Any], ...] = ()
    status: int = 200


async def read_calendars(graph: GraphClient, token: str, requester: str,
                         mailboxes: Sequence[str], start: datetime, end: datetime, *,
                         stats: CallStats | None = None, interval_min: int = 15,
                         page_size: int = PAGE_SIZE) -> dict[str, CalendarRead]:
    """Read every mailbox over [start, end) (aware datetimes); one `CalendarRead` per address.

    Keys are lower-cased addresses. `requester` names the calendar whose getSchedule is used;
    `interval_min` is getSchedule's view interval; `page_size` is calendarView's `$top` (≤1000).

    Raises:
        ReconnectRequiredError: Graph refused the token (401) for the batch or a sub-request.
        GraphThrottledError / GraphUnavailableError / UpstreamError: as `GraphClient.batch`.
    """
    chunks = [list(mailboxes[i:i + MAILBOXES_PER_BATCH])
              for i in range(0, len(mailboxes), MAILBOXES_PER_BATCH)]
    pieces = schedule_pieces(start, end)  # getSchedule's window limit; calendarView has none
    items: list[BatchItem] = []
    for n, chunk in enumerate(chunks):
        items += [_view_item(f"v{n}.{k}", a, start, end, page_size)
                  for k, a in enumerate(chunk)]
        items += [BatchItem(f"s{n}.{p}", "POST", schedule_path(requester), dict(_PREFER_UTC),
                            schedule_body(chunk, lo, hi, interval_min))
                  for p, (lo, hi) in enumerate(pieces)]
    answers = await graph.batch(token, items, stats=stats)
    schedules: dict[str, Schedule] = {}
    firsts: dict[str, BatchAnswer] = {}
    for n, chunk in enumerate(chunks):
        schedules.update(merge_schedules(
            [_schedules(answers[f"s{n}.{p}"], chunk) for p in range(len(pieces))], chunk))
        firsts.update({a.lower(): answers[f"v{n}.{k}"] for k, a in enumerate(chunk)})
    views = await asyncio.gather(*(
        _follow(graph, token, a, firsts[a.lower()], stats) for a in mailboxes))
    return {a.lower(): _combine(schedules[a.lower()], view)
            for a, view in zip(mailboxes, views, strict=True)}


def _view_item(item_id: str, address: str, start: datetime, end: datetime,
               page_size: int) -> BatchItem:
    query = (f"startDateTime={_iso(start)}&endDateTime={_iso(end)}"
             f"&$select={','.join(VIEW_FIELDS)}&$top={page_size}")
    return BatchItem(item_id, "GET", f"/users/{quote(address, safe='@')}/calendarView?{query}",
                     dict(_PREFER_UTC))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _schedules(answer: BatchAnswer, chunk: Sequence[str]) -> dict[str, Schedule]:
    """The getSchedule sub-response; when it failed, every mailbox of the chunk carries the error."""
    _check_token(answer.status)
    if answer.status == 200:
        try:
            return schedules_from(answer.body, chunk)
        except (KeyError, TypeError, ValueError):
            pass
    code = f"getSchedule:{answer.status}"
    return {a.lower(): Schedule(address=a, error=code) for a in chunk}


async def _follow(graph: GraphClient, token: str, address: str, first: BatchAnswer,
                  stats: CallStats | None) -> _View:
    """All of one mailbox's calendarView pages, following nextLinks on Graph's own host only."""
    status, body = first.status, first.body
    events: list[dict[str, Any]] = []
    for _ in range(_MAX_PAGES):
        _check_token(status)
        if status != 200:
            return _View(status=status)
        events += [e for e in body.get("value", []) if isinstance(e, dict)]
        link = body.get("@odata.nextLink")
        if not link:
            return _View(events=tuple(events))
        if not isinstance(link, str) or not link.startswith(graph.base_url + "/"):
            return _View(status=502)  # never send the token to another host
        status, body = await graph.request("GET", link, token, headers=dict(_PREFER_UTC),
                                           mailbox=address, stats=stats)
    return _View(status=508)  # too many pages: refuse rather than read half a calendar


def _check_token(status: int) -> None:
    if status == 401:
        raise ReconnectRequiredError()


def _combine(schedule: Schedule, view: _View) -> CalendarRead:
    """calendarView where readable; getSchedule free/busy after a 403/404; else unreadable."""
    if schedule.error:
        return CalendarRead(schedule)
    if view.status in _FALLBACK_STATUSES:
        return CalendarRead(schedule)
    if view.status != 200:
        return CalendarRead(Schedule(schedule.address, error=f"calendarView:{view.status}"))
    try:
        blocks, all_day = blocks_from_events(view.events)
    except (KeyError, TypeError, ValueError):  # UnknownTimeZoneError is a ValueError
        return CalendarRead(Schedule(schedule.address, error="calendarView:unparsable"))
    bare = Schedule(schedule.address, working_hours=schedule.working_hours)
    return CalendarRead(bare, from_view=True, blocks=blocks, all_day=all_day)


def blocks_from_events(events: Sequence[Mapping[str, Any]]
                       ) -> tuple[tuple[BusyBlock, ...], tuple[AllDayBlock, ...]]:
    """Map calendarView events to the engine's input (no subject, id or any other detail kept).

    Cancelled events, declined meetings and series masters are dropped. `showAs` keeps Graph's
    value (absent = busy, unrecognised = unknown). Timed events become UTC `BusyBlock`s (empty ones
    are dropped); all-day events become `AllDayBlock`s on the dates they name (`all_day_dates`).

    Raises:
        KeyError, TypeError, ValueError: a malformed event or an unknown time-zone name.
    """
    blocks: list[BusyBlock] = []
    all_day: list[AllDayBlock] = []
    for event in events:
        response = (event.get("responseStatus") or {}).get("response")
        if event.get("isCancelled") or response == "declined" or \
                event.get("type") == "seriesMaster":
            continue
        status = _show_as(event.get("showAs"))
        if event.get("isAllDay"):
            first, last = all_day_dates(event)
            all_day.append(AllDayBlock(first, last, status))
            continue
        start, end = _instant(event["start"]), _instant(event["end"])
        if start < end:
            blocks.append(BusyBlock(Interval(start, end), status))
    return tuple(blocks), tuple(all_day)


def _show_as(value: Any) -> ShowAs:
    if value is None:
        return ShowAs.BUSY
    return ShowAs(value) if value in ShowAs.__members__.values() else ShowAs.UNKNOWN


def _instant(dtz: Mapping[str, Any]) -> datetime:
    return parse_graph_datetime(str(dtz["dateTime"]), str(dtz.get("timeZone") or "UTC"))


def all_day_dates(event: Mapping[str, Any]) -> tuple[date, date]:
    """The dates `[first, end_exclusive)` an all-day event names, as its owner wrote them.

    Graph renders an all-day event either converted from its own zone (midnight in
    `originalStartTimeZone`) or floating (midnight in the requested zone, here UTC); each boundary
    is read in whichever of the two is a midnight, else as the UTC date 12 hours later. At least
    one day is always covered.

    Raises:
        KeyError, ValueError: missing or malformed start/end.
    """
    start_zone = event.get("originalStartTimeZone")
    first = _named_date(_instant(event["start"]), start_zone)
    last = _named_date(_instant(event["end"]), event.get("originalEndTimeZone") or start_zone)
    return first, max(last, first + _ONE_DAY)


def _named_date(instant: datetime, zone_name: Any) -> date:
    if isinstance(zone_name, str) and zone_name:
        try:
            local = instant.astimezone(resolve_zone(zone_name))
        except UnknownTimeZoneError:
            local = None
        if local is not None and local.time() == time(0):
            return local.date()
    if instant.time() == time(0):
        return instant.date()
    return (instant + timedelta(hours=12)).date()
