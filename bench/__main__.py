"""`python -m bench` (`make bench`): measure OpenSlot against its floors and print the ratios.

Sections: (1) slot engine vs. sorting the same intervals, and its growth from 1 to 100
interviewers; (2) Graph round trips and wall time of "find slots" with devtenant adding 100 ms per
Graph request, vs. one round trip and vs. one request per interviewer; (3) bot turn overhead vs.
an echo bot on the same adapter; (4) throughput, p50/p99 and the resident memory of each process
(bot, Calendar Service, devtenant) idle and after 10,000 turns from concurrent conversations, with
bot, Calendar Service and devtenant each in its own process (``bench/processes.py``); memory is
also read after half the measured turns, so growth that levels off (first half only) can be told
from growth that does not; (5) the loop search (bench/loops.py); (6) interviewer pools' fairness
over a simulated month of bookings (bench/fairness.py). ``--tracemalloc FRAMES`` adds, for the
bot (or ``--trace-process calendar|devtenant``), the allocation sites and object types that grew
between those readings (diagnosis only: tracing makes that process about ten times slower).
Everything runs on 127.0.0.1; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import bot_turns, engine, fairness, graph_trips, processes
from bench import loops as loop_bench
from bench import watcher as watcher_bench


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:9.2f}"


def _verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def section_engine() -> None:
    """(1) Engine vs. sort floor at 20 x 200 x 14 days, and growth 1 -> 100."""
    print("\n(1) Slot engine: every valid 45-min slot, 200 events/person, 14 days")
    print(
        f"{'people':>7} {'events':>7} {'slots':>6} {'engine ms':>10} {'sort ms':>9} "
        f"{'ratio':>7} {'ms/person':>10}"
    )
    rows = engine.growth()
    for r in rows:
        print(
            f"{r.interviewers:7d} {r.events:7d} {r.slots:6d} {_ms(r.engine_s):>10} "
            f"{_ms(r.sort_s):>9} {r.ratio:7.1f} {_ms(r.engine_s / r.interviewers):>10}"
        )
    at20 = next(r for r in rows if r.interviewers == 20)
    first, last = rows[0], rows[-1]
    linearity = (last.engine_s / last.interviewers) / (first.engine_s / first.interviewers)
    print(f"engine / sort floor at 20 people: {at20.ratio:.1f}x (target <= 3x: {_verdict(at20.ratio <= 3)})")
    print(
        f"per-person cost at {last.interviewers} vs 1: {linearity:.2f}x "
        f"(1.0 = linear; target close to linear: {_verdict(linearity <= 1.5)})"
    )
    print("no common slot (explain_empty path, zones LA to Kathmandu):")
    for size in engine.EMPTY_SIZES:
        blockers, seconds = engine.measure_empty(size)
        print(
            f"{size:7d} people: {_ms(seconds)} ms, {blockers} blockers named, {_ms(seconds / size)} ms/person"
        )


async def section_graph(tmp: Path) -> None:
    """(2) Graph round trips for 1/5/20/60 interviewers with 100 ms per Graph request."""
    print(f"\n(2) Find slots with devtenant adding {graph_trips.LATENCY_MS} ms per Graph request")
    print(
        f"{'people':>7} {'requests':>9} {'wall ms':>9} {'floor ms':>9} {'x floor':>8} "
        f"{'naive req':>10} {'naive ms':>9} {'naive/ours':>11}"
    )
    rows = await graph_trips.run(tmp)
    for r in rows:
        print(
            f"{r.interviewers:7d} {r.requests:9d} {_ms(r.wall_s)} {_ms(r.floor_s)} "
            f"{r.wall_s / r.floor_s:8.2f} {r.naive_requests:10d} {_ms(r.naive_s)} "
            f"{r.naive_s / r.wall_s:11.2f}"
        )
    small = [r for r in rows if r.interviewers <= 20]
    one_trip = all(r.requests == 1 for r in small)
    worst = max(r.wall_s / r.floor_s for r in small)
    print(
        f"<=20 people in one Graph round trip: {_verdict(one_trip)}; "
        f"worst wall {worst:.2f}x floor (target <= 1.3x: {_verdict(worst <= 1.3)})"
    )


async def section_bot(tmp: Path) -> None:
    """(3) Bot turn overhead vs. echo on the same adapter (Calendar Service stubbed)."""
    async with bot_turns.running_bot(tmp) as target:
        figures = await bot_turns.overhead(target)
    print("\n(3) Bot turn overhead (Calendar Service stubbed: zero Graph time)")
    ratio = figures.schedule_s / figures.echo_s
    print(
        f"scheduling turn {_ms(figures.schedule_s)} ms, echo turn "
        f"{_ms(figures.echo_s)} ms, ratio {ratio:.2f}x (target <= 2x: "
        f"{_verdict(ratio <= 2)})"
    )


async def section_loops(tmp: Path) -> str:
    """(5) Loop search: the engine alone, then with the availability read from devtenant."""
    print(
        "\n(5) Loop search: 4 sessions (order constraints, 0-15 min breaks), 6 interviewers in 3 zones, "
        f"2 rooms, {loop_bench.EVENTS_PER_MAILBOX} events per mailbox, 5 working days, top {loop_bench.K}"
    )
    alone = loop_bench.measure_engine()
    print(
        f"engine (free time + search): p50 {_ms(alone.p50_s)} ms, p95 {_ms(alone.p95_s)} ms, "
        f"{alone.options} options, {alone.runs} runs"
    )
    trip = await loop_bench.measure_trip(tmp)
    print(
        f"with the Graph read ({loop_bench.LATENCY_MS} ms per request): p50 {_ms(trip.p50_s)} ms, "
        f"p95 {_ms(trip.p95_s)} ms, floor (one getSchedule) {_ms(trip.floor_s)} ms, "
        f"{trip.floor_ratio:.2f}x floor; {trip.options} options"
    )
    view = await loop_bench.measure_trip(tmp / "view", source="calendar_view")
    print(
        f"with OPENSLOT_AVAILABILITY_SOURCE=calendar_view: p50 {_ms(view.p50_s)} ms, "
        f"p95 {_ms(view.p95_s)} ms, {view.floor_ratio:.2f}x the getSchedule floor"
    )
    pooled = await loop_bench.measure_trip(tmp / "pooled", pooled=True)
    print(
        f"pooled (each session 2 from a pool of {loop_bench.POOL_SIZE}, "
        f"{len(loop_bench.POOL_PEOPLE) + len(loop_bench.ROOMS)} mailboxes): p50 {_ms(pooled.p50_s)} ms, "
        f"p95 {_ms(pooled.p95_s)} ms, {pooled.options} options; top {loop_bench.K} in <= 2 s p95: "
        f"{_verdict(pooled.p95_s <= 2)}"
    )
    print(
        f"top {loop_bench.K} in <= 2 s p95: {_verdict(trip.p95_s <= 2)}; "
        f"<= 1.3x the round-trip floor: {_verdict(trip.floor_ratio <= 1.3)}"
    )
    return f"loops p95_ms={trip.p95_s * 1000:.0f} options={trip.options} floor_ratio={trip.floor_ratio:.2f}"


async def section_fairness(tmp: Path) -> str:
    """(6) Interviewer pools: a simulated month of bookings drawn from one pool (bench/fairness.py)."""
    print(
        f"\n(6) Pool fairness: a simulated month, pool of {fairness.MEMBERS} in {len(fairness.ZONES)} zones, "
        f"{fairness.SESSIONS} sessions (singles and loops), random calendars and caps, SQLite"
    )
    began = time.perf_counter()
    r = await fairness.simulate(tmp)
    print(f"{'member':<28} {'sessions':>8}")
    for address, load in r.loads.items():
        print(f"{address:<28} {load:8d}")
    print(
        f"{r.sessions} sessions, {r.unfilled} left unfilled (too few free members under their caps), "
        f"{time.perf_counter() - began:.1f} s"
    )
    print(
        f"trainees: {r.joined_trainee_sessions} of {r.eligible_trainee_sessions} eligible sessions joined, "
        f"graduated: {', '.join(r.graduated) or 'none'}"
    )
    print(
        f"max/min load {r.max_min:.2f} (target <= 1.5: {_verdict(r.max_min <= 1.5)}); cap breaches without "
        f"an override {r.cap_breaches} (target 0: {_verdict(r.cap_breaches == 0)}); trainee coverage "
        f"{r.trainee_coverage:.0%} (target >= 90%: {_verdict(r.trainee_coverage >= 0.9)})"
    )
    return (
        f"fairness max_min={r.max_min:.2f} cap_breaches={r.cap_breaches} "
        f"trainee_coverage={r.trainee_coverage:.2f}"
    )


LABELS = {"bot": "bot", "calendar": "Calendar Service", "devtenant": "devtenant (test double)"}


def section_load(turns: int, concurrency: int, trace_frames: int = 0, traced: str = "bot") -> None:
    """(4) Throughput, p50/p99 and every process's memory: bot, Calendar Service, devtenant."""
    print(
        f"\n(4) {turns} scheduling turns from {concurrency} concurrent conversations, "
        "bot -> Calendar Service -> devtenant, one process each (no added Graph latency)"
    )
    if trace_frames:
        print(
            f"tracemalloc ({trace_frames} frames) in the {LABELS[traced]}: its speed and RSS are not results"
        )
    load = processes.run(turns, concurrency, trace_frames=trace_frames, traced=traced)
    expected = processes.full_conversations(turns, concurrency)
    ok = not load.errors and load.apologies == 0 and load.cards == expected
    print(
        f"throughput {load.turns_per_s:.1f} turns/s, p50 {_ms(load.p50_s)} ms, "
        f"p99 {_ms(load.p99_s)} ms; {load.turns} turns answered, {len(load.errors)} errors, "
        f"{load.apologies} apologies, {load.cards}/{expected} slot pickers "
        f"({'all correct' if ok else 'INCORRECT'})"
    )
    print(
        f"{'process RSS (MiB)':<26} {'started':>8} {'idle':>8} {'half':>8} {'after':>8} "
        f"{'growth':>8} {'growth %':>9} {'1st half':>9} {'2nd half':>9}  "
        "verdict (flat: 2nd half < 1% of idle)"
    )
    for m in load.memory:
        pct = 100 * m.growth_mb / m.idle_mb
        print(
            f"{LABELS.get(m.label, m.label):<26} {m.started_mb:8.1f} {m.idle_mb:8.1f} "
            f"{m.half_mb:8.1f} {m.after_mb:8.1f} {m.growth_mb:+8.1f} {pct:+8.1f}% "
            f"{m.half_mb - m.idle_mb:+9.1f} {m.second_half_mb:+9.1f}  "
            f"{_verdict(m.second_half_mb < 0.01 * m.idle_mb)}"
        )
    for problem in load.errors[:10]:
        print("  ", problem)
    for when, lines in load.probes:
        print(f"\n{LABELS[traced]}, {when}:")
        print("\n".join(lines))


