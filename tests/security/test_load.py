"""Short form of the bounded load test (bench/load.py has the long form; security.md §6 "Load").

8 concurrent hiring-manager conversations (3 turns each) through bot → Calendar Service → devtenant with
50 ms added to every Graph request: zero errors, nothing lost; p50/p99 turn latency and memory are reported
(printed, and kept in the captured output) and bounded loosely so a pathological regression fails.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestServer

from bench.load import run_load
from tests.devtenant.fixtures import DevTenantHandle
from tests.security.servers import calendar_service

CONVERSATIONS = 8
LATENCY_MS = 50


async def test_concurrent_conversations_zero_errors_nothing_lost(
    devtenant: DevTenantHandle, tmp_path: Path
) -> None:
    async with calendar_service(devtenant, tmp_path) as app, TestServer(app, host="127.0.0.1") as server:
        report = await run_load(
            devtenant,
            str(server.make_url("")).rstrip("/"),
            tmp_path,
            conversations=CONVERSATIONS,
            latency_ms=LATENCY_MS,
        )
    print("\n".join(report.lines()))  # noqa: T201  (shown with -s / -rP; teed to the scan log)
    assert report.errors == []
    assert report.lost == []
    assert report.turns == CONVERSATIONS * 3
    assert report.graph_requests >= CONVERSATIONS  # the turns really went to Graph
    assert report.p50_ms >= LATENCY_MS  # and paid its latency
    assert report.p99_ms < 30_000
