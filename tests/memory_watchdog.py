"""A guard against a runaway test: when pytest's own resident memory passes a limit, say which test was
running and where every thread was, then stop the run at once (exit status 70).

A healthy full run peaks near 0.7 GB. One earlier run grew to 24 GB and was killed by the kernel's OOM
killer with no trace of the culprit; this turns that into a short, named failure. The limit is
``OPENSLOT_TEST_RSS_LIMIT_MB`` (default 6144; 0 switches the guard off).
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

_STATM = Path("/proc/self/statm")
_EXIT_STATUS = 70


def _rss_bytes() -> int:
    try:
        return int(_STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _watch(limit: int, stop: threading.Event, uncapture: Callable[[], None]) -> None:
    while not stop.wait(0.5):
        rss = _rss_bytes()
        if rss > limit:
            test = os.environ.get("PYTEST_CURRENT_TEST", "(between tests)")
            uncapture()  # pytest captures fd 2 while a test runs; the report must reach the terminal
            err = sys.stderr
            err.write(
                f"\nmemory watchdog: pytest's RSS is {rss >> 20} MB (> {limit >> 20} MB) during {test}; "
                "thread stacks follow, then the run stops\n"
            )
            faulthandler.dump_traceback(file=err, all_threads=True)
            err.flush()
            os._exit(_EXIT_STATUS)


def start(uncapture: Callable[[], None]) -> threading.Event | None:
    """Start the watchdog thread (daemon); returns the event that stops it, or None when switched off.

    ``uncapture`` is called before the report is written (it suspends pytest's output capture).
    """
    limit_mb = int(os.environ.get("OPENSLOT_TEST_RSS_LIMIT_MB", "6144") or 0)
    if limit_mb <= 0 or not _STATM.exists():
        return None
    stop = threading.Event()
    threading.Thread(
        target=_watch, args=(limit_mb << 20, stop, uncapture), name="memory-watchdog", daemon=True
    ).start()
    return stop
