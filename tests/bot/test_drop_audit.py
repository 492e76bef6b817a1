"""Refused-activity records (dialogs/drop_audit.py, security.md §7 #8): what a record holds, the
budget, and that the bot writes nothing into the Calendar Service's audit chain."""

from __future__ import annotations

import ast
import hashlib
import logging
from pathlib import Path

import pytest

from dialogs import drop_audit
from dialogs.drop_audit import DropAudit

TENANT = "00000000-0000-4000-8000-0000000000ab"
SENDER = "5F0C8F6E-1D2B-4C3A-9E8F-7A6B5C4D3E2F"


def _records(caplog: pytest.LogCaptureFixture) -> list[dict[str, str]]:
    return [
        r.__dict__["audit"]
        for r in caplog.records
        if r.name == "openslot.bot.audit" and "audit" in r.__dict__
    ]


def test_a_record_holds_codes_and_hashed_ids_only(caplog: pytest.LogCaptureFixture) -> None:
    audit = DropAudit()
    with caplog.at_level(logging.WARNING, logger="openslot.bot.audit"):
        assert audit.record("tenant", tenant_id=TENANT.upper(), actor_oid=SENDER, activity_id="1:abc|def")
        assert audit.record(
            "channel", tenant_id="evil tenant\n", actor_oid="Robert'); DROP TABLE x", activity_id="x" * 500
        )
    actor = hashlib.sha256(SENDER.lower().encode()).hexdigest()[:12]
    assert _records(caplog) == [
        {
            "operation": "bot.activity",
            "result": "dropped:tenant",
            "tenant": TENANT,
            "actor": actor,
            "request_id": "1:abc|def",
        },
        {
            "operation": "bot.activity",
            "result": "dropped:channel",
            "tenant": "invalid",
            "actor": "unknown",
            "request_id": "none",
        },
    ]
    assert SENDER.lower() not in caplog.text
    assert "DROP TABLE" not in caplog.text
    assert f"result=dropped:tenant tenant={TENANT} actor={actor}" in caplog.text


def test_records_are_budgeted_and_the_budget_refills(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    audit = DropAudit(per_minute=5, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="openslot.bot.audit"):
        written = [
            audit.record("tenant", tenant_id=TENANT, actor_oid=None, activity_id=f"a{i}") for i in range(8)
        ]
        assert written == [True] * 5 + [False] * 3
        assert audit.suppressed == 3
        assert "3 not recorded" not in caplog.text  # logged at 1, 10, 100, then every 1000
        assert "1 not recorded" in caplog.text
        now[0] += 24.0  # 5 a minute: two tokens back
        assert [
            audit.record("tenant", tenant_id=TENANT, actor_oid=None, activity_id="b") for _ in range(3)
        ] == [True, True, False]
    assert len(_records(caplog)) == 7


def test_the_bot_does_not_write_into_the_calendar_services_audit_chain() -> None:
    tree = ast.parse(Path(drop_audit.__file__).read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in imported if m.split(".")[0] in {"calendar_backend", "sqlalchemy"}}, imported
