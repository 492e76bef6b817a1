"""Pool cards (issue 18: my load, the owner's pools, pool card and forms): golden JSON, structure,
button data round trips, the official 1.5 schema and the official renderer, as
tests/unit/test_cards.py does for the others.

Golden files live in tests/golden/pools/<case>.json; run with UPDATE_GOLDEN=1 to rewrite them after
an intended change (then review the diff).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from cards.actions import parse_action
from cards.loop_actions import is_loop_verb
from cards.pool_actions import PoolAction, PoolVerb, is_pool_verb, parse_pool_action
from cards.pool_cards import (
    MemberView,
    MyLoadView,
    PoolCardView,
    PoolLoadView,
    PoolSummaryView,
    TraineeView,
    WeekView,
    build_add_member_form,
    build_member_caps_form,
    build_my_load,
    build_pool_card,
    build_pool_list,
    load_bar,
)
from tests.unit.test_cards import (
    FLOW,
    TEAMS_MAX_BYTES,
    _actions,
    _dump,
    _render_folder,
    _walk,
    card_validator,  # noqa: F401 - a pytest fixture, used by name
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "pools"
THIS, NEXT = "from Mon 7 Dec", "from Mon 14 Dec"
MEGAN = MemberView(
    "m-megan", "Megan Bowen", "America/Los_Angeles", 5, 2, WeekView(THIS, 3), WeekView(NEXT, 1)
)
ADELE = MemberView(
    "m-adele",
    "Adele Vance",
    "Asia/Kathmandu",
    4,
    1,
    WeekView("from Sun 6 Dec", 5),
    WeekView("from Sun 13 Dec", 0),
    own_caps=True,
)
TRAINEE = TraineeView("Lee Gu", "reverse_shadow", 3, 3, 1, 2, "Backend")
POOL = PoolCardView("pool-1", "Backend", "backend", 5, 2, (MEGAN, ADELE), (TRAINEE,))
MY_LOAD = MyLoadView(
    (
        PoolLoadView(
            "Backend", "Asia/Kathmandu", 4, 1, WeekView("from Sun 6 Dec", 2), WeekView("from Sun 13 Dec", 1)
        ),
        PoolLoadView(
            "Frontend", "Asia/Kathmandu", 3, 1, WeekView("from Sun 6 Dec", 0), WeekView("from Sun 13 Dec", 0)
        ),
    ),
    (TRAINEE,),
)

CASES: dict[str, Callable[[], dict[str, object]]] = {
    "my_load": lambda: build_my_load(FLOW, MY_LOAD),
    "my_load_empty": lambda: build_my_load(FLOW, MyLoadView(())),
    "pool_list": lambda: build_pool_list(
        FLOW,
        [PoolSummaryView("pool-1", "Backend", "backend", 2, 1), PoolSummaryView("pool-2", "Data", "", 0, 0)],
    ),
    "pool_list_empty": lambda: build_pool_list(FLOW, []),
    "pool_card": lambda: build_pool_card(FLOW, POOL),
    "pool_card_empty": lambda: build_pool_card(
        FLOW, PoolCardView("pool-2", "Data", "", 5, 2, (), (), "Removed Megan Bowen.")
    ),
    "pool_caps_form": lambda: build_member_caps_form(FLOW, POOL, ADELE, weekly=4, daily=1),
    "pool_add_form": lambda: build_add_member_form(FLOW, POOL, problem="I couldn't find \u201cZed\u201d."),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_pool_cards_match_golden(name: str) -> None:
    text = _dump(CASES[name]())
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path.name}: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_pool_cards_golden_folder_has_no_orphans() -> None:
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_pool_cards_structure(name: str) -> None:
    card = CASES[name]()
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.5")
    assert len(json.dumps(card).encode()) < TEAMS_MAX_BYTES
    buttons = _actions(card, "Action.Execute")
    assert buttons
    for execute in buttons:
        data = execute["data"]
        assert isinstance(data, dict)
        assert data["verb"] == execute["verb"]
        assert data["flow"] == FLOW
        invoke = {
            "action": {"type": "Action.Execute", "verb": data["verb"], "data": data},
            "trigger": "manual",
        }
        parsed = parse_pool_action(invoke)
        assert parsed.to_data() == data
        assert parse_pool_action(data) == parsed
        assert execute["fallback"] == {"type": "Action.Submit", "title": execute["title"], "data": data}
        assert "@" not in json.dumps(data)  # members are named by a key, never an address
    assert len(_actions(card, "Action.Submit")) == len(buttons)
    assert "@" not in json.dumps(card)  # people shown by display name (issue 18 polish), no address


def test_pool_card_shows_each_members_load_bars_caps_and_trainees() -> None:
    text = json.dumps(build_pool_card(FLOW, POOL), ensure_ascii=False)
    assert "■■■□□ 3 / 5" in text
    assert "■■■■ 5 / 4 (over cap)" in text
    assert "4 a week, 1 a day" in text
    assert "5 a week, 2 a day (pool default)" in text
    assert "Reverse shadowing: shadow 3 / 3, reverse shadow 1 / 2" in text
    assert THIS in text
    assert "from Sun 6 Dec" in text


def test_caps_form_preselects_the_members_caps_and_offers_the_default() -> None:
    card = build_member_caps_form(FLOW, POOL, MEGAN, weekly=None, daily=None)
    inputs = {n["id"]: n for n in _walk(card) if n.get("type") == "Input.ChoiceSet"}
    assert inputs["weekly_cap"]["value"] == "default"
    choices = inputs["weekly_cap"]["choices"]
    assert isinstance(choices, list)
    assert choices[0] == {"title": "Pool default (5)", "value": "default"}
    custom = build_member_caps_form(FLOW, POOL, ADELE, weekly=40, daily=1)
    weekly = next(n for n in _walk(custom) if n.get("id") == "weekly_cap")
    assert weekly["value"] == "40"
    assert {"title": "40", "value": "40"} in weekly["choices"]  # type: ignore[operator]


def test_load_bar() -> None:
    assert load_bar(0, 0) == "0 / 0"
    assert load_bar(2, 5) == "■■□□□ 2 / 5"
    assert load_bar(30, 20).startswith("■" * 10 + " 30 / 20")


def test_form_inputs_come_back_parsed() -> None:
    save = {"verb": "pool_save_caps", "flow": FLOW, "pool_id": "pool-1", "person": "m-adele"}
    parsed = parse_pool_action({**save, "weekly_cap": "3", "daily_cap": "default"})
    assert (parsed.weekly_cap, parsed.daily_cap) == (3, None)
    added = parse_pool_action(
        {"verb": "pool_add", "flow": FLOW, "pool_id": "pool-1", "member": "  Megan  Bowen "}
    )
    assert added.member == "Megan Bowen"
    empty = parse_pool_action({"verb": "pool_add", "flow": FLOW, "pool_id": "pool-1"})
    assert empty.member == ""


@pytest.mark.parametrize(
    "data",
    [
        {"verb": "pool_open", "flow": FLOW},
        {"verb": "pool_open", "flow": FLOW, "pool_id": "a@b"},
        {"verb": "pool_open", "flow": FLOW, "pool_id": "p", "person": "x"},
        {"verb": "pool_edit", "flow": FLOW, "pool_id": "p"},
        {"verb": "pool_save_caps", "flow": FLOW, "pool_id": "p", "person": "k", "weekly_cap": "101"},
        {"verb": "pool_save_caps", "flow": FLOW, "pool_id": "p", "person": "k", "weekly_cap": "-1"},
        {"verb": "pool_save_caps", "flow": FLOW, "pool_id": "p", "person": "k", "weekly_cap": True},
        {"verb": "pool_remove", "flow": FLOW, "pool_id": "p", "person": "k", "weekly_cap": "3"},
        {"verb": "pool_add", "flow": FLOW, "pool_id": "p", "member": "<script>"},
        {"verb": "pool_add", "flow": FLOW, "pool_id": "p", "member": "x" * 121},
        {"verb": "pool_list", "flow": "bad flow"},
        {"verb": "pool_nope", "flow": FLOW},
        {
            "action": {
                "type": "Action.Execute",
                "verb": "pool_list",
                "data": {"verb": "pool_open", "flow": FLOW},
            }
        },
    ],
)
def test_pool_actions_refuse_anything_the_cards_do_not_emit(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any refusal
        parse_pool_action(data)


def test_pool_verbs_are_routable_and_distinct_from_the_other_verbs() -> None:
    for verb in PoolVerb:
        assert is_pool_verb(verb.value)
        assert not is_loop_verb(verb.value)
        with pytest.raises(ValueError, match="unknown verb"):
            parse_action({"verb": verb.value, "flow": FLOW})
    assert not is_pool_verb("loop_new")
    with pytest.raises(ValueError, match="only pool_add"):
        PoolAction(PoolVerb.LIST, FLOW, member="x")


@pytest.mark.parametrize("name", sorted(CASES))
def test_pool_cards_validate_against_official_schema(
    name: str, card_validator: jsonschema.Draft6Validator
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in card_validator.iter_errors(CASES[name]())]
    assert errors == []


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, object]]:
    return _render_folder(GOLDEN)


@pytest.mark.parametrize("name", sorted(CASES))
def test_pool_cards_render_with_official_renderer(name: str, rendered: dict[str, dict[str, object]]) -> None:
    result = rendered[f"{name}.json"]
    assert result.get("error") is None
    assert result["rendered"] is True
    assert [*result["parseEvents"], *result["validationEvents"]] == []  # type: ignore[misc]
    card = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    assert result["executeActions"] == len(_actions(card, "Action.Execute"))
    for run in (n for n in _walk(card) if n.get("type") in {"TextRun", "TextBlock"}):
        assert str(run["text"]) in str(result["text"])
