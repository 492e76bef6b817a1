"""The slot picker's "outside the candidate's working day" label, as a manager reads it.

Seen on the Playground screenshot: when no time fits the candidate's day, the header says so and
every row repeated the label (eight times on one card). The label is for telling rows apart.
"""

from __future__ import annotations

import json
from dataclasses import replace

from cards.slot_picker import OUTSIDE_DAY_TEXT, build_slot_picker
from tests.unit.test_cards import SLOT_DEC, SLOT_LATE, _picker


def test_all_rows_outside_the_candidate_day_are_said_once_in_the_header() -> None:
    slots = (replace(SLOT_DEC, outside_candidate_day=True), replace(SLOT_LATE, outside_candidate_day=True))
    view = _picker(slots=slots, candidate_day="08:00\u201320:00")
    card = json.dumps(build_slot_picker(view), ensure_ascii=False)
    assert "No time fits inside the candidate's 08:00\u201320:00" in card
    assert OUTSIDE_DAY_TEXT not in card


def test_mixed_rows_label_only_those_outside() -> None:
    slots = (SLOT_DEC, replace(SLOT_LATE, outside_candidate_day=True))
    view = _picker(slots=slots, candidate_day="08:00\u201320:00")
    card = json.dumps(build_slot_picker(view), ensure_ascii=False)
    assert card.count(OUTSIDE_DAY_TEXT) == 1
