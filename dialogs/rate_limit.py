"""Rate limits around the bot's Bot Framework traffic (security.md §7 #22, #27).

Inbound (#22): ``InboundRateLimit`` is the first adapter middleware. It runs after channel
authentication (so forged requests cannot spend a tenant's budget) and before any handler; an
activity over its tenant's or its conversation's budget is not processed and the HTTP layer
answers 429 with ``Retry-After`` (see ``rate_limit_scope``). Keys are the tenant id and
``tenant/conversation`` because Bot Framework traffic arrives from Microsoft's egress, never
from the user's IP.

Outbound (#27): ``SendPacer`` keeps every conversation at ≤ ``per_second`` sends in any window of
one second; ``PacedCloudAdapter`` routes each outgoing activity through it (one conversation's
sends are also serialised, so their order is kept).

All state is in memory, per process. Both structures forget a key as soon as remembering it can
no longer change an answer (a bucket refilled to capacity, a lane with no send in the last window
and nobody waiting), so they hold only recently active keys; ``MAX_KEYS`` caps them under a flood.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Final

from botbuilder.core import Middleware, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ActivityTypes, ResourceResponse
from botframework.connector.auth import BotFrameworkAuthentication

MAX_KEYS: Final = 10_000
SEND_WINDOW_S: Final = 1.0
_UNPACED: Final = frozenset({ActivityTypes.invoke_response, ActivityTypes.trace, "delay"})

Clock = Callable[[], float]


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class KeyedTokenBuckets:
    """One token bucket per key: capacity ``burst`` tokens (default ``per_minute``), refilled at
    ``per_minute``/60 per second. Holds at most ``max_keys`` buckets (least recently used dropped
    first), and a bucket is dropped once it has refilled to capacity: it is then a new one.

    Raises:
        ValueError: ``per_minute`` < 1 or ``burst`` < 1.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        burst: int | None = None,
        max_keys: int = MAX_KEYS,
        clock: Clock = time.monotonic,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        if burst is not None and burst < 1:
            raise ValueError("burst must be >= 1")
        self._capacity = float(per_minute if burst is None else burst)
        self._rate = per_minute / 60.0  # tokens per second
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float:
        """Spend one token of ``key``. Returns 0.0 when allowed, else the seconds to wait (> 0).

        A refused request spends nothing.
        """
        now = self._clock()
        bucket = self._buckets.pop(key, None) or _Bucket(self._capacity, now)
        self._forget(now)  # the others only: this key's bucket is out of the map until re-inserted
        bucket.tokens = min(self._capacity, bucket.tokens + (now - bucket.stamp) * self._rate)
        bucket.stamp = now
        self._buckets[key] = bucket
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def _forget(self, now: float) -> None:
        # Every take re-inserts its key at the end, so the buckets are in order of last use and
        # the idle ones are at the front. A bucket that take() would refill to capacity is
        # exactly a new one (same expression as take(), so no rounding can make them differ).
        # Without this every conversation ever seen stayed until max_keys (~1.5 KiB each with
        # the pacer's lane): the bot's memory grew for hours of traffic.
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets.values()))
            full = oldest.tokens + (now - oldest.stamp) * self._rate >= self._capacity
            if len(buckets) < self._max_keys and not full:  # room for the key being taken
                return
            buckets.popitem(last=False)

    def __len__(self) -> int:
        """How many keys are remembered."""
        return len(self._buckets)


