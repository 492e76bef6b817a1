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
values become `unknown`, which blocks by default), an all-day event blocks the owner's local days of
the dates it names in its own zone (`AllDayBlock`) and the span it covers in that zone (as Graph's
free/busy reports it): the union (DESIGN.md). Where calendarView hides `responseStatus` (limitedRead),
the timed blocks come from the batch's free/busy (`blocks_from_free_busy`); free/busy alone infers
all-day events (`blocks_from_schedule`, `inferred_all_day_dates`). Both sources give the same slots
wherever they see the same facts (tests/service/test_source_fidelity.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, available_timezones

from calendar_backend.availability import (
    AllDayBlock,
    BusyBlock,
    BusyRules,
    PersonAvailability,
    ShowAs,
    WorkingHours,
    local_days,
)
from calendar_backend.errors import ReconnectRequiredError
from calendar_backend.graph import (
    MAX_BATCH_ITEMS,
    BatchAnswer,
    BatchItem,
    CallStats,
    GraphClient,
    Schedule,
    ScheduleItem,
    merge_schedules,
    schedule_body,
    schedule_path,
    schedule_pieces,
    schedules_from,
)
from calendar_backend.slots import Interval
from calendar_backend.timezones import (
    UnknownTimeZoneError,
    localize,
    parse_graph_datetime,
    resolve_zone,
)

MAILBOXES_PER_BATCH = MAX_BATCH_ITEMS - 1  # one calendarView each + one getSchedule per batch
PAGE_SIZE = 1000
VIEW_FIELDS = (
    "start",
    "end",
    "showAs",
    "isAllDay",
    "isCancelled",
    "responseStatus",
    "type",
    "originalStartTimeZone",
    "originalEndTimeZone",
)
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


async def read_calendars(
    graph: GraphClient,
    token: str,
    requester: str,
    mailboxes: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    stats: CallStats | None = None,
    interval_min: int = 15,
    page_size: int = PAGE_SIZE,
) -> dict[str, CalendarRead]:
    """Read every mailbox over [start, end) (aware datetimes); one `CalendarRead` per address.

    Keys are lower-cased addresses. `requester` names the calendar whose getSchedule is used;
    `interval_min` is getSchedule's view interval; `page_size` is calendarView's `$top` (≤1000).

    Raises:
        ReconnectRequiredError: Graph refused the token (401) for the batch or a sub-request.
        GraphThrottledError / GraphUnavailableError / UpstreamError: as `GraphClient.batch`.
    """
    chunks = [
        list(mailboxes[i : i + MAILBOXES_PER_BATCH]) for i in range(0, len(mailboxes), MAILBOXES_PER_BATCH)
    ]
    pieces = schedule_pieces(start, end)  # getSchedule's window limit; calendarView has none
    items: list[BatchItem] = []
    for n, chunk in enumerate(chunks):
        items += [_view_item(f"v{n}.{k}", a, start, end, page_size) for k, a in enumerate(chunk)]
        items += [
            BatchItem(
                f"s{n}.{p}",
                "POST",
                schedule_path(requester),
                dict(_PREFER_UTC),
                schedule_body(chunk, lo, hi, interval_min),
            )
            for p, (lo, hi) in enumerate(pieces)
        ]
    answers = await graph.batch(token, items, stats=stats)
    schedules: dict[str, Schedule] = {}
    firsts: dict[str, BatchAnswer] = {}
    for n, chunk in enumerate(chunks):
        schedules.update(
            merge_schedules([_schedules(answers[f"s{n}.{p}"], chunk) for p in range(len(pieces))], chunk)
        )
        firsts.update({a.lower(): answers[f"v{n}.{k}"] for k, a in enumerate(chunk)})
    views = await asyncio.gather(*(_follow(graph, token, a, firsts[a.lower()], stats) for a in mailboxes))
    return {a.lower(): _combine(schedules[a.lower()], view) for a, view in zip(mailboxes, views, strict=True)}


def _view_item(item_id: str, address: str, start: datetime, end: datetime, page_size: int) -> BatchItem:
    query = (
        f"startDateTime={_iso(start)}&endDateTime={_iso(end)}"
        f"&$select={','.join(VIEW_FIELDS)}&$top={page_size}"
    )
    return BatchItem(
        item_id, "GET", f"/users/{quote(address, safe='@')}/calendarView?{query}", dict(_PREFER_UTC)
    )


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


async def _follow(
    graph: GraphClient, token: str, address: str, first: BatchAnswer, stats: CallStats | None
) -> _View:
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
        status, body = await graph.request(
            "GET", link, token, headers=dict(_PREFER_UTC), mailbox=address, stats=stats
        )
    return _View(status=508)  # too many pages: refuse rather than read half a calendar


def _check_token(status: int) -> None:
    if status == 401:
        raise ReconnectRequiredError()


def _combine(schedule: Schedule, view: _View) -> CalendarRead:
    """calendarView where readable; getSchedule free/busy after a 403/404; else unreadable.

    When calendarView hides a field that decides blocking (`responseStatus`: a limitedRead share
    shows times, status and flags only), the timed blocks come from the free/busy answer of the
    same batch (Exchange leaves declined meetings out of it) and calendarView only says which of
    those items are all-day events (`blocks_from_free_busy`).
    """
    if schedule.error:
        return CalendarRead(schedule)
    if view.status in _FALLBACK_STATUSES:
        return CalendarRead(schedule)
    if view.status != 200:
        return CalendarRead(Schedule(schedule.address, error=f"calendarView:{view.status}"))
    zone = _owner_zone(schedule)
    try:
        if _hides_response(view.events):
            blocks, all_day = blocks_from_free_busy(schedule.items, view.events, zone)
        else:
            blocks, all_day = blocks_from_events(view.events, zone)
    except (KeyError, TypeError, ValueError):  # UnknownTimeZoneError is a ValueError
        return CalendarRead(Schedule(schedule.address, error="calendarView:unparsable"))
    bare = Schedule(schedule.address, working_hours=schedule.working_hours)
    return CalendarRead(bare, from_view=True, blocks=blocks, all_day=all_day)


def _owner_zone(schedule: Schedule) -> tzinfo | None:
    """The mailbox's working-hours zone, when getSchedule named a known one."""
    raw = schedule.working_hours or {}
    name = (raw.get("timeZone") or {}).get("name") if isinstance(raw, dict) else None
    try:
        return resolve_zone(str(name)) if name else None
    except UnknownTimeZoneError:
        return None


def _hides_response(events: Sequence[Mapping[str, Any]]) -> bool:
    """Whether some event that could block lacks `responseStatus` (Graph always sends it to a
    caller allowed to see it, so its absence means the share level hides it)."""
    return any(
        "responseStatus" not in e
        for e in events
        if not e.get("isCancelled") and e.get("type") != "seriesMaster"
    )


def blocks_from_events(
    events: Sequence[Mapping[str, Any]], owner_zone: tzinfo | None = None
) -> tuple[tuple[BusyBlock, ...], tuple[AllDayBlock, ...]]:
    """Map calendarView events to the engine's input (no subject, id or any other detail kept).

    Cancelled events, declined meetings and series masters are dropped. `showAs` keeps Graph's
    value (absent = busy, unrecognised = unknown). Timed events become UTC `BusyBlock`s (empty ones
    are dropped). An all-day event becomes an `AllDayBlock` on the dates it names
    (`all_day_dates`; the engine places them on the owner's local days) AND `BusyBlock`s for the
    span it covers in its own zone (as Graph renders it, and midnight to midnight in
    `originalStartTimeZone` when named): the union, as free/busy reports it, so nothing busy is
    freed. Spans inside the owner's local days of those dates (`owner_zone`) are not repeated.

    Raises:
        KeyError, TypeError, ValueError: a malformed event or an unknown time-zone name.
    """
    blocks: list[BusyBlock] = []
    all_day: list[AllDayBlock] = []
    for event in events:
        response = (event.get("responseStatus") or {}).get("response")
        if event.get("isCancelled") or response == "declined" or event.get("type") == "seriesMaster":
            continue
        status = _show_as(event.get("showAs"))
        start, end = _instant(event["start"]), _instant(event["end"])
        if event.get("isAllDay"):
            first, last = all_day_dates(event)
            all_day.append(AllDayBlock(first, last, status))
            spans = {Interval(start, end)} if start < end else set()
            own = _zone_or_none(event.get("originalStartTimeZone"))
            if own is not None:
                spans.add(local_days(first, last, own))
            blocks += [
                BusyBlock(span, status)
                for span in sorted(spans, key=_span_key)
                if not _inside_days(span, first, last, owner_zone)
            ]
            continue
        if start < end:
            blocks.append(BusyBlock(Interval(start, end), status))
    return tuple(blocks), tuple(all_day)


def blocks_from_free_busy(
    items: Sequence[ScheduleItem], events: Sequence[Mapping[str, Any]], owner_zone: tzinfo | None = None
) -> tuple[tuple[BusyBlock, ...], tuple[AllDayBlock, ...]]:
    """Blocks from getSchedule's items, with calendarView telling which items are all-day events.

    Every item becomes a `BusyBlock` (free/busy already leaves cancelled and declined events out);
    an item whose span is that of a visible all-day event (not cancelled) also becomes an
    `AllDayBlock` on the dates that event names. Used where calendarView hides `responseStatus`.

    Raises:
        KeyError, TypeError, ValueError: a malformed event or an unknown time-zone name.
    """
    named: dict[tuple[datetime, datetime], list[tuple[date, date]]] = {}
    for event in events:
        if event.get("isAllDay") and not event.get("isCancelled") and event.get("type") != "seriesMaster":
            span = (_instant(event["start"]), _instant(event["end"]))
            named.setdefault(span, []).append(all_day_dates(event))
    blocks: list[BusyBlock] = []
    all_day: list[AllDayBlock] = []
    for item in items:
        status = _show_as(item.status)
        dates = named.get((item.start, item.end), [])
        all_day += [AllDayBlock(first, last, status) for first, last in dates]
        if item.start < item.end and not any(
            _inside_days(Interval(item.start, item.end), first, last, owner_zone) for first, last in dates
        ):
            blocks.append(BusyBlock(Interval(item.start, item.end), status))
    return tuple(blocks), tuple(all_day)


def blocks_from_schedule(
    items: Sequence[ScheduleItem], owner_zone: tzinfo | None = None
) -> tuple[tuple[BusyBlock, ...], tuple[AllDayBlock, ...]]:
    """Blocks from free/busy alone (getSchedule has no `isAllDay`), inferring all-day events.

    Every item blocks the span Graph reports. An item that runs from a midnight to a later
    midnight of one and the same real time zone (DST-aware: a Sydney all-day leave across the end
    of DST lasts 73 h and still counts) is also taken as an all-day event there and blocks the
    owner's local days of those dates (`inferred_all_day_dates`). Free/busy cannot tell such an
    item from a timed event of the same span (Tue 14:00Z -> Wed 14:00Z is midnight to midnight in
    Brisbane), so it may block a little more than the event does: a missed slot, never busy time
    offered. Spans inside those local days (`owner_zone`) are not repeated.
    """
    blocks: list[BusyBlock] = []
    all_day: list[AllDayBlock] = []
    for item in items:
        status = _show_as(item.status)
        dates = inferred_all_day_dates(item.start, item.end)
        if dates is not None:
            all_day.append(AllDayBlock(dates[0], dates[1], status))
        if item.start < item.end and not (
            dates and _inside_days(Interval(item.start, item.end), *dates, owner_zone)
        ):
            blocks.append(BusyBlock(Interval(item.start, item.end), status))
    return tuple(blocks), tuple(all_day)


def _span_key(span: Interval) -> tuple[datetime, datetime]:
    return span.start, span.end


def _inside_days(span: Interval, first: date, last: date, zone: tzinfo | None) -> bool:
    if not isinstance(zone, ZoneInfo):
        return False
    days = local_days(first, last, zone)
    return days.start <= span.start and span.end <= days.end


def _zone_or_none(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return resolve_zone(name)
    except UnknownTimeZoneError:
        return None


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
    is read in whichever of the two is a midnight. When the event's zone is not visible (a
    limitedRead share) the dates are those of every zone in which the span runs from a midnight to
    a midnight (`inferred_all_day_dates`, their hull when zones disagree); else a boundary is
    read as the UTC date 12 hours later. At least one day is always covered.

    Raises:
        KeyError, ValueError: missing or malformed start/end.
    """
    start, end = _instant(event["start"]), _instant(event["end"])
    start_zone = event.get("originalStartTimeZone")
    if not start_zone:
        inferred = inferred_all_day_dates(start, end)
        if inferred is not None:
            return inferred
    first = _named_date(start, start_zone)
    last = _named_date(end, event.get("originalEndTimeZone") or start_zone)
    return first, max(last, first + _ONE_DAY)


def _named_date(instant: datetime, zone_name: Any) -> date:
    zone = _zone_or_none(zone_name)
    named = _day_starting_at(instant, zone) if zone is not None else None
    if named is not None:
        return named
    if instant.time() == time(0):
        return instant.date()
    return (instant + timedelta(hours=12)).date()


_SHORTEST_DAY = timedelta(hours=22)  # a whole local day is 22-25 h (Troll's DST moves 2 h)
_QUARTER = timedelta(minutes=15)  # every UTC offset in use is a multiple of 15 minutes
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=1)
def _all_zones() -> tuple[tzinfo, ...]:
    """Every zone of the IANA database (which every Windows zone maps into), else fixed offsets."""
    names = sorted(
        n
        for n in available_timezones()
        if not n.startswith(("posix/", "right/", "SystemV/")) and n != "localtime"
    )
    zones: list[tzinfo] = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except (ValueError, OSError):
            continue
    if zones:
        return tuple(zones)
    return tuple(timezone(_QUARTER * n) for n in range(-48, 57))  # no tz database: UTC-12..+14


@lru_cache(maxsize=8192)
def inferred_all_day_dates(start: datetime, end: datetime) -> tuple[date, date] | None:
    """The dates `[first, end_exclusive)` of an all-day event spanning [start, end), if it may be one.

    [start, end) may be an all-day event when, in some real time zone, both instants begin local
    days (midnight, or the end of a DST gap at midnight) on different dates (offsets read at each
    instant, so DST changes inside the span count). Zones disagreeing on the dates (UTC+14 and
    UTC-10 share their midnights a day apart) give the hull of every reading: blocking one day
    more, never one day less. None otherwise.
    """
    if end - start < _SHORTEST_DAY or (start - _EPOCH) % _QUARTER or (end - _EPOCH) % _QUARTER:
        return None
    firsts: list[date] = []
    lasts: list[date] = []
    for zone in _all_zones():
        first = _day_starting_at(start, zone)
        if first is None:
            continue
        last = _day_starting_at(end, zone)
        if last is not None and last > first:
            firsts.append(first)
            lasts.append(last)
    if not firsts:
        return None
    return min(firsts), max(lasts)


_GAP_HOURS = time(3)  # a DST gap at midnight moves a day's start to 01:00 (02:00 at most)


def _day_starting_at(instant: datetime, zone: tzinfo) -> date | None:
    """The local date in `zone` whose first instant is `instant` (its midnight, or the end of a
    DST gap that swallowed that midnight, as Santiago's does), else None."""
    local = instant.astimezone(zone)
    if local.time() == time(0):
        return local.date()
    if (
        local.time() < _GAP_HOURS
        and isinstance(zone, ZoneInfo)
        and localize(datetime.combine(local.date(), time(0)), zone) == instant
    ):
        return local.date()
    return None


# ---- Graph answers -> the engine's input ------------------------------------------------------------
_DAYS = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}


def working_hours(raw: dict[str, Any] | None, *, is_room: bool) -> WorkingHours:
    """Graph's ``workingHours`` as the engine's; a room (or none given) is open all day, every day.

    Raises:
        UnknownTimeZoneError: a custom or unknown zone (the calendar cannot be placed in time).
    """
    if is_room or not raw:
        return WorkingHours(frozenset(range(7)), time(0, 0), time(0, 0), resolve_zone("UTC"))
    zone = resolve_zone(str((raw.get("timeZone") or {}).get("name", "UTC")))  # may raise: fail closed
    days = frozenset(_DAYS[d] for d in raw.get("daysOfWeek", []) if d in _DAYS)
    return WorkingHours(
        days, time.fromisoformat(str(raw["startTime"])[:8]), time.fromisoformat(str(raw["endTime"])[:8]), zone
    )


def zone_known(schedule: Schedule, *, is_room: bool) -> bool:
    """A custom or unknown working-hours zone cannot be placed in time: such a calendar is unreadable."""
    try:
        working_hours(schedule.working_hours, is_room=is_room)
    except UnknownTimeZoneError:
        return False
    return True


def availability_of(schedule: Schedule, *, is_room: bool) -> PersonAvailability:
    """Turn one getSchedule answer into the engine's input, inferring all-day events
    (`blocks_from_schedule`: getSchedule has no `isAllDay`)."""
    hours = working_hours(schedule.working_hours, is_room=is_room)
    blocks, all_day = blocks_from_schedule(schedule.items, hours.zone)
    return PersonAvailability(schedule.address.lower(), hours, blocks, all_day)


def read_availability(read: CalendarRead, is_room: bool) -> PersonAvailability:
    """calendarView's blocks with getSchedule's working hours, else getSchedule's free/busy."""
    if not read.from_view:
        return availability_of(read.schedule, is_room=is_room)
    return PersonAvailability(
        read.schedule.address.lower(),
        working_hours(read.schedule.working_hours, is_room=is_room),
        read.blocks,
        read.all_day,
    )


def schedule_blocks(
    schedule: Schedule, slot: Interval, rules: BusyRules, ignore: tuple[datetime, datetime] | None = None
) -> bool:
    """Whether free/busy ``schedule`` has blocking time in ``slot`` (an error blocks: fail closed);
    an item exactly at ``ignore`` (the interview's own old time, during a move) does not count."""
    if schedule.error:
        return True
    for item in schedule.items:
        if ignore and (item.start, item.end) == ignore:
            continue
        status = item.status if item.status in ShowAs.__members__.values() else "unknown"
        if ShowAs(status) in rules.blocking and item.start < slot.end and slot.start < item.end:
            return True
    return False
