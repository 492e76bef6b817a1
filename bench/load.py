"""Bounded load on loopback: N concurrent hiring-manager conversations through the whole stack.

bot (``bot.build_app``, dev profile, SQL conversation state) → real Calendar Service (three locks,
SQLite) → devtenant (HTTPS) with a fixed added Graph latency. Each conversation is one signed-in
hiring manager typing the three turns of a scheduling request; a local connector records every reply.
Pass criteria: zero errors (every POST 2xx, no apology reply, no exception) and nothing lost (every turn
answered; every conversation ends with the slots card). Reported: p50/p99/max turn latency (ms), wall
time, Graph requests, resident memory before/after and peak.

Long form: ``python -m bench.load [--conversations 100] [--latency-ms 150]``. The short form runs in
``make test`` as tests/security/test_load.py.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import resource
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from sqlalchemy.ext.asyncio import create_async_engine

import bot as bot_module
from bench.serving import serve_http
from devtenant.bot_connector import FakeBotConnector
from devtenant.tenant import DevTenant, load_tenant
from dialogs.sql_storage import METADATA, SqlStorage

COMMAND = "schedule Dana Smith (dana@example.com) with Megan and Adele, 45 min, next week"
TURNS = (COMMAND, "India", "none")
APOLOGY = "Sorry, something went wrong"
CARD = "application/vnd.microsoft.card.adaptive"


class DevTenantLike(Protocol):
    """What the driver needs from a running devtenant (tests' and bench's handles both fit)."""

    @property
    def base_url(self) -> str: ...
    @property
    def ca_path(self) -> Path: ...
    @property
    def tenant(self) -> DevTenant: ...


@dataclass(frozen=True)
class LoadReport:
    """Figures of one run (latencies in milliseconds, memory in MiB)."""

    conversations: int
    turns: int
    errors: list[str]
    lost: list[str]
    p50_ms: float
    p99_ms: float
    max_ms: float
    wall_s: float
    graph_requests: int
    rss_before_mb: float
    rss_after_mb: float
    peak_rss_mb: float

    def lines(self) -> list[str]:
        return [
            f"conversations {self.conversations}, turns {self.turns}, wall {self.wall_s:.2f} s, "
            f"Graph requests {self.graph_requests}",
            f"turn latency p50 {self.p50_ms:.0f} ms, p99 {self.p99_ms:.0f} ms, max {self.max_ms:.0f} ms",
            f"memory RSS {self.rss_before_mb:.0f} → {self.rss_after_mb:.0f} MiB "
            f"(peak {self.peak_rss_mb:.0f})",
            f"errors {len(self.errors)}, lost {len(self.lost)}",
        ]


def rss_mb() -> float:
    """Current resident set size of this process (MiB), from /proc; 0 when unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@asynccontextmanager
async def bot_stack(
    dt: DevTenantLike, calendar_url: str, tmp: Path
) -> AsyncIterator[tuple[str, FakeBotConnector]]:
    """The bot (dev profile, real Calendar Service client) and a recording connector on loopback."""
    connector = FakeBotConnector()
    async with connector.serving():
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp / 'bot-load.db'}")
        async with engine.begin() as conn:
            await conn.run_sync(METADATA.create_all)
        settings = bot_module.load_bot_settings(
            {
                "OPENSLOT_ENV": "dev",
                "OPENSLOT_DEV_TENANT_ID": dt.tenant.tenant_id,
                "OPENSLOT_TOKEN_SERVICE_URL": dt.base_url,
                "OPENSLOT_CA_BUNDLE": str(dt.ca_path),
                "OPENSLOT_ALLOWED_SERVICE_URL_HOSTS": "127.0.0.1",
                "OPENSLOT_CALENDAR_SERVICE_URL": calendar_url,
            }
        )
        bot_runner, bot_url = await serve_http(bot_module.build_app(settings, storage=SqlStorage(engine)))
        try:
            yield bot_url + "/api/messages", connector
        finally:
            await bot_runner.cleanup()


def _activity(dt: DevTenantLike, service_url: str, cid: str, oid: str, n: int, text: str) -> dict[str, Any]:
    tid = dt.tenant.tenant_id
    return {
        "type": "message",
        "id": f"{cid}-{n}",
        "text": text,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "locale": "en-US",
        "localTimezone": "Europe/London",
        "from": {"id": f"29:{oid}", "name": "Hiring manager", "aadObjectId": oid},
        "recipient": {"id": "28:openslot"},
        "conversation": {"id": cid, "conversationType": "personal", "tenantId": tid},
        "channelData": {"tenant": {"id": tid}},
    }


