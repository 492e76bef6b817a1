"""Section (4): the whole stack as separate processes, for throughput, p99 and per-process memory.

Three child processes (``multiprocessing`` *spawn*, so each starts from a clean interpreter like
``make run``): devtenant (the test double for Entra ID, Graph and the Bot Framework token service,
HTTPS), the real Calendar Service (SQLite, its background tasks on, as ``serve`` runs it) and the
real bot (``bot.build_app``, dev profile, SQL conversation state on SQLite, the real Calendar
Service client). This process is only the load generator plus a connector that counts replies, so
each child's resident memory is that component's own. Every scheduling turn goes bot → Calendar
Service → devtenant (OBO token, Graph directory lookups and ``getSchedule``), with no added Graph
latency, so the figures are OpenSlot's own CPU cost on shared cores.

Memory is read (``/proc/<pid>/status``) after start, after the warm-up, after half the measured
turns and at the end, each after ``SETTLE_S`` of quiet: growth in the second half that is no
smaller than in the first half means something has not levelled off. ``trace_frames`` > 0 (``python
-m bench --tracemalloc N [--trace-process calendar|devtenant]``) also runs ``tracemalloc`` with N
frames in the bot (or Calendar Service, or devtenant) child and prints, at each of those points,
the allocation sites and object types that grew since the previous one (a diagnosis aid: tracing
slows that process and adds its own memory, so its RSS figures are not results).
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import statistics
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import aiohttp

from bench.serving import serve_http
from devtenant.bot_connector import FakeBotConnector
from devtenant.tenant import DevTenant, load_tenant

COMMAND = "schedule Dana Smith (dana@example.com) with Megan and Adele, 45 min, next week"
SCHEDULE_TURNS = (COMMAND, "India", "none")
CARD = "application/vnd.microsoft.card.adaptive"
APOLOGY = "Sorry, something went wrong"
START_TIMEOUT_S = 60.0
SETTLE_S = 1.0  # quiet time before reading memory, so in-flight work has finished
PROBE = "probe"  # parent → traced child: report what grew since the last probe
TRACE_TOP = 12  # allocation sites / object types listed per probe


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


def _devtenant_child(data_dir: str, trace_frames: int, pipe: Connection) -> None:
    if trace_frames > 0:  # before devtenant's imports, so every later allocation has its traceback
        tracemalloc.start(trace_frames)
    from bench.stack import SAMPLE
    from devtenant.app import serve_in_thread

    server = serve_in_thread(load_tenant(SAMPLE), Path(data_dir))
    pipe.send(server.base_url)
    previous: list[tracemalloc.Snapshot] = []
    types: list[Counter[str]] = []

    async def report() -> list[str]:
        return probe_report(previous, types)

    while True:  # each PROBE is answered; anything else (or EOF) means stop
        try:
            message = pipe.recv()
        except EOFError:
            break
        if message != PROBE:
            break
        # Built on devtenant's own loop thread (it serves there), so no request runs meanwhile.
        pipe.send(asyncio.run_coroutine_threadsafe(report(), server.loop).result())
    server.stop()


def _calendar_child(base_url: str, ca_path: str, tmp: str, trace_frames: int, pipe: Connection) -> None:
    if trace_frames > 0:
        tracemalloc.start(trace_frames)
    asyncio.run(
        _calendar_main(DevTenantInfo(base_url, Path(ca_path), load_tenant(_sample())), Path(tmp), pipe)
    )


def _sample() -> Path:
    from bench.stack import SAMPLE

    return SAMPLE


async def _calendar_main(dt: DevTenantInfo, tmp: Path, pipe: Connection) -> None:
    from bench.stack import calendar_runtime
    from calendar_backend.runtime import start_admin_tasks, start_recovery

    async with calendar_runtime(dt, tmp) as (url, rt):
        background = [*start_admin_tasks(rt), start_recovery(rt)]
        pipe.send(url)
        await _answer_probes(pipe)
        for task in background:
            task.cancel()


def _bot_child(env: dict[str, str], db_path: str, trace_frames: int, pipe: Connection) -> None:
    if trace_frames > 0:  # before the bot's imports, so every later allocation has its traceback
        tracemalloc.start(trace_frames)
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
    app = bot_module.build_app(
        bot_module.load_bot_settings(env), storage=SqlStorage(engine, busy_timeout_s=30)
    )
    runner, url = await serve_http(app)
    pipe.send(url)
    await _answer_probes(pipe)
    await runner.cleanup()
    await engine.dispose()


async def _answer_probes(pipe: Connection) -> None:
    """Answer each ``PROBE`` with ``probe_report`` lines; anything else (or EOF) means stop.

    The report is built on the event loop's thread, so no turn runs while it is taken.
    """
    previous: list[tracemalloc.Snapshot] = []
    types: list[Counter[str]] = []
    while True:
        try:
            message = await asyncio.to_thread(pipe.recv)
        except EOFError:
            return
        if message != PROBE:
            return
        pipe.send(probe_report(previous, types))


_TRACE_FILTERS = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)


def probe_report(
    previous: list[tracemalloc.Snapshot], types: list[Counter[str]], top: int = TRACE_TOP
) -> list[str]:
    """What grew in this process since the last call: live objects by type and, when
    ``tracemalloc`` is tracing, traced bytes by source line and by whole traceback.

    ``previous`` and ``types`` carry the last snapshot and type census between calls (the first
    call only records them). A full ``gc.collect()`` runs first, so cyclic garbage is not counted.
    """
    gc.collect()
    census = Counter(type(o).__qualname__ for o in gc.get_objects())
    lines = [f"live gc-tracked objects: {sum(census.values()):,}"]
    if types:
        grown = census.copy()
        grown.subtract(types[-1])
        lines.append(
            "object types that grew: "
            + ", ".join(f"{name} {n:+,}" for name, n in grown.most_common(top) if n > 0)
        )
    types[:] = [census]
    if not tracemalloc.is_tracing():
        return lines
    snapshot = tracemalloc.take_snapshot().filter_traces(_TRACE_FILTERS)
    lines.append(f"traced: {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB")
    if previous:
        lines.append("grown by line:")
        lines.extend(
            f"  {s.size_diff / 1024:+9.1f} KiB {s.count_diff:+8,d} blocks  "
            f"{s.traceback[0].filename}:{s.traceback[0].lineno}"
            for s in snapshot.compare_to(previous[-1], "lineno")[:top]
        )
        lines.append("grown by traceback (most recent call first):")
        for s in snapshot.compare_to(previous[-1], "traceback")[:top]:
            lines.append(f"  {s.size_diff / 1024:+9.1f} KiB {s.count_diff:+8,d} blocks")
            lines.extend(f"      {f.filename}:{f.lineno}" for f in s.traceback)
    previous[:] = [snapshot]
    return lines


# --- the parent --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Child:
    """One running child process and the URL it serves."""

    label: str
    process: BaseProcess
    url: str
    pipe: Connection  # the parent's end: ``PROBE`` (traced child only) and, on exit, stop

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
        yield Child(label, proc, str(ours.recv()), ours), ours
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
    traced: str = ""  # label of the child that runs tracemalloc ("" when none)

    @property
    def children(self) -> tuple[Child, ...]:
        """Every child, bot first."""
        return (self.bot, self.calendar, self.devtenant)


def _bot_env(tenant: DevTenant, dt_url: str, ca: str, calendar_url: str) -> dict[str, str]:
    return {
        "OPENSLOT_ENV": "dev",
        "OPENSLOT_DEV_TENANT_ID": tenant.tenant_id,
        "OPENSLOT_TOKEN_SERVICE_URL": dt_url,
        "OPENSLOT_CA_BUNDLE": ca,
        "OPENSLOT_ALLOWED_SERVICE_URL_HOSTS": "127.0.0.1",
        "OPENSLOT_CALENDAR_SERVICE_URL": calendar_url,
        # The inbound limit (3,000 turns/min per tenant) guards production; the bench
        # measures throughput, so it lifts the tenant-wide cap.
        "OPENSLOT_BOT_RATE_TENANT_PER_MIN": "10000000",
    }


@contextmanager
def running_stack(tmp: Path, trace_frames: int = 0, traced: str = "bot") -> Iterator[Stack]:
    """Start devtenant, the Calendar Service and the bot as child processes; stop them on exit.

    ``trace_frames`` > 0 runs ``tracemalloc`` with that many frames in the ``traced`` child
    (``bot``, ``calendar`` or ``devtenant``; one at a time, tracing is slow).

    Raises ``RuntimeError`` when a child does not report its URL within ``START_TIMEOUT_S``.
    """
    tenant = load_tenant(_sample())
    managers = tuple(str(u) for u in (tenant.data.get("botFramework") or {}).get("signedInUsers", []))
    frames = {label: trace_frames if label == traced else 0 for label in ("bot", "calendar", "devtenant")}
    with _child("devtenant", _devtenant_child, str(tmp / "devtenant"), frames["devtenant"]) as (dt, _):
        base_url, ca = dt.url, str(tmp / "devtenant" / "ca.pem")
        with (
            _child("calendar", _calendar_child, base_url, ca, str(tmp), frames["calendar"]) as (cal, _),
            _child(
                "bot", _bot_child, _bot_env(tenant, base_url, ca, cal.url), str(tmp / "bot.db"), frames["bot"]
            ) as (bot, _),
        ):
            yield Stack(dt, cal, bot, tenant, managers, traced=traced if trace_frames > 0 else "")


# --- the load ----------------------------------------------------------------------------------


@dataclass
class Replies(FakeBotConnector):
    """devtenant's fake connector, counting what the bot sent back (slot-picker cards and apologies)
    instead of keeping it."""

    cards: int = 0
    apologies: int = 0

    def record(self, conversation: str, activity: dict[str, Any]) -> None:  # noqa: ARG002
        self.apologies += APOLOGY in str(activity.get("text") or "")
        self.cards += any(a.get("contentType") == CARD for a in activity.get("attachments") or [])


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
        return {
            "type": "message",
            "id": f"{cid}-{n}",
            "text": text,
            "channelId": "msteams",
            "serviceUrl": self.replies.url + "/",
            "locale": "en-US",
            "localTimezone": "Europe/London",
            "from": {"id": f"29:{oid}", "name": "Hiring manager", "aadObjectId": oid},
            "recipient": {"id": "28:openslot"},
            "conversation": {"id": cid, "conversationType": "personal", "tenantId": tid},
            "channelData": {"tenant": {"id": tid}},
        }

    async def conversation(self, http: aiohttp.ClientSession, texts: tuple[str, ...]) -> None:
        """One fresh conversation through ``texts``; a non-2xx answer ends it as an error."""
        self.conversations += 1
        cid = f"a:bench-{self.conversations}"
        for n, text in enumerate(texts):
            began = time.perf_counter()
            async with http.post(
                f"{self.stack.bot.url}/api/messages", json=self._activity(cid, n, text)
            ) as resp:
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
    """One process's resident memory (MiB): after start, after warm-up (idle), after half the
    measured turns and after all of them."""

    label: str
    started_mb: float
    idle_mb: float
    half_mb: float
    after_mb: float

    @property
    def growth_mb(self) -> float:
        """``after - idle``: what the measured turns left behind."""
        return self.after_mb - self.idle_mb

    @property
    def second_half_mb(self) -> float:
        """``after - half``: growth over the second half of the measured turns alone."""
        return self.after_mb - self.half_mb


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
    probes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (when, traced child's report lines)


def split(turns: int, workers: int) -> list[int]:
    """``turns`` shared among ``workers`` as evenly as possible (the sum is exactly ``turns``)."""
    return [turns // workers + (i < turns % workers) for i in range(workers)]


def full_conversations(turns: int, workers: int) -> int:
    """How many conversations reach the slot picker when ``turns`` are split among ``workers``."""
    return sum(q // len(SCHEDULE_TURNS) for q in split(turns, workers))


def halves(turns: int, workers: int) -> tuple[list[int], list[int]]:
    """Each worker's share of ``turns`` cut in two, the first part ending on a conversation's end
    (so the pause for the half-way memory reading cuts no conversation short)."""
    first = [q // 2 // len(SCHEDULE_TURNS) * len(SCHEDULE_TURNS) for q in split(turns, workers)]
    return first, [q - f for q, f in zip(split(turns, workers), first, strict=True)]


async def _rss_all(stack: Stack, when: str, probes: list[tuple[str, tuple[str, ...]]]) -> list[float]:
    """Every child's RSS after ``SETTLE_S`` of quiet; with tracing, then a probe of that child."""
    await asyncio.sleep(SETTLE_S)
    rss = [rss_of(c.pid) for c in stack.children]
    traced = [c for c in stack.children if c.label == stack.traced]
    for child in traced:  # after the RSS reading: the probe's own allocations must not count in it
        child.pipe.send(PROBE)
        lines = await asyncio.to_thread(child.pipe.recv)
        probes.append((when, tuple(lines)))
    return rss


