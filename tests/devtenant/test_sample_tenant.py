"""The committed sample tenant: deterministic, loadable, Graph-shaped and rich enough for the demo.

Zone names are resolved with tzlocal's copy of CLDR windowsZones (independent of the generator's
own table), and the Playground config is checked against a pinned copy of its 0.1.1 schema.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]
from tzlocal.windows_tz import win_tz

from calendar_backend.slots import Interval, find_slots, intersect_all, subtract
from devtenant import make_sample
from devtenant.recurrence import expand
from devtenant.tenant import load_tenant

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "devtenant" / "tenants" / "sample.json"
PLAYGROUND = ROOT / "devtenant" / "playground"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
UTC_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SHOW_AS = {"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"}
SENSITIVITY = {"normal", "personal", "private", "confidential"}
RESPONSES = {"none", "organizer", "tentativelyAccepted", "accepted", "declined", "notResponded"}
PATTERNS = {"daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"}
ROLES = {
    "none",
    "freeBusyRead",
    "limitedRead",
    "read",
    "write",
    "delegateWithoutPrivateEventAccess",
    "delegateWithPrivateEventAccess",
    "custom",
}
ANCHOR = date(2026, 11, 30)
Doc = dict[str, Any]

# Pinned from @microsoft/m365agentsplayground 0.2.28 (config schema 0.1.1), minus descriptions.
_USER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "name", "userPrincipleName", "aadObjectId", "givenName", "surname", "email"],
    "properties": {
        k: {"type": "string"}
        for k in ("id", "name", "userPrincipleName", "aadObjectId", "givenName", "surname", "email")
    },
}
_NAMED = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "name"],
    "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
}
PLAYGROUND_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "tenantId", "bot", "currentUser", "users", "personalChat", "groupChat", "team"],
    "properties": {
        "version": {"enum": ["0.1.0", "0.1.1"]},
        "tenantId": {"type": "string"},
        "bot": {
            **_NAMED,
            "properties": {"id": {"type": "string"}, "name": {"type": "string", "maxLength": 42}},
        },
        "currentUser": _USER,
        "users": {"type": "array", "items": _USER, "minItems": 5, "maxItems": 5},
        "personalChat": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id"],
            "properties": {"id": {"type": "string"}},
        },
        "groupChat": _NAMED,
        "team": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "name", "aadGroupId", "channels"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "aadGroupId": {"type": "string"},
                "channels": {"type": "array", "maxItems": 1, "items": _NAMED},
            },
        },
    },
}


@pytest.fixture(scope="module")
def doc() -> Doc:
    data: Doc = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def playground() -> Doc:
    data: Doc = yaml.safe_load((PLAYGROUND / ".m365agentsplayground.yml").read_text("utf-8"))
    return data


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(win_tz.get(name, name))


def _mailboxes(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [*doc["users"], *doc["rooms"]]


def _events(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for m in _mailboxes(doc) for e in m.get("events", [])]


def _local(dtz: dict[str, str]) -> datetime:
    return datetime.fromisoformat(dtz["dateTime"][:19])


def _user(doc: dict[str, Any], alias: str) -> dict[str, Any]:
    return next(u for u in doc["users"] if u["userPrincipalName"] == f"{alias}@contoso.example")


# ---- determinism and loading ------------------------------------------------------------------
def test_sample_files_equal_generator_output() -> None:
    assert SAMPLE.read_text(encoding="utf-8") == make_sample.render_sample()
    yml = (PLAYGROUND / ".m365agentsplayground.yml").read_text(encoding="utf-8")
    assert yml == make_sample.render_playground()
    assert make_sample.main(["--check"]) == 0


def test_sample_load_tenant_shifts_whole_weeks(doc: Doc) -> None:
    at_anchor = load_tenant(SAMPLE, today=ANCHOR + timedelta(days=3))
    later = load_tenant(SAMPLE, today=ANCHOR + timedelta(weeks=5, days=6))
    assert at_anchor.tenant_id == doc["tenant"]["id"] == make_sample.TENANT_ID
    assert at_anchor.data == doc  # the anchor week needs no shift
    alex = at_anchor.find_user("alexw@contoso.example")
    alex_later = later.find_user("alexw@contoso.example")
    assert alex is not None
    assert alex_later is not None
    delta = _local(alex_later["events"][0]["start"]) - _local(alex["events"][0]["start"])
    assert delta == timedelta(weeks=5)
    assert load_tenant(SAMPLE).find_room("rainier@contoso.example") is not None


# ---- directory ---------------------------------------------------------------------------------
def test_sample_users_have_fixed_unique_ids_and_realistic_hours(doc: Doc) -> None:
    users = doc["users"]
    assert len(users) >= 30
    ids = [u["id"] for u in users] + [r["id"] for r in doc["rooms"]]
    assert len(set(ids)) == len(ids)
    assert all(GUID.match(i) for i in ids)
    assert len({u["userPrincipalName"].lower() for u in users}) == len(users)
    hours_per_day = []
    for u in users:
        wh = u["mailboxSettings"]["workingHours"]
        start, end = time.fromisoformat(wh["startTime"][:8]), time.fromisoformat(wh["endTime"][:8])
        assert start < end
        assert set(wh["daysOfWeek"]) <= set(DAY_NAMES)
        _zone(wh["timeZone"]["name"])
        hours_per_day.append((len(wh["daysOfWeek"]), end.hour - start.hour))
    assert any(days == 4 for days, _ in hours_per_day)  # a 4-day week
    assert any(h <= 5 for _, h in hours_per_day)  # a part-timer
    names = {u["displayName"] for u in users}
    assert {
        "Alex Wilber",
        "Megan Bowen",
        "Adele Vance",
        "Isaiah Langer",
        "Patti Fernandez",
        "Lynne Robbins",
    } <= names


def test_sample_zones_span_five_offsets_including_half_and_quarter_hours(doc: Doc) -> None:
    zones = {u["mailboxSettings"]["timeZone"] for u in doc["users"]}
    noon = datetime.combine(ANCHOR, time(12))
    offsets = {_zone(z).utcoffset(noon) for z in zones}
    assert len(zones) >= 5
    assert len(offsets) >= 5
    assert timedelta(hours=5, minutes=30) in offsets
    assert timedelta(hours=5, minutes=45) in offsets
    assert "Australia/Lord_Howe" in zones
    assert any(z in win_tz for z in zones)
    assert any("/" in z for z in zones)


def test_sample_accounts_mailboxes_and_permissions(doc: Doc) -> None:
    users = doc["users"]
    assert 1 <= sum(not u["accountEnabled"] for u in users) <= 2
    assert sum(not u["hasMailbox"] for u in users) == 1
    alex = _user(doc, "alexw")
    roles = [p["role"] for u in users for p in u["calendarPermissions"]]
    assert set(roles) <= ROLES
    org_roles = [
        p["role"]
        for u in users
        for p in u["calendarPermissions"]
        if p["emailAddress"]["name"] == "My Organization"
    ]
    assert org_roles.count("freeBusyRead") > len(users) // 2
    assert "limitedRead" in org_roles
    assert "none" in org_roles
    alex_reads = [
        u
        for u in users
        for p in u["calendarPermissions"]
        if p["emailAddress"]["address"] == alex["mail"] and p["role"] == "read"
    ]
    assert len(alex_reads) >= 2


def test_sample_groups_policy_app_and_bot(doc: Doc) -> None:
    users = {u["id"]: u for u in doc["users"]}
    rooms = {r["id"] for r in doc["rooms"]}
    groups = {g["displayName"]: g for g in doc["groups"]}
    schedulable = groups["Schedulable interviewers"]
    assert schedulable["mail"] == "schedulable@contoso.example"
    assert set(schedulable["members"]) <= set(users) | rooms
    assert rooms <= set(schedulable["members"])
    outside = set(users) - set(schedulable["members"])
    assert any(users[i]["jobTitle"] == "Chief Executive Officer" for i in outside)
    assert 2 <= len(outside) < len(users) // 4
    assert set(groups["Hiring panel \u2013 Engineering"]["members"]) <= set(users)
    (app,) = doc["applications"]
    assert app["identifierUris"] == [f"api://botid-{app['appId']}"]
    assert app["passwordCredentials"][0]["secretText"] == "dev-only-openslot-secret"
    assert app["adminConsent"] == {"granted": True}
    (policy,) = doc["applicationAccessPolicies"]
    assert policy == {
        "appId": app["appId"],
        "accessRight": "RestrictAccess",
        "policyScopeGroupId": schedulable["mail"],
    }
    assert doc["botFramework"]["connectionName"] == "openslot"
    enabled = [u["id"] for u in doc["users"] if u["accountEnabled"]]
    assert doc["botFramework"]["signedInUsers"] == enabled
    assert len(doc["rooms"]) >= 6
    assert all(r["capacity"] > 0 for r in doc["rooms"])
    assert sum(1 for r in doc["rooms"] if r["events"]) >= 4


# ---- events ------------------------------------------------------------------------------------
def _check_recurrence(rec: dict[str, Any]) -> None:
    pattern, rng = rec["pattern"], rec["range"]
    kind = pattern["type"]
    assert kind in PATTERNS
    assert pattern["interval"] >= 1
    if kind in ("weekly", "relativeMonthly", "relativeYearly"):
        assert pattern["daysOfWeek"]
        assert set(pattern["daysOfWeek"]) <= set(DAY_NAMES)
    if kind.startswith("absolute"):
        assert 1 <= pattern["dayOfMonth"] <= 31
    if kind.endswith("Yearly"):
        assert 1 <= pattern["month"] <= 12
    if kind.startswith("relative"):
        assert pattern["index"] in ("first", "second", "third", "fourth", "last")
    assert rng["type"] in ("endDate", "noEnd", "numbered")
    start = date.fromisoformat(rng["startDate"])
    if rng["type"] == "endDate":
        assert date.fromisoformat(rng["endDate"]) > start
    _zone(rng["recurrenceTimeZone"])


def _check_times(event: dict[str, Any]) -> None:
    start, end = _local(event["start"]), _local(event["end"])
    _zone(event["start"]["timeZone"])
    assert event["start"]["timeZone"] == event["end"]["timeZone"]
    assert end > start
    if event["isAllDay"]:
        assert start.time() == end.time() == time(0)


def test_sample_events_have_graph_shapes(doc: Doc) -> None:
    all_ids = []
    for mailbox in _mailboxes(doc):
        masters = {e["id"]: e for e in mailbox["events"] if e["type"] == "seriesMaster"}
        for event in mailbox["events"]:
            all_ids.append(event["id"])
            assert event["showAs"] in SHOW_AS
            assert event["sensitivity"] in SENSITIVITY
            assert event["responseStatus"]["response"] in RESPONSES
            assert event["type"] in ("singleInstance", "seriesMaster", "exception")
            _check_times(event)
            if event["type"] == "seriesMaster":
                _check_recurrence(event["recurrence"])
            else:
                assert event["recurrence"] is None
            if event["type"] == "exception":
                assert event["seriesMasterId"] in masters
                assert UTC_Z.match(event["originalStart"])
    assert len(all_ids) == len(set(all_ids))


def test_sample_exceptions_replace_real_occurrences(doc: Doc) -> None:
    exceptions = [(m, e) for m in _mailboxes(doc) for e in m["events"] if e["type"] == "exception"]
    assert exceptions
    for mailbox, exc in exceptions:
        master = next(e for e in mailbox["events"] if e["id"] == exc["seriesMasterId"])
        tz = _zone(master["start"]["timeZone"])
        original = datetime.fromisoformat(exc["originalStart"]).astimezone(tz)
        assert original.time() == _local(master["start"]).time()
        pattern = master["recurrence"]["pattern"]
        if pattern["type"] == "weekly":
            assert DAY_NAMES[original.weekday()] in pattern["daysOfWeek"]
        assert original.date() >= date.fromisoformat(master["recurrence"]["range"]["startDate"])


def test_sample_single_events_sit_around_the_anchor_week(doc: Doc) -> None:
    lo, hi = ANCHOR - timedelta(weeks=1), ANCHOR + timedelta(weeks=5)
    singles = [e for e in _events(doc) if e["type"] == "singleInstance"]
    assert len(singles) >= 40
    for event in singles:
        assert _local(event["end"]).date() >= lo
        assert _local(event["start"]).date() <= hi


def test_sample_attendee_copies_match_organizer_copies(doc: Doc) -> None:
    by_uid: dict[str, list[dict[str, Any]]] = {}
    for event in _events(doc):
        by_uid.setdefault(event["iCalUId"], []).append(event)
    shared = [
        copies for copies in by_uid.values() if len({c["id"] for c in copies if c["type"] != "exception"}) > 1
    ]
    assert len(shared) >= 20
    for copies in shared:
        masters = [c for c in copies if c["type"] != "exception"]
        assert sum(c["isOrganizer"] for c in masters) == 1
        assert len({(c["start"]["dateTime"], c["subject"]) for c in masters}) == 1


def test_sample_covers_the_calendar_edge_cases(doc: Doc) -> None:
    events = _events(doc)

    def some(pred: Callable[[dict[str, Any]], object]) -> bool:
        return any(pred(e) for e in events)

    assert some(lambda e: e["sensitivity"] == "private")
    assert some(lambda e: e["showAs"] == "tentative")
    assert some(lambda e: e["responseStatus"]["response"] == "declined" and e["showAs"] == "busy")
    assert some(
        lambda e: (
            e["showAs"] == "oof"
            and e["isAllDay"]
            and _local(e["end"]) - _local(e["start"]) >= timedelta(days=3)
        )
    )
    assert some(lambda e: e["showAs"] == "workingElsewhere")
    assert some(lambda e: e["showAs"] == "free" and not e["isAllDay"])
    assert some(lambda e: e["isAllDay"] and e["showAs"] == "free")
    assert some(lambda e: e["type"] == "singleInstance" and e["isCancelled"])
    assert some(lambda e: e["type"] == "exception" and e["isCancelled"])
    assert some(lambda e: e["type"] == "exception" and not e["isCancelled"])
    patterns = {e["recurrence"]["pattern"]["type"] for e in events if e["recurrence"]}
    assert patterns == PATTERNS
    assert some(lambda e: e["recurrence"] and e["recurrence"]["pattern"]["interval"] == 2)


def test_sample_has_canaries_in_subject_body_and_location(doc: Doc) -> None:
    events = _events(doc)
    subjects = [e for e in events if "CANARY-" in e["subject"]]
    assert len({e["subject"] for e in subjects}) >= 3
    assert any(e["sensitivity"] == "normal" or e["sensitivity"] == "confidential" for e in subjects)
    assert any("CANARY-" in e["body"]["content"] and "CANARY-" not in e["subject"] for e in events)
    assert any("CANARY-" in e["location"]["displayName"] and "CANARY-" not in e["subject"] for e in events)
    owners = {m["id"] for m in doc["users"] for e in m["events"] if "CANARY-" in json.dumps(e)}
    schedulable = set(next(g for g in doc["groups"] if g["mail"].startswith("schedulable"))["members"])
    assert len(owners & schedulable) >= 3  # reachable through OpenSlot, so leaks are testable


# ---- Playground --------------------------------------------------------------------------------
def test_playground_config_matches_sample_tenant(doc: Doc, playground: Doc) -> None:
    jsonschema.validate(playground, PLAYGROUND_SCHEMA)
    assert playground["tenantId"] == doc["tenant"]["id"]
    users = {u["id"]: u for u in doc["users"]}
    current = playground["currentUser"]
    assert users[current["aadObjectId"]]["userPrincipalName"] == "alexw@contoso.example"
    for entry in [current, *playground["users"]]:
        user = users[entry["aadObjectId"]]
        assert entry["email"] == user["mail"] == entry["userPrincipleName"]
        assert entry["name"] == user["displayName"]
        assert user["accountEnabled"]
        assert entry["aadObjectId"] in doc["botFramework"]["signedInUsers"]
    assert playground["team"]["aadGroupId"] in {g["id"] for g in doc["groups"]}


def test_playground_package_pins_exact_version() -> None:
    package = json.loads((PLAYGROUND / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((PLAYGROUND / "package-lock.json").read_text(encoding="utf-8"))
    pinned = package["devDependencies"]["@microsoft/m365agentsplayground"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned)
    assert lock["packages"]["node_modules/@microsoft/m365agentsplayground"]["version"] == pinned


PLAYGROUND_BIN = PLAYGROUND / "node_modules" / ".bin" / "agentsplayground"


@pytest.mark.slow
@pytest.mark.skipif(not PLAYGROUND_BIN.exists(), reason="run `npm ci` in devtenant/playground")
def test_playground_accepts_the_config(tmp_path: Path) -> None:
    """The installed Playground validates its config at start-up and exits 1 when it is invalid."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "TEAMSAPPTESTER_BROWSER": "none",
        "M365_AGENTS_PLAYGROUND_CONFIG_PATH": str(PLAYGROUND / ".m365agentsplayground.yml"),
        "M365_AGENTS_PLAYGROUND_LOGFILE": str(tmp_path / "playground.log"),
    }
    cmd = [
        str(PLAYGROUND_BIN),
        "start",
        "-e",
        "http://127.0.0.1:3978/api/messages",
        "-c",
        "msteams",
        "--disable-telemetry",
        "-p",
        str(port),
    ]
    proc = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Listening" in line:
                break
        with pytest.raises(subprocess.TimeoutExpired):  # an invalid config exits within ~0.5 s
            proc.wait(timeout=3)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---- density (through devtenant's own expander and the Calendar Service's slot engine) ---------
