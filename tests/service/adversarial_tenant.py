"""The crafted adversarial tenant shared by tests/service (test data, not a test module).

FIXED dates around the spring 2027 DST changes (US 2027-03-14, EU 2027-03-28, Lord Howe
2027-04-04, a 30-minute shift); see test_adversarial.py for what each calendar holds.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tests.devtenant.fixtures import SAMPLE_TENANT

ALEX = "alexw@contoso.example"
JsonDict = dict[str, Any]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]
WINDOW_START = datetime(2027, 3, 8, tzinfo=UTC)  # Monday before the US change
WINDOW_END = datetime(2027, 4, 7, tzinfo=UTC)  # after the EU and Lord Howe changes
PAT, LENA, OLIVIA = "pat@contoso.example", "lena@contoso.example", "olivia@contoso.example"
NIMA, LORD, BUSY = "nima@contoso.example", "lord@contoso.example", "busy@contoso.example"
PEOPLE = [PAT, LENA, OLIVIA, NIMA, LORD, BUSY]
TOKYO_HOLIDAY = date(2027, 3, 22)  # a Monday


# ---- the tenant --------------------------------------------------------------------------------
def _dtz(value: str, zone: str) -> JsonDict:
    return {"dateTime": f"{value}.0000000", "timeZone": zone}


def _event(eid: str, start: str, end: str, zone: str, **extra: Any) -> JsonDict:
    event: JsonDict = {
        "id": eid,
        "subject": f"event {eid}",
        "start": _dtz(start, zone),
        "end": _dtz(end, zone),
        "showAs": "busy",
        "isAllDay": False,
        "isCancelled": False,
        "sensitivity": "normal",
        "type": "singleInstance",
        "responseStatus": {"response": "accepted"},
    }
    event.update(extra)
    return event


def _weekly(eid: str, start: str, end: str, zone: str, days: list[str], until: str, **extra: Any) -> JsonDict:
    recurrence = {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": days, "firstDayOfWeek": "sunday"},
        "range": {"type": "endDate", "startDate": start[:10], "endDate": until, "recurrenceTimeZone": zone},
    }
    return _event(eid, start, end, zone, type="seriesMaster", recurrence=recurrence, **extra)


def _user(
    uid: str, address: str, zone: str, days: list[str], hours: tuple[str, str], events: list[JsonDict]
) -> JsonDict:
    name = address.split("@")[0].title()
    return {
        "id": uid,
        "displayName": name,
        "givenName": name,
        "surname": "Test",
        "userPrincipalName": address,
        "mail": address,
        "accountEnabled": True,
        "hasMailbox": True,
        "mailboxSettings": {
            "timeZone": zone,
            "workingHours": {
                "daysOfWeek": days,
                "startTime": f"{hours[0]}:00.0000000",
                "endTime": f"{hours[1]}:00.0000000",
                "timeZone": {"name": zone},
            },
        },
        "events": events,
    }


def _pat_events() -> list[JsonDict]:
    pst = "Pacific Standard Time"
    standup = _weekly(
        "pat-standup", "2027-03-08T13:00:00", "2027-03-08T13:30:00", pst, WEEKDAYS, "2027-04-09"
    )
    return [
        _weekly(
            "pat-weekly",
            "2027-03-01T09:00:00",
            "2027-03-01T10:00:00",
            pst,
            ["monday", "wednesday"],
            "2027-04-30",
        ),
        standup,
        # 2027-03-10 13:00 PST = 21:00Z, moved to 15:00; 2027-03-17 13:00 PDT = 20:00Z cancelled.
        _event(
            "pat-moved",
            "2027-03-10T15:00:00",
            "2027-03-10T15:30:00",
            pst,
            type="exception",
            seriesMasterId="pat-standup",
            originalStart="2027-03-10T21:00:00Z",
        ),
        _event(
            "pat-dropped",
            "2027-03-17T13:00:00",
            "2027-03-17T13:30:00",
            pst,
            type="exception",
            seriesMasterId="pat-standup",
            isCancelled=True,
            originalStart="2027-03-17T20:00:00Z",
        ),
        _event("pat-tentative", "2027-03-09T10:00:00", "2027-03-09T11:00:00", pst, showAs="tentative"),
        _event("pat-free", "2027-03-09T11:00:00", "2027-03-09T12:00:00", pst, showAs="free"),
        _event("pat-oof", "2027-03-11T08:00:00", "2027-03-11T12:00:00", pst, showAs="oof"),
        _event("pat-elsewhere", "2027-03-12T08:00:00", "2027-03-12T17:00:00", pst, showAs="workingElsewhere"),
        _event("pat-unknown", "2027-03-15T14:00:00", "2027-03-15T15:00:00", pst, showAs="unknown"),
        _event("pat-cancelled", "2027-03-16T09:00:00", "2027-03-16T12:00:00", pst, isCancelled=True),
        _event(
            "pat-declined",
            "2027-03-16T14:00:00",
            "2027-03-16T16:00:00",
            pst,
            responseStatus={"response": "declined"},
        ),
        _event("pat-private", "2027-03-18T10:00:00", "2027-03-18T11:30:00", pst, sensitivity="private"),
        _event("pat-from-berlin", "2027-03-19T18:00:00", "2027-03-19T19:00:00", "W. Europe Standard Time"),
    ]


def _lena_events() -> list[JsonDict]:
    gmt = "GMT Standard Time"
    return [
        _weekly(
            "lena-us-sync",
            "2027-03-02T08:00:00",
            "2027-03-02T09:00:00",
            "Pacific Standard Time",
            ["tuesday"],
            "2027-04-30",
        ),
        _event("lena-offsite", "2027-03-10T00:00:00", "2027-03-11T00:00:00", gmt, isAllDay=True),
        _event(
            "lena-reminder", "2027-03-11T00:00:00", "2027-03-12T00:00:00", gmt, isAllDay=True, showAs="free"
        ),
        _event("lena-leave", "2027-03-26T00:00:00", "2027-03-30T00:00:00", gmt, isAllDay=True, showAs="oof"),
        _event("lena-lunch", "2027-03-31T12:00:00", "2027-03-31T13:00:00", "Europe/London"),
    ]


def _olivia_events() -> list[JsonDict]:
    day = TOKYO_HOLIDAY.isoformat()
    after = (TOKYO_HOLIDAY + timedelta(days=1)).isoformat()
    return [
        _event(
            "olivia-tokyo-holiday",
            f"{day}T00:00:00",
            f"{after}T00:00:00",
            "Tokyo Standard Time",
            isAllDay=True,
            showAs="oof",
        )
    ]


def _nima_events() -> list[JsonDict]:
    npt = "Nepal Standard Time"
    return [
        _weekly(
            "nima-berlin",
            "2027-03-01T09:00:00",
            "2027-03-01T10:00:00",
            "W. Europe Standard Time",
            ["monday", "thursday"],
            "2027-04-30",
        ),
        _event("nima-odd", "2027-03-09T10:10:00", "2027-03-09T10:50:00", npt),
        _event("nima-tentative", "2027-03-23T15:00:00", "2027-03-23T16:15:00", npt, showAs="tentative"),
    ]


def _lord_events() -> list[JsonDict]:
    lhi = "Australia/Lord_Howe"
    return [
        _weekly("lord-daily", "2027-03-01T09:00:00", "2027-03-01T09:30:00", lhi, WEEKDAYS, "2027-04-30"),
        _event("lord-us-call", "2027-03-30T15:00:00", "2027-03-30T16:00:00", "Pacific Standard Time"),
        _event("lord-across-change", "2027-04-02T16:00:00", "2027-04-05T10:00:00", lhi, showAs="oof"),
    ]


def _busy_events() -> list[JsonDict]:
    est = "Eastern Standard Time"
    events = []
    day = WINDOW_START.date()
    n = 0
    while day < WINDOW_END.date():
        if day.weekday() < 5:
            for hour, minutes in ((9 + n % 3, 45), (14, 30 + 15 * (n % 3))):
                start = datetime.combine(day, time(hour, 15 * (n % 2)))
                end = start + timedelta(minutes=minutes)
                events.append(_event(f"busy-{n}", start.isoformat(), end.isoformat(), est))
                n += 1
        day += timedelta(days=1)
    return events


def adversarial_doc() -> JsonDict:
    """The tenant document: the sample's tenant, app and groups, Alex, and the crafted people."""
    sample = json.loads(SAMPLE_TENANT.read_text(encoding="utf-8"))
    alex = copy.deepcopy(next(u for u in sample["users"] if u["userPrincipalName"] == ALEX))
    alex["events"] = []
    users = [
        alex,
        _user(
            "0a000000-0000-4000-8000-000000000001",
            PAT,
            "Pacific Standard Time",
            WEEKDAYS,
            ("08:00", "17:00"),
            _pat_events(),
        ),
        _user(
            "0a000000-0000-4000-8000-000000000002",
            LENA,
            "GMT Standard Time",
            WEEKDAYS,
            ("09:00", "17:30"),
            _lena_events(),
        ),
        _user(
            "0a000000-0000-4000-8000-000000000003",
            OLIVIA,
            "GMT Standard Time",
            WEEKDAYS,
            ("09:00", "17:00"),
            _olivia_events(),
        ),
        _user(
            "0a000000-0000-4000-8000-000000000004",
            NIMA,
            "Nepal Standard Time",
            ["sunday", "monday", "tuesday", "wednesday", "thursday"],
            ("10:00", "17:00"),
            _nima_events(),
        ),
        _user(
            "0a000000-0000-4000-8000-000000000005",
            LORD,
            "Australia/Lord_Howe",
            WEEKDAYS,
            ("09:00", "17:00"),
            _lord_events(),
        ),
        _user(
            "0a000000-0000-4000-8000-000000000006",
            BUSY,
            "Eastern Standard Time",
            WEEKDAYS,
            ("08:00", "18:00"),
            _busy_events(),
        ),
    ]
    return {
        "schemaVersion": 1,
        "tenant": sample["tenant"],
        "applications": sample["applications"],
        "applicationAccessPolicies": sample.get("applicationAccessPolicies", []),
        "groups": sample["groups"],
        "users": users,
        "rooms": [],
        "botFramework": {"connectionName": "openslot", "signedInUsers": [alex["id"]]},
    }


def readable_adversarial_doc() -> JsonDict:
    """The adversarial tenant with Alex granted `read` on every crafted calendar."""
    doc = copy.deepcopy(adversarial_doc())
    for u in doc["users"]:
        if u["userPrincipalName"] != ALEX:
            u["calendarPermissions"] = [
                {"emailAddress": {"name": "My Organization", "address": ""}, "role": "freeBusyRead"},
                {"emailAddress": {"address": ALEX}, "role": "read"},
            ]
    return doc
