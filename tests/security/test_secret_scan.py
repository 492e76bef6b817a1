"""The secret/canary scanner itself (security.md §7 #17): every rule fires on a planted value, benign
text does not, ignore markers and the planted logger are honoured, and a pytest run whose code logs a token
fails. Everything planted here lives under a directory marked `.secret-scan-ignore`, so the session scan
of this very run is not tripped by it."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.security.secret_scan import (
    CLIENT_SECRET,
    IGNORE_MARKER,
    PLANTED_LOGGER,
    candidate_files,
    scan_bytes,
    scan_files,
)

REPO = Path(__file__).resolve().parents[2]
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
PLANTED = {
    "jwt": JWT.encode(),
    "client_secret": f"password={CLIENT_SECRET}".encode(),
    "refresh_token": b'{"refresh_token": "0.AAAA-not-a-devtenant-format"}',
    "capability_token": b"GET /c/" + b"Ab3_" * 11 + b" 200",
    "calendar_canary": b"subject=CANARY-7f3a Confidential",
}


@pytest.fixture
def planted_dir(tmp_path: Path) -> Path:
    (tmp_path / IGNORE_MARKER).touch()
    return tmp_path


@pytest.mark.parametrize("rule", sorted(PLANTED))
def test_each_rule_fires_on_its_planted_value(rule: str) -> None:
    found = scan_bytes(b"prefix " + PLANTED[rule] + b" suffix", "mem")
    assert [f.rule for f in found] == [rule]
    assert PLANTED[rule].decode() not in str(found[0])  # the report redacts


@pytest.mark.parametrize(
    "text",
    [
        b"tenant 6f2d5c1e-8d3b-4a7e-9f41-2b7c9e0d1a55 user 25da05b9 status 401",
        b"GET /c/abc123 404",
        b"eyJhbGciOiJSUzI1NiJ9 header only",
        b"canary- lower case",
        b'{"refresh_token": ""}',
        b"POST /api/messages 401",
    ],
)
def test_benign_text_is_clean(text: bytes) -> None:
    assert scan_bytes(text, "mem") == []


def test_devtenant_refresh_token_format_is_caught() -> None:
    assert [f.rule for f in scan_bytes(b"rt 0.devtenant.QWxhZGRpbjpvcGVuIHNlc2FtZQ", "m")] == [
        "refresh_token"
    ]


def test_sqlite_pages_and_wal_are_scanned(planted_dir: Path) -> None:
    root = planted_dir / "root"
    root.mkdir()
    db = root / "state.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.execute("INSERT INTO t VALUES (?)", (JWT,))
        conn.commit()
        found = scan_files(candidate_files(root))  # while the row is still in the WAL
    assert {f.rule for f in found} == {"jwt"}
    assert any(f.source.endswith(("state.db", "state.db-wal")) for f in found)


def test_ignore_marker_and_suffixes(planted_dir: Path) -> None:
    root = planted_dir / "root"
    (root / "kept").mkdir(parents=True)
    (root / "skipped").mkdir()
    (root / "skipped" / IGNORE_MARKER).touch()
    for sub in ("kept", "skipped"):
        (root / sub / "app.log").write_bytes(PLANTED["jwt"])
    (root / "kept" / "fixture.json").write_bytes(PLANTED["jwt"])  # not a store or log
    assert [p.relative_to(root).as_posix() for p in candidate_files(root)] == ["kept/app.log"]


def test_planted_logger_is_not_teed(request: pytest.FixtureRequest) -> None:
    from tests.conftest import tee_path

    path = tee_path(request.config)
    if not path.exists():
        pytest.skip("secret scan disabled (OPENSLOT_SECRET_SCAN=0)")
    marker = "scanner-self-test-benign-marker"
    logging.getLogger(PLANTED_LOGGER).warning("planted %s", JWT)
    logging.getLogger("openslot.selftest").warning(marker)
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = path.read_text()
    assert marker in text
    assert JWT not in text


def _inner_run(planted_dir: Path, body: str) -> subprocess.CompletedProcess[str]:
    proj = planted_dir / "inner"
    proj.mkdir()
    (proj / "conftest.py").write_text(
        "from tests.conftest import (pytest_runtest_logreport, pytest_sessionfinish,\n"
        "                            pytest_sessionstart, pytest_terminal_summary)\n"
    )
    (proj / "test_inner.py").write_text(textwrap.dedent(body))
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "OPENSLOT_SECRET_SCAN": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "--basetemp",
            str(planted_dir / "bt"),
            str(proj),
        ],
        cwd=proj,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_run_that_logs_a_token_fails(planted_dir: Path) -> None:
    result = _inner_run(
        planted_dir,
        f"""
        import logging
        def test_leaks():
            logging.getLogger("openslot.leaky").info("token=%s", "{JWT}")
    """,
    )
    assert result.returncode == 1, result.stdout[-2000:]
    assert "secret scan FAILED" in result.stdout
    assert "run.log" in result.stdout
    assert ": jwt: " in result.stdout
    assert JWT not in result.stdout


def test_planted_records_stay_out_of_captured_log_sections(planted_dir: Path) -> None:
    # pytest attaches every test's captured log to its report; the tee copies those sections, so a planted
    # record must be dropped there too, while an unplanted leak in the same test still fails the run.
    planted = _inner_run(
        planted_dir,
        f"""
        import logging
        def test_plants():
            logging.getLogger("{PLANTED_LOGGER}").warning("planted %s", "{JWT}")
            logging.getLogger("{PLANTED_LOGGER}.sub").warning("planted %s", "{JWT}")
            logging.getLogger("openslot.fine").warning("kept line")
    """,
    )
    assert planted.returncode == 0, planted.stdout[-2000:]
    assert "secret scan: no secrets" in planted.stdout
    run_log = (planted_dir / "bt" / "secret-scan" / "run.log").read_text()
    assert "kept line" in run_log
    assert JWT not in run_log


def test_a_clean_run_passes(planted_dir: Path) -> None:
    result = _inner_run(
        planted_dir,
        """
        import logging
        def test_clean():
            logging.getLogger("openslot.fine").info("slots found: 3")
    """,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "secret scan: no secrets" in result.stdout
