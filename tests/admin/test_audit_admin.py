"""Audit for admins: who looked at whose calendar when (no calendar content), signed checkpoints
outside the database, periodic checkpoints in `serve`, and a tampered row found at its seq.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from calendar_backend.audit import export_audit, verify_audit
from calendar_backend.keyring import load_keyring
from calendar_backend.runtime import Runtime, audit_checkpoint, start_admin_tasks
from tests.admin.conftest import Admin
from tests.service.conftest import ALEX

MEGAN, ADELE = "meganb@contoso.example", "adelev@contoso.example"
ROOT = Path(__file__).resolve().parents[2]


def _with_checkpoint_file(admin: Admin) -> Runtime:
    rt = admin.stack.runtime
    rt.settings = dataclasses.replace(
        rt.settings, audit_checkpoint_file=admin.stack.db_path.parent / "off-box" / "cp.jsonl"
    )
    return rt


def _cli(admin: Admin, *args: str) -> subprocess.CompletedProcess[str]:
    s = admin.stack.settings
    env = {
        **os.environ,
        "OPENSLOT_DATABASE_URL": s.database_url,
        "OPENSLOT_KEY_FILE": str(s.key_file),
        "OPENSLOT_CLIENT_ID": s.client_id,
        "OPENSLOT_AUTHORITY_HOST": s.authority_host,
        "OPENSLOT_GRAPH_BASE_URL": s.graph_base_url,
        "OPENSLOT_CA_BUNDLE": str(s.ca_bundle),
        "OPENSLOT_AUDIT_CHECKPOINT_FILE": str(s.key_file.parent / "cp.jsonl"),
    }
    return subprocess.run(
        [sys.executable, "-m", "calendar_backend", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_export_answers_who_looked_at_whose_calendar_without_content(admin: Admin) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    status, _ = await admin.find([MEGAN, ADELE])
    assert status == 200
    proc = _cli(admin, "audit", "export", "--tenant", admin.tenant_id, "--since", since.isoformat())
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["rows"]
    reads = [r for r in rows if r["operation"] == "slots.find"]
    assert len(reads) == 1
    assert reads[0]["actor_oid"] == admin.oid(ALEX)
    assert reads[0]["targets"] == [MEGAN, ADELE]
    assert reads[0]["result"] == "ok"
    assert datetime.fromisoformat(reads[0]["at"].replace("Z", "+00:00")) >= since
    subjects = {
        str(e.get("subject"))
        for who in (MEGAN, ADELE)
        for e in (admin.stack.devtenant.tenant.find_user(who) or {}).get("events", [])
    }
    assert subjects
    assert not any(s in proc.stdout for s in subjects if len(s) > 4)


async def test_checkpoint_is_signed_with_a_key_outside_the_db_and_exported(admin: Admin) -> None:
    rt = _with_checkpoint_file(admin)
    status, _ = await admin.find([MEGAN])
    assert status == 200
    checkpoint = await audit_checkpoint(rt)
    path = rt.settings.audit_checkpoint_file
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text().splitlines()[-1]) == checkpoint
    assert checkpoint["row_count"] == checkpoint["head_seq"]
    assert isinstance(checkpoint["head_seq"], int)
    assert checkpoint["head_seq"] >= 1
    ring = load_keyring(rt.settings.key_file)
    async with rt.store.engine.connect() as conn:
        assert (await verify_audit(conn, signing_key=dict(ring.signing))).ok
        forged = await verify_audit(conn, signing_key=b"\x07" * 32)  # not the keyring's key
    assert not forged.ok


async def test_serve_writes_checkpoints_and_runs_the_leaver_job_periodically(admin: Admin) -> None:
    rt = _with_checkpoint_file(admin)
    tasks = start_admin_tasks(rt, interval=timedelta(milliseconds=50))
    try:
        path = rt.settings.audit_checkpoint_file
        for _ in range(200):
            if path.exists() and len(path.read_text().splitlines()) >= 3:
                break
            await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert len(path.read_text().splitlines()) >= 3
    with sqlite3.connect(admin.stack.db_path) as db:
        synced = list(db.execute("SELECT tenant_id FROM directory_sync"))
    assert synced == [(admin.tenant_id,)]


async def test_a_tampered_audit_row_is_reported_at_its_seq(admin: Admin) -> None:
    for people in ([MEGAN], [ADELE], [MEGAN, ADELE], [ADELE]):
        status, _ = await admin.find(people)
        assert status == 200
    proc = _cli(admin, "audit", "checkpoint")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["signature"]
    proc = _cli(admin, "audit", "verify")
    assert proc.returncode == 0, proc.stdout
    reads = admin.audit_rows("slots.find")
    target = reads[2][0]  # the seq of the third calendar read
    with sqlite3.connect(admin.stack.db_path) as db:  # someone hides whose calendar was read
        db.execute("UPDATE audit_log SET targets = ? WHERE seq = ?", (json.dumps([MEGAN]), target))
    proc = _cli(admin, "audit", "verify")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    assert report["first_broken_seq"] == target


async def test_export_of_a_tenant_is_limited_to_that_tenant(admin: Admin) -> None:
    status, _ = await admin.find([MEGAN])
    assert status == 200
    async with admin.stack.runtime.store.engine.connect() as conn:
        mine = [r async for r in export_audit(conn, admin.tenant_id, datetime(2020, 1, 1, tzinfo=UTC))]
        other = [r async for r in export_audit(conn, "another-tenant", datetime(2020, 1, 1, tzinfo=UTC))]
    assert mine
    assert other == []


def _rewrite_chain_from(db_path: Path, seq: int, targets: list[str]) -> None:
    """What someone with write access to the database but no key can do: edit row `seq`,
    recompute every hash after it so the chain links again, and delete the checkpoint rows."""
    from calendar_backend.audit import AuditEvent, chain_hash

    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE audit_log SET targets = ? WHERE seq = ?", (json.dumps(targets), seq))
        rows = list(
            db.execute(
                "SELECT seq, tenant_id, actor_oid, operation, targets, result, at, request_id, "
                "graph_request_ids, prev_hash FROM audit_log WHERE seq >= ? ORDER BY seq",
                (seq,),
            )
        )
        prev = rows[0][9]
        for row in rows:
            at = datetime.fromisoformat(str(row[6]))
            event = AuditEvent(
                tenant_id=row[1],
                actor_oid=row[2],
                operation=row[3],
                targets=tuple(json.loads(row[4])),
                result=row[5],
                at=at if at.tzinfo else at.replace(tzinfo=UTC),
                request_id=row[7],
                graph_request_ids=tuple(json.loads(row[8])),
            )
            new = chain_hash(prev, row[0], event)
            db.execute("UPDATE audit_log SET prev_hash = ?, row_hash = ? WHERE seq = ?", (prev, new, row[0]))
            prev = new
        db.execute("DELETE FROM audit_checkpoints")


async def _reads(admin: Admin, n: int) -> None:
    for i in range(n):
        status, _ = await admin.find([MEGAN] if i % 2 else [ADELE])
        assert status == 200


async def test_verify_catches_a_rewritten_chain_with_the_off_box_checkpoints(admin: Admin) -> None:
    await _reads(admin, 4)
    assert _cli(admin, "audit", "checkpoint").returncode == 0
    target = admin.audit_rows("slots.find")[1][0]
    _rewrite_chain_from(admin.stack.db_path, target, ["someone-else@contoso.example"])
    # the database alone no longer shows it ...
    ring = load_keyring(admin.stack.settings.key_file)
    async with admin.stack.runtime.store.engine.connect() as conn:
        assert (await verify_audit(conn, signing_key=dict(ring.signing))).ok
    # ... but `audit verify` reads the configured off-box checkpoint file by default
    proc = _cli(admin, "audit", "verify")
    report = json.loads(proc.stdout)
    assert proc.returncode == 1, report
    assert report["ok"] is False
    assert "rewritten" in report["reason"]
    assert report["first_broken_seq"] <= target


async def test_verify_reports_truncation_covered_by_the_off_box_checkpoints(admin: Admin) -> None:
    await _reads(admin, 6)
    assert _cli(admin, "audit", "checkpoint").returncode == 0
    head = admin.audit_rows()[-1][0]
    with sqlite3.connect(admin.stack.db_path) as db:  # delete the last rows and their checkpoints
        db.execute("DELETE FROM audit_log WHERE seq > ?", (head - 3,))
        db.execute("DELETE FROM audit_checkpoints")
    proc = _cli(admin, "audit", "verify")
    report = json.loads(proc.stdout)
    assert proc.returncode == 1, report
    assert report["ok"] is False
    assert report["truncated"] is True
    assert report["first_broken_seq"] == head - 2


async def test_verify_refuses_a_forged_off_box_checkpoint(admin: Admin, tmp_path: Path) -> None:
    await _reads(admin, 2)
    proc = _cli(admin, "audit", "checkpoint")
    forged = {**json.loads(proc.stdout), "head_seq": 1, "row_count": 1}
    forged.pop("ok", None)
    path = tmp_path / "forged.jsonl"
    path.write_text(json.dumps(forged) + "\n")
    proc = _cli(admin, "audit", "verify", "--checkpoints", str(path))
    assert proc.returncode == 1
    assert "not signed" in json.loads(proc.stdout)["reason"]
