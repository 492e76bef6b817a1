"""`python -m devtenant.stack --tenant FILE --data-dir D` runs a complete second stack (issue 15).

A tenant file is generated from the sample with a new tenant id and a new app id; the stack is
started as a user would start it (a subprocess, no OPENSLOT_* in its environment, so `.env.example`'s
sample app id is in play), then `python -m calendar_backend slots` is run against it with no terminal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devtenant import stack

SAMPLE = stack.ROOT / "devtenant" / "tenants" / "sample.json"
ALEX, MEGAN = "alexw@contoso.example", "meganb@contoso.example"


@dataclass(frozen=True)
class SecondStack:
    data_dir: Path
    settings: dict[str, str]
    app_id: str


def _generated_tenant(path: Path) -> str:
    """The sample tenant with a new tenant id and app id everywhere; returns the app id."""
    doc = json.loads(SAMPLE.read_text(encoding="utf-8"))
    text = json.dumps(doc)
    app_id = str(uuid.uuid4())
    text = text.replace(doc["applications"][0]["appId"], app_id)
    text = text.replace(doc["tenant"]["id"], str(uuid.uuid4()))
    path.write_text(text, encoding="utf-8")
    return app_id


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OPENSLOT_", "REQUESTS_CA"))}


@pytest.fixture(scope="module")
def second_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecondStack]:
    tmp = tmp_path_factory.mktemp("second-stack")
    tenant_file, data_dir = tmp / "any-file.json", tmp / "D"
    app_id = _generated_tenant(tenant_file)
    out = tmp / "stack.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devtenant.stack",
                "--tenant",
                str(tenant_file),
                "--data-dir",
                str(data_dir),
                "--no-bot",
                "--no-playground",
            ],
            cwd=stack.ROOT,
            env=_clean_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while "Ctrl-C to stop" not in out.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                logs = "\n".join(
                    f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                    for p in sorted((data_dir / "logs").glob("*.log"))
                )
                pytest.fail(f"the stack did not start:\n{out.read_text()}\n{logs}")
            time.sleep(0.3)
        settings = stack.read_env_file(data_dir / "stack.env")
        yield SecondStack(data_dir, settings, app_id)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _slots(stack_: SecondStack, **overrides: str) -> subprocess.CompletedProcess[str]:
    monday = datetime.now(UTC).date() + timedelta(days=7 - datetime.now(UTC).weekday())
    start = datetime.combine(monday, datetime.min.time(), UTC)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "calendar_backend",
            "slots",
            "--as",
            ALEX,
            "--interviewer",
            MEGAN,
            "--duration",
            "30",
            "--start",
            start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "--end",
            (start + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "--all",
            "--json",
            "--service-url",
            stack_.settings["OPENSLOT_CALENDAR_SERVICE_URL"],
        ],
        cwd=stack.ROOT,
        env={**_clean_env(), **stack_.settings, **overrides},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_everything_of_the_second_stack_is_in_its_data_dir(second_stack: SecondStack) -> None:
    s, d = second_stack.settings, second_stack.data_dir.resolve()
    assert s["OPENSLOT_CLIENT_ID"] == second_stack.app_id  # not .env.example's sample app
    assert s["OPENSLOT_DATABASE_URL"] == f"sqlite+aiosqlite:///{d / 'openslot.db'}"
    for key in ("OPENSLOT_KEY_FILE", "OPENSLOT_AUDIT_CHECKPOINT_FILE", "OPENSLOT_CA_BUNDLE"):
        assert Path(s[key]).is_relative_to(d), key
    for found in (
        "openslot.db",
        "keys/kek.json",
        "logs/calendar.log",
        "logs/devtenant.log",
        "devtenant/ca.pem",
    ):
        assert (d / found).exists(), found
    example = stack.read_env_file(stack.ROOT / ".env.example")
    for port in (
        "OPENSLOT_DEVTENANT_PORT",
        "OPENSLOT_CALENDAR_SERVICE_PORT",
        "OPENSLOT_BOT_PORT",
        "OPENSLOT_PLAYGROUND_PORT",
    ):
        assert s[port] != example[port], port  # never `make run`'s ports
    assert s["OPENSLOT_AUTHORITY_HOST"] == f"https://127.0.0.1:{s['OPENSLOT_DEVTENANT_PORT']}"
    assert not any("SECRET" in k or "PASSWORD" in k for k in s)


def test_slots_signs_in_with_no_terminal_and_prints_slots(second_stack: SecondStack) -> None:
    done = _slots(second_stack)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("{")))
    assert doc["slots"], doc
    assert all(slot["start"].endswith("Z") for slot in doc["slots"])


def test_slots_with_the_wrong_app_id_fails_clearly(second_stack: SecondStack) -> None:
    """The sample app id (what `.env.example` sets) is not this tenant's app: sign-in fails with
    `invalid_resource`, and `slots` says which resource the app must expose (no EOFError).
    The no-terminal message itself: tests/service/test_cli_sign_in.py."""
    sample_app = stack.read_env_file(stack.ROOT / ".env.example")["OPENSLOT_CLIENT_ID"]
    done = _slots(second_stack, OPENSLOT_CLIENT_ID=sample_app)
    assert done.returncode != 0
    assert "EOFError" not in done.stderr
    answer = json.loads(done.stdout)  # the CLI contract: one JSON document on stdout
    assert answer["ok"] is False
    assert f"api://botid-{sample_app}" in answer["hint"]


# ---- stack_env alone (no processes) ---------------------------------------------------------------
def test_stack_env_takes_the_app_id_from_the_tenant_file(tmp_path: Path) -> None:
    tenant_file = tmp_path / "t.json"
    app_id = _generated_tenant(tenant_file)
    sample_app = stack.read_env_file(stack.ROOT / ".env.example")["OPENSLOT_CLIENT_ID"]
    assert stack.stack_env({}, tenant_file=tenant_file)["OPENSLOT_CLIENT_ID"] == app_id
    # --tenant names the file, so its app wins even over an exported sample id
    exported = {"OPENSLOT_CLIENT_ID": sample_app}
    assert stack.stack_env(exported, tenant_file=tenant_file)["OPENSLOT_CLIENT_ID"] == app_id
    # without --tenant, a tenant file named by the environment also brings its app id ...
    named = {"OPENSLOT_TENANT_FILE": str(tenant_file)}
    assert stack.stack_env(named)["OPENSLOT_CLIENT_ID"] == app_id
    # ... unless the environment names the app too
    assert stack.stack_env({**named, **exported})["OPENSLOT_CLIENT_ID"] == sample_app


def test_stack_env_puts_every_file_in_the_data_dir_and_frees_ports(tmp_path: Path) -> None:
    d = tmp_path / "D"
    env = stack.stack_env({}, data_dir=d)
    assert env["OPENSLOT_DATABASE_URL"] == f"sqlite+aiosqlite:///{d.resolve() / 'openslot.db'}"
    assert Path(env["OPENSLOT_KEY_FILE"]).is_relative_to(d.resolve())
    assert Path(env["OPENSLOT_AUDIT_CHECKPOINT_FILE"]).is_relative_to(d.resolve())
    assert env["OPENSLOT_CALENDAR_SERVICE_URL"].endswith(f":{env['OPENSLOT_CALENDAR_SERVICE_PORT']}")
    assert env["OPENSLOT_CALENDAR_SERVICE_PORT"] != "8780"
    default = stack.stack_env({}, data_dir=stack.DEFAULT_DATA_DIR)
    assert default["OPENSLOT_CALENDAR_SERVICE_PORT"] == "8780"  # `make run` keeps its ports
    assert default["OPENSLOT_KEY_FILE"] == str(stack.DEFAULT_DATA_DIR.resolve() / "keys" / "kek.json")
    pinned = stack.stack_env(
        {"OPENSLOT_DATABASE_URL": "postgresql+asyncpg://x/y", "OPENSLOT_BOT_PORT": "4000"}, data_dir=d
    )
    assert pinned["OPENSLOT_DATABASE_URL"] == "postgresql+asyncpg://x/y"  # the real env wins
    assert pinned["OPENSLOT_PUBLIC_BASE_URL"] == "http://127.0.0.1:4000"
