"""directory/check reports what the mailbox gate would refuse (issue 13 defect 3), reading nothing."""

from __future__ import annotations

import json

from calendar_backend import allowlist
from calendar_backend.allowlist import parse_entry
from tests.admin.conftest import Admin

MEGAN, ADELE = "meganb@contoso.example", "adelev@contoso.example"


async def test_a_refused_mailbox_is_named_not_allowed_and_never_read(admin: Admin) -> None:
    async with admin.stack.runtime.store.transaction() as tx:
        assert await allowlist.add_entry(tx, admin.tenant_id, parse_entry("user", MEGAN))
    before = int(admin.stack.devtenant.tenant.counters["graph.getSchedule"])
    status, doc = await admin.stack.post(
        "/v1/directory/check", {"queries": ["Megan", "Adele"]}, admin.stack.token()
    )
    assert status == 200, doc
    assert [(p["query"], p["status"]) for p in doc["people"]] == [("Megan", "ok"), ("Adele", "not_allowed")]
    schedules = int(admin.stack.devtenant.tenant.counters["graph.getSchedule"])
    assert schedules == before + 1  # Megan's readability only; Adele's calendar was not asked
    denied = admin.audit_rows("directory.check")
    assert [(json.loads(r[3]), r[4]) for r in denied if r[4].startswith("denied")] == [
        ([ADELE], "denied:not_allowed")
    ]
