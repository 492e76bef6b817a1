"""ScheduleDraft.to_json is the document the generic ``dataclasses.asdict`` form gave, field for field."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dialogs.state import FlowStatus, Member, ScheduleDraft


def reference_json(draft: ScheduleDraft) -> dict[str, Any]:
    """The earlier implementation: asdict, then the JSON-only fields rewritten in place."""
    doc = asdict(draft)
    doc["members"] = [asdict(m) for m in draft.members]
    doc["pending_people"] = list(draft.pending_people)
    doc["status"] = draft.status.value
    for key in ("range_start", "range_end"):
        value = getattr(draft, key)
        doc[key] = value.isoformat() if value else None
    return doc


TEXT = st.text(max_size=12)
MEMBERS = st.builds(Member, TEXT, TEXT, TEXT, st.booleans())
DRAFTS = st.builds(
    ScheduleDraft,
    flow=TEXT,
    manager_zone=TEXT,
    candidate_name=st.none() | TEXT,
    candidate_email=st.none() | TEXT,
    pending_people=st.tuples(TEXT) | st.just(()),
    members=st.lists(MEMBERS, max_size=3).map(tuple),
    duration_min=st.none() | st.integers(0, 500),
    range_start=st.none() | st.dates(date(2000, 1, 1), date(2100, 1, 1)),
    range_end=st.none() | st.dates(date(2000, 1, 1), date(2100, 1, 1)),
    candidate_zone=st.none() | TEXT,
    buffer_min=st.none() | st.integers(0, 60),
    status=st.sampled_from(list(FlowStatus)),
    interview_id=st.none() | TEXT,
    booked_slot_id=st.none() | TEXT,
    extras=st.dictionaries(TEXT, TEXT, max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(DRAFTS)
def test_same_document_and_key_order_as_asdict(draft: ScheduleDraft) -> None:
    doc = draft.to_json()
    assert json.dumps(doc) == json.dumps(reference_json(draft))
    assert ScheduleDraft.from_json(doc) == draft


def test_every_field_is_written() -> None:
    """A new ScheduleDraft field must be added to to_json too."""
    assert list(ScheduleDraft(flow="f1").to_json()) == [f.name for f in fields(ScheduleDraft)]


def test_the_document_shares_no_containers_with_the_draft() -> None:
    draft = ScheduleDraft(flow="f1", extras={"k": "v"}, pending_people=("a",))
    doc = draft.to_json()
    doc["extras"]["k"] = "changed"
    doc["pending_people"].append("b")
    assert draft.extras == {"k": "v"}
    assert draft.pending_people == ("a",)
