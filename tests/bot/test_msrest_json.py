"""The plain-JSON fast path gives exactly msrest's own serialisation of card activities."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from botbuilder.schema import Activity, Attachment
from botframework.connector import models
from hypothesis import given, settings
from hypothesis import strategies as st
from msrest.serialization import Serializer

from dialogs import msrest_json
from dialogs.services import card_activity

GOLDEN = sorted((Path(__file__).parent.parent / "golden").glob("*.json"))
MODELS = {k: v for k, v in vars(models).items() if isinstance(v, type)}


class Color(StrEnum):
    RED = "red-value"


@contextmanager
def msrest_only() -> Iterator[None]:
    """msrest's own ``serialize_object`` for Serializers built inside the block."""
    installed = Serializer.serialize_object
    Serializer.serialize_object = msrest_json.MSREST_SERIALIZE_OBJECT  # type: ignore[method-assign]
    try:
        yield
    finally:
        Serializer.serialize_object = installed  # type: ignore[method-assign]


def both(activity: Activity) -> tuple[Any, Any]:
    """(msrest's wire body, the fast path's) for ``activity``, as the Bot Connector sends it."""
    with msrest_only():
        expected = Serializer(MODELS).body(activity, "Activity")
    msrest_json.install()
    fast = Serializer(MODELS)
    assert fast.serialize_type["object"].__func__ is not msrest_json.MSREST_SERIALIZE_OBJECT
    return expected, fast.body(activity, "Activity")


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_every_golden_card_serialises_identically(path: Path) -> None:
    expected, fast = both(card_activity(json.loads(path.read_text())))
    assert json.dumps(fast) == json.dumps(expected)
    assert fast["attachments"][0]["content"] == json.loads(path.read_text())


def test_objects_that_are_not_plain_json_fall_back_to_msrest() -> None:
    when = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    content = {
        "verb": Color.RED,
        "at": when,
        "pair": (1, 2),
        "nested": [{"n": 1, 2: "x"}],
        "flag": True,
        "none": None,
        "pi": 3.5,
    }
    expected, fast = both(
        Activity(type="message", attachments=[Attachment(content_type="application/json", content=content)])
    )
    assert fast == expected
    sent = fast["attachments"][0]["content"]
    assert sent["verb"] == "red-value"  # msrest's own conversions
    assert sent["pair"] == "(1, 2)"
    assert sent["at"] == "2026-11-28T09:30:00.000Z"


def test_the_copy_shares_no_containers() -> None:
    card = json.loads(GOLDEN[0].read_text())
    copy = msrest_json.plain_json_copy(card)
    assert copy == card
    copy["body"].append({"type": "TextBlock"})
    assert copy != card


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(JSON)
def test_any_plain_json_serialises_identically(content: object) -> None:
    expected, fast = both(
        Activity(type="message", attachments=[Attachment(content_type="application/json", content=content)])
    )
    assert json.dumps(fast) == json.dumps(expected)
