"""Session-wide secret and canary scanner (security.md §7 #17; rules in tests/security/secret_scan.py).

For the whole run every log record (root logger, INFO and up, any logger except `tests.planted`) and every
test's captured stdout/stderr/log section (less `tests.planted` records) is teed into
`<basetemp>/secret-scan/run.log`. At session end that file, every store/log file under the basetemp, and
the store/log files under `.data/` written during the run are scanned; any finding fails the run (exit
status 1) with a redacted report. Set OPENSLOT_SECRET_SCAN=0 to switch it off locally (never in CI).
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import pytest

from tests import memory_watchdog
from tests.security.secret_scan import PLANTED_LOGGER, Finding, candidate_files, scan_files

REPO = Path(__file__).resolve().parents[1]
_STATE: dict[str, object] = {}
_FINDINGS_KEY = pytest.StashKey[list[Finding]]()


# A planted record as pytest prints it in a "Captured log" section ("LEVEL  logger:file:line message").
_PLANTED_LINE = re.compile(rf"^[A-Z]+ +{re.escape(PLANTED_LOGGER)}(?:\.\S+)?:.*(?:\n|$)", re.MULTILINE)


class _NotPlanted(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == PLANTED_LOGGER or record.name.startswith(PLANTED_LOGGER + "."))


def _enabled() -> bool:
    return os.environ.get("OPENSLOT_SECRET_SCAN", "1") != "0"


def tee_path(config: pytest.Config) -> Path:
    """The run's tee file of log records and captured output."""
    factory: pytest.TempPathFactory = config._tmp_path_factory  # type: ignore[attr-defined]
    return factory.getbasetemp() / "secret-scan" / "run.log"


def pytest_sessionstart(session: pytest.Session) -> None:
    capman = session.config.pluginmanager.getplugin("capturemanager")
    _STATE["watchdog"] = memory_watchdog.start(lambda: capman and capman.suspend_global_capture(in_=False))
    if not _enabled():
        return
    path = tee_path(session.config)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.addFilter(_NotPlanted())
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    _STATE.update(handler=handler, started=time.time())


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    handler = _STATE.get("handler")
    if not isinstance(handler, logging.FileHandler) or not report.sections:
        return
    handler.acquire()
    try:
        stream = handler.stream
        if stream is not None:
            for title, content in report.sections:
                if title.startswith("Captured log"):
                    content = _PLANTED_LINE.sub("", content)
                stream.write(f"--- {report.nodeid} {title}\n{content}\n")
        handler.flush()
    finally:
        handler.release()


def pytest_sessionfinish(session: pytest.Session) -> None:
    handler = _STATE.pop("handler", None)
    if not isinstance(handler, logging.FileHandler):
        return
    logging.getLogger().removeHandler(handler)
    handler.close()
    started = float(_STATE["started"])  # type: ignore[arg-type]
    basetemp = tee_path(session.config).parents[1]
    files = [*candidate_files(basetemp), *candidate_files(REPO / ".data", newer_than=started - 1)]
    findings = scan_files([tee_path(session.config), *files])
    session.config.stash[_FINDINGS_KEY] = findings
    if findings:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    findings = config.stash.get(_FINDINGS_KEY, None)
    if findings is None:
        return
    if not findings:
        terminalreporter.write_line("secret scan: no secrets or canaries in logs, output or stores")
        return
    terminalreporter.section("secret scan FAILED", sep="!", red=True)
    for finding in findings[:50]:
        terminalreporter.write_line(str(finding))
    terminalreporter.write_line(f"{len(findings)} finding(s); rules in tests/security/secret_scan.py")
