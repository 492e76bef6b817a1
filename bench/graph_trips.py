"""Graph round trips and wall time of "find slots" with devtenant adding latency to every request.

For each panel size the real Calendar Service answers ``POST /v1/slots/find``; devtenant counts
the Graph requests it receives. The floor is one direct Graph ``getSchedule`` round trip for the
same people, sampled alternately with the finds;
the naive baseline asks Graph once per interviewer, one after another.
"""

from __future__ import annotations

import ssl
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench.stack import ORGANIZER, DevTenantThread, calendar_service, grown_tenant, start_devtenant

LATENCY_MS = 100
PANEL_SIZES = (1, 5, 20, 60)


@dataclass(frozen=True, slots=True)
class TripFigures:
    """One panel size: Graph requests and wall seconds for OpenSlot and the naive baseline."""

    interviewers: int
    requests: int
    wall_s: float
    floor_s: float
    naive_requests: int
    naive_s: float


def _window() -> dict[str, str]:
    start = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(days=14)
    return {"start": start.isoformat().replace("+00:00", "Z"), "end": end.isoformat().replace("+00:00", "Z")}


def _graph_time(iso: str) -> str:
    return iso.removesuffix("Z")


async def _control(
    http: aiohttp.ClientSession,
    dt: DevTenantThread,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    async with http.request(method, f"{dt.base_url}/_devtenant/{path}", json=body) as resp:
        resp.raise_for_status()
        doc: dict[str, Any] = await resp.json()
        return doc


async def _find(http: aiohttp.ClientSession, url: str, token: str, people: list[str]) -> float:
    body = {"interviewers": people, "duration_min": 45, "limit": 8, **_window()}
    began = time.perf_counter()
    async with http.post(
        f"{url}/v1/slots/find", json=body, headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        doc = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"find slots answered {resp.status}: {doc.get('error')}")
    return time.perf_counter() - began


async def _get_schedule(
    http: aiohttp.ClientSession, dt: DevTenantThread, token: str, people: list[str]
) -> None:
    window = _window()
    body = {
        "schedules": people,
        "availabilityViewInterval": 30,
        "startTime": {"dateTime": _graph_time(window["start"]), "timeZone": "UTC"},
        "endTime": {"dateTime": _graph_time(window["end"]), "timeZone": "UTC"},
    }
    async with http.post(
        f"{dt.base_url}/v1.0/users/{ORGANIZER}/calendar/getSchedule",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        await resp.read()
        resp.raise_for_status()


async def _graph_requests(http: aiohttp.ClientSession, dt: DevTenantThread) -> int:
    counters = await _control(http, dt, "GET", "requests")
    return int(counters.get("graph", 0))


async def _measure_size(
    http: aiohttp.ClientSession, dt: DevTenantThread, url: str, people: list[str]
) -> TripFigures:
    """Wall time of "find slots" vs. its floor, sampled alternately in the same run.

    The floor is one direct ``getSchedule`` round trip for the same people (capped at the 20
    schedules Graph allows per request), so both sides move the same response over the wire.
    """
    token, graph_token = dt.user_token(), dt.graph_token()
    walls, floors, counts = [], [], []
    for _ in range(5):
        began = time.perf_counter()
        await _get_schedule(http, dt, graph_token, people[:20])
        floors.append(time.perf_counter() - began)
        await _control(http, dt, "POST", "requests/reset")
        walls.append(await _find(http, url, token, people))
        counts.append(await _graph_requests(http, dt))
    await _control(http, dt, "POST", "requests/reset")
    began = time.perf_counter()
    for person in people:
        await _get_schedule(http, dt, graph_token, [person])
    naive_s = time.perf_counter() - began
    naive_requests = await _graph_requests(http, dt)
    return TripFigures(
        len(people), max(counts), statistics.median(walls), statistics.median(floors), naive_requests, naive_s
    )


async def run(tmp: Path, sizes: tuple[int, ...] = PANEL_SIZES) -> list[TripFigures]:
    """Measure every panel size against a fresh stack in ``tmp``."""
    tenant, upns = grown_tenant(max(sizes))
    dt = start_devtenant(tenant, tmp / "devtenant")
    try:
        ctx = ssl.create_default_context(cafile=str(dt.ca_path))
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=ctx), timeout=aiohttp.ClientTimeout(total=60)
            ) as http,
            calendar_service(dt, tmp / "service") as url,
        ):
            await _find(http, url, dt.user_token(), upns[:2])  # warm-up: JWKS, OBO, pools
            await _control(http, dt, "PUT", "faults", {"latency_ms": LATENCY_MS})
            return [await _measure_size(http, dt, url, upns[:n]) for n in sizes]
    finally:
        dt.stop()
