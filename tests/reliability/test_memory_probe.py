"""The bench's memory probe (``python -m bench --only load --tracemalloc N``): it must name what grew.

``halves`` places the half-way memory reading between conversations. ``probe_report`` is what the
traced child answers at each memory reading; these tests check that it finds objects kept alive
between two calls, by type and (when tracing) by the allocating line, and that a short traced run
of the real three-process stack returns one report per reading from the traced process (the bot or
the Calendar Service).
"""

from __future__ import annotations

import asyncio
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import processes


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 40_000), st.integers(1, 32))
def test_halves_cut_no_conversation_and_lose_no_turn(turns: int, workers: int) -> None:
    first, second = processes.halves(turns, workers)
    size = len(processes.SCHEDULE_TURNS)
    assert sum(first) + sum(second) == turns
    assert all(f % size == 0 for f in first)  # the pause falls between conversations
    assert sum(
        f // size + s // size for f, s in zip(first, second, strict=True)
    ) == processes.full_conversations(turns, workers)  # as many slot pickers as without a pause
    assert abs(sum(first) - turns / 2) <= workers * size


class KeptAlive:
    """A type only this test allocates, so the census can be checked exactly."""

    def __init__(self, n: int) -> None:
        self.payload = [n] * 8


def test_probe_names_the_type_that_grew_and_nothing_before_a_baseline() -> None:
    previous: list[tracemalloc.Snapshot] = []
    types: list[Counter[str]] = []
    first = processes.probe_report(previous, types)
    assert not any(line.startswith("object types that grew") for line in first)  # baseline only
    kept = [KeptAlive(i) for i in range(5_000)]
    second = processes.probe_report(previous, types)
    grew = next(line for line in second if line.startswith("object types that grew"))
    assert "KeptAlive +5,000" in grew
    del kept
    third = processes.probe_report(previous, types)
    assert "KeptAlive" not in next(line for line in third if line.startswith("object types"))


def allocate_kept() -> list[bytearray]:
    return [bytearray(4096) for _ in range(500)]  # ~2 MiB, all from this line


def test_probe_points_at_the_allocating_line_when_tracing() -> None:
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start(5)
    try:
        previous: list[tracemalloc.Snapshot] = []
        types: list[Counter[str]] = []
        processes.probe_report(previous, types)
        kept = allocate_kept()
        report = processes.probe_report(previous, types)
    finally:
        if not was_tracing:
            tracemalloc.stop()
    assert len(kept) == 500
    by_line = report[
        report.index("grown by line:") + 1 : report.index("grown by traceback (most recent call first):")
    ]
    size_kib, _, _, _, site = by_line[0].split()
    assert site == f"{__file__}:{allocate_kept.__code__.co_firstlineno + 1}"
    assert float(size_kib) > 1900


# One traced process is enough to check the mechanism (``traced`` only picks which child starts
# tracemalloc); each traced run costs ~40 s of imports under tracing, so the Calendar Service variant
# (``--trace-process calendar``) is not repeated here.
@pytest.mark.slow
@pytest.mark.parametrize("traced", ["bot"])
def test_traced_run_reports_the_traced_process_at_every_memory_reading(traced: str) -> None:
    with (
        tempfile.TemporaryDirectory(dir=processes.scratch_root()) as name,
        processes.running_stack(Path(name), trace_frames=2, traced=traced) as stack,
    ):
        assert stack.traced == traced
        load = asyncio.run(processes.drive(stack, turns=12, concurrency=2, warmup=6))
    assert load.errors == ()
    assert load.cards == processes.full_conversations(12, 2)
    assert [when for when, _ in load.probes] == [
        "started",
        "after 6 warm-up turns",
        "after 6 measured turns",
        "after 12 measured turns",
    ]
    assert all(any(line.startswith("traced:") for line in lines) for _, lines in load.probes)
    assert [m.label for m in load.memory] == ["bot", "calendar", "devtenant"]
    assert all(m.half_mb > 10 for m in load.memory)
