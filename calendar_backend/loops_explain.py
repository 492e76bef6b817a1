"""Interview loops: why nothing fits (pure: no clock, I/O, env, logging).

Per session and per person or room, with changes that were checked to help (a shorter session,
dropping one person, another day, a longer break, a free order). Texts name people and session
titles only, never a calendar item.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta

from calendar_backend.loops_model import (
    MINUTE,
    Change,
    Explanation,
    LoopSpec,
    Reason,
    Session,
    Suggestion,
)
from calendar_backend.loops_search import base_spans, grid_starts, has_loop, session_starts
from calendar_backend.slots import Interval

_WIDER_BREAKS = (timedelta(minutes=30), timedelta(hours=1), timedelta(hours=2))


def _join(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _when(spec: LoopSpec) -> str:
    first = spec.window.start.astimezone(spec.zone).date()
    last = (spec.window.end - timedelta(microseconds=1)).astimezone(spec.zone).date()
    if first == last:
        return f"on {first:%a %d %b}"
    if (last - first).days < 7:
        return f"on {first:%a}-{last:%a}"
    return f"from {first:%d %b} to {last:%d %b}"


def _fits(spec: LoopSpec, session: Session, free: Mapping[str, Sequence[Interval]], **kw: object) -> bool:
    return bool(session_starts(spec, session, free, limit=1, **kw))  # type: ignore[arg-type]


def _shorter(spec: LoopSpec, session: Session, free: Mapping[str, Sequence[Interval]]) -> Suggestion | None:
    duration = session.duration - spec.step
    while duration > timedelta(0):
        if _fits(spec, session, free, duration=duration):
            minutes = duration // MINUTE
            return Suggestion(Change.SHORTEN, minutes, f"shorten {session.title} to {minutes} minutes")
        duration -= spec.step
    return None


def _longer_window(
    spec: LoopSpec, horizon: Interval | None, helps: Callable[[LoopSpec], bool]
) -> Suggestion | None:
    """The fewest whole days added to the search window (up to ``horizon``) for which ``helps``."""
    if horizon is None or horizon.start > spec.window.start or horizon.end <= spec.window.end:
        return None
    extra = 0
    while spec.window.end + timedelta(days=extra) < horizon.end:
        extra += 1
        end = min(spec.window.end + timedelta(days=extra), horizon.end)
        if helps(_replace(spec, window=Interval(spec.window.start, end))):
            last = (end - timedelta(microseconds=1)).astimezone(spec.zone).date()
            return Suggestion(Change.LONGER_WINDOW, extra, f"look until {last:%a %d %b}")
    return None


def _explain_session(
    spec: LoopSpec,
    index: int,
    free: Mapping[str, Sequence[Interval]],
    name: Mapping[str, str],
    horizon: Interval | None = None,
) -> Explanation:
    session = spec.sessions[index]
    minutes = session.duration // MINUTE
    head = f"{session.title}: no {minutes} minutes"
    shorter = _shorter(spec, session, free)
    further = _longer_window(spec, horizon, lambda wider: _fits(wider, session, free))
    hints = tuple(h for h in (shorter, further) if h)
    if not grid_starts(spec, base_spans(spec, session), session.duration, limit=1):
        return Explanation(
            Reason.NO_ROOM_IN_WINDOW, index, (), f"{head} inside the search window {_when(spec)}", hints
        )
    alone = [
        m
        for m in session.interviewers
        if not _fits(spec, Session(session.title, session.duration, (m,), (), session.window), free)
    ]
    if alone:
        text = f"{head} where {_join([name.get(m, m) for m in alone])} "
        text += ("is" if len(alone) == 1 else "are each") + f" free {_when(spec)}"
        return Explanation(Reason.NOT_FREE, index, tuple(alone), text, hints)
    if session.rooms and not _fits(
        spec, Session(session.title, session.duration, (), session.rooms, session.window), free
    ):
        text = f"{head} where any of {_join([name.get(r, r) for r in session.rooms])} is free {_when(spec)}"
        return Explanation(Reason.NOT_FREE, index, session.rooms, text, hints)
    people = session.interviewers
    if _fits(spec, Session(session.title, session.duration, people, (), session.window), free):
        text = (
            f"{head} where {_join([name.get(r, r) for r in session.rooms])} "
            f"{'is' if len(session.rooms) == 1 else 'are'} free while "
            f"{_join([name.get(m, m) for m in people])} can meet {_when(spec)}"
        )
        return Explanation(Reason.NO_ROOM, index, session.rooms, text, hints)
    drops = tuple(
        Suggestion(Change.DROP_PERSON, m, f"drop {name.get(m, m)} from {session.title}")
        for m in people
        if _fits(spec, session, free, people=[p for p in people if p != m])
    )
    both = "both" if len(people) == 2 else "all"
    text = f"{head} where {_join([name.get(m, m) for m in people])} are {both} free {_when(spec)}"
    return Explanation(Reason.NO_COMMON_TIME, index, people, text, hints + drops)


def _relaxations(
    spec: LoopSpec, free: Mapping[str, Sequence[Interval]], horizon: Interval | None
) -> tuple[Suggestion, ...]:
    found = []
    if spec.max_days < len(spec.sessions):
        days = spec.max_days + 1
        if has_loop(_replace(spec, max_days=days), free):
            found.append(Suggestion(Change.ADD_DAY, days, f"allow the loop to span {days} days"))
    for wider in _WIDER_BREAKS:
        if wider > spec.max_break and has_loop(_replace(spec, max_break=wider), free):
            minutes = wider // MINUTE
            found.append(Suggestion(Change.LONGER_BREAK, minutes, f"allow breaks of up to {minutes} minutes"))
            break
    if spec.precedence() and has_loop(_replace(spec, fixed_order=False, before=frozenset()), free):
        found.append(Suggestion(Change.FREE_ORDER, "free", "let the sessions run in any order"))
    further = _longer_window(spec, horizon, lambda wider: has_loop(wider, free))
    return (*found, further) if further else tuple(found)


def _replace(spec: LoopSpec, **changes: object) -> LoopSpec:
    return replace(spec, **changes)  # type: ignore[arg-type]


def explain(
    spec: LoopSpec,
    free: Mapping[str, Sequence[Interval]],
    *,
    names: Mapping[str, str] | None = None,
    horizon: Interval | None = None,
) -> tuple[Explanation, ...]:
    """Why ``spec`` has no schedule: one explanation per session that cannot fit at all, or one
    ``NO_COMBINATION`` when each fits alone. Each suggestion was checked to help. ``()`` when a
    schedule exists.

    ``horizon``: when ``free`` covers more than ``spec.window`` (the caller read a few days
    ahead), a window ending up to ``horizon.end`` is tried too and, when it helps, suggested as
    :attr:`Change.LONGER_WINDOW` (the fewest extra days)."""
    name = names or {}
    stuck = [i for i, s in enumerate(spec.sessions) if not _fits(spec, s, free)]
    if stuck:
        return tuple(_explain_session(spec, i, free, name, horizon) for i in stuck)
    if has_loop(spec, free):
        return ()
    text = (
        f"each session fits alone {_when(spec)}, but not all {len(spec.sessions)} with "
        f"breaks of {spec.min_break // MINUTE} to {spec.max_break // MINUTE} minutes"
        f"{' in this order' if spec.precedence() else ''} on at most {spec.max_days} day(s)"
    )
    return (Explanation(Reason.NO_COMBINATION, None, (), text, _relaxations(spec, free, horizon)),)


__all__ = ["explain"]
