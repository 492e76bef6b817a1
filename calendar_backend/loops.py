"""Interview loops: the exact search for the best K loop schedules (pure: no clock, I/O, env, logging).

A *loop* is a list of :class:`Session` (title, duration, required interviewers, optionally "any one
of these rooms", optionally a local time window such as lunch at 11:30-13:30) that the candidate
attends one after the other. The input is each mailbox's *free* time (working hours minus blocking
time, exactly what :func:`calendar_backend.availability.free_time` computes for one person; rooms are
mailboxes too), so a session fits at ``[s, s + duration)`` iff every interviewer and the chosen room
are free for all of it, ``s`` lies on the UTC ``step`` grid (as for single slots, see
:mod:`calendar_backend.slots`), ``s >= not_before`` (now + minimum notice) and the session lies
inside the search window (and inside its local window, if it has one).

Schedule rules (:class:`LoopSpec`):

- Sessions never overlap. Their chronological order must respect ``before`` (pairs ``(a, b)``: session
  ``a`` comes before session ``b``); ``fixed_order=True`` means the listed order.
- The *day* of a session is the local date of its start in the loop's ``zone``. Consecutive sessions on
  the same day are separated by a break in ``[min_break, max_break]``; a session on a later day may
  start any time after the previous one ended. A schedule uses at most ``max_days`` distinct days.
- The room of a session is the first room of its list that is free for the whole session (rooms are
  a preference list, so a schedule is identified by its start times alone).
- Local windows (lunch) and the candidate's day are wall-clock spans built with the same DST rule as
  working hours (:func:`calendar_backend.availability.working_windows`).

Ordering (best first), a total order on schedules, compared as the tuple :meth:`LoopSchedule.key`:

1. fewer days used;
2. less idle time: the sum of the breaks between consecutive sessions on the same day (compactness);
3. fewer minutes outside the candidate's day (default 08:00-20:00 in ``candidate_zone``);
4. earlier first start;
5. tie-break: the start times listed by session index (earlier first), lexicographically.

Search: per session, the feasible grid starts are computed once with the span arithmetic of
:mod:`calendar_backend.slots` (intersections of free time, O(total free ranges)). A depth-first
branch-and-bound then places sessions in chronological order: after a session on day *d*, the next
one either starts within the break rule on day *d* (a binary search bounds the candidates to
``max_break / step + 1`` starts) or opens a later day. Every component of the key only grows along
a branch, so a branch is cut as soon as its partial key exceeds the K-th best key found so far. The
number of days is deepened iteratively (1, 2, ..., ``max_days``), so when K one-day loops exist no
multi-day branch is explored at all. A state from which no completion exists (it depends only on
which sessions are placed, where the last one ends, its day and the days used) is remembered, so a
fruitless search is polynomial in the number of states; among schedules that tie on the first four
parts of the key, the tie-break is bounded too. Worst case (known limit): many sessions in free order
over several days with a very large number of tied schedules (e.g. 7 sessions of one person in free
order over 2 days: ~12 s); fixed or partly fixed orders, the common case, stay in milliseconds.

When nothing fits, :func:`find_loops` explains why, per session and per person or room, with changes
that were checked to help (a shorter session, dropping one person, another day, a longer break,
a free order, or, when the caller read further ahead, a longer search window).

Modules: :mod:`~calendar_backend.loops_model` (the types), :mod:`~calendar_backend.loops_search`
(per-session options and the branch and bound), :mod:`~calendar_backend.loops_explain` (why nothing
fits); this module is the public API and re-exports their public names. Templates per role live in
:mod:`~calendar_backend.loop_templates` (their edits in :mod:`~calendar_backend.loops_edits`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from calendar_backend.loops_explain import explain
from calendar_backend.loops_model import (
    MAX_OPTIONS,
    MAX_SESSIONS,
    Change,
    Explanation,
    LocalWindow,
    LoopResult,
    LoopSchedule,
    LoopSpec,
    Placement,
    Reason,
    Session,
    Suggestion,
)
from calendar_backend.loops_search import best_schedules, has_loop, session_options
from calendar_backend.slots import Interval


def find_loops(
    spec: LoopSpec,
    free: Mapping[str, Sequence[Interval]],
    k: int = 5,
    *,
    names: Mapping[str, str] | None = None,
    horizon: Interval | None = None,
) -> LoopResult:
    """The best ``k`` schedules of ``spec`` (module docstring: rules and ordering), best first.

    ``free`` maps each mailbox (people and rooms) to its free intervals; a mailbox missing from it
    is never free. ``names`` gives display names for explanations (default: the mailbox);
    ``horizon`` (a window around ``spec.window`` that ``free`` covers) lets an explanation suggest
    searching further (see :func:`explain`).

    Raises:
        ValueError: ``k`` is not in 1..``MAX_OPTIONS``.
    """
    if not 1 <= k <= MAX_OPTIONS:
        raise ValueError(f"k must be 1 to {MAX_OPTIONS}")
    options = session_options(spec, free)
    schedules = best_schedules(spec, options, k) if all(o.starts for o in options) else ()
    if schedules:
        return LoopResult(schedules)
    return LoopResult((), explain(spec, free, names=names, horizon=horizon))


__all__ = [
    "MAX_OPTIONS",
    "MAX_SESSIONS",
    "Change",
    "Explanation",
    "LocalWindow",
    "LoopResult",
    "LoopSchedule",
    "LoopSpec",
    "Placement",
    "Reason",
    "Session",
    "Suggestion",
    "explain",
    "find_loops",
    "has_loop",
]
