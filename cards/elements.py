"""Small shared builders for Adaptive Card 1.5 elements.

Text the user or a directory supplied (names, subjects, links) always goes through ``plain``:
a ``RichTextBlock``/``TextRun`` renders no markdown, so a display name like ``[x](https://evil)``
stays literal text. Static copy uses ``TextBlock`` (markdown-capable) via ``heading``/``note``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

__all__ = [
    "CARD_SCHEMA",
    "CARD_VERSION",
    "action_set",
    "build_card",
    "clip",
    "field_rows",
    "heading",
    "join_names",
    "note",
    "plain",
]

CARD_SCHEMA: Final = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION: Final = "1.5"
MAX_TEXT: Final = 200
MAX_LINK: Final = 2000


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """Return ``text`` with whitespace runs collapsed, cut to ``limit`` characters with ``…``."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def build_card(
    body: Sequence[dict[str, object]],
    *,
    fallback_text: str,
    refresh: dict[str, object] | None = None,
) -> dict[str, object]:
    """Return a top-level Adaptive Card (version 1.5) around ``body``."""
    card: dict[str, object] = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "fallbackText": fallback_text,
    }
    if refresh is not None:
        card["refresh"] = refresh
    card["body"] = list(body)
    return card


def heading(text: str) -> dict[str, object]:
    """Return a heading ``TextBlock`` for static copy."""
    return {
        "type": "TextBlock",
        "text": text,
        "style": "heading",
        "size": "Medium",
        "weight": "Bolder",
        "wrap": True,
    }


def note(text: str, *, subtle: bool = False, color: str | None = None) -> dict[str, object]:
    """Return a wrapping ``TextBlock`` for static copy (may contain card markdown)."""
    block: dict[str, object] = {"type": "TextBlock", "text": text, "wrap": True}
    if subtle:
        block["isSubtle"] = True
    if color is not None:
        block["color"] = color
    return block


def plain(
    text: str,
    *,
    weight: str | None = None,
    subtle: bool = False,
    monospace: bool = False,
    separator: bool = False,
) -> dict[str, object]:
    """Return a ``RichTextBlock`` showing ``text`` literally (no markdown), clipped."""
    limit = MAX_LINK if monospace else MAX_TEXT
    run: dict[str, object] = {"type": "TextRun", "text": clip(text, limit)}
    if weight is not None:
        run["weight"] = weight
    if subtle:
        run["isSubtle"] = True
    if monospace:
        run["fontType"] = "Monospace"
    block: dict[str, object] = {"type": "RichTextBlock", "inlines": [run]}
    if separator:
        block["separator"] = True
    return block


def field_rows(rows: Sequence[tuple[str, str]]) -> dict[str, object]:
    """Return label/value rows; labels are static copy, values are shown literally."""
    return {
        "type": "Container",
        "items": [
            {
                "type": "ColumnSet",
                "columns": [
                    {
                        "type": "Column",
                        "width": "100px",
                        "items": [{"type": "TextBlock", "text": label, "weight": "Bolder", "wrap": True}],
                    },
                    {"type": "Column", "width": "stretch", "items": [plain(value)]},
                ],
            }
            for label, value in rows
        ],
    }


def action_set(actions: Sequence[dict[str, object]]) -> dict[str, object]:
    """Return an ``ActionSet`` (Teams honours ``fallback`` only for actions inside one)."""
    return {"type": "ActionSet", "actions": list(actions)}


def join_names(names: Sequence[str]) -> str:
    """Return ``A``, ``A and B`` or ``A, B and C``; ``—`` for none."""
    if not names:
        return "—"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]
