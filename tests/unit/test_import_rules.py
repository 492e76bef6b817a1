"""Import rules `lint-imports` cannot state, read from the source with `ast` (fast, nothing imported).

* No production module imports another module's ``_private`` name (``from x import _y``).
* Only ``calendar_backend/sealing.py`` builds an ``Aad``: every encrypted column's associated data
  has one home, so no caller can bind a blob to a purpose of its own invention.
* bot.py (a top-level module, which import-linter cannot load) uses the Calendar Service only
  through its client side, like dialogs/ (pyproject.toml [tool.importlinter]).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("bot.py", "dialogs", "cards", "calendar_backend", "devtenant", "bench")
PROJECT = frozenset(s.removesuffix(".py") for s in SOURCES)
AAD_HOME = "calendar_backend/sealing.py"
BOT_MAY_USE = frozenset({"calendar_backend.client", "calendar_backend.contract", "calendar_backend.errors"})

# Known exceptions: none (the issue-16 split removed the last). Add one only with a reason beside it.
KNOWN_PRIVATE_IMPORTS: set[str] = set()
# Known exceptions: none (the issue-16 split removed the last). Add one only with a reason beside it.
KNOWN_AAD_BUILDERS: set[str] = set()


def sources() -> Iterator[Path]:
    for name in SOURCES:
        path = ROOT / name
        if path.is_file():
            yield path
        else:
            yield from (p for p in sorted(path.rglob("*.py")) if "node_modules" not in p.parts)


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def absolute(path: Path, node: ast.ImportFrom) -> str:
    """The module a ``from ... import`` names, relative imports resolved against ``path``."""
    if not node.level:
        return node.module or ""
    package = path.relative_to(ROOT).with_suffix("").parts[: -node.level]
    return ".".join([*package, *([node.module] if node.module else [])])


def private_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.ImportFrom):
            module = absolute(path, node)
            if module.split(".")[0] not in PROJECT:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.add(f"{rel(path)}: {module}.{alias.name}")
    return found


def aad_builders(path: Path) -> set[str]:
    names = {"Aad"}  # and whatever it is imported as
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.ImportFrom):
            names |= {a.asname for a in node.names if a.name == "Aad" and a.asname}
    found = set()
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called in names:
                found.add(f"{rel(path)}:{node.lineno}")
    return found


def _check(found: set[str], known: set[str], what: str) -> None:
    new = sorted(found - known)
    gone = sorted(known - found)
    assert not new, f"{what}:\n" + "\n".join(new)
    assert not gone, "no longer found, so take them out of KNOWN:\n" + "\n".join(gone)


def test_no_module_imports_another_modules_private_name() -> None:
    found = set().union(*(private_imports(p) for p in sources()))
    _check(found, KNOWN_PRIVATE_IMPORTS, "imports of another module's _private name")


def test_only_sealing_builds_an_aad() -> None:
    found = set().union(*(aad_builders(p) for p in sources() if rel(p) != AAD_HOME))
    found = {f.rsplit(":", 1)[0] for f in found}  # one entry a file: line numbers move
    _check(found, KNOWN_AAD_BUILDERS, f"Aad(...) built outside {AAD_HOME}")
    assert aad_builders(ROOT / AAD_HOME), "the rule's home no longer builds an Aad: update AAD_HOME"


def test_bot_uses_only_the_calendar_services_client_side() -> None:
    path = ROOT / "bot.py"
    used = set()
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.ImportFrom):
            module = absolute(path, node)
            # `from calendar_backend import storage` names the module storage
            used |= {f"{module}.{a.name}" for a in node.names} if module == "calendar_backend" else {module}
        elif isinstance(node, ast.Import):
            used |= {a.name for a in node.names}
    backend = {m for m in used if m.split(".")[0] == "calendar_backend"}
    assert backend, "bot.py no longer imports calendar_backend: the rule reads the wrong file?"
    assert backend <= BOT_MAY_USE, sorted(backend - BOT_MAY_USE)
