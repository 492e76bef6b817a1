"""dialogs.edits: which typed messages are edits of the current search, and what they change."""

from __future__ import annotations

from datetime import date

import pytest

from dialogs.edits import EditField, TypedEdit, apply_typed_edit, clear_field, parse_typed_edit
from dialogs.state import FlowStatus, Member, ScheduleDraft

TODAY = date(2026, 11, 25)  # a Wednesday
NEXT_WEEK = (date(2026, 11, 30), date(2026, 12, 4))


@pytest.mark.parametrize(
    ("text", "edit"),
    [
        ("make it 60 minutes", TypedEdit(duration_min=60)),
        ("Make it 1 hour.", TypedEdit(duration_min=60)),
        ("60 min", TypedEdit(duration_min=60)),
        ("1h 30m", TypedEdit(duration_min=90)),
        ("change the length to 30 min", TypedEdit(duration_min=30)),
        ("make it next week", TypedEdit(window=NEXT_WEEK)),
        ("next week", TypedEdit(window=NEXT_WEEK)),
        ("tomorrow", TypedEdit(window=(date(2026, 11, 26), date(2026, 11, 26)))),
        ("candidate is in London", TypedEdit(zone="Europe/London")),
        ("their time zone is India", TypedEdit(zone="Asia/Kolkata")),
        ("change the panel to Megan and Adele", TypedEdit(people=("Megan", "Adele"))),
        ("with Isaiah", TypedEdit(people=("Isaiah",))),
    ],
)
def test_typed_edits(text: str, edit: TypedEdit) -> None:
    assert parse_typed_edit(text, TODAY) == edit


@pytest.mark.parametrize(
    "text", ["hello", "Dana Smith", "45", "thanks!", "candidate is in Narnia", "default", "2020-01-01"]
)
def test_not_edits(text: str) -> None:
    assert parse_typed_edit(text, TODAY) is None


DRAFT = ScheduleDraft(
    flow="f1",
    candidate_name="Dana",
    candidate_email="dana@example.com",
    members=(
        Member("meganb@x.example", "Megan", "UTC"),
        Member("room@x.example", "Room", "UTC", is_room=True),
    ),
    duration_min=45,
    range_start=NEXT_WEEK[0],
    range_end=NEXT_WEEK[1],
    candidate_zone="UTC",
    buffer_min=0,
    status=FlowStatus.PICKING,
)


def test_an_edit_is_a_new_flow_with_one_field_changed() -> None:
    changed = apply_typed_edit(DRAFT, TypedEdit(duration_min=60))
    assert changed.flow != DRAFT.flow
    assert changed.status is FlowStatus.COLLECTING
    assert changed.evolve(flow="f1", status=FlowStatus.PICKING) == DRAFT.evolve(duration_min=60)
    panel = apply_typed_edit(DRAFT, TypedEdit(people=("Adele",)))
    assert panel.pending_people == ("Adele",)
    assert [m.address for m in panel.members] == ["room@x.example"]  # rooms stay


@pytest.mark.parametrize(
    ("field", "cleared"),
    [
        (EditField.DURATION, {"duration_min": None}),
        (EditField.WINDOW, {"range_start": None, "range_end": None}),
        (EditField.ZONE, {"candidate_zone": None}),
        (EditField.PANEL, {"members": (), "pending_people": ()}),
    ],
)
def test_clear_field_clears_only_that_field(field: EditField, cleared: dict[str, object]) -> None:
    after = clear_field(DRAFT, field)
    assert after.evolve(flow="f1", status=FlowStatus.PICKING) == DRAFT.evolve(**cleared)
