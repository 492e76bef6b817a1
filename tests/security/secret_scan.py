"""Secret and canary scanner used by the session plugin in tests/conftest.py (security.md §7 #17).

What counts as a finding (`PATTERNS`): a JWT (`eyJ….eyJ…`), the sample tenant's client secret, a refresh
token (devtenant's `0.devtenant.` format, or any `refresh_token` value in JSON or a form body), a candidate
capability token (a `/c/<≥40 url-safe chars>` link or an `osc1_…` token), and calendar canary text
(`CANARY-`, planted in the sample tenant's private events).

What is scanned: the tee file of every log record and captured test output of the run, and every
`*.db`, `*.db-wal`, `*.db-journal`, `*.sqlite`, `*.log` file under the pytest basetemp and under `.data/`
(there: only files modified since the session started). Exclusions, on purpose:

* source code and tenant fixtures are never scanned (only logs, captured output and stores);
* a directory that contains a file named `.secret-scan-ignore` is skipped with everything below it
  (tests that plant secrets deliberately, e.g. the scanner's own tests, write there);
* log records from loggers named `tests.planted` or below are not teed (deliberately planted records).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

IGNORE_MARKER = ".secret-scan-ignore"
PLANTED_LOGGER = "tests.planted"
SCANNED_SUFFIXES = (".db", ".db-wal", ".db-journal", ".sqlite", ".log")
CLIENT_SECRET = "dev-only-openslot-secret"  # the sample tenant's app password (devtenant only)

PATTERNS: dict[str, re.Pattern[bytes]] = {
    "jwt": re.compile(rb"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}"),
    "client_secret": re.compile(re.escape(CLIENT_SECRET.encode())),
    "refresh_token": re.compile(
        rb"0\.devtenant\.[A-Za-z0-9_-]{16,}"
        rb"|\"refresh_token\"\s*:\s*\"[^\"\s]{8,}\""
        rb"|refresh_token=[A-Za-z0-9._~%-]{8,}"
    ),
    "capability_token": re.compile(rb"/c/[A-Za-z0-9_-]{40,}|osc1_[A-Za-z0-9_-]{20,}"),
    "calendar_canary": re.compile(rb"CANARY-[A-Za-z0-9]+"),
}


@dataclass(frozen=True)
class Finding:
    """One hit: where, which rule, and a redacted excerpt (never the full secret)."""

    source: str
    offset: int
    rule: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.source}@{self.offset}: {self.rule}: {self.excerpt}"


def _redact(match: bytes) -> str:
    text = match.decode("latin-1")
    return text if len(text) <= 12 else f"{text[:10]}…({len(text)} chars)"


def scan_bytes(data: bytes, source: str) -> list[Finding]:
    """Every rule match in ``data`` (binary-safe: SQLite pages and WAL frames are scanned raw)."""
    return [
        Finding(source, m.start(), rule, _redact(m.group(0)))
        for rule, pattern in PATTERNS.items()
        for m in pattern.finditer(data)
    ]


def _ignored(path: Path, root: Path) -> bool:
    for parent in (path.parent, *path.parent.parents):
        if (parent / IGNORE_MARKER).exists():
            return True
        if parent == root:
            return False
    return False


def candidate_files(root: Path, *, newer_than: float | None = None) -> Iterator[Path]:
    """Scanned store/log files under ``root`` (not under an ignore marker, optionally recent only)."""
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        if not path.is_file() or not path.name.endswith(SCANNED_SUFFIXES):
            continue
        if newer_than is not None and path.stat().st_mtime < newer_than:
            continue
        if not _ignored(path, root):
            yield path


def scan_files(paths: Iterable[Path]) -> list[Finding]:
    """Scan each file's bytes; unreadable (vanished) files are skipped."""
    findings: list[Finding] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        findings.extend(scan_bytes(data, str(path)))
    return findings
