"""The admin CLI contract: every command, with good and bad input, prints exactly one JSON
document on stdout, never a traceback, and the documented exit code (calendar_backend/cli.py).

Runs `calendar_backend.admin.main` in-process against devtenant (stdout/stderr captured at the
file-descriptor level), so what is checked is what an admin's terminal shows.
A new command in `admin.COMMANDS` without a case here fails `test_every_command_is_covered`.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from calendar_backend.admin import COMMANDS, build_parser, main
from calendar_backend.cli import (
    EXIT_CONFIG,
    EXIT_FOUND_PROBLEM,
    EXIT_REFUSED,
    EXIT_UPSTREAM,
    EXIT_USAGE,
)
from tests.devtenant.fixtures import DevTenantHandle
from tests.service.conftest import make_settings

MEGAN, CHRISTIE = "meganb@contoso.example", "christiec@contoso.example"
GROUP = "00000000-0000-4000-8000-000000000001"


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def doc(self) -> Any:
        return json.loads(self.out)


class Cli:
    """`python -m calendar_backend ...` in-process, with the admin's environment."""

    def __init__(
        self,
        dt: DevTenantHandle,
        tmp: Path,
        capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.dt, self.tmp, self.capfd, self.mp = dt, tmp, capfd, monkeypatch
        self.settings = make_settings(dt, tmp)
        app = dt.tenant.applications()[0]
        self.secret = str(app["passwordCredentials"][0]["secretText"])
        for name in [k for k in os.environ if k.startswith("OPENSLOT_")]:
            monkeypatch.delenv(name)
        s = self.settings
        for key, value in {
            "ENV": "dev",
            "DATABASE_URL": s.database_url,
            "KEY_FILE": str(s.key_file),
            "CLIENT_ID": s.client_id,
            "AUTHORITY_HOST": s.authority_host,
            "GRAPH_BASE_URL": s.graph_base_url,
            "CA_BUNDLE": str(s.ca_bundle),
            "AUDIT_CHECKPOINT_FILE": str(tmp / "off-box" / "cp.jsonl"),
            "TENANT_CLIENT_SECRET": self.secret,
        }.items():
            monkeypatch.setenv(f"OPENSLOT_{key}", value)

    @property
    def tenant(self) -> str:
        return self.dt.tenant_id

    def __call__(
        self, *argv: str, stdin: str | None = None, env: Mapping[str, str | None] | None = None
    ) -> Run:
        self.capfd.readouterr()
        with self.mp.context() as m:
            m.setattr(sys, "stdin", io.StringIO(stdin or ""))
            for key, value in (env or {}).items():
                if value is None:
                    m.delenv(key, raising=False)
                else:
                    m.setenv(key, value)
            code = main(list(argv))
        out, err = self.capfd.readouterr()
        run = Run(code, out, err)
        assert_contract(run, argv)
        return run

    def audit(self, operation: str) -> list[tuple[str, str, str]]:
        with sqlite3.connect(self.tmp / "openslot.db") as db:
            return list(
                db.execute(
                    "SELECT actor_oid, targets, result FROM audit_log WHERE operation = ? ORDER BY seq",
                    (operation,),
                )
            )

    def setup(self) -> None:
        assert self("keys", "init").code == 0
        assert self("tenant", "add", "--tenant-id", self.tenant).code == 0


def assert_contract(run: Run, argv: tuple[str, ...]) -> None:
    """Exactly one JSON document on stdout; no traceback; errors as {"ok": false, error, hint}."""
    assert run.out.endswith("\n"), (argv, run.out)
    assert run.out.count("\n") == 1, (argv, run.out)
    doc = json.loads(run.out)
    assert "Traceback" not in run.err, (argv, run.err)
    if run.code != 0:
        if isinstance(doc, dict) and set(doc) == {"ok", "error", "hint"}:
            assert doc["ok"] is False
            assert doc["error"]
            assert doc["hint"]
        else:  # a check that ran and failed reports its own document with ok false
            assert run.code == EXIT_FOUND_PROBLEM, (argv, doc)
            assert doc["ok"] is False


@pytest.fixture
def cli(
    devtenant: DevTenantHandle,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Cli]:
    names = ("", "alembic", "msal", "urllib3", "asyncio", "py.warnings")
    levels = {name: logging.getLogger(name).level for name in names}
    yield Cli(devtenant, tmp_path, capfd, monkeypatch)
    for name, level in levels.items():  # main() quiets library loggers; give them back
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(False)


def _consent(cli: Cli, state: str, *, deny: bool = False) -> str:
    """What the admin's browser ends on after the consent page (the URL to paste)."""
    from calendar_backend.onboarding import consent_url

    url = consent_url(
        cli.dt.base_url, cli.tenant, cli.settings.client_id, "http://localhost/openslot-cli", state
    ) + ("&deny=1" if deny else "")
    resp = cli.dt.session().get(url, allow_redirects=False, timeout=10)
    assert resp.status_code == 302, resp.text
    return str(resp.headers["Location"]) + "\n"


def _failure(run: Run, code: int, *words: str) -> None:
    assert run.code == code, run.out
    assert run.doc["ok"] is False
    for word in words:
        assert word in run.doc["error"] + run.doc["hint"], run.doc


# ---- one case per command: good input and bad input ---------------------------------------------
def case_serve(cli: Cli) -> None:
    cli.setup()
    cli.settings.key_file.unlink()  # the key file was lost ...
    assert cli("keys", "init").doc["created"] is True  # ... and a new one made
    _failure(cli("serve"), EXIT_CONFIG, "1 of 1 stored envelopes do not open", "key file")


def case_migrate(cli: Cli) -> None:
    assert cli("migrate").doc == {"ok": True, "migrated": True}
    _failure(cli("migrate", env={"OPENSLOT_DATABASE_URL": "nosuchdb://x"}), EXIT_CONFIG, "database")


def case_slots(cli: Cli) -> None:
    # Good input goes through the HTTP API in tests/service/test_cli.py (needs a live service).
    _failure(
        cli(
            "slots",
            "--as",
            MEGAN,
            "--interviewer",
            MEGAN,
            "--duration",
            "thirty",
            "--start",
            "2026-12-01T00:00:00Z",
            "--end",
            "2026-12-02T00:00:00Z",
        ),
        EXIT_USAGE,
        "duration",
    )
    cli("keys", "init")
    _failure(
        cli(
            "slots",
            "--as",
            MEGAN,
            "--interviewer",
            MEGAN,
            "--duration",
            "30",
            "--start",
            "2026-12-01T00:00:00Z",
            "--end",
            "2026-12-02T00:00:00Z",
        ),
        EXIT_REFUSED,
        "tenant",
    )


def case_tenant_add(cli: Cli) -> None:
    assert cli("keys", "init").code == 0
    first = cli("tenant", "add", "--tenant-id", cli.tenant)
    assert first.doc == {"ok": True, "tenant_id": cli.tenant, "stored": True, "replaced": False}
    assert cli("tenant", "add", "--tenant-id", cli.tenant).doc["unchanged"] is True
    _failure(
        cli("tenant", "add", "--tenant-id", cli.tenant, env={"OPENSLOT_TENANT_CLIENT_SECRET": "wrong"}),
        EXIT_UPSTREAM,
        "refused",
    )
    _failure(
        cli(
            "tenant",
            "add",
            "--tenant-id",
            cli.tenant,
            "--replace",
            env={"OPENSLOT_TENANT_CLIENT_SECRET": "wrong"},
        ),
        EXIT_UPSTREAM,
        "refused",
    )
    _failure(cli("tenant", "add", "--tenant-id", "not-a-tenant"), EXIT_USAGE, "tenant id")
    _failure(
        cli("tenant", "add", "--tenant-id", cli.tenant, env={"OPENSLOT_TENANT_CLIENT_SECRET": None}),
        EXIT_USAGE,
        "secret",
    )


def case_tenant_onboard(cli: Cli) -> None:
    cli("keys", "init")
    state = "fixed-state-for-this-test"
    cli.mp.setattr("calendar_backend.onboarding.new_state", lambda: state)
    flags = ("--tenant-id", cli.tenant, "--test-mailbox", MEGAN, "--outside-mailbox", CHRISTIE, "--paste")
    run = cli("tenant", "onboard", *flags, stdin=_consent(cli, state))
    assert "adminconsent?" in run.err  # the URL for the admin, on stderr
    # stored and self-tested; the empty allow-list refuses nobody, which the self-test reports
    assert run.code == EXIT_FOUND_PROBLEM, run.doc
    checks = {c["name"]: c["ok"] for c in run.doc["checks"]}
    assert checks == {
        "app_token": True,
        "read_test_mailbox": True,
        "access_policy_refuses": True,
        "allowlist_refuses": False,
        "permissions": True,
    }
    assert cli("allowlist", "add", "--tenant", cli.tenant, "--user", MEGAN).code == 0
    _failure(cli("tenant", "onboard", *flags, stdin=_consent(cli, state)), EXIT_REFUSED, "--replace")
    run = cli("tenant", "onboard", *flags, "--replace", stdin=_consent(cli, state))
    assert run.code == 0, run.doc
    assert [r[2] for r in cli.audit("tenant.onboard")] == ["ok", "ok"]
    _failure(
        cli("tenant", "onboard", *flags, stdin=_consent(cli, state, deny=True)), EXIT_UPSTREAM, "AADSTS65004"
    )
    _failure(
        cli(
            "tenant",
            "onboard",
            "--tenant-id",
            cli.tenant,
            "--test-mailbox",
            MEGAN,
            "--outside-mailbox",
            CHRISTIE,
            "--paste",
            stdin="http://evil.example/?x=1\n",
        ),
        EXIT_UPSTREAM,
        "state",
    )
    _failure(cli("tenant", "onboard", "--tenant-id", cli.tenant), EXIT_USAGE, "test-mailbox")


def case_tenant_selftest(cli: Cli) -> None:
    cli.setup()
    assert cli("allowlist", "add", "--tenant", cli.tenant, "--user", MEGAN).code == 0
    run = cli(
        "tenant",
        "selftest",
        "--tenant-id",
        cli.tenant,
        "--test-mailbox",
        MEGAN,
        "--outside-mailbox",
        CHRISTIE,
        env={"OPENSLOT_TENANT_CLIENT_SECRET": None},
    )
    assert run.code == 0, run.doc  # the stored credential: no secret needed
    assert run.doc["ok"] is True
    _failure(
        cli(
            "tenant",
            "selftest",
            "--tenant-id",
            "8c1b9f39-0000-4000-8000-000000000000",
            "--test-mailbox",
            MEGAN,
            "--outside-mailbox",
            CHRISTIE,
        ),
        EXIT_REFUSED,
        "unknown tenant",
    )


def case_allowlist_add(cli: Cli) -> None:
    cli.setup()
    assert cli("allowlist", "add", "--tenant", cli.tenant, "--user", MEGAN).code == 0
    _failure(cli("allowlist", "add", "--tenant", cli.tenant, "--user", "not an address"), EXIT_USAGE, "user")


def case_allowlist_remove(cli: Cli) -> None:
    cli.setup()
    cli("allowlist", "add", "--tenant", cli.tenant, "--user", MEGAN)
    assert cli("allowlist", "remove", "--tenant", cli.tenant, "--user", MEGAN).code == 0
    _failure(
        cli("allowlist", "remove", "--tenant", cli.tenant, "--user", MEGAN),
        EXIT_REFUSED,
        "not on the allow-list",
    )


def case_allowlist_list(cli: Cli) -> None:
    cli.setup()
    assert cli("allowlist", "list", "--tenant", cli.tenant).doc["allow_all"] is True
    _failure(cli("allowlist", "list", "--tenant", "another"), EXIT_REFUSED, "unknown tenant")


def case_lifecycle_run(cli: Cli) -> None:
    cli.setup()
    run = cli("lifecycle", "run")
    assert run.code == 0
    assert [(t["tenant"], t["ok"]) for t in run.doc["tenants"]] == [(cli.tenant, True)]
    _failure(cli("lifecycle", "run", "--tenant", "another"), EXIT_REFUSED, "unknown tenant")
    app = cli.dt.tenant.applications()[0]  # the secret was rotated in Entra, not in OpenSlot
    app["passwordCredentials"] = [{"keyId": "new", "displayName": "new", "secretText": "new"}]
    run = cli("lifecycle", "run")
    assert run.code == EXIT_FOUND_PROBLEM
    assert run.doc["tenants"] == [{"tenant": cli.tenant, "ok": False, "error": "unauthorized"}]
    _failure(cli("lifecycle", "run", "--tenant", cli.tenant), EXIT_UPSTREAM, "unauthorized")


def case_audit_verify(cli: Cli) -> None:
    cli.setup()
    assert cli("audit", "verify").doc["ok"] is True
    _failure(cli("audit", "verify", "--checkpoints", str(cli.tmp / "nope.jsonl")), EXIT_CONFIG, "checkpoint")


def case_audit_export(cli: Cli) -> None:
    cli.setup()
    run = cli("audit", "export", "--tenant", cli.tenant, "--since", "2020-01-01T00:00:00Z")
    assert [r["operation"] for r in run.doc["rows"]] == ["tenant.add"]
    _failure(cli("audit", "export", "--tenant", cli.tenant, "--since", "yesterday"), EXIT_USAGE, "since")


def case_audit_checkpoint(cli: Cli) -> None:
    cli.setup()
    assert cli("audit", "checkpoint").doc["signature"]
    cli.settings.key_file.chmod(0o644)
    _failure(cli("audit", "checkpoint"), EXIT_CONFIG, "0600")


def case_keys_init(cli: Cli) -> None:
    assert cli("keys", "init").doc["created"] is True
    assert cli("keys", "init").doc["created"] is False
    cli.settings.key_file.write_text("{not json")
    _failure(cli("keys", "init"), EXIT_CONFIG, "JSON")


def case_keys_add(cli: Cli) -> None:
    _failure(cli("keys", "add"), EXIT_CONFIG, "does not exist")
    cli("keys", "init")
    assert isinstance(cli("keys", "add").doc["added"], int)


def case_keys_promote(cli: Cli) -> None:
    cli.setup()
    new = cli("keys", "add").doc["added"]
    assert cli("keys", "promote", str(new)).doc["primary"] == new
    _failure(cli("keys", "promote", "12345"), EXIT_CONFIG, "12345")
    _failure(cli("keys", "promote", "x"), EXIT_USAGE, "invalid")


def case_keys_reencrypt(cli: Cli) -> None:
    cli.setup()
    cli("keys", "promote", str(cli("keys", "add").doc["added"]))
    assert cli("keys", "reencrypt").doc["rewritten"] == 1
    cli.settings.key_file.unlink()
    _failure(cli("keys", "reencrypt"), EXIT_CONFIG, "does not exist")


def case_keys_retire(cli: Cli) -> None:
    cli.setup()
    old = cli("keys", "status").doc["primary"]
    cli("keys", "promote", str(cli("keys", "add").doc["added"]))
    _failure(cli("keys", "retire", str(old)), EXIT_REFUSED, "reencrypt")
    cli("keys", "reencrypt")
    assert cli("keys", "retire", str(old)).doc["retired"] == [old]


def case_keys_status(cli: Cli) -> None:
    cli.setup()
    doc = cli("keys", "status").doc
    assert doc["envelopes_by_key"] == {str(doc["primary"]): 1}
    _failure(cli("keys", "status", env={"OPENSLOT_CLIENT_ID": None}), EXIT_CONFIG, "OPENSLOT_CLIENT_ID")


def case_keys_rotate_signing(cli: Cli) -> None:
    cli.setup()
    assert cli("audit", "checkpoint").code == 0
    assert cli("keys", "rotate-signing").doc["signing_key"] == 2
    assert cli("audit", "checkpoint").doc["key_id"] == 2
    assert cli("audit", "verify").doc["ok"] is True  # the old checkpoint still verifies
    cli.settings.key_file.unlink()
    _failure(cli("keys", "rotate-signing"), EXIT_CONFIG, "does not exist")


def case_recovery_run(cli: Cli) -> None:
    cli.setup()
    assert cli("recovery", "run", "--stale-min", "0").code == 0
    _failure(cli("recovery", "run", "--stale-min", "soon"), EXIT_USAGE, "stale-min")


def _pool(cli: Cli, command: str, *args: str) -> Run:
    return cli("pool", command, "--tenant", cli.tenant, *args)


def _pool_with_member(cli: Cli) -> None:
    cli.setup()
    assert _pool(cli, "create", "--name", "Backend", "--role", "backend").code == 0
    assert _pool(cli, "add-member", "--name", "Backend", "--member", MEGAN).code == 0


def case_pool_create(cli: Cli) -> None:
    cli.setup()
    run = _pool(cli, "create", "--name", "Backend", "--weekly-cap", "4", "--daily-cap", "1")
    assert (run.doc["pool"], run.doc["default_weekly_cap"], run.doc["default_daily_cap"]) == ("Backend", 4, 1)
    _failure(_pool(cli, "create", "--name", "Backend"), EXIT_REFUSED, "exists")
    _failure(_pool(cli, "create", "--name", "Bad/name"), EXIT_USAGE, "name")
    _failure(_pool(cli, "create", "--name", "Other", "--weekly-cap", "x"), EXIT_USAGE, "weekly-cap")
    _failure(
        cli("pool", "create", "--tenant", "00000000-0000-4000-8000-00000000dead", "--name", "X"),
        EXIT_REFUSED,
        "unknown tenant",
    )
    assert [r[2] for r in cli.audit("pool.create")] == ["ok"]


def case_pool_list(cli: Cli) -> None:
    cli.setup()
    assert _pool(cli, "list").doc["pools"] == []
    _pool(cli, "create", "--name", "Backend")
    assert [p["pool"] for p in _pool(cli, "list").doc["pools"]] == ["Backend"]
    _failure(cli("pool", "list"), EXIT_USAGE, "--tenant")
    _failure(cli("pool"), EXIT_USAGE, "sub-command")


def case_pool_show(cli: Cli) -> None:
    _pool_with_member(cli)
    doc = _pool(cli, "show", "--name", "Backend").doc
    assert [(m["address"], m["this_week"], m["weekly_cap"]) for m in doc["member_load"]] == [(MEGAN, 0, 5)]
    _failure(_pool(cli, "show", "--name", "Nope"), EXIT_REFUSED, "no pool")


def case_pool_add_member(cli: Cli) -> None:
    _pool_with_member(cli)
    run = _pool(
        cli,
        "add-member",
        "--name",
        "Backend",
        "--member",
        CHRISTIE,
        "--zone",
        "Asia/Kathmandu",
        "--week-start",
        "sun",
        "--weekly-cap",
        "3",
        "--hot",
        "09:00-12:00@0,1,2,3,4",
    )
    christie = next(m for m in run.doc["member_load"] if m["address"] == CHRISTIE)
    assert (christie["zone"], christie["week_start"], christie["weekly_cap"]) == ("Asia/Kathmandu", "sun", 3)
    assert christie["hot_hours"] == [{"start": "09:00", "end": "12:00", "weekdays": [0, 1, 2, 3, 4]}]
    _failure(
        _pool(cli, "add-member", "--name", "Backend", "--member", MEGAN), EXIT_REFUSED, "nothing changed"
    )
    _failure(
        _pool(cli, "add-member", "--name", "Backend", "--member", "x@y.example", "--zone", "Mars/Base"),
        EXIT_USAGE,
        "time zone",
    )
    rows = cli.audit("pool.add_member")
    assert [json.loads(r[1])[1] for r in rows] == [MEGAN, CHRISTIE]


def case_pool_remove_member(cli: Cli) -> None:
    _pool_with_member(cli)
    assert _pool(cli, "remove-member", "--name", "Backend", "--member", MEGAN).doc["member_load"] == []
    _failure(_pool(cli, "remove-member", "--name", "Backend", "--member", MEGAN), EXIT_REFUSED, "nothing")
    assert len(cli.audit("pool.remove_member")) == 1


def case_pool_set_caps(cli: Cli) -> None:
    _pool_with_member(cli)
    assert _pool(cli, "set-caps", "--name", "Backend", "--weekly-cap", "7").doc["default_weekly_cap"] == 7
    run = _pool(
        cli, "set-caps", "--name", "Backend", "--member", MEGAN, "--weekly-cap", "2", "--daily-cap", "1"
    )
    assert (run.doc["member_load"][0]["weekly_cap"], run.doc["member_load"][0]["daily_cap"]) == (2, 1)
    run = _pool(cli, "set-caps", "--name", "Backend", "--member", MEGAN, "--weekly-cap", "default")
    assert run.doc["member_load"][0]["weekly_cap"] == 7
    _failure(_pool(cli, "set-caps", "--name", "Backend"), EXIT_USAGE, "cap")
    _failure(_pool(cli, "set-caps", "--name", "Backend", "--weekly-cap", "1000"), EXIT_USAGE, "between")
    _failure(
        _pool(cli, "set-caps", "--name", "Backend", "--member", CHRISTIE, "--weekly-cap", "1"), EXIT_REFUSED
    )
    assert len(cli.audit("pool.set_caps")) == 3


def case_pool_add_trainee(cli: Cli) -> None:
    _pool_with_member(cli)
    run = _pool(cli, "add-trainee", "--name", "Backend", "--member", CHRISTIE, "--shadow", "2")
    assert run.doc["trainee_progress"] == [
        {"address": CHRISTIE, "stage": "shadow", "shadow": "0/2", "reverse_shadow": "0/3"}
    ]
    _failure(_pool(cli, "add-trainee", "--name", "Backend", "--member", CHRISTIE), EXIT_REFUSED, "nothing")
    _failure(
        _pool(cli, "add-trainee", "--name", "Backend", "--member", MEGAN, "--week-start", "someday"),
        EXIT_USAGE,
        "weekday",
    )
    assert len(cli.audit("pool.add_trainee")) == 1


def case_tenant_settings(cli: Cli) -> None:
    cli.setup()
    show = cli("tenant-settings", "--tenant", cli.tenant)
    assert (show.code, show.doc["count_interview_category"]) == (0, False)
    on = cli("tenant-settings", "--tenant", cli.tenant, "--count-interview-category", "on")
    assert (on.doc["count_interview_category"], on.doc["changed"]) == (True, True)
    again = cli("tenant-settings", "--tenant", cli.tenant, "--count-interview-category", "on")
    assert again.doc["changed"] is False  # nothing changed, nothing audited
    assert cli("tenant-settings", "--tenant", cli.tenant).doc["count_interview_category"] is True
    assert cli("tenant-settings", "--tenant", cli.tenant, "--count-interview-category", "off").doc["changed"]
    assert [(t, r) for _a, t, r in cli.audit("tenant.settings")] == [
        ('["count_interview_category"]', "on"),
        ('["count_interview_category"]', "off"),
    ]
    _failure(
        cli("tenant-settings", "--tenant", cli.tenant, "--count-interview-category", "maybe"),
        EXIT_USAGE,
        "on",
    )
    _failure(
        cli("tenant-settings", "--tenant", "00000000-0000-4000-8000-00000000dead"), EXIT_REFUSED, "tenant"
    )
    _failure(cli("tenant-settings"), EXIT_USAGE, "--tenant")


GROUP = "5f3c1a52-8f0e-4e4b-9a43-1d2b3c4d5e6f"


def case_pool_set_group(cli: Cli) -> None:
    _pool_with_member(cli)
    run = _pool(cli, "create", "--name", "Eng", "--group", GROUP.upper())
    assert run.doc["group"] == GROUP
    _failure(_pool(cli, "create", "--name", "Other", "--group", "engineers"), EXIT_USAGE, "GUID")
    backend = _pool(cli, "show", "--name", "Backend").doc
    assert backend["group"] is None
    assert _pool(cli, "set-group", "--name", "Backend", "--group", GROUP).doc["group"] == GROUP
    _failure(_pool(cli, "set-group", "--name", "Backend", "--group", GROUP), EXIT_REFUSED, "nothing")
    _failure(_pool(cli, "set-group", "--name", "Backend", "--group", "x"), EXIT_USAGE, "GUID")
    assert _pool(cli, "set-group", "--name", "Backend", "--none").doc["group"] is None
    assert _pool(cli, "set-group", "--name", "Backend").code == EXIT_USAGE  # --group or --none
    _failure(_pool(cli, "set-group", "--name", "Nope", "--none"), EXIT_REFUSED, "no pool")
    rows = cli.audit("pool.set_group")
    assert [json.loads(r[1]) for r in rows] == [[backend["id"], GROUP], [backend["id"]]]


def case_pool_set_auto_repair(cli: Cli) -> None:
    _pool_with_member(cli)
    run = _pool(cli, "set-auto-repair", "--name", "Backend", "on")
    assert run.doc == {"ok": True, "tenant": cli.tenant, "name": "Backend", "auto_repair": True}
    assert _pool(cli, "set-auto-repair", "--name", "Backend", "off").doc["auto_repair"] is False
    _failure(_pool(cli, "set-auto-repair", "--name", "Nope", "on"), EXIT_REFUSED, "no pool")
    _failure(_pool(cli, "set-auto-repair", "--name", "Backend", "maybe"), EXIT_USAGE, "")
    assert len(cli.audit("pool.set_auto_repair")) == 2


CASES: dict[tuple[str, ...], Callable[[Cli], None]] = {
    ("serve",): case_serve,
    ("migrate",): case_migrate,
    ("slots",): case_slots,
    ("tenant", "add"): case_tenant_add,
    ("tenant", "onboard"): case_tenant_onboard,
    ("tenant", "selftest"): case_tenant_selftest,
    ("allowlist", "add"): case_allowlist_add,
    ("allowlist", "remove"): case_allowlist_remove,
    ("allowlist", "list"): case_allowlist_list,
    ("lifecycle", "run"): case_lifecycle_run,
    ("audit", "verify"): case_audit_verify,
    ("audit", "export"): case_audit_export,
    ("audit", "checkpoint"): case_audit_checkpoint,
    ("keys", "init"): case_keys_init,
    ("keys", "add"): case_keys_add,
    ("keys", "promote"): case_keys_promote,
    ("keys", "reencrypt"): case_keys_reencrypt,
    ("keys", "retire"): case_keys_retire,
    ("keys", "status"): case_keys_status,
    ("keys", "rotate-signing"): case_keys_rotate_signing,
    ("recovery", "run"): case_recovery_run,
    ("pool", "create"): case_pool_create,
    ("pool", "list"): case_pool_list,
    ("pool", "show"): case_pool_show,
    ("pool", "add-member"): case_pool_add_member,
    ("pool", "remove-member"): case_pool_remove_member,
    ("pool", "set-caps"): case_pool_set_caps,
    ("pool", "add-trainee"): case_pool_add_trainee,
    ("tenant-settings",): case_tenant_settings,
    ("pool", "set-group"): case_pool_set_group,
    ("pool", "set-auto-repair"): case_pool_set_auto_repair,
}


def _choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def test_every_command_is_covered() -> None:
    assert set(CASES) == set(COMMANDS)
    real: set[tuple[str, ...]] = set()  # and COMMANDS is what the parser really has
    for name, parser in _choices(build_parser()).items():
        inner = _choices(parser)
        real |= {(name, sub) for sub in inner} if inner else {(name,)}
    assert real == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(CASES), ids=" ".join)