async def section_watcher(tmp: Path) -> str:
    """The drift watcher: 200 random changes, 30 % of notifications dropped (bench/watcher.py)."""
    print(
        f"\n(watcher) {watcher_bench.CHANGES} random changes (decline, silent decline, move, delete, "
        f"new conflicting meeting), {watcher_bench.DROP_RATE:.0%} of notifications dropped, "
        f"sweep every {watcher_bench.SWEEP_S:.0f} s"
    )
    figures = await watcher_bench.run(tmp)
    print(f"notifications refused by clientState: {figures.dropped_notifications}; sweeps: {figures.sweeps}")
    return figures.line()


def main(argv: list[str] | None = None) -> int:
    """Run every section (or the chosen ones) and print one table each."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "--only", choices=["engine", "graph", "bot", "load", "loops", "fairness", "watcher"], action="append"
    )
    parser.add_argument("--turns", type=int, default=10_000, help="turns for the load section")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=0,
        metavar="FRAMES",
        help="load section: trace allocations with FRAMES frames and print what grew (diagnosis only)",
    )
    parser.add_argument(
        "--trace-process",
        choices=["bot", "calendar", "devtenant"],
        default="bot",
        help="the process --tracemalloc traces",
    )
    args = parser.parse_args(argv)
    chosen = set(args.only or ["engine", "graph", "bot", "load", "loops", "fairness"])
    loops_line = fairness_line = watcher_line = ""
    began = time.perf_counter()
    print(
        f"OpenSlot benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="openslot-bench-") as tmp:
        if "engine" in chosen:
            section_engine()
        if "graph" in chosen:
            asyncio.run(section_graph(Path(tmp) / "graph"))
        if "bot" in chosen:
            (Path(tmp) / "bot").mkdir()
            asyncio.run(section_bot(Path(tmp) / "bot"))
        if "load" in chosen:
            section_load(args.turns, args.concurrency, args.tracemalloc, args.trace_process)
        if "loops" in chosen:
            (Path(tmp) / "loops").mkdir()
            loops_line = asyncio.run(section_loops(Path(tmp) / "loops"))
        if "fairness" in chosen:
            (Path(tmp) / "fairness").mkdir()
            fairness_line = asyncio.run(section_fairness(Path(tmp) / "fairness"))
        if "watcher" in chosen:  # only on request (--only watcher): about a minute
            (Path(tmp) / "watcher").mkdir()
            watcher_line = asyncio.run(section_watcher(Path(tmp) / "watcher"))
    print(f"\ndone in {time.perf_counter() - began:.0f} s")
    for line in (loops_line, fairness_line, watcher_line):  # the summary lines come last, for scripts
        if line:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
