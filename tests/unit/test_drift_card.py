"""The drift repair card (cards/drift_repair.py, issue 19): goldens in tests/golden/drift/<case>.json
(UPDATE_GOLDEN=1 rewrites them), its buttons round-trip through `parse_action`, no address shown."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cards.actions import Verb, parse_action
from cards.drift_repair import (
    DriftView,
    build_drift_applied,
    build_drift_failed,
    build_drift_repair,
    headline,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "drift"
LONDON = ZoneInfo("Europe/London")
REPAIRS = (
    {"id": "replace-1", "kind": "replace", "in_name": "Megan Bowen"},
    {"id": "time-1", "kind": "move", "start": "2026-12-16T09:00:00Z", "end": "2026-12-16T10:00:00Z"},
    {"id": "time-2", "kind": "move", "start": "2026-12-17T14:30:00Z", "end": "2026-12-17T15:30:00Z"},
)
VIEW = DriftView(
    "d-1", "declined", "Adele", "System design", datetime(2026, 12, 15, 16, 0, tzinfo=UTC), LONDON, REPAIRS
)
MOVED = DriftView(
    "d-2",
    "moved",
    "Adele",
    "System design",
    datetime(2026, 12, 15, 16, 0, tzinfo=UTC),
    LONDON,
    ({"id": "restore", "kind": "move", "start": "2026-12-15T16:00:00Z", "end": "2026-12-15T17:00:00Z"},),
)
DELETED = DriftView(
    "d-3", "deleted", "Alex", "System design", VIEW.start, LONDON, ({"id": "release", "kind": "release"},)
)
AUTO = dataclasses.replace(VIEW, applied={"repair": "replace-1", "in_name": "Megan Bowen"})
REBOOK = dataclasses.replace(
    DELETED,
    repairs=(
        {"id": "rebook", "kind": "rebook", "start": "2026-12-15T16:00:00Z", "end": "2026-12-15T17:00:00Z"},
        {"id": "time-1", "kind": "move", "start": "2026-12-16T09:00:00Z", "end": "2026-12-16T10:00:00Z"},
        {"id": "release", "kind": "release"},
    ),
)

CASES: dict[str, Callable[[], dict[str, object]]] = {
    "declined": lambda: build_drift_repair(VIEW),
    "moved": lambda: build_drift_repair(MOVED),
    "deleted": lambda: build_drift_repair(DELETED),
    "taken": lambda: build_drift_repair(
        VIEW, notice="That time was just taken: here are the current repairs."
    ),
    "applied": lambda: build_drift_applied(VIEW, REPAIRS[0]),
    "failed": lambda: build_drift_failed(VIEW, "This change was already handled."),
    "auto_applied": lambda: build_drift_repair(AUTO),
    "deleted_rebook": lambda: build_drift_repair(REBOOK),
}


def test_headline_names_who_what_and_the_local_time() -> None:
    assert headline(VIEW) == "Adele declined System design (Tue 15 Dec, 16:00 GMT your time)"


@pytest.mark.parametrize("name", sorted(CASES))
def test_drift_card_golden(name: str) -> None:
    text = json.dumps(CASES[name](), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path.name}: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_drift_golden_folder_has_no_orphans() -> None:
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(CASES)


def _actions(node: object) -> list[dict[str, object]]:
    if isinstance(node, dict):
        own = [node] if node.get("type") == "Action.Execute" else []
        return own + [a for v in node.values() for a in _actions(v)]
    if isinstance(node, list):
        return [a for v in node for a in _actions(v)]
    return []


def test_every_button_is_one_repair_that_parses() -> None:
    buttons = _actions(build_drift_repair(VIEW))
    assert len(buttons) == 3
    for button, repair in zip(buttons, REPAIRS, strict=True):
        action = parse_action(button["data"])  # type: ignore[arg-type]
        assert (action.verb, action.drift_id, action.repair) == (Verb.APPLY_REPAIR, "d-1", repair["id"])
    titles = [b["title"] for b in buttons]
    assert titles == [
        "Replace with Megan Bowen at the same time",
        "Move to Wed 16 Dec, 09:00 GMT",
        "Move to Thu 17 Dec, 14:30 GMT",
    ]


def test_an_address_is_never_a_button_title_and_unknown_repairs_are_left_out() -> None:
    odd = DriftView(
        "d-4", "conflict", "Adele", "Onsite", VIEW.start, LONDON, ({"id": "x", "kind": "teleport"},)
    )
    card = build_drift_repair(odd)
    assert _actions(card) == []
    assert "fix it in Outlook" in json.dumps(card)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("declined", "An interviewer declined System design (Tue 15 Dec, 16:00 GMT your time)"),
        (
            "conflict",
            "An interviewer has a new conflict with System design (Tue 15 Dec, 16:00 GMT your time)",
        ),
        ("deleted", "System design was deleted (Tue 15 Dec, 16:00 GMT your time)"),
        ("moved", "System design was moved (booked for Tue 15 Dec, 16:00 GMT your time)"),
    ],
)
def test_headline_without_a_name_says_what_happened_not_someone(kind: str, expected: str) -> None:
    """The answer to a tap knows no display name (the drift list gives an address, never shown):
    seen in the Playground as "Someone declined ..." under "Fixed" right after "Megan Bowen declined"."""
    view = dataclasses.replace(VIEW, kind=kind, who="")
    assert headline(view) == expected
    assert "Someone" not in json.dumps(build_drift_applied(view, REPAIRS[1]))
