"""Every in-memory map the bot keeps per conversation, activity, link or client stays bounded, and
still enforces its rule for recent keys (issue 8 target 4: no memory growth).

- ``KeyedTokenBuckets`` (inbound limit per tenant and per conversation) forgets a bucket once it has
  refilled to capacity (60 s idle) and holds at most ``max_keys``.
- ``SendPacer`` (outbound pacing per conversation) forgets a lane once it is unused and its last
  send is a window old, never a lane in use, and holds at most ``MAX_KEYS`` idle lanes.
- ``ActivityGate`` remembers the last ``DEDUPE_SIZE`` activity ids.
- The candidate page's buckets (per link and per client IP) are ``KeyedTokenBuckets`` with a burst
  below the rate: the same forgetting, checked with that shape too.

The property tests compare each forgetting structure with the same rule applied with an unbounded
memory: forgetting must never change an answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from botbuilder.core import TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity, ConversationAccount
from hypothesis import given, settings
from hypothesis import strategies as st

import bot as bot_module
from dialogs import rate_limit
from dialogs.rate_limit import SEND_WINDOW_S, KeyedTokenBuckets, SendPacer


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---- KeyedTokenBuckets -------------------------------------------------------------------------
def test_buckets_forget_idle_keys_and_stay_small_under_many_conversations() -> None:
    clock = Clock()
    buckets = KeyedTokenBuckets(120, clock=clock)  # 2 tokens/s, full after 60 s idle
    sizes = []
    for i in range(50_000):  # 50,000 conversations, one turn every 10 ms
        assert buckets.take(f"t/conv-{i}") == 0.0
        clock.now += 0.01
        sizes.append(len(buckets))
    assert max(sizes) <= 6_001  # only the last 60 s of keys (6,000 at 100/s), never all 50,000
    assert sizes[-1] <= 6_001


def test_buckets_keep_refusing_a_recent_key_while_others_flood_in() -> None:
    clock = Clock()
    buckets = KeyedTokenBuckets(5, clock=clock)  # burst 5, one token per 12 s
    assert all(buckets.take("t/busy") == 0.0 for _ in range(5))
    for i in range(5_000):  # 5,000 other keys over 10 s
        assert buckets.take(f"t/other-{i}") == 0.0
        clock.now += 0.002
    # Still remembered and refused: 10 s refilled 10/12 of a token, 2 s more are needed.
    assert buckets.take("t/busy") == pytest.approx(2.0)
    assert len(buckets) == 5_001


def test_buckets_hard_cap_drops_least_recently_used_first() -> None:
    clock = Clock()
    buckets = KeyedTokenBuckets(1, max_keys=100, clock=clock)
    assert buckets.take("t/first") == 0.0
    assert buckets.take("t/first") > 0  # refused: one token per minute
    for i in range(1_000):  # all within the same second: nothing has refilled
        buckets.take(f"t/k{i}")
        assert len(buckets) <= 100
    assert buckets.take("t/k999") > 0  # the most recent keys are still limited
    assert buckets.take("t/first") == 0.0  # the oldest was dropped (the documented cost of the cap)


class UnboundedBuckets(KeyedTokenBuckets):
    """The same rule with a memory that never forgets (the reference)."""

    def _forget(self, now: float) -> None:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20), st.lists(st.tuples(st.integers(0, 5), st.floats(0, 90)), max_size=300))
def test_forgetting_buckets_answer_exactly_like_unbounded_ones(
    per_minute: int, steps: list[tuple[int, float]]
) -> None:
    clock = Clock()
    ours = KeyedTokenBuckets(per_minute, clock=clock)
    reference = UnboundedBuckets(per_minute, clock=clock)
    for key, dt in steps:
        clock.now += dt
        assert ours.take(f"k{key}") == reference.take(f"k{key}")
    assert len(ours) <= len(reference)


# ---- SendPacer ----------------------------------------------------------------------------------
class FakeTime:
    """Clock and sleep for the pacer: sleeping advances the clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_pacer_forgets_quiet_conversations() -> None:
    t = FakeTime()
    pacer = SendPacer(7, clock=t.clock, sleep=t.sleep)
    sizes = []
    for i in range(30_000):  # 30,000 conversations, one send every 5 ms
        async with pacer.slot(f"conv-{i}"):
            t.now += 0.001
        t.now += 0.004
        sizes.append(len(pacer))
    assert max(sizes) <= 202  # sends of the last second (200 at one per 5 ms) plus the current one
    assert t.slept == []


async def test_pacer_still_paces_a_recent_conversation_among_many() -> None:
    t = FakeTime()
    pacer = SendPacer(7, clock=t.clock, sleep=t.sleep)
    for _ in range(7):
        async with pacer.slot("busy"):
            pass
    for i in range(5_000):  # others arrive within the same instant: "busy" is not forgotten
        async with pacer.slot(f"other-{i}"):
            pass
    async with pacer.slot("busy"):  # the eighth send within one second waits for the window
        pass
    assert t.slept == [pytest.approx(SEND_WINDOW_S)]