@asynccontextmanager
async def _replies_server() -> AsyncIterator[Replies]:
    replies = Replies()
    async with replies.serving():
        yield replies


async def drive(stack: Stack, *, turns: int, concurrency: int, warmup: int) -> StackLoad:
    """``turns`` scheduling turns from ``concurrency`` conversations at once, after ``warmup``.

    Memory is read from ``/proc`` for every child: once started, once idle after the warm-up,
    after half the measured turns and after all of them (each after ``SETTLE_S`` of quiet, which
    is not counted in the throughput).
    """
    probes: list[tuple[str, tuple[str, ...]]] = []
    started = await _rss_all(stack, "started", probes)
    async with _replies_server() as replies:
        driver = Driver(stack, replies)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=concurrency)
        ) as http:
            await asyncio.gather(*(driver.worker(http, q) for q in split(warmup, concurrency)))
            idle = await _rss_all(stack, f"after {warmup} warm-up turns", probes)
            driver.latencies.clear()
            cards_before, conv_before = replies.cards, driver.conversations
            elapsed, marks, done = 0.0, [], 0
            for part in halves(turns, concurrency):
                began = time.perf_counter()
                await asyncio.gather(*(driver.worker(http, q) for q in part))
                elapsed += time.perf_counter() - began
                done += sum(part)
                marks.append(await _rss_all(stack, f"after {done} measured turns", probes))
        half_rss, after = marks
    cuts = statistics.quantiles(driver.latencies, n=100)
    memory = tuple(
        Memory(c.label, s, i, h, a)
        for c, s, i, h, a in zip(stack.children, started, idle, half_rss, after, strict=True)
    )
    return StackLoad(
        concurrency,
        len(driver.latencies),
        len(driver.latencies) / elapsed,
        cuts[49],
        cuts[98],
        tuple(driver.errors),
        replies.cards - cards_before,
        replies.apologies,
        driver.conversations - conv_before,
        memory,
        tuple(probes),
    )


def scratch_root() -> str | None:
    """Where the SQLite files go: ``/dev/shm`` (memory) when present, else the default temp dir.

    Both services would use PostgreSQL in production; on this host the local disk's fsync per
    SQLite commit, not OpenSlot, otherwise sets the pace of the concurrent turns.
    """
    shm = Path("/dev/shm")  # noqa: S108
    return str(shm) if shm.is_dir() else None


def run(
    turns: int, concurrency: int, warmup: int = 600, trace_frames: int = 0, traced: str = "bot"
) -> StackLoad:
    """Start the stack in a temporary directory, drive it and stop it (blocking)."""
    with (
        tempfile.TemporaryDirectory(prefix="openslot-bench-stack-", dir=scratch_root()) as name,
        running_stack(Path(name), trace_frames, traced) as stack,
    ):
        return asyncio.run(drive(stack, turns=turns, concurrency=concurrency, warmup=warmup))
