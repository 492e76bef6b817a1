"""`devtenant.stack` process handling the end-to-end tests rely on: every process of the stack
runs in its own process group and `stop` leaves nothing behind, grandchildren included."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from devtenant import stack

# A leader that starts a grandchild and records its pid, then both sleep.
SPAWNER = (
    "import subprocess, sys, time; "
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    "open(sys.argv[1], 'w').write(str(child.pid)); time.sleep(60)"
)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0); it is gone once it is no longer running.
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split(") ")[1].startswith("Z")


def _wait_for(path: Path, timeout_s: float = 10.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written")


def test_stop_kills_every_process_group_including_grandchildren(tmp_path: Path) -> None:
    pid_files = [tmp_path / f"child{i}.pid" for i in range(2)]
    procs = [
        stack.start([sys.executable, "-c", SPAWNER, str(f)], dict(os.environ), tmp_path / "logs", f"proc{i}")
        for i, f in enumerate(pid_files)
    ]
    grandchildren = [int(_wait_for(f)) for f in pid_files]
    assert all(os.getpgid(p.pid) == p.pid for p in procs)  # each leads its own group
    assert not any(_gone(pid) for pid in grandchildren)

    stack.stop(procs, timeout_s=5)

    assert all(p.returncode is not None for p in procs)
    deadline = time.monotonic() + 5
    while not all(_gone(pid) for pid in grandchildren) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(pid) for pid in grandchildren)
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["proc0.log", "proc1.log"]


def test_stop_tolerates_processes_that_already_exited(tmp_path: Path) -> None:
    proc = stack.start([sys.executable, "-c", "pass"], dict(os.environ), tmp_path, "quick")
    proc.wait(timeout=10)
    stack.stop([proc], timeout_s=1)
    assert proc.returncode == 0