async def _conversation(
    http: aiohttp.ClientSession,
    url: str,
    dt: DevTenantLike,
    service_url: str,
    cid: str,
    oid: str,
    latencies: list[float],
    errors: list[str],
) -> None:
    for n, text in enumerate(TURNS):
        started = time.perf_counter()
        try:
            async with http.post(url, json=_activity(dt, service_url, cid, oid, n, text)) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            errors.append(f"{cid} turn {n}: {type(exc).__name__}")
            return
        latencies.append((time.perf_counter() - started) * 1000)
        if not 200 <= status < 300:
            errors.append(f"{cid} turn {n}: HTTP {status}")
            return


def _check(connector: FakeBotConnector, cids: list[str], errors: list[str], lost: list[str]) -> None:
    for cid in cids:
        replies = connector.replies(cid)
        if any(APOLOGY in str(r.get("text") or "") for r in replies):
            errors.append(f"{cid}: apology reply")
        if len(replies) < len(TURNS):
            lost.append(f"{cid}: {len(replies)} replies for {len(TURNS)} turns")
        elif not any(a.get("contentType") == CARD for a in replies[-1].get("attachments") or []):
            lost.append(f"{cid}: the last reply is not a card")


def managers(dt: DevTenantLike) -> list[str]:
    """Object ids of the signed-in hiring managers in the tenant file."""
    return [str(u) for u in (dt.tenant.data.get("botFramework") or {}).get("signedInUsers", [])]


async def run_load(
    dt: DevTenantLike,
    calendar_url: str,
    tmp: Path,
    *,
    conversations: int,
    latency_ms: int,
    timeout_s: float = 120,
) -> LoadReport:
    """Drive ``conversations`` concurrent conversations; devtenant adds ``latency_ms`` per Graph call."""
    saved = dt.tenant.faults
    dt.tenant.faults = dataclasses.replace(saved, latency_ms=latency_ms)
    oids = managers(dt)
    latencies: list[float] = []
    errors: list[str] = []
    lost: list[str] = []
    graph_before = int(dt.tenant.counters["graph"])
    rss_before = rss_mb()
    try:
        async with bot_stack(dt, calendar_url, tmp) as (url, connector):
            service_url = connector.url + "/"
            cids = [f"a:load-{i}" for i in range(conversations)]
            started = time.perf_counter()
            timeout = aiohttp.ClientTimeout(total=timeout_s)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                await asyncio.gather(
                    *(
                        _conversation(http, url, dt, service_url, cid, oids[i % len(oids)], latencies, errors)
                        for i, cid in enumerate(cids)
                    )
                )
            wall = time.perf_counter() - started
            _check(connector, cids, errors, lost)
    finally:
        dt.tenant.faults = saved
    ordered = sorted(latencies) or [0.0]
    return LoadReport(
        conversations=conversations,
        turns=len(latencies),
        errors=errors,
        lost=lost,
        p50_ms=statistics.median(ordered),
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        max_ms=ordered[-1],
        wall_s=wall,
        graph_requests=int(dt.tenant.counters["graph"]) - graph_before,
        rss_before_mb=rss_before,
        rss_after_mb=rss_mb(),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


async def _main_async(conversations: int, latency_ms: int) -> LoadReport:
    from bench.stack import SAMPLE, calendar_service, start_devtenant

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        dt = start_devtenant(load_tenant(SAMPLE), tmp / "devtenant")
        try:
            async with calendar_service(dt, tmp) as calendar_url:
                return await run_load(
                    dt, calendar_url, tmp, conversations=conversations, latency_ms=latency_ms
                )
        finally:
            dt.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the long form and print the figures; exit 1 on any error or lost turn."""
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=150)
    args = parser.parse_args(argv)
    report = asyncio.run(_main_async(args.conversations, args.latency_ms))
    for line in report.lines():
        print(line)
    for problem in [*report.errors, *report.lost][:20]:
        print("  ", problem)
    return 0 if not report.errors and not report.lost else 1


if __name__ == "__main__":
    raise SystemExit(main())