_BLOCKING = {"busy", "oof", "tentative"}


def _busy(mailbox: Doc, lo: datetime, hi: datetime) -> list[Interval]:
    out = []
    for inst in expand(mailbox["events"], lo, hi):
        if (
            inst["showAs"] in _BLOCKING
            and not inst["isCancelled"]
            and inst["responseStatus"]["response"] != "declined"
        ):
            start = datetime.fromisoformat(inst["start"]["dateTime"][:19]).replace(tzinfo=UTC)
            end = datetime.fromisoformat(inst["end"]["dateTime"][:19]).replace(tzinfo=UTC)
            out.append(Interval(start, end))
    return out


def _working(user: Doc, first: date, days: int) -> list[Interval]:
    wh = user["mailboxSettings"]["workingHours"]
    tz = _zone(wh["timeZone"]["name"])
    start, end = time.fromisoformat(wh["startTime"][:8]), time.fromisoformat(wh["endTime"][:8])
    out = []
    for day in (first + timedelta(days=i) for i in range(days)):
        if DAY_NAMES[day.weekday()] in wh["daysOfWeek"]:
            out.append(Interval(datetime.combine(day, start, tz), datetime.combine(day, end, tz)))
    return out


def _panel_slots(doc: Doc, aliases: tuple[str, ...]) -> tuple[Interval, ...]:
    lo = datetime.combine(ANCHOR, time(0), UTC) - timedelta(days=1)
    hi = lo + timedelta(days=9)
    free = [subtract(_working(_user(doc, a), ANCHOR, 5), _busy(_user(doc, a), lo, hi)) for a in aliases]
    return find_slots(
        intersect_all(free), [], duration=timedelta(minutes=60), step=timedelta(minutes=15), not_before=lo
    )


@pytest.mark.parametrize(
    ("panel", "most"),
    [
        (("meganb", "isaiahl", "adelev"), 4),  # Redmond + New York + London: about one slot a week
        (("meganb", "diegos", "isaiahl", "leeg"), 20),
        (("adelev", "johannal", "pradeepg"), 20),  # London + Berlin + Bengaluru
        (("priyar", "sujatas", "oliviam"), 12),  # Bengaluru + Kathmandu + Sydney
    ],
)
def test_sample_panels_are_possible_but_not_trivial_in_the_anchor_week(
    doc: Doc, panel: tuple[str, ...], most: int
) -> None:
    slots = _panel_slots(doc, panel)
    assert 1 <= len(slots) <= most
    assert _panel_slots(doc, (*panel[:1], "gerhartm")) == ()  # on parental leave all week
