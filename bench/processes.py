"""Section (4): the whole stack as separate processes, for throughput, p99 and per-process memory.

Three child processes (``multiprocessing`` *spawn*, so each starts from a clean interpreter like
``make run``): devtenant (the test double for Entra ID, Graph and the Bot Framework token service,
HTTPS), the real Calendar Service (SQLite, its background tasks on, as ``serve`` runs it) and the
real bot (``bot.build_app``, dev profile, SQL conversation state on SQLite, the real Calendar
Service client). This process is only the load generator plus a connector that counts replies, so
each child's resident memory is that component's own. Every scheduling turn goes bot → Calendar
Service → devtenant (OBO token, Graph directory lookups and ``getSchedule``), with no added Graph
latency, so the figures are OpenSlot's own CPU cost on shared cores.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from devtenant.tenant import DevTenant, load_tenant

COMMAND = "schedule Dana Smith (dana@example.com) with Megan and Adele, 45 min, next week"
SCHEDULE_TURNS = (COMMAND, "India", "none")
CARD = "application/vnd.microsoft.card.adaptive"
APOLOGY = "Sorry, something went wrong"
START_TIMEOUT_S = 60.0
SETTLE_S = 1.0  # quiet time before reading memory, so in-flight work has finished


def rss_of(pid: int) -> float:
    """Resident set size of process ``pid`` in MiB, from ``/proc/<pid>/status`` (Linux).

    Raises ``RuntimeError`` when the process is gone or the kernel does not report ``VmRSS``.
    """
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError as exc:
        raise RuntimeError(f"process {pid} is not running") from exc
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass(frozen=True, slots=True)
class DevTenantInfo:
    """Where the devtenant child serves (what the Calendar Service needs to reach it)."""

    base_url: str
    ca_path: Path
    tenant: DevTenant


# --- child processes (module-level so that *spawn* can import them) ---------------------------


def _devtenant_child(data_dir: str, pipe: Connection) -> None:
    from bench.stack import SAMPLE, start_devtenant

    dt = start_devtenant(load_tenant(SAMPLE), Path(data_dir))
    pipe.send(dt.base_url)
    pipe.recv()  # any message (or EOF) means stop
    dt.stop()


def _calendar_child(base_url: str, ca_path: str, tmp: str, pipe: Connection) -> None:
    asyncio.run(_calendar_main(DevTenantInfo(base_url, Path(ca_path), load_tenant(_sample())),
                               Path(tmp), pipe))


def _sample() -> Path:
    from bench.stack import SAMPLE

    return SAMPLE


async def _calendar_main(dt: DevTenantInfo, tmp: Path, pipe: Connection) -> None:
    from bench.stack import calendar_runtime
    from calendar_backend.__main__ import start_admin_tasks, start_recovery

    async with calendar_runtime(dt, tmp) as (url, rt):
        background = [*start_admin_tasks(rt), start_recovery(rt)]
        pipe.send(url)
        await asyncio.to_thread(_wait_stop, pipe)
        for task in background:
            task.cancel()


def _wait_stop(pipe: Connection) -> None:
    try:
        pipe.recv()
    except EOFError:
        return


def _bot_child(env: dict[str, str], db_path: str, pipe: Connection) -> None:
    asyncio.run(_bot_main(env, Path(db_path), pipe))


async def _bot_main(env: dict[str, str], db_path: Path, pipe: Connection) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    import bot as bot_module
    from dialogs.sql_storage import METADATA, SqlStorage

    # A busy timeout: several conversations write the same SQLite file at once (PostgreSQL
    # in production needs none). Without it SQLite fails fast with "database is locked".
    engine = create_async_engine(f"sqlite+aiosqlite:///{db_path}", connect_args={"timeout": 30})
    async with engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    app = bot_module.build_app(bot_module.load_bot_settings(env), storage=SqlStorage(engine))
    runner, url = await _serve(app)
    pipe.send(url)
    await asyncio.to_thread(_wait_stop, pipe)
    await runner.cleanup()
    await engine.dispose()


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


# --- the parent --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Child:
    """One running child process and the URL it serves."""

    label: str
    process: BaseProcess
    url: str

    @property
    def pid(self) -> int:
        """The child's process id (set once started)."""
        assert self.process.pid is not None
        return self.process.pid


@contextmanager
def _child(label: str, target: Any, *args: object) -> Iterator[tuple[Child, Connection]]:
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=target, args=(*args, theirs), name=label, daemon=True)
    proc.start()
    theirs.close()
    try:
        if not ours.poll(START_TIMEOUT_S):
            raise RuntimeError(f"{label} did not start")
        yield Child(label, proc, str(ours.recv())), ours
    finally:
        _stop(proc, ours)


