"""Key rotation without downtime needs two or more replicas: the README's runbook, run against two
real Calendar Services on one PostgreSQL database while load keeps calling them, loses no call.

The load goes through a tiny load balancer (as Azure Container Apps' ingress does): it sends each
call to a replica that is not draining. A rolling restart drains one replica (no new calls, wait
for its calls in flight), restarts it with the new key file, waits for its health check, and only
then does the next one. With one replica the same restart fails calls (issue 20: 4 of 23).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from tests.scaleout.conftest import ROOT, Cluster, wait_http

MEGAN, ADELE = "meganb@contoso.example", "adelev@contoso.example"
ALEX = "alexw@contoso.example"


@dataclass
class Balancer:
    """Round-robin over the replicas that are not draining; counts every answer."""

    urls: list[str]
    draining: set[int] = field(default_factory=set)
    inflight: list[int] = field(default_factory=lambda: [0, 0])
    statuses: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _next: int = 0

    def pick(self) -> int | None:
        for _ in range(len(self.urls)):
            self._next = (self._next + 1) % len(self.urls)
            if self._next not in self.draining:
                return self._next
        return None

    async def call(self, http: aiohttp.ClientSession, body: dict[str, object], token: str) -> None:
        i = self.pick()
        if i is None:  # every replica is restarting: the call fails (503 from the ingress)
            self.statuses.append(503)
            self.errors.append("no replica is serving")
            await asyncio.sleep(0.05)
            return
        self.inflight[i] += 1
        try:
            async with http.post(
                f"{self.urls[i]}/v1/slots/find", json=body, headers={"Authorization": f"Bearer {token}"}
            ) as resp:
                self.statuses.append(resp.status)
                if resp.status != 200:
                    self.errors.append(f"replica {i}: {resp.status} {await resp.text()}")
        except aiohttp.ClientError as exc:
            self.statuses.append(0)
            self.errors.append(f"replica {i}: {type(exc).__name__}")
        finally:
            self.inflight[i] -= 1

    async def drain(self, i: int) -> None:
        self.draining.add(i)
        while self.inflight[i]:
            await asyncio.sleep(0.02)


def cli(cluster: Cluster, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "calendar_backend", *args],
        env=cluster.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    return dict(json.loads(done.stdout))


async def restart(cluster: Cluster, lb: Balancer, i: int) -> None:
    """Drain replica i, stop it, start it again on the same port (it reads the key file anew)."""
    await lb.drain(i)
    proc = cluster.procs[i]
    proc.terminate()
    await asyncio.to_thread(proc.wait, 10)
    port = cluster.calendar_urls[i].rsplit(":", 1)[1]
    log = cluster.logs / f"calendar{i}.log"
    with log.open("ab") as out:
        cluster.procs[i] = subprocess.Popen(
            [sys.executable, "-m", "calendar_backend", "serve"],
            env={**cluster.env, "OPENSLOT_CALENDAR_SERVICE_PORT": port},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    await asyncio.to_thread(wait_http, f"{cluster.calendar_urls[i]}/v1/health", cluster.procs[i], log)
    lb.draining.discard(i)


async def rolling_restart(cluster: Cluster, lb: Balancer) -> None:
    for i in range(len(cluster.calendar_urls)):
        await restart(cluster, lb, i)
        await asyncio.sleep(0.3)  # some calls reach the restarted replica before the next one


def _body() -> dict[str, object]:
    start = (datetime.now(UTC) + timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "interviewers": [MEGAN, ADELE],
        "duration_min": 30,
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (start + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


async def test_a_single_replica_restart_fails_calls(cluster: Cluster) -> None:
    """Why the README asks for two replicas: restarting the only one loses calls."""
    lb = Balancer(cluster.calendar_urls[:1])
    stop = asyncio.Event()
    body = _body()

    async def worker(http: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            await lb.call(http, body, cluster.devtenant.mint_user_token(ALEX))

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        workers = [asyncio.create_task(worker(http)) for _ in range(2)]
        try:
            await asyncio.sleep(0.3)
            await restart(cluster, lb, 0)
        finally:
            stop.set()
            await asyncio.gather(*workers)
    assert lb.errors


async def test_key_rotation_with_two_replicas_under_load_loses_no_call(cluster: Cluster) -> None:
    body = _body()
    lb = Balancer(list(cluster.calendar_urls))
    stop = asyncio.Event()

    async def worker(http: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            await lb.call(http, body, cluster.devtenant.mint_user_token(ALEX))

    old = int(cli(cluster, "keys", "status")["primary"])
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        workers = [asyncio.create_task(worker(http)) for _ in range(3)]
        try:
            await asyncio.sleep(0.5)
            new = int(cli(cluster, "keys", "add")["added"])
            await rolling_restart(cluster, lb)  # 1. every replica knows the new key
            cli(cluster, "keys", "promote", str(new))
            await rolling_restart(cluster, lb)  # 2. every replica seals under the new key
            done = cli(cluster, "keys", "reencrypt")  # 3. nothing is left under the old key
            by_key = done["envelopes_by_key"]
            assert isinstance(by_key, dict)
            assert set(by_key) == {str(new)}
            retired = cli(cluster, "keys", "retire", str(old))  # 4. and its bytes are gone
            assert retired["retired"] == [old]
            await rolling_restart(cluster, lb)
            await asyncio.sleep(0.5)
        finally:
            stop.set()
            await asyncio.gather(*workers)
    assert lb.errors == [], lb.errors[:5]
    assert len(lb.statuses) >= 20, len(lb.statuses)  # the load really ran through it all
    assert "key" not in json.loads((cluster.logs / "keys" / "kek.json").read_text())["keys"][str(old)]