async def test_pacer_never_drops_a_lane_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rate_limit, "MAX_KEYS", 10)
    pacer = SendPacer(7)
    release = asyncio.Event()
    order: list[str] = []

    async def send(conversation: str, tag: str) -> None:
        async with pacer.slot(conversation):
            order.append(tag)
            if tag == "held-1":
                await release.wait()

    holder = asyncio.create_task(send("held", "held-1"))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(send("held", "held-2"))  # waits for the lock of the same lane
    await asyncio.sleep(0)
    for i in range(100):  # far past the cap while "held" is busy and has a waiter
        await send(f"other-{i}", "x")
        assert len(pacer) <= 10  # the busy lane does not hold back the eviction of idle ones
    release.set()
    await asyncio.gather(holder, waiter)
    assert order[0] == "held-1"
    assert order[-1] == "held-2"  # the waiter still went through the same lane, in order


class UnboundedPacer(SendPacer):
    """The same pacing with lanes that are never forgotten (the reference)."""

    def _forget(self, now: float) -> None:
        pass


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 8), st.lists(st.tuples(st.integers(0, 4), st.floats(0, 1.5)), max_size=200))
def test_forgetting_pacer_waits_exactly_like_an_unbounded_one(
    per_second: int, steps: list[tuple[int, float]]
) -> None:
    async def replay(pacer_type: type[SendPacer]) -> list[float]:
        t = FakeTime()
        pacer = pacer_type(per_second, clock=t.clock, sleep=t.sleep)
        for conversation, dt in steps:
            t.now += dt
            async with pacer.slot(f"c{conversation}"):
                t.now += 0.001
        return t.slept

    assert asyncio.run(replay(SendPacer)) == asyncio.run(replay(UnboundedPacer))


# ---- ActivityGate (duplicate activity ids) ----------------------------------------------------
def gate_and_delivery() -> tuple[bot_module.ActivityGate, Callable[[Activity], Awaitable[bool]]]:
    settings_ = bot_module.load_bot_settings(
        {
            "OPENSLOT_ENV": "dev",
            "OPENSLOT_DEV_TENANT_ID": "tenant-1",
            "OPENSLOT_ALLOWED_SERVICE_URL_HOSTS": "127.0.0.1",
        }
    )
    gate = bot_module.ActivityGate(settings_)
    adapter = TestAdapter()

    async def deliver(activity: Activity) -> bool:
        """True when the gate let the activity through to the handlers."""
        handled: list[bool] = []

        async def logic() -> None:
            handled.append(True)

        await gate.on_turn(TurnContext(adapter, activity), logic)
        return bool(handled)

    return gate, deliver


def activity(conversation: str, aid: str) -> Activity:
    return Activity(
        type="message",
        id=aid,
        channel_id="msteams",
        text="hi",
        service_url="http://127.0.0.1:9/",
        conversation=ConversationAccount(id=conversation, tenant_id="tenant-1"),
        channel_data={"tenant": {"id": "tenant-1"}},
    )


async def test_gate_remembers_a_bounded_number_of_activity_ids() -> None:
    gate, deliver = gate_and_delivery()
    size = bot_module.DEDUPE_SIZE
    for i in range(3 * size):  # three times the bound, three activities per conversation
        assert await deliver(activity(f"a:c{i // 3}", f"m{i}"))
        assert len(gate._seen) <= size
    last = 3 * size - 1
    assert not await deliver(activity(f"a:c{last // 3}", f"m{last}"))  # a recent retry: dropped
    oldest_kept = last - size + 1  # exactly the last DEDUPE_SIZE ids are remembered
    assert not await deliver(activity(f"a:c{oldest_kept // 3}", f"m{oldest_kept}"))
    forgotten = oldest_kept - 1  # one further back is processed again: the bound's cost
    assert await deliver(activity(f"a:c{forgotten // 3}", f"m{forgotten}"))
    assert len(gate._seen) == size


# ---- candidate page buckets (per link, per client IP) ----------------------------------------
def test_candidate_buckets_stay_within_max_keys_and_keep_limiting_recent_keys() -> None:
    clock = Clock()
    bucket = KeyedTokenBuckets(30.0, burst=2, max_keys=500, clock=clock)
    assert bucket.take("link-hot") == 0.0
    assert bucket.take("link-hot") == 0.0
    assert bucket.take("link-hot") > 0  # burst of 2 spent
    for i in range(5_000):  # many links and IPs within a second
        bucket.take(f"203.0.113.{i}")
        assert len(bucket) <= 500
        if i % 400 == 0:  # a link that keeps coming back stays remembered and limited
            assert bucket.take("link-hot") > 0
    clock.now += 5.0  # a burst of 2 at 30/min refills in 4 s: every bucket is a new one again
    bucket.take("one more")
    assert len(bucket) == 1


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 90),
    st.integers(1, 20),
    st.lists(st.tuples(st.integers(0, 5), st.floats(0, 30)), max_size=300),
)
def test_forgetting_buckets_with_a_burst_answer_like_unbounded_ones(
    per_minute: int, burst: int, steps: list[tuple[int, float]]
) -> None:
    clock = Clock()
    ours = KeyedTokenBuckets(per_minute, burst=burst, clock=clock)
    reference = UnboundedBuckets(per_minute, burst=burst, clock=clock)
    for key, dt in steps:
        clock.now += dt
        assert ours.take(f"k{key}") == reference.take(f"k{key}")
    assert len(ours) <= len(reference)


def test_bucket_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="per_minute"):
        KeyedTokenBuckets(0.5)
    with pytest.raises(ValueError, match="burst"):
        KeyedTokenBuckets(30, burst=0)
