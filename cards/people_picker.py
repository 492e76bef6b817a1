"""People picker card: choose interviewers from the directory with the Teams people picker.

The ``Input.ChoiceSet`` uses ``choices.data`` = ``Data.Query`` on ``graph.microsoft.com/users``
(platform.md §E3); Teams submits the picked people as comma-separated Entra object ids in the
input ``interviewers``. The submit is an ``Action.Submit`` whose data carries ``picker`` (no
``verb``), so the bot treats the submitted ids exactly like a typed answer. Clients without the
people picker (the Agents Playground) show a plain box: names typed there, or in the card's
``typed`` text box, or in the chat, are all accepted (nothing on the card is required, so no client
blocks the submit with a validation message).
"""

from __future__ import annotations

from typing import Final

from cards.elements import action_set, build_card, heading, note

__all__ = ["PICKER_INPUT", "PICKER_MARKER", "TYPED_INPUT", "build_people_picker"]

PICKER_INPUT: Final = "interviewers"
TYPED_INPUT: Final = "typed"
PICKER_MARKER: Final = "people"
USERS_DATASET: Final = "graph.microsoft.com/users"


def build_people_picker(flow: str) -> dict[str, object]:
    """Return the people picker card for scheduling flow ``flow`` (an opaque id)."""
    picker: dict[str, object] = {
        "type": "Input.ChoiceSet",
        "id": PICKER_INPUT,
        "label": "Interviewers",
        "isMultiSelect": True,
        "placeholder": "Search your organisation",
        "choices": [],
        "choices.data": {"type": "Data.Query", "dataset": USERS_DATASET},
    }
    submit: dict[str, object] = {
        "type": "Action.Submit",
        "title": "Use these interviewers",
        "style": "positive",
        "data": {"picker": PICKER_MARKER, "flow": flow},
    }
    body = [
        heading("Who should interview?"),
        note(
            "Pick people from your directory, or type names or e-mails in the chat (rooms too).", subtle=True
        ),
        picker,
        {
            "type": "Input.Text",
            "id": TYPED_INPUT,
            "label": "Or type names or e-mails",
            "placeholder": "e.g. Megan, adelev@contoso.com",
            "maxLength": 500,
        },
        action_set([submit]),
    ]
    return build_card(body, fallback_text="Who should interview? Type names or e-mails.")
