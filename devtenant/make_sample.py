"""Deterministic generator of devtenant's default tenant "Contoso" and its Playground config.

``python -m devtenant.make_sample`` rewrites ``devtenant/tenants/sample.json`` and
``devtenant/playground/.m365agentsplayground.yml``. Output is a pure function of this module:
no clock, no randomness (ids are UUIDv5 / SHA-256 of fixed names), so re-running it yields
byte-identical files; ``--check`` exits 1 when a committed file is stale.

Dates are written for the weeks around ``ANCHOR`` (a Monday); devtenant shifts them by whole
weeks at load time (``relativeDates.anchor``). Local times are wall-clock times in the series'
own zone, so a series that started before a DST change keeps its local time, as in Exchange.
Each meeting is fanned out into one Graph event per participant mailbox (organizer, attendees,
rooms), as Exchange stores it. Subjects containing ``CANARY-`` (and one canary word in a body
and in a location) exist only so that tests can assert calendar contents never leave OpenSlot.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

JsonDict = dict[str, Any]

ANCHOR = date(2026, 11, 30)  # a Monday: the "current week" of the demo
TENANT_ID = "6f2d5c1e-8d3b-4a7e-9f41-2b7c9e0d1a55"
APP_ID = "b7e3f0a4-2c6d-4e8f-9a1b-3d5c7e9f0a12"
DOMAIN = "contoso.example"
CURRENT_USER = "alexw"  # the hiring manager who chats with the bot
# The Playground schema (0.1.1) wants exactly 5 other users.
PLAYGROUND_USERS = ("meganb", "adelev", "isaiahl", "pattif", "lynner")
SAMPLE_PATH = Path(__file__).with_name("tenants") / "sample.json"
PLAYGROUND_PATH = Path(__file__).with_name("playground") / ".m365agentsplayground.yml"

WINDOWS_ZONES = {  # Windows zone name -> IANA, for the zones used here (CLDR windowsZones)
    "Pacific Standard Time": "America/Los_Angeles",
    "Eastern Standard Time": "America/New_York",
    "GMT Standard Time": "Europe/London",
    "W. Europe Standard Time": "Europe/Berlin",
    "India Standard Time": "Asia/Kolkata",
    "Nepal Standard Time": "Asia/Kathmandu",
    "AUS Eastern Standard Time": "Australia/Sydney",
}
PST, EST, GMT, CET = (
    "Pacific Standard Time",
    "Eastern Standard Time",
    "GMT Standard Time",
    "W. Europe Standard Time",
)
IST, NPT, AET = "India Standard Time", "Nepal Standard Time", "AUS Eastern Standard Time"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
_NS = uuid.UUID(TENANT_ID)


# ---- specification types ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Person:
    """A user; ``hours`` are local ``HH:MM`` working hours on ``days`` in ``tz``."""

    alias: str
    given: str
    surname: str
    title: str
    department: str
    office: str
    tz: str
    hours: tuple[str, str] = ("09:00", "17:00")
    days: tuple[str, ...] = WEEKDAYS
    enabled: bool = True
    has_mailbox: bool = True
    schedulable: bool = True  # member of the application access policy scope group
    panel: bool = False  # member of the engineering hiring panel
    org_role: str = "freeBusyRead"  # the "My Organization" calendar permission
    grants: tuple[tuple[str, str], ...] = ()  # (alias, role) calendar permissions


@dataclass(frozen=True, slots=True)
class Room:
    """A room mailbox."""

    alias: str
    name: str
    capacity: int
    building: str
    floor: int
    tz: str
    accessible: bool = True


@dataclass(frozen=True, slots=True)
class Recur:
    """A Graph ``patternedRecurrence`` in compact form; ``since``/``until`` are ISO dates."""

    kind: str  # daily, weekly, absoluteMonthly, relativeMonthly, absoluteYearly, relativeYearly
    since: str
    until: str | None = None  # None: noEnd
    days: tuple[str, ...] = ()
    interval: int = 1
    index: str = "first"
    month: int = 0
    day_of_month: int = 0


@dataclass(frozen=True, slots=True)
class Meeting:
    """One calendar item, fanned out to every participant mailbox.

    ``start`` is a local ``YYYY-MM-DDTHH:MM`` in ``tz`` (default: the organizer's zone); all-day
    items start at midnight and last ``minutes`` (a multiple of 1440). ``moved`` maps an
    occurrence's original local start to its new local start; ``cancelled`` lists original local
    starts that are removed.
    """

    key: str
    subject: str
    organizer: str
    start: str
    minutes: int
    attendees: tuple[str, ...] = ()
    tz: str | None = None
    recur: Recur | None = None
    show_as: str = "busy"
    sensitivity: str = "normal"
    body: str = ""
    location: str = ""
    online: bool = True
    all_day: bool = False
    is_cancelled: bool = False
    responses: tuple[tuple[str, str], ...] = ()  # (alias, response) for attendees
    optional: tuple[str, ...] = ()
    moved: tuple[tuple[str, str], ...] = ()
    cancelled: tuple[str, ...] = ()
    distribution_list: str = ""  # sent to a list: every enabled mailbox gets a copy


@dataclass(slots=True)
class _Directory:
    people: dict[str, Person] = field(default_factory=dict)
    rooms: dict[str, Room] = field(default_factory=dict)
    events: dict[str, list[JsonDict]] = field(default_factory=dict)  # alias -> events


# ---- ids ----------------------------------------------------------------------------------------
def object_id(kind: str, alias: str) -> str:
    """The fixed directory object id (UUIDv5 under the tenant id) of ``kind``/``alias``."""
    return str(uuid.uuid5(_NS, f"{kind}:{alias}"))


def _digest(name: str, size: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{counter}:{name}".encode()).digest()
        counter += 1
    return out[:size]


def _event_id(name: str) -> str:
    """A Graph/EWS-looking REST id (base64url, no padding) derived from ``name``."""
    return "AAMkAG" + base64.urlsafe_b64encode(_digest(name, 66)).decode("ascii")


def _ical_uid(name: str) -> str:
    return "040000008200E00074C5B7101A82E00800000000" + _digest(name, 24).hex().upper()


# ---- the people, rooms and calendars ------------------------------------------------------------
def _people() -> list[Person]:
    p = Person
    alex_read = (("alexw", "read"),)
    return [
        p(
            "alexw",
            "Alex",
            "Wilber",
            "Engineering Manager, Platform",
            "Engineering",
            "Redmond",
            PST,
            ("08:00", "17:00"),
            panel=True,
        ),
        p(
            "meganb",
            "Megan",
            "Bowen",
            "Senior Software Engineer",
            "Engineering",
            "Redmond",
            PST,
            ("08:00", "16:30"),
            panel=True,
            grants=alex_read,
        ),
        p(
            "diegos",
            "Diego",
            "Siciliani",
            "Software Engineer II",
            "Engineering",
            "Redmond",
            PST,
            ("10:00", "18:00"),
            panel=True,
        ),
        p(
            "leeg",
            "Lee",
            "Gu",
            "Director of Engineering",
            "Engineering",
            "Redmond",
            PST,
            ("08:30", "17:30"),
            panel=True,
            grants=alex_read,
        ),
        p(
            "gradya",
            "Grady",
            "Archie",
            "Software Engineer (part-time)",
            "Engineering",
            "Redmond",
            PST,
            ("09:00", "13:00"),
            panel=True,
        ),
        p(
            "pattif",
            "Patti",
            "Fernandez",
            "Senior Technical Recruiter",
            "Talent Acquisition",
            "Redmond",
            PST,
            ("08:00", "16:30"),
            grants=alex_read,
        ),
        p(
            "debrab",
            "Debra",
            "Berger",
            "Executive Assistant",
            "Executive Office",
            "Redmond",
            PST,
            ("07:30", "16:00"),
        ),
        p(
            "christiec",
            "Christie",
            "Cline",
            "Chief Executive Officer",
            "Executive Office",
            "Redmond",
            PST,
            ("08:00", "18:00"),
            schedulable=False,
            grants=(("debrab", "delegateWithoutPrivateEventAccess"),),
        ),
        p(
            "benw",
            "Ben",
            "Walters",
            "Contract Technical Writer",
            "Engineering",
            "Redmond",
            PST,
            has_mailbox=False,
        ),
        p("lidiah", "Lidia", "Holloway", "Product Manager", "Product", "Redmond", PST, enabled=False),
        p(
            "isaiahl",
            "Isaiah",
            "Langer",
            "Software Engineer",
            "Engineering",
            "New York",
            EST,
            panel=True,
            org_role="limitedRead",
        ),
        p(
            "nestorw",
            "Nestor",
            "Wilke",
            "Site Reliability Engineering Manager",
            "Engineering",
            "New York",
            EST,
            ("08:00", "16:30"),
            panel=True,
            grants=alex_read,
        ),
        p(
            "jonis",
            "Joni",
            "Sherman",
            "QA Engineer",
            "Engineering",
            "New York",
            EST,
            ("08:00", "18:00"),
            days=WEEKDAYS[:4],
            panel=True,
        ),
        p(
            "miriamg",
            "Miriam",
            "Graham",
            "Director of Product",
            "Product",
            "New York",
            EST,
            ("09:00", "17:30"),
            org_role="none",
        ),
        p(
            "alland",
            "Allan",
            "Deyoung",
            "Chief Financial Officer",
            "Finance",
            "New York",
            EST,
            ("08:00", "18:00"),
            schedulable=False,
        ),
        p(
            "raulr",
            "Raul",
            "Razo",
            "Data Engineer",
            "Data",
            "New York",
            "America/New_York",
            ("10:00", "18:00"),
            panel=True,
        ),
        p(
            "adelev",
            "Adele",
            "Vance",
            "Principal Software Engineer",
            "Engineering",
            "London",
            GMT,
            ("10:00", "18:00"),
            panel=True,
            grants=alex_read,
        ),
        p(
            "irvins",
            "Irvin",
            "Sayers",
            "Engineering Manager, London",
            "Engineering",
            "London",
            GMT,
            ("08:30", "17:00"),
            panel=True,
        ),
        p("emilyb", "Emily", "Braun", "Talent Partner, EMEA", "Talent Acquisition", "London", GMT),
        p("cameronw", "Cameron", "White", "Software Engineer", "Engineering", "London", GMT, enabled=False),
        p(
            "lynner",
            "Lynne",
            "Robbins",
            "Technical Program Manager",
            "Engineering",
            "Berlin",
            CET,
            ("08:00", "16:30"),
        ),
        p(
            "johannal",
            "Johanna",
            "Lorenz",
            "Senior Software Engineer",
            "Engineering",
            "Berlin",
            CET,
            panel=True,
        ),
        p(
            "henriettam",
            "Henrietta",
            "Mueller",
            "Software Engineer",
            "Engineering",
            "Berlin",
            "Europe/Berlin",
            ("08:30", "17:00"),
            panel=True,
        ),
        p("enricoc", "Enrico", "Cattaneo", "Data Scientist", "Data", "Berlin", CET, ("10:00", "18:00")),
        p("gerhartm", "Gerhart", "Moller", "Software Engineer", "Engineering", "Berlin", CET),
        p(
            "pradeepg",
            "Pradeep",
            "Gupta",
            "Engineering Manager, India",
            "Engineering",
            "Bengaluru",
            IST,
            ("09:30", "18:00"),
            panel=True,
        ),
        p(
            "priyar",
            "Priya",
            "Raghunathan",
            "Senior Software Engineer",
            "Engineering",
            "Bengaluru",
            IST,
            ("10:00", "18:00"),
            panel=True,
        ),
        p(
            "arjunm",
            "Arjun",
            "Mehta",
            "Software Engineer",
            "Engineering",
            "Bengaluru",
            IST,
            ("09:00", "17:30"),
        ),
        p(
            "kavyai",
            "Kavya",
            "Iyer",
            "Software Engineer in Test",
            "Engineering",
            "Bengaluru",
            "Asia/Kolkata",
            ("11:00", "19:30"),
        ),
        p(
            "sujatas",
            "Sujata",
            "Shrestha",
            "Software Engineer",
            "Engineering",
            "Kathmandu",
            NPT,
            ("09:30", "17:30"),
            panel=True,
        ),
        p(
            "bikasht",
            "Bikash",
            "Thapa",
            "Support Engineer",
            "Customer Success",
            "Kathmandu",
            NPT,
            ("10:00", "17:00"),
            days=("sunday", "monday", "tuesday", "wednesday", "thursday"),
        ),
        p(
            "oliviam",
            "Olivia",
            "Nguyen",
            "Site Reliability Engineer",
            "Engineering",
            "Sydney",
            AET,
            ("08:30", "17:00"),
            panel=True,
        ),
        p("jackm", "Jack", "Mitchell", "Software Engineer", "Engineering", "Sydney", AET, ("08:00", "16:30")),
        p(
            "islac",
            "Isla",
            "Campbell",
            "Senior Software Engineer (remote)",
            "Engineering",
            "Lord Howe Island",
            "Australia/Lord_Howe",
            panel=True,
        ),
    ]


def _rooms() -> list[Room]:
    return [
        Room("rainier", "Redmond 1.01 Rainier", 8, "Redmond B92", 1, PST),
        Room("baker", "Redmond 2.14 Baker", 4, "Redmond B92", 2, PST, accessible=False),
        Room("boardroom", "Redmond Board Room", 16, "Redmond B92", 3, PST),
        Room("thames", "London 3.02 Thames", 6, "London Paddington", 3, GMT),
        Room("shard", "London 3.10 Shard", 10, "London Paddington", 3, GMT),
        Room("cubbon", "Bengaluru 5.01 Cubbon", 8, "Bengaluru Prestige Tech Park", 5, IST),
        # Interview rooms, so that a loop's sessions have rooms to choose from (issue 17).
        Room("olympic", "Redmond 1.05 Olympic", 4, "Redmond B92", 1, PST),
        Room("cascade", "Redmond 2.07 Cascade", 6, "Redmond B92", 2, PST),
        Room("tower", "London 2.04 Tower", 4, "London Paddington", 2, GMT),
        Room("lalbagh", "Bengaluru 5.03 Lalbagh", 4, "Bengaluru Prestige Tech Park", 5, IST),
    ]


# ---- loop templates (OpenSlot seed data, not a Graph resource) --------------------------------------
def _mail(alias: str) -> str:
    return f"{alias}@{DOMAIN}"


def _loop_templates() -> list[JsonDict]:
    """Interview loop templates in the JSON shape of ``calendar_backend.loop_templates``.

    Their panels span Redmond, New York, London, Berlin and Bengaluru, so a loop has to thread
    several working days through one candidate day (and sometimes needs a second day).
    """
    return [
        {
            "name": "Backend engineer onsite",
            "role": "Backend engineer",
            "order": "free",
            "breaks": {"min_minutes": 0, "max_minutes": 15},
            "max_days": 1,
            "candidate_day": {"start": "08:00", "end": "20:00"},
            "sessions": [
                {
                    "title": "Intro",
                    "minutes": 30,
                    "interviewers": [_mail("alexw")],
                    "room": {"any_of": [_mail("olympic"), _mail("baker")]},
                    "position": "first",
                },
                {
                    "title": "System design",
                    "minutes": 60,
                    "interviewers": [_mail("meganb"), _mail("leeg")],
                    "room": {"min_capacity": 4, "building": "Redmond B92"},
                },
                {"title": "Coding", "minutes": 60, "interviewers": [_mail("isaiahl"), _mail("nestorw")]},
                {"title": "Values", "minutes": 45, "interviewers": [_mail("adelev")]},
                {
                    "title": "Lunch",
                    "minutes": 45,
                    "interviewers": [_mail("diegos")],
                    "window": {"start": "11:30", "end": "13:30"},
                },
            ],
        },
        {
            "name": "Data engineer loop",
            "role": "Data engineer",
            "order": "fixed",
            "breaks": {"min_minutes": 0, "max_minutes": 30},
            "max_days": 2,
            "candidate_day": {"start": "08:00", "end": "20:00"},
            "sessions": [
                {
                    "title": "Intro",
                    "minutes": 30,
                    "interviewers": [_mail("irvins")],
                    "room": {"any_of": [_mail("tower"), _mail("thames")]},
                },
                {"title": "Pipelines", "minutes": 60, "interviewers": [_mail("pradeepg"), _mail("priyar")]},
                {"title": "SQL", "minutes": 45, "interviewers": [_mail("johannal"), _mail("henriettam")]},
                {"title": "Values", "minutes": 30, "interviewers": [_mail("adelev")]},
            ],
        },
        {
            "name": "Frontend screen and pairing",
            "role": "Frontend engineer",
            "order": "fixed",
            "breaks": {"min_minutes": 0, "max_minutes": 60},
            "max_days": 1,
            "candidate_day": {"start": "08:00", "end": "20:00"},
            "sessions": [
                {"title": "Phone screen", "minutes": 30, "interviewers": [_mail("jonis")]},
                {
                    "title": "Pair programming",
                    "minutes": 90,
                    "interviewers": [_mail("raulr"), _mail("gradya")],
                },
            ],
        },
    ]


def _checked_templates(d: _Directory) -> list[JsonDict]:
    """The loop templates, after checking that they name only what the tenant has: schedulable
    panel members with a mailbox, known rooms, and room needs some room meets."""
    templates = _loop_templates()
    people = {
        _mail(a) for a, p in d.people.items() if p.panel and p.schedulable and p.has_mailbox and p.enabled
    }
    rooms = {_mail(a): r for a, r in d.rooms.items()}
    for template in templates:
        for session in template["sessions"]:
            where = f"{template['name']}: {session['title']}"
            unknown = [m for m in session["interviewers"] if m not in people]
            need = session.get("room", {})
            unknown += [m for m in need.get("any_of", []) if m not in rooms]
            if unknown:
                raise ValueError(f"{where}: not a schedulable panel member or room: {unknown}")
            if (
                "any_of" not in need
                and need
                and not any(
                    r.capacity >= need.get("min_capacity", 0)
                    and r.building == need.get("building", r.building)
                    for r in rooms.values()
                )
            ):
                raise ValueError(f"{where}: no room meets {need}")
    return templates


# ---- interviewer pools (OpenSlot seed data, not a Graph resource) --------------------------------
def _pools() -> list[JsonDict]:
    """Interviewer pools as `python -m calendar_backend pool ...` makes them (devtenant/stack.py runs
    those commands): "Backend", six listed members over four zones with their own caps, hot hours and
    weeks, and one trainee; "Engineering panel", drawn live from the Entra group of the same name.
    Alex (the Playground's signed-in manager) owns both."""
    return [
        {
            "name": "Backend",
            "role": "backend",
            "owner": _mail(CURRENT_USER),
            "weeklyCap": 4,
            "dailyCap": 2,
            "members": [
                {
                    "address": _mail("meganb"),
                    "zone": "America/Los_Angeles",
                    "weekStart": "sun",
                    "weeklyCap": 3,
                    "dailyCap": 1,
                    "hot": ["10:00-12:00"],
                },
                {"address": _mail("leeg"), "zone": "America/Los_Angeles", "hot": ["13:00-16:00"]},
                {"address": _mail("isaiahl"), "zone": "America/New_York", "weeklyCap": 5},
                {"address": _mail("nestorw"), "zone": "America/New_York", "weeklyCap": 2, "dailyCap": 1},
                {"address": _mail("adelev"), "zone": "Europe/London"},
                {"address": _mail("johannal"), "zone": "Europe/Berlin", "weeklyCap": 3, "dailyCap": 1},
            ],
            "trainees": [
                {"address": _mail("pattif"), "zone": "America/Los_Angeles", "shadow": 2, "reverseShadow": 2}
            ],
        },
        {
            "name": "Engineering panel",
            "role": "any engineer",
            "owner": _mail(CURRENT_USER),
            "weeklyCap": 3,
            "dailyCap": 1,
            "group": object_id("group", "panel-engineering"),
            "members": [],
            "trainees": [],
        },
    ]


def _pooled_loop_templates() -> list[JsonDict]:
    """Loop templates whose sessions draw interviewers from the sample pools (kept apart from
    ``loopTemplates``, which name every interviewer)."""
    return [
        {
            "name": "Backend pool onsite",
            "role": "Backend engineer",
            "order": "fixed",
            "breaks": {"min_minutes": 0, "max_minutes": 60},
            "max_days": 2,
            "candidate_day": {"start": "08:00", "end": "20:00"},
            "sessions": [
                {"title": "Intro", "minutes": 30, "interviewers": [_mail(CURRENT_USER)]},
                {"title": "System design", "minutes": 60, "pool": {"name": "Backend", "count": 2}},
                {
                    "title": "Coding",
                    "minutes": 60,
                    "interviewers": [_mail("diegos")],
                    "pool": {"name": "Backend", "count": 1},
                },
            ],
        }
    ]


def _checked_pools(d: _Directory) -> list[JsonDict]:
    """The pools, after checking that every member and trainee is a schedulable mailbox, every
    group is one of the tenant's, and every pooled template draws from a pool that exists."""
    pools = _pools()
    people = {_mail(a) for a, p in d.people.items() if p.schedulable and p.has_mailbox and p.enabled}
    groups = {g["id"] for g in _groups(d)}
    for pool in pools:
        unknown = [m["address"] for m in (*pool["members"], *pool["trainees"]) if m["address"] not in people]
        if unknown or ("group" in pool and pool["group"] not in groups):
            raise ValueError(f"pool {pool['name']}: not a schedulable mailbox or group: {unknown}")
    names = {p["name"] for p in pools}
    for template in _pooled_loop_templates():
        if any("pool" in s and s["pool"]["name"] not in names for s in template["sessions"]):
            raise ValueError(f"{template['name']}: draws from an unknown pool")
    return pools


_US = (
    "alexw",
    "meganb",
    "diegos",
    "leeg",
    "gradya",
    "pattif",
    "debrab",
    "christiec",
    "isaiahl",
    "nestorw",
    "jonis",
    "miriamg",
    "alland",
    "raulr",
)
_UK = ("adelev", "irvins", "emilyb")
_INDIA = ("pradeepg", "priyar", "arjunm", "kavyai")


def _recurring() -> list[Meeting]:
    m, r = Meeting, Recur
    return [
        m(
            "platform-standup",
            "Platform team standup",
            "alexw",
            "2026-08-03T09:00",
            15,
            ("meganb", "diegos", "gradya"),
            recur=r("weekly", "2026-08-03", days=WEEKDAYS),
            moved=(("2026-12-02T09:00", "2026-12-02T09:30"),),
            cancelled=("2026-12-11T09:00",),
        ),
        m(
            "blr-standup",
            "Bengaluru team daily standup",
            "pradeepg",
            "2026-10-05T10:00",
            15,
            ("priyar", "arjunm", "kavyai", "cubbon"),
            location="Bengaluru 5.01 Cubbon",
            recur=r("daily", "2026-10-05", "2027-03-31"),
            cancelled=("2026-12-03T10:00",),
        ),
        m(
            "oncall-handoff",
            "On-call handoff (follow the sun)",
            "oliviam",
            "2026-09-01T08:30",
            15,
            ("jackm", "nestorw"),
            recur=r("daily", "2026-09-01"),
        ),
        m(
            "ny-eng-sync",
            "NY engineering sync",
            "nestorw",
            "2026-09-14T11:00",
            60,
            ("isaiahl", "jonis", "raulr"),
            recur=r("weekly", "2026-09-14", days=("monday",)),
        ),
        m(
            "apac-sync",
            "APAC engineering sync",
            "pradeepg",
            "2026-09-09T09:30",
            60,
            ("priyar", "sujatas", "oliviam", "jackm", "islac"),
            recur=r("weekly", "2026-09-09", days=("wednesday",), interval=2),
        ),
        m(
            "platform-data-sync",
            "Platform ↔ Data sync",
            "leeg",
            "2026-09-08T08:00",
            60,
            ("alexw", "meganb", "raulr", "enricoc"),
            recur=r("weekly", "2026-09-08", days=("tuesday",), interval=2),
        ),
        m(
            "cross-site-arch",
            "Cross-site architecture review",
            "adelev",
            "2026-09-03T16:00",
            60,
            ("irvins", "johannal", "henriettam", "isaiahl", "meganb", "thames"),
            location="London 3.02 Thames",
            recur=r("weekly", "2026-09-03", days=("thursday",), interval=2),
            responses=(("meganb", "tentativelyAccepted"),),
        ),
        m(
            "1on1-alex-megan",
            "Alex / Megan 1:1",
            "alexw",
            "2026-08-05T08:00",
            30,
            ("meganb",),
            recur=r("weekly", "2026-08-05", days=("wednesday",)),
            online=False,
            moved=(("2026-12-09T08:00", "2026-12-10T08:30"),),
        ),
        m(
            "1on1-alex-diego",
            "Alex / Diego 1:1",
            "alexw",
            "2026-08-04T13:00",
            30,
            ("diegos",),
            recur=r("weekly", "2026-08-04", days=("tuesday",)),
        ),
        m(
            "1on1-alex-grady",
            "Alex / Grady 1:1",
            "alexw",
            "2026-08-06T10:00",
            30,
            ("gradya",),
            recur=r("weekly", "2026-08-06", days=("thursday",), interval=2),
        ),
        m(
            "1on1-lee-alex",
            "Lee / Alex 1:1",
            "leeg",
            "2026-08-03T14:00",
            45,
            ("alexw",),
            recur=r("weekly", "2026-08-03", days=("monday",)),
            cancelled=("2026-12-28T14:00",),
        ),
        m(
            "1on1-irvin-adele",
            "Irvin / Adele 1:1",
            "irvins",
            "2026-09-07T11:00",
            30,
            ("adelev",),
            recur=r("weekly", "2026-09-07", days=("monday",)),
        ),
        m(
            "1on1-nestor-isaiah",
            "Nestor / Isaiah 1:1",
            "nestorw",
            "2026-09-08T10:00",
            30,
            ("isaiahl",),
            recur=r("weekly", "2026-09-08", days=("tuesday",)),
        ),
        m(
            "1on1-lynne-johanna",
            "Lynne / Johanna 1:1",
            "lynner",
            "2026-09-09T10:00",
            30,
            ("johannal",),
            recur=r("weekly", "2026-09-09", days=("wednesday",)),
        ),
        m(
            "1on1-pradeep-priya",
            "Pradeep / Priya 1:1",
            "pradeepg",
            "2026-09-10T15:00",
            30,
            ("priyar",),
            recur=r("weekly", "2026-09-10", days=("thursday",)),
        ),
        m(
            "berlin-planning",
            "Sprint planning (Berlin)",
            "lynner",
            "2026-09-07T09:30",
            90,
            ("johannal", "henriettam", "enricoc", "gerhartm"),
            recur=r("weekly", "2026-09-07", days=("monday",), interval=2),
        ),
        m(
            "all-hands",
            "Contoso monthly all-hands",
            "christiec",
            "2026-01-01T09:00",
            60,
            ("boardroom",),
            location="Redmond Board Room",
            recur=r("relativeMonthly", "2026-01-01", days=("thursday",), index="first"),
            distribution_list="everyone",
        ),
        m(
            "patch-review",
            "Monthly security patch review",
            "nestorw",
            "2026-01-15T13:00",
            45,
            ("oliviam", "raulr"),
            recur=r("absoluteMonthly", "2026-01-15", day_of_month=15),
        ),
        m(
            "holiday-party",
            "London office holiday party",
            "emilyb",
            "2024-12-17T17:00",
            180,
            ("adelev", "irvins", "shard"),
            location="London 3.10 Shard",
            online=False,
            recur=r("absoluteYearly", "2024-12-17", month=12, day_of_month=17),
        ),
        m(
            "calibration",
            "Annual engineering calibration",
            "leeg",
            "2024-12-10T13:00",
            180,
            ("alexw", "miriamg", "pattif", "rainier"),
            location="Redmond 1.01 Rainier",
            recur=r("relativeYearly", "2024-12-10", days=("tuesday",), index="second", month=12),
        ),
        m(
            "platform-planning",
            "Sprint planning (Platform)",
            "alexw",
            "2026-08-03T10:00",
            90,
            ("meganb", "diegos", "gradya", "rainier"),
            location="Redmond 1.01 Rainier",
            recur=r("weekly", "2026-08-03", days=("monday",), interval=2),
        ),
        m(
            "platform-grooming",
            "Platform backlog grooming",
            "alexw",
            "2026-08-06T11:00",
            60,
            ("meganb", "diegos"),
            recur=r("weekly", "2026-08-06", days=("thursday",)),
        ),
        m(
            "incident-review",
            "Weekly incident review",
            "nestorw",
            "2026-09-02T16:00",
            60,
            ("meganb", "diegos", "isaiahl", "raulr"),
            tz=EST,
            recur=r("weekly", "2026-09-02", days=("wednesday",)),
            responses=(("raulr", "tentativelyAccepted"),),
        ),
        m(
            "slt",
            "Leadership team weekly",
            "christiec",
            "2026-01-05T10:00",
            60,
            ("leeg", "miriamg", "alland", "debrab", "boardroom"),
            location="Redmond Board Room",
            recur=r("weekly", "2026-01-05", days=("monday",)),
        ),
        m(
            "em-sync",
            "Engineering managers sync",
            "leeg",
            "2026-08-31T08:00",
            60,
            ("alexw", "nestorw", "irvins"),
            recur=r("weekly", "2026-08-31", days=("monday",)),
        ),
        m(
            "pairing",
            "Pairing: sync engine",
            "diegos",
            "2026-10-05T15:00",
            90,
            ("meganb",),
            recur=r("weekly", "2026-10-05", days=("monday", "wednesday")),
            cancelled=("2026-12-02T15:00",),
        ),
        m(
            "office-hours",
            "Code review office hours",
            "isaiahl",
            "2026-09-04T13:00",
            60,
            ("jonis", "raulr"),
            recur=r("weekly", "2026-09-04", days=("friday",)),
        ),
        m(
            "lunch-lee",
            "Lunch",
            "leeg",
            "2026-08-03T12:00",
            45,
            online=False,
            sensitivity="private",
            recur=r("weekly", "2026-08-03", days=WEEKDAYS),
        ),
        m(
            "mentoring",
            "Mentoring: Grady / Megan",
            "meganb",
            "2026-09-10T11:00",
            30,
            ("gradya",),
            recur=r("weekly", "2026-09-10", days=("thursday",), interval=2),
        ),
        m(
            "berlin-standup",
            "Berlin team standup",
            "lynner",
            "2026-09-07T09:15",
            15,
            ("johannal", "henriettam", "enricoc"),
            recur=r("weekly", "2026-09-07", days=WEEKDAYS),
        ),
        m(
            "london-standup",
            "London team standup",
            "irvins",
            "2026-09-07T10:15",
            15,
            ("adelev", "emilyb"),
            recur=r("weekly", "2026-09-07", days=WEEKDAYS),
        ),
        m(
            "ny-standup",
            "NY team standup",
            "nestorw",
            "2026-09-07T09:30",
            15,
            ("isaiahl", "jonis", "raulr"),
            recur=r("weekly", "2026-09-07", days=WEEKDAYS[:4]),
        ),
        m(
            "focus-diego",
            "Focus time",
            "diegos",
            "2026-09-01T14:00",
            120,
            online=False,
            show_as="free",
            recur=r("weekly", "2026-09-01", days=("tuesday", "thursday")),
        ),
        m(
            "physio-adele",
            "Physio",
            "adelev",
            "2026-10-06T10:00",
            60,
            online=False,
            sensitivity="private",
            recur=r("weekly", "2026-10-06", "2027-01-26", days=("tuesday",)),
        ),
        m(
            "wfh-megan",
            "Working from home",
            "meganb",
            "2026-09-04T00:00",
            1440,
            online=False,
            all_day=True,
            show_as="workingElsewhere",
            recur=r("weekly", "2026-09-04", days=("friday",)),
        ),
        m(
            "school-run-johanna",
            "School pick-up",
            "johannal",
            "2026-09-07T15:30",
            60,
            online=False,
            sensitivity="personal",
            recur=r("weekly", "2026-09-07", days=("monday", "wednesday")),
        ),
    ]


def _single() -> list[Meeting]:
    m = Meeting
    return [
        m(
            "roadmap",
            "Q3 roadmap review",
            "miriamg",
            "2026-12-01T12:00",
            90,
            ("alexw", "leeg", "meganb", "isaiahl", "raulr"),
            tz=EST,
        ),
        m(
            "loop-1",
            "Interview: Senior SWE candidate (loop 1)",
            "pattif",
            "2026-12-02T10:00",
            60,
            ("meganb", "diegos", "rainier"),
            location="Redmond 1.01 Rainier",
        ),
        m(
            "vendor-demo",
            "Vendor demo: CI analytics",
            "nestorw",
            "2026-12-02T11:00",
            60,
            ("alexw", "meganb", "isaiahl"),
            responses=(("meganb", "declined"), ("isaiahl", "declined")),
        ),
        m(
            "guild",
            "Architecture guild: event sourcing",
            "johannal",
            "2026-12-03T17:00",
            60,
            ("meganb", "diegos", "adelev", "irvins"),
            responses=(("meganb", "declined"), ("diegos", "tentativelyAccepted"), ("irvins", "notResponded")),
        ),
        m(
            "debrief",
            "Candidate debrief (hold)",
            "pattif",
            "2026-12-04T13:00",
            30,
            ("alexw", "leeg"),
            show_as="tentative",
        ),
        m(
            "doctor-megan",
            "Doctor appointment",
            "meganb",
            "2026-12-03T14:00",
            60,
            online=False,
            sensitivity="private",
        ),
        m(
            "canary-acq",
            "CANARY-7f3a Confidential acquisition talks",
            "christiec",
            "2026-12-01T15:00",
            90,
            ("alland", "leeg", "miriamg", "baker"),
            tz=PST,
            location="Redmond 2.14 Baker",
            online=False,
            sensitivity="confidential",
        ),
        m(
            "canary-hearing",
            "CANARY-3b9e Custody hearing",
            "isaiahl",
            "2026-12-04T09:00",
            180,
            online=False,
            sensitivity="private",
            show_as="oof",
        ),
        m(
            "canary-comp",
            "Compensation review",
            "leeg",
            "2026-12-02T15:00",
            60,
            ("pattif",),
            body="Agenda: CANARY-body-9d41 salary bands for the platform team (do not forward).",
        ),
        m(
            "canary-lunch",
            "Offsite lunch with Fabrikam",
            "adelev",
            "2026-12-03T12:30",
            90,
            location="CANARY-loc-e2a8 The Ivy, Covent Garden",
            online=False,
        ),
        m(
            "canary-adele",
            "CANARY-c41d Reorg planning with HR",
            "adelev",
            "2026-12-07T16:30",
            60,
            ("emilyb",),
            sensitivity="private",
        ),
        m(
            "team-lunch",
            "Canceled: Team holiday lunch",
            "alexw",
            "2026-12-04T12:00",
            60,
            ("meganb", "diegos", "gradya"),
            is_cancelled=True,
            online=False,
        ),
        m(
            "loop-2",
            "Interview: Data Engineer candidate",
            "emilyb",
            "2026-12-08T14:00",
            60,
            ("irvins", "enricoc", "thames"),
            location="London 3.02 Thames",
            tz=GMT,
        ),
        m(
            "board-prep",
            "Board meeting prep",
            "debrab",
            "2026-12-09T10:00",
            120,
            ("christiec", "alland", "boardroom"),
            location="Redmond Board Room",
            online=False,
        ),
        m(
            "design-review",
            "Design review: calendar sync v2",
            "meganb",
            "2026-12-10T09:30",
            60,
            ("alexw", "diegos", "isaiahl", "adelev"),
            responses=(("adelev", "tentativelyAccepted"),),
        ),
        m(
            "customer-northwind",
            "Customer call: Northwind onboarding",
            "isaiahl",
            "2026-12-03T13:00",
            60,
            ("nestorw",),
        ),
        m(
            "loop-3",
            "Interview: Staff SRE candidate",
            "pattif",
            "2026-12-15T09:00",
            90,
            ("leeg", "nestorw", "baker"),
            location="Redmond 2.14 Baker",
        ),
        m(
            "offsite-planning",
            "2027 planning offsite",
            "leeg",
            "2026-12-16T09:00",
            420,
            ("alexw", "miriamg", "boardroom"),
            location="Redmond Board Room",
            online=False,
        ),
        m(
            "perf-reviews",
            "Performance review: Diego",
            "alexw",
            "2026-12-17T13:00",
            60,
            ("diegos",),
            sensitivity="private",
        ),
        m(
            "retro",
            "Platform year-end retro",
            "alexw",
            "2026-12-22T10:00",
            90,
            ("meganb", "diegos", "gradya", "rainier"),
            location="Redmond 1.01 Rainier",
        ),
        m(
            "security-training",
            "Secure coding training",
            "oliviam",
            "2026-12-09T10:00",
            120,
            ("jackm", "islac"),
            tz=AET,
        ),
        m(
            "bikash-escalation",
            "Customer escalation: Northwind",
            "bikasht",
            "2026-11-29T11:00",
            60,
            ("sujatas",),
        ),
    ]


def _blocks() -> list[Meeting]:
    """All-day events, out-of-office and working-elsewhere blocks."""
    m = Meeting
    blocks = [
        m(
            "thanksgiving-" + a,
            "Thanksgiving (US office holiday)",
            a,
            "2026-11-26T00:00",
            2880,
            online=False,
            all_day=True,
            show_as="oof",
        )
        for a in _US
        if a != "alland"
    ]
    blocks += [
        m(
            "xmas-" + a,
            "Christmas and Boxing Day (UK)",
            a,
            "2026-12-25T00:00",
            4320,
            online=False,
            all_day=True,
            show_as="oof",
        )
        for a in _UK
    ]
    blocks += [
        m(
            "blr-holiday-" + a,
            "Office holiday (Bengaluru)",
            a,
            "2026-12-04T00:00",
            1440,
            online=False,
            all_day=True,
            show_as="oof",
        )
        for a in _INDIA
    ]
    return [
        *blocks,
        m(
            "vacation-lynne",
            "Vacation \u2013 Lisbon",
            "lynner",
            "2026-12-07T00:00",
            7200,
            online=False,
            all_day=True,
            show_as="oof",
        ),
        m(
            "leave-gerhart",
            "Parental leave",
            "gerhartm",
            "2026-11-09T00:00",
            60 * 24 * 61,
            online=False,
            all_day=True,
            show_as="oof",
        ),
        m(
            "conf-diego",
            "KubeCon North America (Salt Lake City)",
            "diegos",
            "2026-12-14T00:00",
            4320,
            online=False,
            all_day=True,
            show_as="oof",
        ),
        m(
            "boston-nestor",
            "Working from the Boston office",
            "nestorw",
            "2026-12-01T00:00",
            2880,
            online=False,
            all_day=True,
            show_as="workingElsewhere",
        ),
        m(
            "birthday-megan",
            "Mum's birthday",
            "meganb",
            "2026-12-08T00:00",
            1440,
            online=False,
            all_day=True,
            show_as="free",
            sensitivity="private",
        ),
        m(
            "oof-johanna",
            "Out of office (afternoon)",
            "johannal",
            "2026-12-04T12:00",
            300,
            online=False,
            show_as="oof",
        ),
        m(
            "oncall-olivia",
            "On call (primary)",
            "oliviam",
            "2026-11-30T00:00",
            10080,
            online=False,
            all_day=True,
            show_as="free",
        ),
    ]


# ---- time ---------------------------------------------------------------------------------------
def zone(name: str) -> ZoneInfo:
    """The IANA zone of a Windows or IANA zone name.

    Raises:
        zoneinfo.ZoneInfoNotFoundError: unknown name.
    """
    return ZoneInfo(WINDOWS_ZONES.get(name, name))


def _local(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _dtz(value: datetime, tz: str) -> JsonDict:
    return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": tz}


def _utc(value: datetime, tz: str) -> str:
    return value.replace(tzinfo=zone(tz)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _recurrence(rec: Recur, tz: str) -> JsonDict:
    pattern = {
        "type": rec.kind,
        "interval": rec.interval,
        "month": rec.month,
        "dayOfMonth": rec.day_of_month,
        "firstDayOfWeek": "sunday",
        "index": rec.index,
    }
    if rec.days:
        pattern["daysOfWeek"] = list(rec.days)
    return {
        "pattern": pattern,
        "range": {
            "type": "endDate" if rec.until else "noEnd",
            "startDate": rec.since,
            "endDate": rec.until or "0001-01-01",
            "recurrenceTimeZone": tz,
            "numberOfOccurrences": 0,
        },
    }


# ---- fan-out ------------------------------------------------------------------------------------
def _address(d: _Directory, alias: str) -> JsonDict:
    if alias in d.rooms:
        return {"name": d.rooms[alias].name, "address": f"{alias}@{DOMAIN}"}
    person = d.people[alias]
    return {"name": f"{person.given} {person.surname}", "address": f"{alias}@{DOMAIN}"}


def _response(mtg: Meeting, alias: str) -> str:
    if alias == mtg.organizer:
        return "organizer"
    return dict(mtg.responses).get(alias, "accepted")


def _attendees(d: _Directory, mtg: Meeting) -> list[JsonDict]:
    if mtg.distribution_list:
        listed: list[JsonDict] = [
            {
                "type": "required",
                "status": {"response": "none"},
                "emailAddress": {"name": "Everyone at Contoso", "address": f"everyone@{DOMAIN}"},
            }
        ]
    else:
        listed = []
    for alias in (*mtg.attendees, *mtg.optional):
        kind = "resource" if alias in d.rooms else ("optional" if alias in mtg.optional else "required")
        listed.append(
            {"type": kind, "status": {"response": _response(mtg, alias)}, "emailAddress": _address(d, alias)}
        )
    return listed


def _show_as(mtg: Meeting, response: str) -> str:
    if response in ("tentativelyAccepted", "notResponded") and mtg.show_as == "busy":
        return "tentative"  # Exchange shows unanswered and tentative invitations as tentative
    return mtg.show_as


def _participants(d: _Directory, mtg: Meeting) -> list[str]:
    if mtg.distribution_list:
        everyone = [a for a, p in d.people.items() if p.enabled and p.has_mailbox]
        return [*everyone, *(a for a in mtg.attendees if a in d.rooms)]
    present = [mtg.organizer, *mtg.attendees, *mtg.optional]
    return [a for a in present if a in d.rooms or (d.people[a].has_mailbox)]


def _base_event(d: _Directory, mtg: Meeting, owner: str, tz: str) -> JsonDict:
    start = _local(mtg.start)
    end = start + timedelta(minutes=mtg.minutes)
    response = _response(mtg, owner)
    location = mtg.location
    return {
        "id": _event_id(f"{mtg.key}/{owner}"),
        "iCalUId": _ical_uid(mtg.key),
        "subject": mtg.subject,
        "bodyPreview": mtg.body[:255],
        "body": {"contentType": "text", "content": mtg.body},
        "importance": "normal",
        "sensitivity": mtg.sensitivity,
        "isAllDay": mtg.all_day,
        "isCancelled": mtg.is_cancelled,
        "isOrganizer": owner == mtg.organizer,
        "responseRequested": True,
        "showAs": _show_as(mtg, response),
        "type": "seriesMaster" if mtg.recur else "singleInstance",
        "responseStatus": {"response": response, "time": "0001-01-01T00:00:00Z"},
        "start": _dtz(start, tz),
        "end": _dtz(end, tz),
        "originalStartTimeZone": tz,
        "originalEndTimeZone": tz,
        "location": {"displayName": location, "locationType": "default" if location else "none"},
        "locations": [{"displayName": location, "locationType": "default"}] if location else [],
        "recurrence": _recurrence(mtg.recur, tz) if mtg.recur else None,
        "attendees": _attendees(d, mtg),
        "organizer": {"emailAddress": _address(d, mtg.organizer)},
        "isOnlineMeeting": mtg.online,
        "onlineMeetingProvider": "teamsForBusiness" if mtg.online else "unknown",
        "onlineMeeting": (
            {
                "joinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
                f"{_digest(mtg.key, 24).hex()}%40thread.v2/0"
            }
            if mtg.online
            else None
        ),
    }


def _exceptions(master: JsonDict, mtg: Meeting, owner: str, tz: str) -> list[JsonDict]:
    out: list[JsonDict] = []
    length = timedelta(minutes=mtg.minutes)
    changes = [(orig, new) for orig, new in mtg.moved] + [(orig, None) for orig in mtg.cancelled]
    for original, moved_to in changes:
        exc = {k: v for k, v in master.items() if k != "recurrence"}
        start = _local(moved_to or original)
        exc.update(
            {
                "id": _event_id(f"{mtg.key}/{owner}/{original}"),
                "type": "exception",
                "seriesMasterId": master["id"],
                "originalStart": _utc(_local(original), tz),
                "start": _dtz(start, tz),
                "end": _dtz(start + length, tz),
                "isCancelled": moved_to is None,
                "recurrence": None,
            }
        )
        if moved_to is None:
            exc["subject"] = "Canceled: " + mtg.subject
        out.append(exc)
    return out


def _fan_out(d: _Directory, mtg: Meeting) -> None:
    tz = mtg.tz or d.people[mtg.organizer].tz
    for owner in _participants(d, mtg):
        master = _base_event(d, mtg, owner, tz)
        d.events.setdefault(owner, []).append(master)
        if mtg.recur:
            d.events[owner].extend(_exceptions(master, mtg, owner, tz))


# ---- resources ----------------------------------------------------------------------------------
def _permission(owner: str, name: str, address: str, role: str) -> JsonDict:
    return {
        "id": _event_id(f"perm/{owner}/{address or name}")[:40],
        "emailAddress": {"name": name, "address": address},
        "isRemovable": bool(address),
        "isInsideOrganization": True,
        "role": role,
    }


def _working_hours(person: Person) -> JsonDict:
    return {
        "daysOfWeek": list(person.days),
        "startTime": f"{person.hours[0]}:00.0000000",
        "endTime": f"{person.hours[1]}:00.0000000",
        "timeZone": {"name": person.tz},
    }


def _user(d: _Directory, person: Person) -> JsonDict:
    mail = f"{person.alias}@{DOMAIN}"
    perms = [_permission(person.alias, "My Organization", "", person.org_role)]
    perms += [
        _permission(person.alias, _address(d, a)["name"], f"{a}@{DOMAIN}", role) for a, role in person.grants
    ]
    return {
        "id": object_id("user", person.alias),
        "displayName": f"{person.given} {person.surname}",
        "givenName": person.given,
        "surname": person.surname,
        "userPrincipalName": mail,
        "mail": mail if person.has_mailbox else None,
        "jobTitle": person.title,
        "department": person.department,
        "officeLocation": person.office,
        "usageLocation": _usage_location(person.office),
        "preferredLanguage": "en-US",
        "accountEnabled": person.enabled,
        "hasMailbox": person.has_mailbox,
        "mailboxSettings": {"timeZone": person.tz, "workingHours": _working_hours(person)},
        "calendarPermissions": perms if person.has_mailbox else [],
        "events": sorted(d.events.get(person.alias, []), key=_event_order),
    }


def _usage_location(office: str) -> str:
    countries = {
        "Redmond": "US",
        "New York": "US",
        "London": "GB",
        "Berlin": "DE",
        "Bengaluru": "IN",
        "Kathmandu": "NP",
        "Sydney": "AU",
        "Lord Howe Island": "AU",
    }
    return countries[office]


def _event_order(event: JsonDict) -> tuple[str, str]:
    return (str(event["start"]["dateTime"]), str(event["id"]))


def _room(d: _Directory, room: Room) -> JsonDict:
    return {
        "id": object_id("room", room.alias),
        "displayName": room.name,
        "emailAddress": f"{room.alias}@{DOMAIN}",
        "nickname": room.name.split()[-1],
        "capacity": room.capacity,
        "building": room.building,
        "floorNumber": room.floor,
        "floorLabel": str(room.floor),
        "bookingType": "standard",
        "isWheelchairAccessible": room.accessible,
        "audioDeviceName": "Teams Room",
        "videoDeviceName": "Teams Room",
        "displayDeviceName": "Surface Hub",
        "mailboxSettings": {"timeZone": room.tz},
        "events": sorted(d.events.get(room.alias, []), key=_event_order),
    }


def _groups(d: _Directory) -> list[JsonDict]:
    schedulable = [object_id("user", a) for a, p in d.people.items() if p.schedulable]
    schedulable += [object_id("room", a) for a in d.rooms]
    panel = [object_id("user", a) for a, p in d.people.items() if p.panel]
    return [
        {
            "id": object_id("group", "schedulable"),
            "displayName": "Schedulable interviewers",
            "description": "Mailboxes OpenSlot may read (application access policy scope)",
            "mail": f"schedulable@{DOMAIN}",
            "mailNickname": "schedulable",
            "mailEnabled": True,
            "securityEnabled": True,
            "groupTypes": [],
            "members": schedulable,
        },
        {
            "id": object_id("group", "panel-engineering"),
            "displayName": "Hiring panel \u2013 Engineering",
            "description": "Engineers trained to interview",
            "mail": f"panel-eng@{DOMAIN}",
            "mailNickname": "panel-eng",
            "mailEnabled": True,
            "securityEnabled": True,
            "groupTypes": [],
            "members": panel,
        },
    ]


def _application() -> JsonDict:
    return {
        "appId": APP_ID,
        "id": object_id("application", "openslot"),
        "displayName": "OpenSlot",
        "signInAudience": "AzureADMultipleOrgs",
        "identifierUris": [f"api://botid-{APP_ID}"],
        "passwordCredentials": [
            {
                "keyId": object_id("secret", "openslot-dev"),
                "displayName": "dev",
                "secretText": "dev-only-openslot-secret",
            }
        ],
        "oauth2PermissionScopes": ["access_as_user"],
        "requiredResourceAccess": {
            "application": ["Calendars.ReadWrite", "MailboxSettings.Read", "User.Read.All", "Place.Read.All"],
            "delegated": [
                "Calendars.ReadWrite",
                "MailboxSettings.Read",
                "User.ReadBasic.All",
                "Place.Read.All",
                "offline_access",
            ],
        },
        "adminConsent": {"granted": True},
        "redirectUris": ["http://127.0.0.1:3978/admin/consent-callback", "http://localhost/openslot-cli"],
    }


# ---- public API ---------------------------------------------------------------------------------
def build_sample() -> JsonDict:
    """The sample tenant document (README format). Pure: equal on every call."""
    d = _Directory(people={p.alias: p for p in _people()}, rooms={r.alias: r for r in _rooms()})
    for mtg in (*_recurring(), *_single(), *_blocks()):
        _fan_out(d, mtg)
    users = [_user(d, p) for p in d.people.values()]
    return {
        "schemaVersion": 1,
        "relativeDates": {"anchor": ANCHOR.isoformat()},
        "tenant": {"id": TENANT_ID, "displayName": "Contoso", "defaultDomain": DOMAIN},
        "applications": [_application()],
        "applicationAccessPolicies": [
            {"appId": APP_ID, "accessRight": "RestrictAccess", "policyScopeGroupId": f"schedulable@{DOMAIN}"}
        ],
        "groups": _groups(d),
        "users": users,
        "rooms": [_room(d, r) for r in d.rooms.values()],
        "loopTemplates": _checked_templates(d),
        "pools": _checked_pools(d),
        "pooledLoopTemplates": _pooled_loop_templates(),
        "botFramework": {
            "connectionName": "openslot",
            "signedInUsers": [u["id"] for u in users if u["accountEnabled"]],
            "channelUserIds": _channel_user_ids(),
        },
    }


def _channel_user_ids() -> dict[str, str]:
    """Teams channel account id (as the Playground sends ``from.id``) -> user object id.

    What the Bot Framework token service learned when these users signed in to Teams once.
    """
    return {
        "29:" + object_id("teams", alias): object_id("user", alias)
        for alias in (CURRENT_USER, *PLAYGROUND_USERS)
    }


def render_sample() -> str:
    """``build_sample()`` as the exact text committed in ``tenants/sample.json``."""
    return json.dumps(build_sample(), indent=2, ensure_ascii=False) + "\n"


def _yaml_user(person: Person, channel_id: str, prefix: str) -> list[str]:
    mail = f"{person.alias}@{DOMAIN}"
    fields = [
        ("id", channel_id),
        ("name", f"{person.given} {person.surname}"),
        ("userPrincipleName", mail),
        ("aadObjectId", object_id("user", person.alias)),
        ("givenName", person.given),
        ("surname", person.surname),
        ("email", mail),
    ]
    indent = " " * len(prefix)
    return [f"{prefix if i == 0 else indent}{k}: {json.dumps(v)}" for i, (k, v) in enumerate(fields)]


def render_playground() -> str:
    """The Agents Playground config (schema 0.1.1); its tenant and users are the sample's."""
    people = {p.alias: p for p in _people()}
    lines = [
        "# yaml-language-server: $schema=https://aka.ms/teams-app-test-tool-config/0.1.1/config.schema.json",
        "# Generated by `python -m devtenant.make_sample`; do not edit by hand.",
        "# Tenant and aadObjectIds match devtenant/tenants/sample.json, so the bot's SSO against",
        "# devtenant resolves the Playground's users to real sample-tenant mailboxes.",
        'version: "0.1.1"',
        f"tenantId: {json.dumps(TENANT_ID)}",
        "bot:",
        f"  id: {json.dumps('28:' + APP_ID)}",
        '  name: "OpenSlot"',
        "currentUser:",
        *_yaml_user(people[CURRENT_USER], "29:" + object_id("teams", CURRENT_USER), "  "),
        "users:",
    ]
    for alias in PLAYGROUND_USERS:
        lines += _yaml_user(people[alias], "29:" + object_id("teams", alias), "  - ")
    lines += [
        "personalChat:",
        '  id: "__PERSONAL_CHAT_ID__"',
        "groupChat:",
        '  id: "__GROUP_CHAT_ID__"',
        '  name: "Interview panel"',
        "team:",
        f"  id: {json.dumps('19:' + object_id('team', 'hiring') + '@thread.tacv2')}",
        '  name: "Contoso Hiring"',
        f"  aadGroupId: {json.dumps(object_id('group', 'panel-engineering'))}",
        "  channels:",
        f"    - id: {json.dumps('19:' + object_id('channel', 'interviews') + '@thread.tacv2')}",
        '      name: "Interviews"',
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write (``--check``: verify) the sample tenant and the Playground config; 1 if stale."""
    parser = argparse.ArgumentParser(prog="python -m devtenant.make_sample", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the files are out of date")
    args = parser.parse_args(argv)
    outputs = {SAMPLE_PATH: render_sample(), PLAYGROUND_PATH: render_playground()}
    if args.check:
        stale = [p for p, text in outputs.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        return 1 if stale else 0
    for path, text in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
