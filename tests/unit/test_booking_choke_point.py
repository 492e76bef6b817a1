"""Reserve before write is a choke point: only `calendar_backend/booking.py` writes events to Graph.

A new use case (loops, pools, change notifications) that creates, moves or cancels an event must
go through `Bookings`; calling the Graph client's event writes, or sending a raw write to an
events path, anywhere else fails this test.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "calendar_backend"
WRITES = {"create_event", "update_event", "cancel_event"}
# the saga, its attendee-swap step (reached only through `Bookings.replace_attendee`), and the client
# that defines the calls
ALLOWED = {"booking.py", "booking_attendees.py", "graph.py"}


def _offences(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in WRITES:
            found.append(f"{path.name}:{node.lineno} {func.attr}")
        if isinstance(func, ast.Attribute) and func.attr in {"request", "batch"} and node.args:
            method = node.args[0]
            if isinstance(method, ast.Constant) and method.value in {"POST", "PATCH", "DELETE"}:
                target = ast.unparse(node.args[1]) if len(node.args) > 1 else ""
                if "events" in target:
                    found.append(f"{path.name}:{node.lineno} raw {method.value}")
    return found


def test_only_booking_py_writes_events_to_graph() -> None:
    offences = [o for p in sorted(PACKAGE.rglob("*.py")) if p.name not in ALLOWED for o in _offences(p)]
    assert offences == []


def test_the_check_sees_a_write() -> None:
    assert _offences(PACKAGE / "booking.py")  # the saga itself does write: the scan works


def test_only_the_saga_imports_its_attendee_step() -> None:
    importers = [
        p.name
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.name != "booking.py"
        for node in ast.walk(ast.parse(p.read_text(), str(p)))
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("booking_attendees")
    ]
    assert importers == []
