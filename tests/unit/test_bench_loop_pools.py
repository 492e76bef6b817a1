"""The loop benchmark's pooled variant (issue 18): each session 2 from a pool of 10, top K loops."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench import loops as loop_bench


def test_pooled_round_trip_finds_top_k_loops(tmp_path: Path) -> None:
    trip = asyncio.run(loop_bench.measure_trip(tmp_path, runs=1, pooled=True))
    assert trip.options == loop_bench.K
    assert trip.p95_s <= 2


def test_pooled_template_asks_each_session_for_two_of_its_pool() -> None:
    template = loop_bench.template_json(pooled=True)
    pools = [s["pool"] for s in template["sessions"]]
    assert [p["name"] for p in pools] == list(loop_bench.POOL_NAMES)
    assert all(p["count"] == 2 for p in pools)
    assert all(len(m) == loop_bench.POOL_SIZE for m in loop_bench.POOLS.values())
