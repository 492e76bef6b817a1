"""The sample tenant's loop templates (``loopTemplates``, OpenSlot seed data next to the Graph
resources): valid templates, people over several zones, rooms to choose from, and loops that fit
the anchor week's calendars (through devtenant's own expander and the loop engine)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calendar_backend.loop_templates import RoomInfo, mailboxes, parse_template, resolve_rooms, to_loop_spec
from calendar_backend.loops import find_loops
from calendar_backend.slots import Interval, subtract
from devtenant import make_sample
from devtenant.tenant import load_tenant
from tests.devtenant.test_sample_tenant import ANCHOR, SAMPLE, _busy, _working

Doc = dict[str, Any]
CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture(scope="module")
def doc() -> Doc:
    value = json.loads(SAMPLE.read_text(encoding="utf-8"))
    assert isinstance(value, dict)
    return value


def _directory(doc: Doc) -> list[RoomInfo]:
    return [RoomInfo(r["emailAddress"], r["capacity"], r["building"]) for r in doc["rooms"]]


def test_sample_loop_templates_parse_and_name_real_schedulable_people(doc: Doc) -> None:
    raws = doc["loopTemplates"]
    assert 2 <= len(raws) <= 3
    templates = [parse_template(raw) for raw in raws]
    assert len({t.name for t in templates}) == len(templates)
    users = {u["mail"]: u for u in doc["users"] if u.get("mail")}
    zones = set()
    for template in templates:
        for session in template.sessions:
            for mailbox in session.interviewers:
                user = users[mailbox]
                assert user["accountEnabled"]
                assert user["hasMailbox"] is not False
                zones.add(user["mailboxSettings"]["timeZone"])
        resolve_rooms(template, _directory(doc))  # raises when a room need has no room
    assert len(zones) >= 3
    assert any(s.window for t in templates for s in t.sessions)  # a lunch window
    assert any(t.max_days > 1 for t in templates)
    assert {t.order.value for t in templates} == {"fixed", "free"}


def test_sample_has_interview_rooms_to_choose_from(doc: Doc) -> None:
    templates = [parse_template(raw) for raw in doc["loopTemplates"]]
    lists = [rooms for t in templates for rooms in resolve_rooms(t, _directory(doc)) if rooms]
    assert len(lists) >= 3
    assert all(len(rooms) >= 2 for rooms in lists)  # every room session has a second choice
    assert load_tenant(SAMPLE).find_room("olympic@contoso.example") is not None


def _free(doc: Doc, mailbox: str, lo: datetime, hi: datetime) -> tuple[Interval, ...]:
    rooms = {r["emailAddress"]: r for r in doc["rooms"]}
    if mailbox in rooms:
        return tuple(subtract([Interval(lo, hi)], _busy(rooms[mailbox], lo, hi)))
    user = next(u for u in doc["users"] if u.get("mail") == mailbox)
    return tuple(subtract(_working(user, ANCHOR, 5), _busy(user, lo, hi)))


@pytest.mark.parametrize(
    ("index", "zone"),
    [(0, "America/Los_Angeles"), (1, "Europe/London"), (2, "America/New_York")],
)
def test_sample_loops_fit_the_anchor_week(doc: Doc, index: int, zone: str) -> None:
    template = parse_template(doc["loopTemplates"][index])
    local = ZoneInfo(zone)
    start = datetime.combine(ANCHOR, time(0), local).astimezone(UTC)
    window = Interval(start, datetime.combine(ANCHOR + timedelta(days=5), time(0), local).astimezone(UTC))
    directory = _directory(doc)
    spec = to_loop_spec(
        template, zone=local, window=window, not_before=start, candidate_zone=CHICAGO, rooms=directory
    )
    free = {m: _free(doc, m, start - timedelta(days=1), window.end) for m in mailboxes(template, directory)}
    result = find_loops(spec, free, k=5)
    assert len(result.schedules) == 5, result.explanations
    allowed = resolve_rooms(template, directory)
    for schedule in result.schedules:
        assert {p.title for p in schedule.placements} == {s.title for s in template.sessions}
        for placed in schedule.placements:
            assert placed.room in (allowed[placed.session] or (None,))


def test_generator_refuses_a_template_naming_someone_outside_the_panel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = make_sample._loop_templates()
    broken[0]["sessions"][0]["interviewers"] = ["ceo@contoso.example"]
    monkeypatch.setattr(make_sample, "_loop_templates", lambda: broken)
    with pytest.raises(ValueError, match="Backend engineer onsite: Intro: not a schedulable panel member"):
        make_sample.build_sample()


def test_generator_refuses_a_room_need_no_room_meets(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = make_sample._loop_templates()
    broken[0]["sessions"][1]["room"] = {"min_capacity": 40, "building": "Redmond B92"}
    monkeypatch.setattr(make_sample, "_loop_templates", lambda: broken)
    with pytest.raises(ValueError, match="System design: no room meets"):
        make_sample.build_sample()
