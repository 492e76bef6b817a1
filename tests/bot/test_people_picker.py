"""Issue 4: the Teams people picker on the interviewers question, resolved by object id.

Bot side: TestAdapter + a FakeCalendarService that also knows object ids. Service side: the real
Calendar Service against devtenant resolves a GUID query with Graph GET /users/{id}.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import adaptive_cards
import jsonschema
import pytest
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity

from calendar_backend.contract import PersonOut
from cards.people_picker import build_people_picker
from dialogs.panel import picked_people_text
from dialogs.sql_storage import SqlStorage
from tests.bot.conftest import DIRECTORY, FakeCalendarService, make_adapter, make_bot
from tests.bot.test_schedule_dialog import cards, say, texts
from tests.devtenant.fixtures import devtenant, devtenant_server  # noqa: F401
from tests.service.conftest import Stack, calendar_stack  # noqa: F401

IDS = {p.address: f"{i:08x}-aaaa-4bbb-8ccc-{i:012x}" for i, p in enumerate(DIRECTORY, start=1)}
SCHEMAS = Path(adaptive_cards.__file__).parent / "schemas"


@dataclass
class PickerFake(FakeCalendarService):
    """The bot-test fake plus a directory keyed by Entra object id (like Graph /users/{id})."""

    queries: list[str] = field(default_factory=list)

    async def resolve_people(self, token: str, queries: list[str]) -> list[list[PersonOut]]:
        self.queries.extend(queries)
        by_id = {oid: p for p in DIRECTORY for addr, oid in IDS.items() if addr == p.address}
        typed = await super().resolve_people(token, queries)
        return [[by_id[q]] if q in by_id else found for q, found in zip(queries, typed, strict=True)]


@pytest.fixture
def picker_fake() -> PickerFake:
    return PickerFake()


@pytest.fixture
def picker_adapter(storage: SqlStorage, picker_fake: PickerFake) -> TestAdapter:
    return make_adapter(make_bot(storage, picker_fake))


def picked(*addresses: str, flow: str = "f0", raw: str | None = None) -> Activity:
    ids = raw if raw is not None else ",".join(IDS[a] for a in addresses)
    return Activity(type="message", value={"picker": "people", "flow": flow, "interviewers": ids})


def choice_set(card: dict[str, Any]) -> dict[str, Any]:
    [element] = [e for e in card["body"] if e.get("type") == "Input.ChoiceSet"]
    return element


async def reach_interviewers(adapter: TestAdapter) -> dict[str, Any]:
    await say(adapter, "schedule")
    await say(adapter, "Dana Smith")
    replies = await say(adapter, "dana@example.com")
    assert "Who should interview" in texts(replies)
    [card] = cards(replies)
    return card


async def test_interviewers_question_carries_a_people_picker(picker_adapter: TestAdapter) -> None:
    card = await reach_interviewers(picker_adapter)
    picker = choice_set(card)
    assert picker["choices.data"] == {"type": "Data.Query", "dataset": "graph.microsoft.com/users"}
    assert picker["isMultiSelect"] is True
    submits = [a for e in card["body"] if e.get("type") == "ActionSet" for a in e["actions"]]
    assert [a["type"] for a in submits] == ["Action.Submit"]
    assert submits[0]["data"]["picker"] == "people"
    assert "verb" not in submits[0]["data"]  # routed to the dialog, not to card actions


def test_picker_card_is_valid_adaptive_card_json() -> None:
    card = build_people_picker("f0123456789abcdef")
    without_query = copy.deepcopy(card)
    query = choice_set(without_query).pop("choices.data")  # not in the bundled 1.5/1.6 schemas
    v15 = json.loads((SCHEMAS / "schema-1.5.json").read_text(encoding="utf-8"))
    jsonschema.Draft6Validator(v15).validate(without_query)
    # Data.Query as in microsoft/AdaptiveCards schemas/src/elements/inputs/Data.Query.json
    assert set(query) <= {"type", "dataset", "count", "skip"}
    assert query["type"] == "Data.Query"
    assert isinstance(query["dataset"], str)


async def test_picked_ids_resolve_and_the_dialog_continues(
    picker_adapter: TestAdapter, picker_fake: PickerFake
) -> None:
    await reach_interviewers(picker_adapter)
    replies = await say(picker_adapter, picked("meganb@contoso.example", "adelev@contoso.example"))
    assert "How long" in texts(replies)
    assert picker_fake.queries == [IDS["meganb@contoso.example"], IDS["adelev@contoso.example"]]
    await say(picker_adapter, "45 min")
    await say(picker_adapter, "next week")
    await say(picker_adapter, "India")
    [card] = cards(await say(picker_adapter, "none"))
    assert "Megan Bowen" in json.dumps(card)
    assert "Adele Vance" in json.dumps(card)


async def test_picked_room_is_told_apart_from_people(picker_adapter: TestAdapter) -> None:
    await reach_interviewers(picker_adapter)
    replies = await say(picker_adapter, picked("room1@contoso.example"))
    assert "not only rooms" in texts(replies)
    replies = await say(picker_adapter, picked("room1@contoso.example", "meganb@contoso.example"))
    assert "How long" in texts(replies)


@pytest.mark.parametrize("raw", ["", " , ", "<b>Megan</b>", "a@b@c"])
async def test_bad_picker_values_reask_without_a_directory_call(
    picker_adapter: TestAdapter, picker_fake: PickerFake, raw: str
) -> None:
    await reach_interviewers(picker_adapter)
    replies = await say(picker_adapter, picked(raw=raw))
    assert "at least one interviewer" in texts(replies)
    assert picker_fake.queries == []
    assert "How long" in texts(await say(picker_adapter, "Megan"))  # typing still works


async def test_typed_names_still_work_next_to_the_picker(
    picker_adapter: TestAdapter, picker_fake: PickerFake
) -> None:
    await reach_interviewers(picker_adapter)
    assert "How long" in texts(await say(picker_adapter, "Megan, adelev@contoso.example"))
    assert picker_fake.queries == ["Megan", "adelev@contoso.example"]


def test_picked_people_text_normalises_and_rejects() -> None:
    oid = "0A1B2C3D-0000-4000-8000-00000000000A"
    assert picked_people_text({"picker": "people", "interviewers": f"{oid}, {oid}"}) == oid.lower()
    assert picked_people_text({"verb": "schedule"}) is None
    assert picked_people_text("text") is None
    too_many = ",".join(f"00000000-0000-4000-8000-{i:012x}" for i in range(21))
    assert picked_people_text({"picker": "people", "interviewers": too_many}) == ""
    assert picked_people_text({"picker": "people", "interviewers": ["x"]}) == ""


async def test_service_resolves_an_object_id_via_devtenant(calendar_stack: Stack) -> None:
    users = calendar_stack.devtenant.tenant.users()
    megan = next(u for u in users if u["mail"] == "meganb@contoso.example")
    unknown = "00000000-0000-4000-8000-000000000000"
    before = calendar_stack.graph_requests()
    status, doc = await calendar_stack.post(
        "/v1/directory/resolve", {"queries": [megan["id"].upper(), unknown, "Megan"]}, calendar_stack.token()
    )
    assert status == 200, doc
    by_id, nobody, typed = doc["results"]
    assert [p["address"] for p in by_id] == ["meganb@contoso.example"]
    assert by_id[0]["is_room"] is False
    assert nobody == []
    assert "meganb@contoso.example" in [p["address"] for p in typed]
    assert calendar_stack.graph_requests() > before


async def test_names_typed_into_the_picker_box_are_accepted(
    picker_adapter: TestAdapter, picker_fake: PickerFake
) -> None:
    """Issue 13 defect 12: the Playground has no people picker; its box submits the typed text."""
    await reach_interviewers(picker_adapter)
    replies = await say(picker_adapter, picked(raw="Megan, adelev@contoso.example"))
    assert "at least one interviewer" not in texts(replies)
    assert "How long" in texts(replies)
    assert picker_fake.queries == ["Megan", "adelev@contoso.example"]


async def test_the_typed_box_and_the_picker_together(
    picker_adapter: TestAdapter, picker_fake: PickerFake
) -> None:
    await reach_interviewers(picker_adapter)
    value = {
        "picker": "people",
        "flow": "f0",
        "interviewers": IDS["meganb@contoso.example"],
        "typed": "Adele",
    }
    replies = await say(picker_adapter, Activity(type="message", value=value))
    assert "How long" in texts(replies)
    assert picker_fake.queries == [IDS["meganb@contoso.example"], "Adele"]


def test_picker_card_requires_nothing_a_client_could_refuse() -> None:
    card = json.dumps(build_people_picker("f0"))
    assert "isRequired" not in card
    assert "Pick at least one interviewer" not in card