def test_command_contract(cli: Cli, command: tuple[str, ...]) -> None:
    CASES[command](cli)


def test_usage_errors_are_json(cli: Cli) -> None:
    _failure(cli("nosuch"), EXIT_USAGE, "nosuch")
    _failure(cli("keys"), EXIT_USAGE, "sub-command")
    _failure(cli("allowlist", "add", "--tenant", cli.tenant), EXIT_USAGE, "--user")


def test_tenant_add_refuses_to_overwrite_without_replace_and_audits(cli: Cli) -> None:
    cli.setup()
    app = cli.dt.tenant.applications()[0]
    app["passwordCredentials"].append(
        {"keyId": "second", "displayName": "second", "secretText": "second-valid-secret"}
    )
    other = {"OPENSLOT_TENANT_CLIENT_SECRET": "second-valid-secret"}
    _failure(cli("tenant", "add", "--tenant-id", cli.tenant, env=other), EXIT_REFUSED, "--replace")
    assert len(cli.audit("tenant.add")) == 1
    run = cli("tenant", "add", "--tenant-id", cli.tenant, "--replace", env=other)
    assert run.doc["replaced"] is True
    rows = cli.audit("tenant.add")
    assert [r[2] for r in rows] == ["ok", "replaced"]
    assert rows[0][0].startswith("os:")  # the OS user@host, and it says so
    assert "@" in rows[0][0]
    # the stored credential is the second one: a wrong secret never replaced it
    assert cli("lifecycle", "run").code == 0


