"""`make run`'s seeding (devtenant/stack.py): the sample tenant's interviewer pools are made through
the admin CLI and its pooled loop template saved through the service's API, once. A second start on
the same data directory makes nothing new and duplicates nothing; the signed-in manager (Alex) sees
the pools through `GET /v1/pools`, the same route the bot's "pools" command reads. The drift watcher
is on: its notification URL is the bot's public receiver and devtenant accepts it."""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.request
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from devtenant import stack

ALEX = "alexw@contoso.example"


def _get(env: dict[str, str], token: str, path: str, body: object = None) -> Any:
    req = urllib.request.Request(
        env["OPENSLOT_CALENDAR_SERVICE_URL"].rstrip("/") + path,
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


CHANGES = ("pool.create", "pool.add_member", "pool.add_trainee", "pool.set_caps", "pool.set_auto_repair")


def _audit_ops(data_dir: Path) -> list[str]:
    """The pool changes audited (reads such as `GET /v1/pools` are audited too: left out)."""
    with sqlite3.connect(data_dir / "openslot.db") as db:
        ops = [str(op) for (op,) in db.execute("SELECT operation FROM audit_log ORDER BY seq")]
    return [op for op in ops if op in CHANGES]


def _run_once(
    data_dir: Path,
) -> tuple[dict[str, str], list[str], dict[str, Any], dict[str, Any], dict[str, Any]]:
    env = stack.stack_env(
        {k: v for k, v in os.environ.items() if not k.startswith("OPENSLOT_")}, data_dir=data_dir
    )
    said: list[str] = []
    procs = stack.start_stack(env, data_dir, playground=False, say=said.append)
    try:
        token = stack.user_token(env, ALEX)
        pools = _get(env, token, "/v1/pools")
        backend = next(p for p in pools["pools"] if p["name"] == "Backend")
        card = _get(env, token, f"/v1/pools/{backend['id']}")
        templates = _get(env, token, "/v1/loop-templates")
        load = _get(env, token, "/v1/me/load")
        monday = datetime.now(UTC).date() + timedelta(days=7 - datetime.now(UTC).weekday())
        start = datetime.combine(monday, time(0), UTC)
        window = {
            "start": f"{start:%Y-%m-%dT%H:%M:%SZ}",
            "end": f"{start + timedelta(days=5):%Y-%m-%dT%H:%M:%SZ}",
        }
        pooled = _get(
            env,
            token,
            "/v1/loops/search",
            {"template_name": "Backend pool onsite", **window, "candidate_time_zone": "Asia/Kolkata"},
        )
        devtenant_argv = [str(a) for a in procs[0].args]  # type: ignore[union-attr]
    finally:
        stack.stop(procs)
    return (
        env,
        said,
        pools,
        card,
        {"templates": templates, "devtenant": devtenant_argv, "load": load, "pooled": pooled},
    )


def test_the_stack_seeds_pools_once_and_alex_sees_them(tmp_path: Path) -> None:
    data_dir = tmp_path / "D"
    env, said, pools, card, more = _run_once(data_dir)
    assert "pools               Backend, Engineering panel" in said, said
    assert sorted(p["name"] for p in pools["pools"]) == ["Backend", "Engineering panel"]
    assert len(card["members"]) == 6, card
    assert len(card["trainees"]) == 1, card
    # Alex is in the Entra group behind "Engineering panel": his load there is read live
    assert [p["pool"] for p in more["load"]["pools"]] == ["Engineering panel"], more["load"]
    # the pooled template finds whole loops next week, each naming who the pool drew
    options = more["pooled"]["options"]
    assert options, more["pooled"]["explanations"]
    backend = {f"{a}@contoso.example" for a in ("meganb", "leeg", "isaiahl", "nestorw", "adelev", "johannal")}
    for option in options:
        design = next(s for s in option["sessions"] if s["title"] == "System design")
        assert len(backend & set(design["interviewers"])) == 2, design
    names = [t["name"] for t in more["templates"]["templates"]]
    assert "Backend pool onsite" in names
    first_audit = _audit_ops(data_dir)
    assert first_audit.count("pool.create") == 2
    assert first_audit.count("pool.add_member") == 6
    assert first_audit.count("pool.add_trainee") == 1
    # the watcher is on in `make run`: the bot's receiver, and devtenant delivers to plain http
    assert env["OPENSLOT_WATCH_NOTIFICATION_URL"] == (
        f"http://127.0.0.1:{env['OPENSLOT_BOT_PORT']}/api/graph/notifications"
    )
    assert len(env["OPENSLOT_WATCH_FEED_KEY"]) >= 32
    assert "--allow-http-notifications" in more["devtenant"]

    # A second start on the same data: nothing new, nothing twice.
    _env, said_again, pools_again, _card, more_again = _run_once(data_dir)
    assert not any(line.startswith("pools") for line in said_again), said_again
    assert sorted(p["name"] for p in pools_again["pools"]) == ["Backend", "Engineering panel"]
    assert _audit_ops(data_dir) == first_audit
    assert sorted(t["name"] for t in more_again["templates"]["templates"]) == sorted(names)