def _stop(proc: BaseProcess, pipe: Connection) -> None:
    with suppress(OSError):
        pipe.send("stop")
    proc.join(15)
    if proc.is_alive():
        proc.terminate()
        proc.join(5)
    pipe.close()


@dataclass(frozen=True, slots=True)
class Stack:
    """The three children, the tenant they serve and the sign-in ids of its hiring managers."""

    devtenant: Child
    calendar: Child
    bot: Child
    tenant: DevTenant
    managers: tuple[str, ...]

    @property
    def children(self) -> tuple[Child, ...]:
        """Every child, bot first."""
        return (self.bot, self.calendar, self.devtenant)


def _bot_env(tenant: DevTenant, dt_url: str, ca: str, calendar_url: str) -> dict[str, str]:
    return {"OPENSLOT_ENV": "dev", "OPENSLOT_DEV_TENANT_ID": tenant.tenant_id,
            "OPENSLOT_TOKEN_SERVICE_URL": dt_url, "OPENSLOT_CA_BUNDLE": ca,
            "OPENSLOT_ALLOWED_SERVICE_URL_HOSTS": "127.0.0.1",
            "OPENSLOT_CALENDAR_SERVICE_URL": calendar_url,
            # The inbound limit (3,000 turns/min per tenant) guards production; the bench
            # measures throughput, so it lifts the tenant-wide cap.
            "OPENSLOT_BOT_RATE_TENANT_PER_MIN": "10000000"}


@contextmanager
def running_stack(tmp: Path) -> Iterator[Stack]:
    """Start devtenant, the Calendar Service and the bot as child processes; stop them on exit.

    Raises ``RuntimeError`` when a child does not report its URL within ``START_TIMEOUT_S``.
    """
    tenant = load_tenant(_sample())
    managers = tuple(str(u) for u in (tenant.data.get("botFramework") or {})
                     .get("signedInUsers", []))
    with _child("devtenant", _devtenant_child, str(tmp / "devtenant")) as (dt, _):
        base_url, ca = dt.url, str(tmp / "devtenant" / "ca.pem")
        with _child("calendar", _calendar_child, base_url, ca, str(tmp)) as (cal, _), \
             _child("bot", _bot_child, _bot_env(tenant, base_url, ca, cal.url),
                    str(tmp / "bot.db")) as (bot, _):
            yield Stack(dt, cal, bot, tenant, managers)


# --- the load ----------------------------------------------------------------------------------


@dataclass
class Replies:
    """Counts what the bot sent back: replies, slot-picker cards and apologies."""

    replies: int = 0
    cards: int = 0
    apologies: int = 0
    url: str = ""

    def app(self) -> web.Application:
        """The connector routes the bot posts replies to."""
        app = web.Application()
        app.router.add_post("/v3/conversations/{cid}/activities", self._post)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._post)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._post)
        return app

    async def _post(self, request: web.Request) -> web.Response:
        activity = await request.json()
        self.replies += 1
        self.apologies += APOLOGY in str(activity.get("text") or "")
        self.cards += any(a.get("contentType") == CARD for a in activity.get("attachments") or [])
        return web.json_response({"id": f"r{self.replies}"})


@dataclass
class Driver:
    """Posts the turns of scheduling conversations and keeps their latencies."""

    stack: Stack
    replies: Replies
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    conversations: int = 0

    def _activity(self, cid: str, n: int, text: str) -> dict[str, Any]:
        tid = self.stack.tenant.tenant_id
        oid = self.stack.managers[self.conversations % len(self.stack.managers)]
        return {"type": "message", "id": f"{cid}-{n}", "text": text, "channelId": "msteams",
                "serviceUrl": self.replies.url + "/", "locale": "en-US",
                "localTimezone": "Europe/London",
                "from": {"id": f"29:{oid}", "name": "Hiring manager", "aadObjectId": oid},
                "recipient": {"id": "28:openslot"},
                "conversation": {"id": cid, "conversationType": "personal", "tenantId": tid},
                "channelData": {"tenant": {"id": tid}}}

    async def conversation(self, http: aiohttp.ClientSession, texts: tuple[str, ...]) -> None:
        """One fresh conversation through ``texts``; a non-2xx answer ends it as an error."""
        self.conversations += 1
        cid = f"a:bench-{self.conversations}"
        for n, text in enumerate(texts):
            began = time.perf_counter()
            async with http.post(f"{self.stack.bot.url}/api/messages",
                                 json=self._activity(cid, n, text)) as resp:
                await resp.read()
            if resp.status >= 300:
                self.errors.append(f"{cid} turn {n}: HTTP {resp.status}")
                return
            self.latencies.append(time.perf_counter() - began)

    async def worker(self, http: aiohttp.ClientSession, quota: int) -> None:
        """Whole conversations until ``quota`` turns are posted (the last may be cut short)."""
        while quota > 0:
            texts = SCHEDULE_TURNS[:quota]
            await self.conversation(http, texts)
            quota -= len(texts)


