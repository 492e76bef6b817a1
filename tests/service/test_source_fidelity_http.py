"""Issue 15's calendars through the running Calendar Service and devtenant over HTTP, both sources.

One London mailbox per share level Alex holds (freeBusyRead, limitedRead, read), each with a Tokyo
all-day event, a declined meeting, a Sydney all-day leave across DST's end and a 24-hour timed
block at no zone's midnight; `schedule` and `calendar_view` must both give the oracle's slots.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.devtenant.fixtures import DevTenantHandle
from tests.service.adversarial_tenant import ALEX, JsonDict, _event, _user, adversarial_doc
from tests.service.conftest import Stack, _tenant_server, find_all, oracle_slots, person, service_for

SHARES = ("freeBusyRead", "limitedRead", "read")
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]


def _address(share: str) -> str:
    return f"london-{share.lower()}@contoso.example"


def _events() -> list[JsonDict]:
    return [
        _event("tokyo", "2027-03-18T00:00:00", "2027-03-19T00:00:00", "Tokyo Standard Time", isAllDay=True),
        _event(
            "declined",
            "2027-03-17T10:00:00",
            "2027-03-17T11:00:00",
            "UTC",
            responseStatus={"response": "declined"},
        ),
        _event(
            "leave",
            "2027-04-03T00:00:00",
            "2027-04-06T00:00:00",
            "AUS Eastern Standard Time",
            isAllDay=True,
            showAs="oof",
        ),
        _event("long", "2027-03-23T14:20:00", "2027-03-24T14:20:00", "UTC"),
    ]


def _doc() -> JsonDict:
    doc = copy.deepcopy(adversarial_doc())
    alex = next(u for u in doc["users"] if u["userPrincipalName"] == ALEX)
    doc["users"] = [alex]
    for n, share in enumerate(SHARES):
        user = _user(
            f"0b000000-0000-4000-8000-00000000000{n}",
            _address(share),
            "GMT Standard Time",
            WEEKDAYS,
            ("09:00", "17:00"),
            _events(),
        )
        user["calendarPermissions"] = [
            {"emailAddress": {"name": "My Organization", "address": ""}, "role": "freeBusyRead"},
            {"emailAddress": {"address": ALEX}, "role": share},
        ]
        doc["users"].append(user)
    return doc


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTenantHandle]:
    yield from _tenant_server(_doc(), tmp_path_factory.mktemp("fidelity"))


@pytest.fixture(params=["schedule", "calendar_view"])
async def service(
    request: pytest.FixtureRequest, tenant: DevTenantHandle, tmp_path: Path
) -> AsyncIterator[Stack]:
    async with service_for(tenant, tmp_path, availability_source=request.param) as stack:
        yield stack


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2027, 3, 17, tzinfo=UTC), datetime(2027, 3, 19, tzinfo=UTC)),
        (datetime(2027, 3, 22, tzinfo=UTC), datetime(2027, 3, 26, tzinfo=UTC)),
        (datetime(2027, 4, 5, tzinfo=UTC), datetime(2027, 4, 7, tzinfo=UTC)),
    ],
)
async def test_every_share_level_gives_the_oracles_slots(
    service: Stack, start: datetime, end: datetime
) -> None:
    for share in SHARES:
        address = _address(share)
        got, _ = await find_all(service, [address], start, end, 60)
        expected = oracle_slots([person(service, address)], start, end, 60, start)
        assert expected
        assert got == expected, share
