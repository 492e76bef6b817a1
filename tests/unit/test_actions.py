"""cards.actions: verbs, button data and strict parsing of what Teams sends back."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cards.actions import CardAction, Verb, build_execute, build_refresh, parse_action

FLOW = "flow-1"

VALID: list[CardAction] = [
    CardAction(Verb.SCHEDULE, FLOW),
    CardAction(Verb.MY_INTERVIEWS, FLOW),
    CardAction(Verb.HELP, FLOW),
    CardAction(Verb.CHOOSE_SLOT, FLOW, slot_id="s-2025-12-02T17:00Z"),
    CardAction(Verb.CONFIRM, FLOW, slot_id="s-1"),
    CardAction(Verb.BACK, FLOW),
    CardAction(Verb.WIDEN_DAYS, FLOW, days=7),
    CardAction(Verb.SHORTEN, FLOW, duration_min=30),
    CardAction(Verb.MORE_SLOTS, FLOW, page=2),
    CardAction(Verb.SEND_TO_CANDIDATE, FLOW),
    CardAction(Verb.CANCEL_INTERVIEW, FLOW, interview_id="iv-1"),
    CardAction(Verb.CANCEL_INTERVIEW_CONFIRMED, FLOW, interview_id="iv-1"),
    CardAction(Verb.KEEP_INTERVIEW, FLOW, interview_id="iv-1"),
    CardAction(Verb.RESCHEDULE_INTERVIEW, FLOW, interview_id="iv-1"),
    CardAction(Verb.REVOKE_OFFER, FLOW, offer_id="of-1"),
    CardAction(Verb.SIGN_IN, FLOW),
    CardAction(Verb.EDIT_DURATION, FLOW),
    CardAction(Verb.EDIT_WINDOW, FLOW),
    CardAction(Verb.EDIT_PANEL, FLOW),
    CardAction(Verb.EDIT_ZONE, FLOW),
    CardAction(Verb.REFRESH, FLOW),
    CardAction(Verb.DROP_PERSON, FLOW, person="p0123456789abcdef"),
    CardAction(Verb.OPTIONAL_PERSON, FLOW, person="p0123456789abcdef"),
    CardAction(Verb.OTHER_DAYS, FLOW),
    CardAction(Verb.APPLY_REPAIR, FLOW, drift_id="d-1", repair="replace-1"),
]


def _invoke(data: Mapping[str, object], verb: object = None) -> dict[str, object]:
    return {
        "action": {
            "type": "Action.Execute",
            "id": "a1",
            "verb": data.get("verb") if verb is None else verb,
            "data": dict(data),
        },
        "trigger": "manual",
    }


def test_actions_cover_every_verb() -> None:
    assert {a.verb for a in VALID} == set(Verb)


@pytest.mark.parametrize("action", VALID, ids=lambda a: a.verb.value)
def test_actions_round_trip_through_both_wire_shapes(action: CardAction) -> None:
    data = action.to_data()
    assert (data["verb"], data["flow"]) == (action.verb.value, FLOW)
    assert parse_action(data) == action
    assert parse_action(_invoke(data)) == action


@pytest.mark.parametrize("action", VALID, ids=lambda a: a.verb.value)
def test_actions_build_execute_carries_data_and_fallback(action: CardAction) -> None:
    button = build_execute("Go", action, style="positive")
    assert button["type"] == "Action.Execute"
    assert button["verb"] == action.verb.value
    assert button["data"] == action.to_data()
    assert button["fallback"] == {"type": "Action.Submit", "title": "Go", "data": action.to_data()}
    assert button["style"] == "positive"


@pytest.mark.parametrize(
    "data",
    [
        {"verb": "delete_everything", "flow": FLOW},
        {"verb": "Schedule", "flow": FLOW},
        {"verb": 3, "flow": FLOW},
        {"flow": FLOW},
        {"verb": "schedule"},
        {"verb": "schedule", "flow": ""},
        {"verb": "schedule", "flow": 12},
        {"verb": "schedule", "flow": "has space"},
        {"verb": "schedule", "flow": "x" * 129},
        {"verb": "schedule", "flow": FLOW, "slot_id": "s-1"},
        {"verb": "schedule", "flow": FLOW, "msteams": {"type": "invoke"}},
        {"verb": "choose_slot", "flow": FLOW},
        {"verb": "choose_slot", "flow": FLOW, "slot_id": 5},
        {"verb": "choose_slot", "flow": FLOW, "slot_id": "../../etc"},
        {"verb": "choose_slot", "flow": FLOW, "slot_id": None},
        {"verb": "widen_days", "flow": FLOW, "days": "7"},
        {"verb": "widen_days", "flow": FLOW, "days": True},
        {"verb": "widen_days", "flow": FLOW, "days": 7.0},
        {"verb": "widen_days", "flow": FLOW, "days": 0},
        {"verb": "widen_days", "flow": FLOW, "days": 61},
        {"verb": "shorten", "flow": FLOW, "duration_min": 4},
        {"verb": "shorten", "flow": FLOW, "duration_min": 481},
        {"verb": "more_slots", "flow": FLOW, "page": 0},
        {"verb": "cancel_interview", "flow": FLOW, "offer_id": "of-1"},
        {"verb": "revoke_offer", "flow": FLOW, "offer_id": "of-1", "interview_id": "iv-1"},
    ],
)
def test_actions_parse_rejects_malformed_data(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - every malformed shape is a ValueError
        parse_action(data)
    with pytest.raises(ValueError):  # noqa: PT011
        parse_action(_invoke(data, verb=data.get("verb", "schedule")))


@pytest.mark.parametrize(
    "value",
    [
        {"action": {"type": "Action.Submit", "verb": "help", "data": {"verb": "help", "flow": FLOW}}},
        {"action": {"type": "Action.Execute", "verb": "schedule", "data": {"verb": "help", "flow": FLOW}}},
        {"action": {"type": "Action.Execute", "verb": "help", "data": "help"}},
        {"action": "help"},
        {
            "action": {
                "type": "Action.Execute",
                "verb": "help",
                "data": {"verb": "help", "flow": FLOW},
                "extra": 1,
            }
        },
        {
            "action": {"type": "Action.Execute", "verb": "help", "data": {"verb": "help", "flow": FLOW}},
            "surprise": True,
        },
    ],
)
def test_actions_parse_rejects_malformed_invoke(value: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_action(value)


def test_actions_parse_rejects_non_mapping() -> None:
    with pytest.raises(ValueError, match="object"):
        parse_action(["verb", "help"])  # type: ignore[arg-type]


def test_actions_card_action_enforces_fields_per_verb() -> None:
    with pytest.raises(ValueError, match="requires slot_id"):
        CardAction(Verb.CHOOSE_SLOT, FLOW)
    with pytest.raises(ValueError, match="does not take days"):
        CardAction(Verb.HELP, FLOW, days=3)
    with pytest.raises(ValueError, match="flow"):
        CardAction(Verb.HELP, "")


def test_actions_refresh_limits_user_ids() -> None:
    refresh = build_refresh(FLOW, ("29:a", "29:b"))
    assert refresh["userIds"] == ["29:a", "29:b"]
    action = refresh["action"]
    assert isinstance(action, dict)
    assert parse_action(_invoke(action["data"])) == CardAction(Verb.REFRESH, FLOW)
    with pytest.raises(ValueError, match="user ids"):
        build_refresh(FLOW, ())
    with pytest.raises(ValueError, match="user ids"):
        build_refresh(FLOW, tuple(f"29:{i}" for i in range(61)))


_IDS = st.from_regex(r"[A-Za-z0-9._~:-]{1,128}", fullmatch=True)


@st.composite
def _actions(draw: st.DrawFn) -> CardAction:
    verb = draw(st.sampled_from(list(Verb)))
    fields: dict[str, object] = {}
    needs = {
        Verb.CHOOSE_SLOT: ("slot_id", _IDS),
        Verb.CONFIRM: ("slot_id", _IDS),
        Verb.WIDEN_DAYS: ("days", st.integers(1, 60)),
        Verb.SHORTEN: ("duration_min", st.integers(5, 480)),
        Verb.MORE_SLOTS: ("page", st.integers(1, 50)),
        Verb.CANCEL_INTERVIEW: ("interview_id", _IDS),
        Verb.CANCEL_INTERVIEW_CONFIRMED: ("interview_id", _IDS),
        Verb.KEEP_INTERVIEW: ("interview_id", _IDS),
        Verb.RESCHEDULE_INTERVIEW: ("interview_id", _IDS),
        Verb.REVOKE_OFFER: ("offer_id", _IDS),
        Verb.DROP_PERSON: ("person", _IDS),
        Verb.OPTIONAL_PERSON: ("person", _IDS),
    }
    if verb in needs:
        name, strategy = needs[verb]
        fields[name] = draw(strategy)
    if verb is Verb.APPLY_REPAIR:  # two fields: the drift item and the repair
        fields["drift_id"], fields["repair"] = draw(_IDS), draw(_IDS)
    return CardAction(verb, draw(_IDS), **fields)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(_actions())
def test_actions_round_trip_property(action: CardAction) -> None:
    assert parse_action(action.to_data()) == action
    assert parse_action(_invoke(action.to_data())) == action


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["verb", "flow", "slot_id", "days", "page", "action", "offer_id", "x"]),
        _JSON | st.sampled_from(list(Verb)),
        max_size=4,
    )
)
def test_actions_parse_only_raises_value_error(value: dict[str, object]) -> None:
    try:
        action = parse_action(value)
    except ValueError:
        return
    assert parse_action(action.to_data()) == action


def test_actions_parse_accepts_the_title_teams_adds_to_a_pressed_button() -> None:
    action = CardAction(Verb.HELP, flow="f1")
    value = {
        "action": {"type": "Action.Execute", "verb": "help", "title": "Help", "data": action.to_data()},
        "trigger": "manual",
    }
    assert parse_action(value) == action


# ---- "Send to candidate" link options (issue 14): the card's inputs, all optional --------------
SEND = {"verb": "send_to_candidate", "flow": FLOW}


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({}, CardAction(Verb.SEND_TO_CANDIDATE, FLOW)),
        (
            {"role": "", "show_names": "false", "day_start": "08:00", "day_end": "20:00"},
            CardAction(Verb.SEND_TO_CANDIDATE, FLOW, show_names=False, day_start=8, day_end=20),
        ),
        (
            {
                "role": "  Senior Data Engineer ",
                "show_names": "true",
                "day_start": "00:00",
                "day_end": "24:00",
            },
            CardAction(
                Verb.SEND_TO_CANDIDATE,
                FLOW,
                role="Senior Data Engineer",
                show_names=True,
                day_start=0,
                day_end=24,
            ),
        ),
        (
            {"role": "Ingénieure (R&D) \u2013 Zürich", "show_names": True},
            CardAction(Verb.SEND_TO_CANDIDATE, FLOW, role="Ingénieure (R&D) \u2013 Zürich", show_names=True),
        ),
        ({"day_end": "17:00"}, CardAction(Verb.SEND_TO_CANDIDATE, FLOW, day_end=17)),
    ],
)
def test_actions_send_to_candidate_takes_link_options(
    inputs: dict[str, object], expected: CardAction
) -> None:
    assert parse_action({**SEND, **inputs}) == expected
    assert parse_action(_invoke({**SEND, **inputs})) == expected
    assert expected.to_data() == SEND  # the button itself carries no option: the inputs do


@pytest.mark.parametrize(
    "inputs",
    [
        {"role": "Engineer\nInjected: yes"},
        {"role": "Engineer\tTab"},
        {"role": "<script>alert(1)</script>"},
        {"role": "Eng\u2028ineer"},
        {"role": "Eng\x85ineer"},
        {"role": "x" * 121},
        {"role": 42},
        {"role": None},
        {"role": ["Engineer"]},
        {"show_names": "yes"},
        {"show_names": "True"},
        {"show_names": 1},
        {"show_names": ""},
        {"day_start": "8:00"},
        {"day_start": "08:30"},
        {"day_start": "24:00"},
        {"day_start": "25:00"},
        {"day_start": 8},
        {"day_start": "08:00\n"},
        {"day_start": "\uff10\uff18:00"},  # full-width digits
        {"day_end": "00:00"},
        {"day_end": ""},
        {"day_start": "20:00", "day_end": "08:00"},
        {"day_start": "09:00", "day_end": "09:00"},
        {"days": 7},
        {"surprise": "x"},
    ],
)
def test_actions_send_to_candidate_refuses_bad_link_options(inputs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_action({**SEND, **inputs})
    with pytest.raises(ValueError):  # noqa: PT011
        parse_action(_invoke({**SEND, **inputs}))


@pytest.mark.parametrize("verb", [v for v in Verb if v is not Verb.SEND_TO_CANDIDATE])
def test_actions_link_options_belong_to_send_to_candidate_only(verb: Verb) -> None:
    base = next(a for a in VALID if a.verb is verb).to_data()
    for name, value in (
        ("role", "Engineer"),
        ("show_names", "true"),
        ("day_start", "08:00"),
        ("day_end", "20:00"),
    ):
        with pytest.raises(ValueError):  # noqa: PT011
            parse_action({**base, name: value})
    with pytest.raises(ValueError, match="does not take role"):
        CardAction(
            verb, FLOW, role="Engineer", **{k: v for k, v in base.items() if k not in {"verb", "flow"}}
        )  # type: ignore[arg-type]
