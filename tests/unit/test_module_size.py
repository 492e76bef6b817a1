"""The Calendar Service stays cut by capability: no module of calendar_backend/ grows past 600 lines."""

from __future__ import annotations

from pathlib import Path

LIMIT = 600
ROOT = Path(__file__).resolve().parents[2] / "calendar_backend"


def test_no_calendar_backend_module_is_over_600_lines() -> None:
    too_long = {
        str(path.relative_to(ROOT.parent)): n
        for path in ROOT.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > LIMIT
    }
    assert not too_long, f"split these by capability (limit {LIMIT} lines): {too_long}"
