"""Picking N interviewers from a pool for one session (pure: no clock, I/O, env, logging).

:func:`select_members` takes the pool, each member's load (:func:`calendar_backend.pools.count_load`),
the session's ``[start, end)`` and who is free then (the caller reads calendars; this module never
does) and answers a :class:`Selection`.

Eligibility: a member is eligible when they are free, not excluded (already on the panel), and one
more session keeps them within their weekly cap (their local week, their first day of week) and
their daily cap (their local day). A cap is never exceeded unless ``overrides`` names that member
(a :class:`CapOverride` carries who allowed it and why); an overridden pick says so
(``Pick.override``) and the caller audits it.

Order (documented, deterministic; the first difference decides):

1. fewer sessions in the rolling window ``[start - window, start + window)`` (least loaded);
2. the session lies in one of the member's declared hot windows (preferred);
3. fewer sessions in their local week, then on their local day;
4. lower tie hash: SHA-256 of ``"<session start ISO UTC>|<address>"`` (stable for a given session,
   but not alphabetical, so equal members take turns over many sessions);
5. the address.

Over-cap members allowed by an override come only after every eligible member (so an override is
used only when the pool cannot fill the session otherwise).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from calendar_backend.pools import Member, MemberLoad, Pool, load_of, require_aware

DEFAULT_WINDOW: Final = timedelta(days=14)
REASON_MAX: Final = 512


class Skip(StrEnum):
    """Why a member was not picked."""

    BUSY = "busy"
    EXCLUDED = "excluded"
    WEEKLY_CAP = "weekly_cap"
    DAILY_CAP = "daily_cap"
    NOT_NEEDED = "not_needed"  # eligible, but enough less-loaded members were picked


@dataclass(frozen=True, slots=True)
class CapOverride:
    """A manager's decision to let ``address`` go over a cap for one session (audited by the caller)."""

    address: str
    actor: str
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", self.address.strip().lower())
        if not self.reason.strip() or len(self.reason) > REASON_MAX:
            raise ValueError(f"an override needs a reason (1-{REASON_MAX} characters)")
        if not self.actor.strip():
            raise ValueError("an override names who allowed it")


@dataclass(frozen=True, slots=True)
class Pick:
    """A picked member and the figures that decided it (loads *before* this session)."""

    address: str
    window_load: int
    week_load: int
    weekly_cap: int
    day_load: int
    daily_cap: int
    is_hot: bool
    override: CapOverride | None = None

    @property
    def is_over_cap(self) -> bool:
        """Whether this session takes the member past a cap (only ever with an override)."""
        return self.week_load + 1 > self.weekly_cap or self.day_load + 1 > self.daily_cap


@dataclass(frozen=True, slots=True)
class Selection:
    """The members picked for a session, best first, and why the others were not."""

    picks: tuple[Pick, ...]
    wanted: int
    skipped: tuple[tuple[str, Skip], ...]

    @property
    def is_complete(self) -> bool:
        """Whether ``wanted`` members were found."""
        return len(self.picks) == self.wanted

    @property
    def missing(self) -> int:
        """How many more members the session needs."""
        return self.wanted - len(self.picks)

    @property
    def overrides(self) -> tuple[Pick, ...]:
        """The picks that go over a cap under an override (each must be audited)."""
        return tuple(p for p in self.picks if p.override is not None)

    @property
    def addresses(self) -> tuple[str, ...]:
        """The picked addresses, best first."""
        return tuple(p.address for p in self.picks)


def tie_hash(start: datetime, address: str) -> str:
    """The deterministic tie-breaker of :func:`select_members` (rule 4)."""
    return hashlib.sha256(f"{start.astimezone(UTC).isoformat()}|{address}".encode()).hexdigest()


def _figures(
    pool: Pool, m: Member, load: MemberLoad, start: datetime, end: datetime, window: timedelta
) -> Pick:
    return Pick(
        address=m.address,
        window_load=load.window_count(start - window, start + window),
        week_load=load.week_count(start),
        weekly_cap=pool.weekly_cap(m),
        day_load=load.day_count(start),
        daily_cap=pool.daily_cap(m),
        is_hot=m.is_hot(start, end),
    )