@dataclass(frozen=True, slots=True)
class Memory:
    """One process's resident memory (MiB): after start, after warm-up (idle) and after the run."""

    label: str
    started_mb: float
    idle_mb: float
    after_mb: float

    @property
    def growth_mb(self) -> float:
        """``after - idle``: what the measured turns left behind."""
        return self.after_mb - self.idle_mb


@dataclass(frozen=True, slots=True)
class StackLoad:
    """Throughput, latency percentiles, correctness counters and per-process memory."""

    concurrency: int
    turns: int
    turns_per_s: float
    p50_s: float
    p99_s: float
    errors: tuple[str, ...]
    cards: int
    apologies: int
    conversations: int
    memory: tuple[Memory, ...]


def split(turns: int, workers: int) -> list[int]:
    """``turns`` shared among ``workers`` as evenly as possible (the sum is exactly ``turns``)."""
    return [turns // workers + (i < turns % workers) for i in range(workers)]


def full_conversations(turns: int, workers: int) -> int:
    """How many conversations reach the slot picker when ``turns`` are split among ``workers``."""
    return sum(q // len(SCHEDULE_TURNS) for q in split(turns, workers))


async def _rss_all(stack: Stack) -> list[float]:
    await asyncio.sleep(SETTLE_S)
    return [rss_of(c.pid) for c in stack.children]


@asynccontextmanager
async def _replies_server() -> AsyncIterator[Replies]:
    replies = Replies()
    runner, replies.url = await _serve(replies.app())
    try:
        yield replies
    finally:
        await runner.cleanup()


async def drive(stack: Stack, *, turns: int, concurrency: int, warmup: int) -> StackLoad:
    """``turns`` scheduling turns from ``concurrency`` conversations at once, after ``warmup``.

    Memory is read from ``/proc`` for every child: once started, once idle after the warm-up and
    once idle after the measured turns (each after ``SETTLE_S`` of quiet).
    """
    started = await _rss_all(stack)
    async with _replies_server() as replies:
        driver = Driver(stack, replies)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(
                timeout=timeout, connector=aiohttp.TCPConnector(limit=concurrency)) as http:
            await asyncio.gather(*(driver.worker(http, q) for q in split(warmup, concurrency)))
            idle = await _rss_all(stack)
            driver.latencies.clear()
            cards_before, conv_before = replies.cards, driver.conversations
            began = time.perf_counter()
            await asyncio.gather(*(driver.worker(http, q) for q in split(turns, concurrency)))
            elapsed = time.perf_counter() - began
        after = await _rss_all(stack)
    cuts = statistics.quantiles(driver.latencies, n=100)
    memory = tuple(Memory(c.label, s, i, a)
                   for c, s, i, a in zip(stack.children, started, idle, after, strict=True))
    return StackLoad(concurrency, len(driver.latencies), len(driver.latencies) / elapsed,
                     cuts[49], cuts[98], tuple(driver.errors), replies.cards - cards_before,
                     replies.apologies, driver.conversations - conv_before, memory)


def scratch_root() -> str | None:
    """Where the SQLite files go: ``/dev/shm`` (memory) when present, else the default temp dir.

    Both services would use PostgreSQL in production; on this host the local disk's fsync per
    SQLite commit, not OpenSlot, otherwise sets the pace of the concurrent turns.
    """
    shm = Path("/dev/shm")  # noqa: S108
    return str(shm) if shm.is_dir() else None


def run(turns: int, concurrency: int, warmup: int = 600) -> StackLoad:
    """Start the stack in a temporary directory, drive it and stop it (blocking)."""
    with tempfile.TemporaryDirectory(prefix="openslot-bench-stack-", dir=scratch_root()) as name, \
         running_stack(Path(name)) as stack:
        return asyncio.run(drive(stack, turns=turns, concurrency=concurrency, warmup=warmup))
