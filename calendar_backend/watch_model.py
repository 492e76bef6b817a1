"""The drift watcher's plain types (split from watch.py, at its size limit): its configuration,
the repair planner it calls, counters, and the panel of an interview."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from calendar_backend import storage
from calendar_backend.booking import candidate_address
from calendar_backend.graph_watch import EventStatus
from calendar_backend.storage import watch as store_watch

MAX_LIFETIME = timedelta(minutes=10080)  # events, basic notifications (platform.md C14)
LIFETIME = MAX_LIFETIME - timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class WatchConfig:
    """Where notifications go and how often the watcher renews and sweeps."""

    notification_url: str = ""  # empty: no subscriptions (sweeps only)
    dev: bool = False  # the dev profile: an http loopback notification URL is accepted
    lifetime: timedelta = LIFETIME
    renew_before: timedelta = timedelta(days=3)
    near: timedelta = timedelta(days=2)
    sweep_every: timedelta = timedelta(minutes=5)
    far_every: timedelta = timedelta(hours=1)
    horizon: timedelta = timedelta(days=60)


class Planner(Protocol):
    """Computes a drift row's repairs; settles applies whose process died (`watch_repairs`)."""

    async def plan(
        self, row: storage.InterviewRow, drift: store_watch.DriftRow, token: str, event: EventStatus | None
    ) -> list[dict[str, Any]]: ...
    async def auto_repair(self, row: Any, drift: Any, repairs: list[Any], token: str) -> bool: ...
    async def recover(self, token_of: Callable[[str], Awaitable[str | None]]) -> int: ...


def state_hash(client_state: str) -> bytes:
    return hashlib.sha256(client_state.encode()).digest()


def panel_of(row: storage.InterviewRow) -> list[str]:
    """The interview's panel: its attendees but the candidate (and the organizer)."""
    candidate = candidate_address(row).lower()
    organizer = row.organizer_upn.lower()
    return [a.lower() for a in row.attendees if a.lower() not in {candidate, organizer}]


@dataclass
class WatchStats:
    """Counters (no content): notifications dropped, queued, drift recorded."""

    dropped: int = 0
    queued: int = 0
    recorded: int = 0
