"""Least privilege: OpenSlot's own allow-list (users and groups) on top of the access policy.

A mailbox outside a non-empty allow-list is never read (no getSchedule call reaches devtenant),
the answer names it with reason "not_allowed", and the refusal is audited.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calendar_backend import allowlist
from calendar_backend.allowlist import Entry, EntryKind, MailboxAllowList, parse_entry
from calendar_backend.contract import format_time
from calendar_backend.tokens import AppCredential
from tests.admin.conftest import Admin

MEGAN, ADELE, CHRISTIE = ("meganb@contoso.example", "adelev@contoso.example", "christiec@contoso.example")


async def _allow(admin: Admin, kind: str, value: str) -> None:
    async with admin.stack.runtime.store.transaction() as tx:
        assert await allowlist.add_entry(tx, admin.tenant_id, parse_entry(kind, value))


def _group_id(admin: Admin, mail: str) -> str:
    group = admin.stack.devtenant.tenant.find_group(mail)
    assert group is not None
    return str(group["id"])


def _grant_group_read(admin: Admin) -> None:
    """The admin grants GroupMember.Read.All (needed only for group entries); reset undoes it."""
    admin.app_registration()["requiredResourceAccess"]["application"].append("GroupMember.Read.All")


def _schedules(admin: Admin) -> int:
    return int(admin.stack.devtenant.tenant.counters["graph.getSchedule"])


async def test_an_empty_allowlist_allows_every_mailbox(admin: Admin) -> None:
    status, doc = await admin.find([MEGAN, ADELE])
    assert status == 200, doc
    assert doc["slots"]
    assert all(b["reason"] != "not_allowed" for b in doc["blockers"])


async def test_a_mailbox_outside_the_allowlist_is_named_and_never_read(admin: Admin) -> None:
    await _allow(admin, "user", MEGAN)
    before = _schedules(admin)
    status, doc = await admin.find([MEGAN, ADELE])
    assert status == 200, doc
    assert doc["slots"] == []
    assert doc["blockers"] == [{"address": ADELE, "reason": "not_allowed"}]
    assert _schedules(admin) == before  # nobody's calendar was read
    denied = admin.audit_rows("slots.find")
    assert [(json.loads(r[3]), r[4]) for r in denied] == [([ADELE], "denied:not_allowed")]
    # The allowed mailbox alone is scheduled normally.
    status, doc = await admin.find([MEGAN])
    assert status == 200
    assert doc["slots"]


async def test_booking_with_a_mailbox_outside_the_allowlist_is_refused_by_name(admin: Admin) -> None:
    await _allow(admin, "user", MEGAN)
    start = (datetime.now(UTC) + timedelta(days=7)).replace(hour=17, minute=0, second=0, microsecond=0)
    body = {
        "interviewers": [MEGAN, ADELE],
        "start": format_time(start),
        "end": format_time(start + timedelta(minutes=30)),
        "candidate": {"name": "Dana Smith", "email": "dana@example.com"},
        "idempotency_key": "allowlist-refusal-0001",
    }
    before = _schedules(admin)
    status, doc = await admin.stack.post("/v1/interviews", body, admin.stack.token())
    assert status == 403, doc
    assert ADELE in doc["message"]
    assert MEGAN not in doc["message"]
    assert _schedules(admin) == before


async def test_group_entries_resolve_members_through_graph_and_cache_briefly(admin: Admin) -> None:
    _grant_group_read(admin)
    await _allow(admin, "group", _group_id(admin, "schedulable@contoso.example"))
    status, doc = await admin.find([MEGAN, CHRISTIE])
    assert status == 200, doc
    assert doc["blockers"] == [{"address": CHRISTIE, "reason": "not_allowed"}]
    status, doc = await admin.find([MEGAN, ADELE])
    assert status == 200, doc
    assert doc["slots"]
    # Membership came from Graph once and was then served from memory.
    assert admin.stack.devtenant.tenant.counters["graph.groups.members"] == 1


async def test_an_unreadable_group_fails_closed(admin: Admin) -> None:
    await _allow(admin, "group", _group_id(admin, "schedulable@contoso.example"))
    before = _schedules(admin)
    status, doc = await admin.find([MEGAN])  # no GroupMember.Read.All granted
    assert status == 403, doc
    assert "GroupMember.Read.All" in doc["message"]
    assert _schedules(admin) == before


async def test_group_membership_cache_expires(admin: Admin) -> None:
    _grant_group_read(admin)
    now = [datetime(2026, 12, 1, tzinfo=UTC)]
    checker = MailboxAllowList(admin.graph, ttl=timedelta(minutes=5), clock=lambda: now[0])
    app = admin.app_registration()
    cred = AppCredential(str(app["appId"]), str(app["passwordCredentials"][0]["secretText"]))

    async def token() -> str:
        return await admin.tokens.for_app(admin.tenant_id, cred)

    entries = [Entry(EntryKind.GROUP, _group_id(admin, "panel-eng@contoso.example"))]
    counters = admin.stack.devtenant.tenant.counters
    first = await checker.refused(admin.tenant_id, entries, [CHRISTIE, MEGAN], token)
    assert first == (CHRISTIE,)
    now[0] += timedelta(minutes=4)
    await checker.refused(admin.tenant_id, entries, [MEGAN], token)
    assert counters["graph.groups.members"] == 1
    now[0] += timedelta(minutes=2)
    await checker.refused(admin.tenant_id, entries, [MEGAN], token)
    assert counters["graph.groups.members"] == 2


async def test_entries_are_validated_listed_and_removed(admin: Admin) -> None:
    with pytest.raises(ValueError, match="user"):
        parse_entry("user", "not an address")
    with pytest.raises(ValueError, match="group"):
        parse_entry("group", "schedulable@contoso.example")  # groups are listed by object id
    store = admin.stack.runtime.store
    megan = parse_entry("user", " MeganB@Contoso.example ")
    async with store.transaction() as tx:
        assert await allowlist.list_entries(tx, admin.tenant_id) == ()
        assert await allowlist.add_entry(tx, admin.tenant_id, megan)
        assert not await allowlist.add_entry(tx, admin.tenant_id, megan)
        assert await allowlist.list_entries(tx, admin.tenant_id) == (Entry(EntryKind.USER, MEGAN),)
        assert await allowlist.list_entries(tx, "another-tenant") == ()
        assert await allowlist.remove_entry(tx, admin.tenant_id, megan)
        assert await allowlist.list_entries(tx, admin.tenant_id) == ()


def test_allowlist_cli_adds_lists_and_removes(admin: Admin) -> None:
    s = admin.stack.settings
    env = {
        **os.environ,
        "OPENSLOT_DATABASE_URL": s.database_url,
        "OPENSLOT_KEY_FILE": str(s.key_file),
        "OPENSLOT_CLIENT_ID": s.client_id,
    }

    def cli(*args: str) -> dict[str, object]:
        proc = subprocess.run(
            [sys.executable, "-m", "calendar_backend", "allowlist", *args, "--tenant", admin.tenant_id],
            cwd=Path(__file__).parents[2],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return dict(json.loads(proc.stdout))

    assert cli("list")["allow_all"] is True
    doc = cli("add", "--user", "MeganB@contoso.example")
    assert doc["entries"] == [{"kind": "user", "value": MEGAN}]
    assert doc["allow_all"] is False
    assert cli("remove", "--user", MEGAN)["allow_all"] is True
