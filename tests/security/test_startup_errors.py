"""Issue 12 finding 14: a key file the Calendar Service cannot use ends `serve` with one clear line and
exit status 2, never a traceback (the real process, as `make run` and production start it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, text: str, mode: int) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


@pytest.mark.parametrize(
    ("case", "expected"),
    [("missing", "does not exist"), ("world_readable", "must be 0600"), ("not_json", "not valid JSON")],
)
def test_serve_with_an_unusable_key_file_says_so_in_one_line(
    tmp_path: Path, case: str, expected: str
) -> None:
    key_file = tmp_path / "kek.json"
    if case == "world_readable":
        _write(key_file, "{}", 0o644)
    elif case == "not_json":
        _write(key_file, "{not json", 0o600)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "OPENSLOT_ENV": "dev",
        "OPENSLOT_CLIENT_ID": "x",
        "OPENSLOT_KEY_FILE": str(key_file),
        "OPENSLOT_CALENDAR_SERVICE_PORT": "0",
        "OPENSLOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'openslot.db'}",
        "OPENSLOT_RECOVERY_INTERVAL_S": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "calendar_backend", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("refusing to start: keyring file")
    assert expected in lines[0]
    assert "Traceback" not in done.stderr + done.stdout
