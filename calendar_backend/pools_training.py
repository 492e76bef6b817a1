"""Interviewer training: shadow, then reverse-shadow, then graduated (pure: no clock, I/O, env, logging).

A :class:`Trainee` of a pool needs ``shadow_required`` completed shadow sessions, then
``reverse_shadow_required`` reverse-shadow sessions. :func:`pick_trainees` says which trainees to add
to a session as *extra* attendees: they must be free (the caller passes who is), not graduated, not
already on the panel, and within their *training* caps (``weekly_cap`` / ``daily_cap``, counted on
their training load only: :func:`calendar_backend.pools.count_load` with ``training=True``; a
trainee's interviewer caps, if they are also a member, are not touched). Order: fewer training
sessions in the rolling window, then in their local week, then the tie hash of
:func:`calendar_backend.pools_selection.tie_hash`, then the address.

:func:`record_session` credits one completed session to the stage the trainee attended in and
returns the stage changes (:class:`TrainingEvent`), which the caller audits; the last one is the
graduation, which happens by itself when both counts are met.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from calendar_backend.pools import (
    MemberLoad,
    check_cap,
    load_of,
    normalize_address,
    require_aware,
    zone_of,
)
from calendar_backend.pools_selection import DEFAULT_WINDOW, tie_hash


class TrainingStage(StrEnum):
    """Where a trainee is; sessions are attended in the first two."""

    SHADOW = "shadow"
    REVERSE_SHADOW = "reverse_shadow"
    GRADUATED = "graduated"


@dataclass(frozen=True, slots=True)
class Trainee:
    """A trainee of a pool and their progress; ``weekly_cap`` / ``daily_cap`` are training caps."""

    address: str
    zone: str = "UTC"
    week_start: int = 0
    shadow_required: int = 3
    reverse_shadow_required: int = 3
    shadow_done: int = 0
    reverse_shadow_done: int = 0
    weekly_cap: int = 3
    daily_cap: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", normalize_address(self.address))
        zone_of(self.zone)
        if not 0 <= self.week_start <= 6:
            raise ValueError("week_start is 0 (Monday) to 6 (Sunday)")
        for name in ("shadow_required", "reverse_shadow_required", "weekly_cap", "daily_cap"):
            check_cap(getattr(self, name), name.replace("_", " "))
        if self.shadow_done < 0 or self.reverse_shadow_done < 0:
            raise ValueError("completed session counts are never negative")

    @property
    def stage(self) -> TrainingStage:
        """The stage implied by the counts (graduation is automatic)."""
        if self.shadow_done < self.shadow_required:
            return TrainingStage.SHADOW
        if self.reverse_shadow_done < self.reverse_shadow_required:
            return TrainingStage.REVERSE_SHADOW
        return TrainingStage.GRADUATED

    @property
    def remaining(self) -> int:
        """Completed sessions still needed to graduate."""
        return max(0, self.shadow_required - self.shadow_done) + max(
            0, self.reverse_shadow_required - self.reverse_shadow_done
        )


@dataclass(frozen=True, slots=True)
class TraineePick:
    """A trainee to add to a session, and the stage they attend it in."""

    address: str
    stage: TrainingStage
    window_load: int
    week_load: int


@dataclass(frozen=True, slots=True)
class TrainingEvent:
    """A stage change to audit: ``from_stage`` → ``to_stage`` (``graduated`` is the graduation)."""

    address: str
    from_stage: TrainingStage
    to_stage: TrainingStage

    @property
    def is_graduation(self) -> bool:
        """Whether this change graduates the trainee."""
        return self.to_stage is TrainingStage.GRADUATED


def pick_trainees(
    trainees: Collection[Trainee],
    loads: Mapping[str, MemberLoad],
    *,
    start: datetime,
    end: datetime,
    free: Collection[str],
    exclude: Collection[str] = (),
    limit: int = 1,
    window: timedelta = DEFAULT_WINDOW,
) -> tuple[TraineePick, ...]:
    """Up to ``limit`` trainees to add to ``[start, end)`` (module docstring: who and in what order).

    ``loads`` are *training* loads. Raises ``ValueError`` on naive times or ``start >= end``.
    """
    require_aware(start, end)
    if start >= end:
        raise ValueError("start must be before end")
    free_set = {a.strip().lower() for a in free}
    excluded = {a.strip().lower() for a in exclude}
    ranked: list[tuple[tuple[int, int, str, str], TraineePick]] = []
    for t in trainees:
        if t.stage is TrainingStage.GRADUATED or t.address in excluded or t.address not in free_set:
            continue
        load = loads.get(t.address) or load_of(t.address, t.zone, t.week_start, ())
        week, day = load.week_count(start), load.day_count(start)
        if week + 1 > t.weekly_cap or day + 1 > t.daily_cap:
            continue
        in_window = load.window_count(start - window, start + window)
        pick = TraineePick(t.address, t.stage, in_window, week)
        ranked.append(((in_window, week, tie_hash(start, t.address), t.address), pick))
    ranked.sort(key=lambda item: item[0])
    return tuple(pick for _, pick in ranked[: max(0, limit)])


def record_session(trainee: Trainee, attended_as: TrainingStage) -> tuple[Trainee, tuple[TrainingEvent, ...]]:
    """Credit one completed session attended as ``attended_as``; return the trainee and its stage changes.

    A session attended as a shadow counts toward shadowing even if the trainee has moved on since
    (it was booked earlier); graduating happens when both counts are met. Raises ``ValueError`` for
    ``graduated`` (nobody attends as a graduate).
    """
    if attended_as is TrainingStage.SHADOW:
        after = replace(trainee, shadow_done=trainee.shadow_done + 1)
    elif attended_as is TrainingStage.REVERSE_SHADOW:
        after = replace(trainee, reverse_shadow_done=trainee.reverse_shadow_done + 1)
    else:
        raise ValueError("a session is attended as shadow or reverse_shadow")
    return after, stage_changes(trainee.address, trainee.stage, after.stage)


def stage_changes(address: str, before: TrainingStage, after: TrainingStage) -> tuple[TrainingEvent, ...]:
    """The events from ``before`` to ``after`` in stage order (one per step; none if equal)."""
    order = list(TrainingStage)
    steps = order[order.index(before) : order.index(after) + 1]
    return tuple(TrainingEvent(address, a, b) for a, b in itertools.pairwise(steps))
