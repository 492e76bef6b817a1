"""GraphClient under throttling (security.md requirement 27), timed with a fake sleep.

A real HTTP server on 127.0.0.1 plays Graph and answers from a script; the client's `sleep` records
the waits instead of spending them. Concurrency is probed with real latency: a local server that
counts in-flight requests per mailbox, and devtenant, which answers 429 ApplicationThrottled to a
fifth concurrent request on one mailbox.
"""

from __future__ import annotations

import asyncio
import random
import statistics
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from calendar_backend.errors import GraphThrottledError, GraphUnavailableError
from calendar_backend.graph import CallStats, GraphClient
from tests.devtenant.fixtures import DevTenantHandle
from tests.reliability.conftest import faults

T0 = datetime(2030, 1, 7, tzinfo=UTC)


class Script:
    """Answers from a list of (status, headers); then 200 forever. Counts requests and in-flight."""

    def __init__(
        self, answers: list[tuple[int, dict[str, str]]] | None = None, latency_s: float = 0.0
    ) -> None:
        self.answers = list(answers or [])
        self.latency_s = latency_s
        self.requests = 0
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        mailbox = request.match_info.get("user", "")
        self.in_flight[mailbox] += 1
        self.max_in_flight[mailbox] = max(self.max_in_flight[mailbox], self.in_flight[mailbox])
        try:
            await asyncio.sleep(self.latency_s)
        finally:
            self.in_flight[mailbox] -= 1
        if self.answers:
            status, headers = self.answers.pop(0)
            return web.json_response({"error": {"code": "TooManyRequests"}}, status=status, headers=headers)
        return web.json_response({"value": []})


class Sleeps:
    """A fake `sleep` that records each requested wait (seconds) and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
async def graph_server() -> AsyncIterator[tuple[Script, str]]:
    script = Script()
    app = web.Application()
    app.router.add_route("*", "/v1.0/users/{user}/{tail:.*}", script.handle)
    app.router.add_route("*", "/v1.0/{tail:.*}", script.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield script, f"http://127.0.0.1:{server.port}/v1.0"
    finally:
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def _client(
    session: aiohttp.ClientSession, base: str, sleeps: Sleeps, *, seed: int = 1, **kw: float
) -> GraphClient:
    return GraphClient(session, base, sleep=sleeps, rng=random.Random(seed), **kw)  # type: ignore[arg-type]


async def test_retry_after_is_waited_exactly(
    graph_server: tuple[Script, str], session: aiohttp.ClientSession
) -> None:
    script, base = graph_server
    script.answers = [(429, {"Retry-After": "7"}), (503, {"Retry-After": "2"})]
    sleeps = Sleeps()
    status, _ = await _client(session, base, sleeps).request(
        "GET", "/users/a@b.example/events", "tok", mailbox="a@b.example"
    )
    assert status == 200
    assert sleeps.waits == [7.0, 2.0]  # never earlier than Graph asked (fake clock)
    assert script.requests == 3


async def test_a_retry_after_beyond_the_bound_is_reported_not_cut_short(
    graph_server: tuple[Script, str], session: aiohttp.ClientSession
) -> None:
    script, base = graph_server
    script.answers = [(429, {"Retry-After": "600"})]
    sleeps = Sleeps()
    with pytest.raises(GraphThrottledError) as caught:
        await _client(session, base, sleeps, max_retry_after_s=120).request(
            "GET", "/users/a@b.example/events", "tok", mailbox="a@b.example"
        )
    assert caught.value.retry_after_s == 600
    assert sleeps.waits == []
    assert script.requests == 1  # Graph is not called again before its Retry-After


async def test_backoff_without_retry_after_grows_is_jittered_and_bounded(
    graph_server: tuple[Script, str], session: aiohttp.ClientSession
) -> None:
    script, base = graph_server
    runs: list[list[float]] = []
    for seed in range(60):
        script.answers = [(503, {})] * 4
        sleeps = Sleeps()
        status, _ = await _client(session, base, sleeps, seed=seed, max_backoff_s=1.5).request(
            "GET", "/users/a@b.example/events", "tok", mailbox="a@b.example"
        )
        assert status == 200
        runs.append(sleeps.waits)
    assert all(len(r) == 4 for r in runs)
    caps = [0.5, 1.0, 1.5, 1.5]  # 0.5 s doubling, bounded by max_backoff_s
    for attempt, cap in enumerate(caps):
        waits = [r[attempt] for r in runs]
        assert all(0 <= w <= cap for w in waits)
        assert len(set(waits)) > 50  # full jitter: no two clients retry in lockstep
    means = [statistics.mean(r[i] for r in runs) for i in range(4)]
    assert means[0] < means[1] < means[2]  # grows...
    assert max(w for r in runs for w in r) <= 1.5  # ...and never beyond the bound


async def test_attempts_are_bounded(graph_server: tuple[Script, str], session: aiohttp.ClientSession) -> None:
    script, base = graph_server
    script.answers = [(504, {})] * 10
    sleeps = Sleeps()
    with pytest.raises(GraphUnavailableError):
        await _client(session, base, sleeps, max_attempts=4).request(
            "GET", "/users/a@b.example/events", "tok", mailbox="a@b.example"
        )
    assert script.requests == 4
    assert len(sleeps.waits) == 3


async def test_at_most_four_requests_in_flight_per_mailbox(
    graph_server: tuple[Script, str], session: aiohttp.ClientSession
) -> None:
    script, base = graph_server
    script.latency_s = 0.05
    client = GraphClient(session, base, concurrency=4)
    mailboxes = ["a@b.example", "c@b.example"]
    await asyncio.gather(
        *(
            client.get_schedules("tok", mailboxes[i % 2], ["x@b.example"], T0, T0 + timedelta(days=1))
            for i in range(24)
        )
    )
    assert script.requests == 24
    assert dict(script.max_in_flight) == {"a@b.example": 4, "c@b.example": 4}


async def test_devtenant_never_has_to_throttle_our_concurrency(
    devtenant: DevTenantHandle, session: aiohttp.ClientSession
) -> None:
    """devtenant 429s a fifth concurrent request per mailbox; with our cap no retry is needed.

    The control run with a cap of 8 shows the probe can fail: devtenant then throttles.
    """
    import ssl

    from calendar_backend.tokens import AppCredential, TokenBroker

    app = devtenant.tenant.applications()[0]
    cred = AppCredential(str(app["appId"]), str(app["passwordCredentials"][0]["secretText"]))
    token = await TokenBroker(devtenant.base_url, str(devtenant.ca_path), ()).for_app(
        devtenant.tenant_id, cred
    )
    ctx = ssl.create_default_context(cafile=str(devtenant.ca_path))
    faults(devtenant, latency_ms=150, retry_after_s=0.01)
    people = [str(u["mail"]) for u in devtenant.tenant.users() if u.get("mail")][:3]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as tls:
        for cap, must_retry in ((4, False), (8, True)):
            stats = CallStats()
            client = GraphClient(tls, f"{devtenant.base_url}/v1.0", concurrency=cap, sleep=Sleeps())
            await asyncio.gather(
                *(
                    client.get_schedules(
                        token, people[0], people[1:], T0, T0 + timedelta(days=1), stats=stats
                    )
                    for _ in range(12)
                )
            )
            assert (stats.requests > 12) is must_retry, (cap, stats.requests)