def _key(p: Pick, start: datetime) -> tuple[int, bool, int, int, str, str]:
    return (p.window_load, not p.is_hot, p.week_load, p.day_load, tie_hash(start, p.address), p.address)


def select_members(
    pool: Pool,
    loads: Mapping[str, MemberLoad],
    *,
    start: datetime,
    end: datetime,
    count: int,
    free: Collection[str],
    exclude: Collection[str] = (),
    overrides: Collection[CapOverride] = (),
    window: timedelta = DEFAULT_WINDOW,
) -> Selection:
    """Pick up to ``count`` members for ``[start, end)`` (module docstring: eligibility, order).

    ``loads`` maps addresses to their current load (a member missing from it has none). ``free``
    and ``exclude`` are addresses. Never returns a pick over a cap without an override for it.
    Raises ``ValueError`` on naive times, ``start >= end`` or ``count < 0``.
    """
    require_aware(start, end)
    if start >= end or count < 0:
        raise ValueError("a session needs start < end and count >= 0")
    free_set = {a.strip().lower() for a in free}
    excluded = {a.strip().lower() for a in exclude}
    allowed = {o.address: o for o in overrides}
    ranked: list[Pick] = []
    overridable: list[Pick] = []
    skipped: list[tuple[str, Skip]] = []
    for m in pool.members:
        if m.address in excluded:
            skipped.append((m.address, Skip.EXCLUDED))
            continue
        if m.address not in free_set:
            skipped.append((m.address, Skip.BUSY))
            continue
        load = loads.get(m.address) or load_of(m.address, m.zone, m.week_start, ())
        pick = _figures(pool, m, load, start, end, window)
        if not pick.is_over_cap:
            ranked.append(pick)
        elif m.address in allowed:
            overridable.append(replace(pick, override=allowed[m.address]))
        else:
            weekly = pick.week_load + 1 > pick.weekly_cap
            skipped.append((m.address, Skip.WEEKLY_CAP if weekly else Skip.DAILY_CAP))
    ordered = sorted(ranked, key=lambda p: _key(p, start)) + sorted(overridable, key=lambda p: _key(p, start))
    chosen = tuple(ordered[:count])
    skipped.extend((p.address, Skip.NOT_NEEDED) for p in ordered[count:])
    return Selection(chosen, count, tuple(sorted(skipped)))


@dataclass(frozen=True, slots=True)
class SessionNeed:
    """One session of a loop that draws ``count`` members from the pool: ``[start, end)``, who is
    free then, and who must not be picked (e.g. the session's fixed interviewers)."""

    start: datetime
    end: datetime
    count: int
    free: frozenset[str]
    exclude: frozenset[str] = frozenset()


def select_for_sessions(
    pool: Pool,
    loads: Mapping[str, MemberLoad],
    needs: Sequence[SessionNeed],
    *,
    distinct: bool = True,
    overrides: Collection[CapOverride] = (),
    window: timedelta = DEFAULT_WINDOW,
) -> tuple[Selection, ...]:
    """:func:`select_members` for every session of one loop, in chronological order (ties: the
    given order), each seeing the seats the earlier ones took, so the loop as a whole keeps every
    cap; with ``distinct`` nobody is picked twice in the loop. Returns the selections in the order
    of ``needs``. A loop is bookable when every selection :attr:`Selection.is_complete`."""
    current = dict(loads)
    taken: set[str] = set()
    out: dict[int, Selection] = {}
    for i in sorted(range(len(needs)), key=lambda k: (needs[k].start, k)):
        need = needs[i]
        pick = select_members(
            pool,
            current,
            start=need.start,
            end=need.end,
            count=need.count,
            free=need.free,
            exclude=need.exclude | (taken if distinct else set()),
            overrides=overrides,
            window=window,
        )
        for p in pick.picks:
            member = pool.member(p.address)
            assert member is not None  # noqa: S101  (picked from the pool)
            base = current.get(p.address) or load_of(member.address, member.zone, member.week_start, ())
            current[p.address] = base.plus(need.start)
            taken.add(p.address)
        out[i] = pick
    return tuple(out[i] for i in range(len(needs)))
