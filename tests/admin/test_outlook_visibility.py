"""Users see only what Outlook would show them: OpenSlot's calendar reads are delegated (OBO), so
Exchange's sharing rules apply: a manager with free/busy-only rights gets no titles.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from calendar_backend.graph import CallStats
from calendar_backend.tokens import AppCredential
from tests.admin.conftest import Admin
from tests.service.conftest import ALEX

DIEGO = "diegos@contoso.example"  # "My Organization": freeBusyRead only
MEGAN = "meganb@contoso.example"  # shares "read" with Alex


async def _alex_graph_token(admin: Admin) -> str:
    app = admin.app_registration()
    cred = AppCredential(str(app["appId"]), str(app["passwordCredentials"][0]["secretText"]))
    token, _cache = await admin.tokens.on_behalf_of(admin.tenant_id, cred, admin.stack.token(), None)
    return token


async def _items(admin: Admin, token: str, who: str) -> list[dict[str, Any]]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=7)
    body = {
        "schedules": [who],
        "startTime": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "endTime": {
            "dateTime": (start + timedelta(days=21)).strftime("%Y-%m-%dT%H:%M:%S"),
            "timeZone": "UTC",
        },
    }
    status, doc = await admin.graph.request(
        "POST", f"/users/{ALEX}/calendar/getSchedule", token, json=body, stats=CallStats()
    )
    assert status == 200, doc
    items: list[dict[str, Any]] = doc["value"][0]["scheduleItems"]
    assert items
    return items


async def test_delegated_reads_follow_the_managers_outlook_rights(admin: Admin) -> None:
    token = await _alex_graph_token(admin)
    assert all("subject" not in i for i in await _items(admin, token, DIEGO))
    assert any(i.get("subject") for i in await _items(admin, token, MEGAN))
    status, _ = await admin.graph.request(
        "GET",
        f"/users/{DIEGO}/calendarView?startDateTime=2026-12-01T00:00:00Z&endDateTime=2026-12-02T00:00:00Z",
        token,
    )
    assert status == 403  # no detail view of a calendar Alex may only see free/busy of


async def test_the_service_answer_never_carries_titles(admin: Admin) -> None:
    status, doc = await admin.find([DIEGO, MEGAN])
    assert status == 200, doc
    text = str(doc)
    for who in (DIEGO, MEGAN):
        for event in (admin.stack.devtenant.tenant.find_user(who) or {}).get("events", []):
            subject = str(event.get("subject") or "")
            assert len(subject) < 5 or subject not in text
