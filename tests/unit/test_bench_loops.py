"""The loop benchmark's workload and its devtenant round trip run and find the top K loops."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench import loops as loop_bench
from calendar_backend.availability import free_time


def test_workload_has_top_k_loops_and_they_respect_the_panels() -> None:
    people, spec = loop_bench.availabilities(), loop_bench.loop_spec()
    result = loop_bench.search(people, spec)
    assert len(result.schedules) == loop_bench.K
    query = loop_bench._query(spec.window)
    free = {p.mailbox: free_time(p, query, loop_bench.RULES) for p in people}
    for schedule in result.schedules:
        titles = [p.title for p in schedule.placements]
        assert titles[0] == "Intro"
        assert titles[-1] == "Values"
        for placement in schedule.placements:
            session = spec.sessions[placement.session]
            for mailbox in (*session.interviewers, placement.room):
                assert any(f.start <= placement.start and placement.end <= f.end for f in free[mailbox])


def test_round_trip_through_devtenant_reads_the_same_calendars(tmp_path: Path) -> None:
    trip = asyncio.run(loop_bench.measure_trip(tmp_path, runs=1))
    assert trip.options == loop_bench.K
    assert trip.floor_s > loop_bench.LATENCY_MS / 1000
    engine_only = loop_bench.search(loop_bench.availabilities(), loop_bench.loop_spec())
    assert len(engine_only.schedules) == trip.options