def test_secrets_come_from_a_file_or_stdin(cli: Cli) -> None:
    cli("keys", "init")
    secret_file = cli.tmp / "secret.txt"
    secret_file.write_text(cli.secret + "\n")
    no_env = {"OPENSLOT_TENANT_CLIENT_SECRET": None}
    run = cli("tenant", "add", "--tenant-id", cli.tenant, "--secret-file", str(secret_file), env=no_env)
    assert run.doc["stored"] is True
    run = cli(
        "tenant", "add", "--tenant-id", cli.tenant, "--secret-stdin", stdin=cli.secret + "\n", env=no_env
    )
    assert run.doc["unchanged"] is True
    _failure(
        cli(
            "tenant", "add", "--tenant-id", cli.tenant, "--secret-file", str(cli.tmp / "missing"), env=no_env
        ),
        EXIT_CONFIG,
        "secret file",
    )


def test_allowlist_group_refused_without_group_member_read_all(cli: Cli) -> None:
    cli.setup()
    roles = cli.dt.tenant.applications()[0]["requiredResourceAccess"]["application"]
    assert "GroupMember.Read.All" not in roles
    _failure(
        cli("allowlist", "add", "--tenant", cli.tenant, "--group", GROUP),
        EXIT_REFUSED,
        "GroupMember.Read.All",
    )
    assert cli("allowlist", "list", "--tenant", cli.tenant).doc["entries"] == []
    roles.append("GroupMember.Read.All")
    assert cli("allowlist", "add", "--tenant", cli.tenant, "--group", GROUP).code == 0


def test_allowlist_changes_are_audited_with_the_admin(cli: Cli) -> None:
    cli.setup()
    cli("allowlist", "add", "--tenant", cli.tenant, "--user", MEGAN)
    cli("allowlist", "add", "--tenant", cli.tenant, "--user", MEGAN)  # no change, no row
    cli("allowlist", "remove", "--tenant", cli.tenant, "--user", MEGAN)
    added, removed = cli.audit("allowlist.add"), cli.audit("allowlist.remove")
    assert len(added) == 1
    assert len(removed) == 1
    assert json.loads(added[0][1]) == [MEGAN]
    assert added[0][0].startswith("os:")


def test_logging_never_reaches_stdout(cli: Cli) -> None:
    run = cli("migrate")  # alembic logs INFO lines while upgrading
    assert "alembic" not in run.out
    assert "Running upgrade" not in run.out
