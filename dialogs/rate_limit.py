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

All state is in memory, per process; both structures are bounded in size.
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
    """One token bucket per key: capacity ``per_minute`` tokens, refilled at ``per_minute``/60 per
    second. Holds at most ``max_keys`` buckets (least recently used dropped first).

    Raises:
        ValueError: ``per_minute`` < 1.
    """

    def __init__(self, per_minute: int, *, max_keys: int = MAX_KEYS,
                 clock: Clock = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        self._capacity = float(per_minute)
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
        bucket.tokens = min(self._capacity, bucket.tokens + (now - bucket.stamp) * self._rate)
        bucket.stamp = now
        self._buckets[key] = bucket
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate


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

    def __init__(self, tenant_per_min: int, conversation_per_min: int,
                 tenant_of: Callable[[Activity], str], *, clock: Clock = time.monotonic) -> None:
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


class SendPacer:
    """At most ``per_second`` sends per conversation in any ``SEND_WINDOW_S`` window.

    Raises:
        ValueError: ``per_second`` < 1.
    """

    def __init__(self, per_second: int, *, clock: Clock = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if per_second < 1:
            raise ValueError("per_second must be >= 1")
        self._limit = per_second
        self._clock = clock
        self._sleep = sleep
        self._lanes: OrderedDict[str, _Lane] = OrderedDict()

    def _lane(self, conversation: str) -> _Lane:
        lane = self._lanes.pop(conversation, None) or _Lane()
        self._lanes[conversation] = lane
        while len(self._lanes) > MAX_KEYS:
            oldest = next(iter(self._lanes))
            if self._lanes[oldest].lock.locked():
                break
            self._lanes.pop(oldest)
        return lane

    @asynccontextmanager
    async def slot(self, conversation: str) -> AsyncIterator[None]:
        """Wait for a send slot in ``conversation`` and hold it for the duration of one send."""
        lane = self._lane(conversation)
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


class PacedCloudAdapter(CloudAdapter):
    """``CloudAdapter`` whose outgoing activities pass one by one through a ``SendPacer``."""

    def __init__(self, auth: BotFrameworkAuthentication, pacer: SendPacer) -> None:
        super().__init__(auth)
        self._pacer = pacer

    async def send_activities(self, context: TurnContext,
                              activities: list[Activity]) -> list[ResourceResponse]:
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
