"""The multi-process load harness of `python -m bench` (section 4): turn split, memory, a short run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import processes


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 20_000), st.integers(1, 64))
def test_split_gives_every_turn_to_exactly_one_worker(turns: int, workers: int) -> None:
    parts = processes.split(turns, workers)
    assert len(parts) == workers
    assert sum(parts) == turns
    assert max(parts) - min(parts) <= 1


def test_full_conversations_counts_only_complete_ones() -> None:
    # 10 turns over 2 workers: 5 each = one full conversation (3 turns) + a 2-turn remainder each.
    assert processes.full_conversations(10, 2) == 2
    assert processes.full_conversations(12, 2) == 4


def test_rss_of_reads_a_live_process_and_refuses_a_dead_one() -> None:
    assert processes.rss_of(os.getpid()) > 1.0
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with pytest.raises(RuntimeError):
        processes.rss_of(child.pid)


@pytest.mark.slow
def test_short_run_goes_through_every_process_and_reports_each_memory() -> None:
    with (
        tempfile.TemporaryDirectory(dir=processes.scratch_root()) as name,
        processes.running_stack(Path(name)) as stack,
    ):
        pids = {c.pid for c in stack.children}
        assert len(pids) == 3
        assert os.getpid() not in pids
        load = asyncio.run(processes.drive(stack, turns=24, concurrency=2, warmup=6))
    assert load.errors == ()
    assert load.apologies == 0
    assert load.turns == 24
    # Every complete conversation ended with the slot picker, so the Calendar Service answered.
    assert load.cards == processes.full_conversations(24, 2) == 8
    assert [m.label for m in load.memory] == ["bot", "calendar", "devtenant"]
    assert all(m.started_mb > 10 and m.idle_mb > 10 and m.after_mb > 10 for m in load.memory)
    assert not any(c.process.is_alive() for c in stack.children)


@pytest.mark.slow
@pytest.mark.parametrize("traced", ["calendar", "devtenant"])
def test_a_traced_child_reports_what_grew_at_every_reading(traced: str) -> None:
    # `python -m bench --tracemalloc N --trace-process ...`: the traced child answers a probe at
    # each of the four memory readings, with traced bytes once tracing runs (the bot's own probe
    # path is exercised by the same `_rss_all`; these are the two other children's loops).
    with (
        tempfile.TemporaryDirectory(dir=processes.scratch_root()) as name,
        processes.running_stack(Path(name), trace_frames=2, traced=traced) as stack,
    ):
        load = asyncio.run(processes.drive(stack, turns=6, concurrency=2, warmup=6))
    assert load.errors == ()
    assert [when for when, _ in load.probes] == [
        "started",
        "after 6 warm-up turns",
        "after 0 measured turns",
        "after 6 measured turns",
    ]
    for when, lines in load.probes:
        assert lines[0].startswith("live gc-tracked objects: "), when
        assert any(line.startswith("traced: ") for line in lines), when
    later = load.probes[-1][1]
    assert any(line.startswith("object types that grew") for line in later)
    assert "grown by line:" in later