@dataclass
class RateLimitVerdict:
    """Filled by ``InboundRateLimit`` for the current HTTP request: seconds to wait, or None."""

    retry_after_s: float | None = None

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` as whole seconds (at least 1)."""
        return str(max(1, math.ceil(self.retry_after_s or 0.0)))


_VERDICT: ContextVar[RateLimitVerdict | None] = ContextVar("openslot_rate_verdict", default=None)


@contextmanager
def rate_limit_scope() -> Iterator[RateLimitVerdict]:
    """Open a verdict for one HTTP request; the middleware records a refusal into it."""
    verdict = RateLimitVerdict()
    token = _VERDICT.set(verdict)
    try:
        yield verdict
    finally:
        _VERDICT.reset(token)


class InboundRateLimit(Middleware):
    """Refuses activities over the per-tenant or per-conversation budget (nothing runs after)."""

    def __init__(
        self,
        tenant_per_min: int,
        conversation_per_min: int,
        tenant_of: Callable[[Activity], str],
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self._tenants = KeyedTokenBuckets(tenant_per_min, clock=clock)
        self._conversations = KeyedTokenBuckets(conversation_per_min, clock=clock)
        self._tenant_of = tenant_of

    async def on_turn(self, context: TurnContext, logic: Callable[[], Awaitable[None]]) -> None:
        activity = context.activity
        tenant = self._tenant_of(activity)
        conversation = activity.conversation.id if activity.conversation else ""
        wait = self._conversations.take(f"{tenant}/{conversation}") or self._tenants.take(tenant)
        if wait > 0:
            verdict = _VERDICT.get()
            if verdict is not None:
                verdict.retry_after_s = wait
            return
        await logic()


@dataclass
class _Lane:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sent: deque[float] = field(default_factory=deque)
    users: int = 0  # slot() calls holding or waiting for the lock


class SendPacer:
    """At most ``per_second`` sends per conversation in any ``SEND_WINDOW_S`` window.

    A conversation's lane is forgotten once nobody holds or waits for it and its last send is
    ``SEND_WINDOW_S`` old (a new lane would give the same answers); at most ``MAX_KEYS`` lanes.

    Raises:
        ValueError: ``per_second`` < 1.
    """

    def __init__(
        self,
        per_second: int,
        *,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_second < 1:
            raise ValueError("per_second must be >= 1")
        self._limit = per_second
        self._clock = clock
        self._sleep = sleep
        self._lanes: OrderedDict[str, _Lane] = OrderedDict()

    def _lane(self, conversation: str) -> _Lane:
        lane = self._lanes.pop(conversation, None) or _Lane()
        lane.users += 1  # before _forget: the lane being handed out is never dropped
        self._lanes[conversation] = lane
        self._forget(self._clock())
        return lane

    def _forget(self, now: float) -> None:
        # Lanes are moved to the end when taken and when released, so the front is the longest
        # idle. A lane in use is never dropped (it serialises its conversation's sends) and is
        # moved out of the way, so one slow send cannot stop the eviction; past MAX_KEYS an idle
        # lane goes even with recent sends (a flood must not grow memory).
        lanes = self._lanes
        for _ in range(len(lanes)):
            conversation, oldest = next(iter(lanes.items()))
            if oldest.users:
                lanes.move_to_end(conversation)
                continue
            quiet = not oldest.sent or now - oldest.sent[-1] >= SEND_WINDOW_S
            if not quiet and len(lanes) <= MAX_KEYS:
                return
            lanes.popitem(last=False)

    def __len__(self) -> int:
        """How many conversations' lanes are remembered."""
        return len(self._lanes)

    @asynccontextmanager
    async def slot(self, conversation: str) -> AsyncIterator[None]:
        """Wait for a send slot in ``conversation`` and hold it for the duration of one send."""
        lane = self._lane(conversation)
        try:
            async with lane.lock:
                while True:
                    now = self._clock()
                    while lane.sent and now - lane.sent[0] >= SEND_WINDOW_S:
                        lane.sent.popleft()
                    if len(lane.sent) < self._limit:
                        break
                    await self._sleep(SEND_WINDOW_S - (now - lane.sent[0]))
                try:
                    yield
                finally:  # completion time: the send arrived no later than this
                    lane.sent.append(self._clock())
        finally:
            lane.users -= 1
            if conversation in self._lanes:  # always ours: a lane in use is never dropped
                self._lanes.move_to_end(conversation)


class PacedCloudAdapter(CloudAdapter):
    """``CloudAdapter`` whose outgoing activities pass one by one through a ``SendPacer``."""

    def __init__(self, auth: BotFrameworkAuthentication, pacer: SendPacer) -> None:
        super().__init__(auth)
        self._pacer = pacer

    async def send_activities(
        self, context: TurnContext, activities: list[Activity]
    ) -> list[ResourceResponse]:
        """Send ``activities`` in order; each channel-bound one waits for a pacer slot."""
        responses: list[ResourceResponse] = []
        for activity in activities:
            if activity.type in _UNPACED:
                responses.extend(await super().send_activities(context, [activity]))
                continue
            conversation = activity.conversation.id if activity.conversation else ""
            async with self._pacer.slot(conversation or ""):
                responses.extend(await super().send_activities(context, [activity]))
        return responses
