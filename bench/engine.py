"""Slot engine benchmark: ``find_panel_slots`` against the cost of sorting the same intervals.

Workload (seeded, deterministic): each interviewer works 09:00-17:00 Monday-Friday in one of six
zones and has ``EVENTS_PER_PERSON`` timed events of 15-90 minutes over 14 days, most of them
(``SHARED_FRACTION``) drawn from a team calendar shared by the whole panel, the rest personal and
placed at random. The engine is asked for every valid 45-minute slot on a 15-minute grid.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as wall
from operator import attrgetter
from zoneinfo import ZoneInfo

from calendar_backend.availability import (
    BusyBlock,
    PersonAvailability,
    ShowAs,
    SlotQuery,
    WorkingHours,
    find_panel_slots,
)
from calendar_backend.slots import Interval

DAYS = 14
EVENTS_PER_PERSON = 200
SHARED_FRACTION = 0.98
# Zones whose 09:00-17:00 overlap (14:00-16:00 UTC), so a large panel can still meet.
ZONES = (
    "Europe/London",
    "America/New_York",
    "Europe/Berlin",
    "Europe/Lisbon",
    "America/Toronto",
    "Europe/Paris",
)
WINDOW_START = datetime(2026, 11, 30, tzinfo=UTC)  # a Monday; fixed so runs are comparable
GROWTH_SIZES = (1, 2, 5, 10, 20, 50, 100)
EMPTY_SIZES = (20, 100)


@dataclass(frozen=True, slots=True)
class EngineFigures:
    """Seconds per call (median) for the engine and the sort floor at one panel size."""

    interviewers: int
    events: int
    slots: int
    engine_s: float
    sort_s: float

    @property
    def ratio(self) -> float:
        """Engine time over sort time (the target is <= 3)."""
        return self.engine_s / self.sort_s


def _random_event(rng: random.Random) -> Interval:
    start = WINDOW_START + timedelta(minutes=15 * rng.randrange(DAYS * 24 * 4))
    return Interval(start, start + timedelta(minutes=15 * rng.randint(1, 6)))


def build_panel(size: int, seed: int = 8) -> list[PersonAvailability]:
    """``size`` interviewers with ``EVENTS_PER_PERSON`` busy blocks each (deterministic)."""
    rng = random.Random(seed)
    team = [_random_event(rng) for _ in range(EVENTS_PER_PERSON)]
    shared = int(EVENTS_PER_PERSON * SHARED_FRACTION)
    panel = []
    for i in range(size):
        events = rng.sample(team, shared) + [_random_event(rng) for _ in range(EVENTS_PER_PERSON - shared)]
        hours = WorkingHours(frozenset(range(5)), wall(9), wall(17), ZoneInfo(ZONES[i % 6]))
        blocks = tuple(BusyBlock(e, ShowAs.BUSY) for e in events)
        panel.append(PersonAvailability(f"person{i}@bench.example", hours, blocks))
    return panel


def _query() -> SlotQuery:
    return SlotQuery(
        Interval(WINDOW_START, WINDOW_START + timedelta(days=DAYS)),
        timedelta(minutes=45),
        timedelta(minutes=15),
        WINDOW_START,
    )


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``action``, in seconds (after one warm-up)."""
    return paired_medians(action, lambda: None, repeats)[0]


def paired_medians(
    first: Callable[[], object], second: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median seconds of ``first`` and of ``second``, sampled alternately in the same run.

    Alternating keeps both figures exposed to the same machine load (the host is shared), so
    their ratio is comparable even when the absolute times drift. One warm-up call each.
    """
    first()
    second()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for action, bucket in ((first, samples[0]), (second, samples[1])):
            began = time.perf_counter()
            action()
            bucket.append(time.perf_counter() - began)
    return statistics.median(samples[0]), statistics.median(samples[1])


def measure(size: int, repeats: int = 15) -> EngineFigures:
    """Engine vs. sort floor for a panel of ``size`` interviewers, sampled alternately."""
    panel, query = build_panel(size), _query()
    intervals: Sequence[Interval] = [b.interval for p in panel for b in p.blocks]
    by_start = attrgetter("start")
    slots = len(find_panel_slots(panel, query).slots)
    engine_s, sort_s = paired_medians(
        lambda: find_panel_slots(panel, query), lambda: sorted(intervals, key=by_start), repeats
    )
    return EngineFigures(size, len(intervals), slots, engine_s, sort_s)


def _spread_panel(size: int) -> list[PersonAvailability]:
    """``size`` people in zones whose working hours never all overlap (LA to Kathmandu).

    Every person has free time alone, but the panel has no common slot, so the engine takes the
    ``explain_empty`` path (which used to be quadratic in the panel size).
    """
    zones = ("America/Los_Angeles", "Asia/Kathmandu", "Europe/Berlin", "America/New_York")
    panel = build_panel(size)
    return [
        PersonAvailability(
            p.mailbox,
            WorkingHours(p.hours.days, p.hours.start, p.hours.end, ZoneInfo(zones[i % len(zones)])),
            p.blocks,
        )
        for i, p in enumerate(panel)
    ]


def measure_empty(size: int, repeats: int = 3) -> tuple[int, float]:
    """(blockers named, median seconds) for a ``size``-person panel with no common slot."""
    panel, query = _spread_panel(size), _query()
    result = find_panel_slots(panel, query)
    if result.slots:
        raise RuntimeError("the spread-out panel unexpectedly has a common slot")
    return len(result.blockers), median_seconds(lambda: find_panel_slots(panel, query), repeats)


def growth(sizes: Sequence[int] = GROWTH_SIZES) -> list[EngineFigures]:
    """Engine figures for each panel size (for the linearity check)."""
    return [measure(size, repeats=7 if size > 20 else 15) for size in sizes]
