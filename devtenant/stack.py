"""`python -m devtenant.stack`: run the whole local stack for `make run` and the end-to-end tests.

Starts devtenant (HTTPS), bootstraps the sample tenant's admin consent into the Calendar Service
(the key file, the database, the encrypted tenant credential), then the Calendar Service, the bot and the
Microsoft 365 Agents Playground, and prints the URL to open. Ctrl-C stops everything.

Seed data, made once (what exists under the same name is left as it is): the tenant file's ``pools``
through the admin CLI (`pool create | add-member | add-trainee ...`, audited), before the service
starts; its ``loopTemplates`` and ``pooledLoopTemplates`` through the service's API, as the first
signed-in user. The drift watcher is on: its notification URL is the bot's public receiver
(`/api/graph/notifications`, plain HTTP on 127.0.0.1, so devtenant runs with
`--allow-http-notifications`), a fresh feed key per start, a round every 15 s.

Settings come from `.env.example`, then `.env` (if present), then the real environment, later winning,
with three exceptions that let any tenant file run as a second stack beside `make run`:
- the app id (`OPENSLOT_CLIENT_ID`) is the tenant file's (its first application) unless `.env` or the
  real environment names one; `--tenant FILE` always uses FILE's;
- `--data-dir D` puts everything of the stack in D: database (`D/openslot.db`), key file
  (`D/keys/kek.json`), audit checkpoints (`D/audit/`), devtenant's TLS material and keys
  (`D/devtenant/`), logs (`D/logs/`), and the effective non-secret settings (`D/stack.env`, for
  `python -m calendar_backend slots`); only a value set in the real environment overrides these;
- with a `--data-dir` other than `.data`, every port not set in the real environment is a free one
  (a second stack never takes `make run`'s ports), and the URLs follow the ports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from ssl import create_default_context
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import msal
import requests

ROOT = Path(__file__).resolve().parent.parent
PLAYGROUND_BIN = ROOT / "devtenant" / "playground" / "node_modules" / ".bin" / "agentsplayground"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; comments and blanks ignored; no shell expansion."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


DEFAULT_DATA_DIR = ROOT / ".data"
_PORTS = (
    "OPENSLOT_DEVTENANT_PORT",
    "OPENSLOT_CALENDAR_SERVICE_PORT",
    "OPENSLOT_BOT_PORT",
    "OPENSLOT_PLAYGROUND_PORT",
)
_SECRET_MARKERS = ("SECRET", "PASSWORD", "FORM_KEY", "FEED_KEY")


def stack_env(
    base: Mapping[str, str] | None = None, *, tenant_file: Path | None = None, data_dir: Path | None = None
) -> dict[str, str]:
    """The environment every process of the stack gets (see the module docstring).

    `tenant_file` (`--tenant`) replaces `OPENSLOT_TENANT_FILE` and its app id wins; `data_dir`
    (`--data-dir`) places every file of the stack there and, when it is not `.data`, picks free
    ports for the ports the real environment does not set.

    Raises:
        OSError, ValueError, KeyError: an unreadable or malformed tenant file.
    """
    example = read_env_file(ROOT / ".env.example")
    local = read_env_file(ROOT / ".env")
    real = dict(os.environ if base is None else base)
    env = {**example, **local, **real}
    if tenant_file is not None:
        env["OPENSLOT_TENANT_FILE"] = str(tenant_file.resolve())
    tenant = json.loads((ROOT / env["OPENSLOT_TENANT_FILE"]).read_text(encoding="utf-8"))
    apps = tenant["applications"]
    chosen = (
        env.get("OPENSLOT_CLIENT_ID")
        if tenant_file is None and ("OPENSLOT_CLIENT_ID" in real or "OPENSLOT_CLIENT_ID" in local)
        else None
    )
    app = next((a for a in apps if chosen and a.get("appId") == chosen), apps[0])
    env["OPENSLOT_CLIENT_ID"] = chosen or app["appId"]
    env["OPENSLOT_DEV_TENANT_ID"] = tenant["tenant"]["id"]
    env["OPENSLOT_TENANT_CLIENT_SECRET"] = app["passwordCredentials"][0]["secretText"]
    # Python's ssl, aiohttp and requests all trust devtenant's CA through these.
    env["OPENSLOT_CA_BUNDLE"] = str(ROOT / env["OPENSLOT_CA_BUNDLE"])
    if data_dir is not None:
        _use_data_dir(env, real, data_dir.resolve())
    env.setdefault("PYTHONUNBUFFERED", "1")
    # the drift feed's shared key (bot ↔ Calendar Service, docs/watcher.md): fresh per stack
    env.setdefault("OPENSLOT_WATCH_FEED_KEY", secrets.token_urlsafe(32))
    # the drift watcher ON: Graph (devtenant) notifies the bot's public receiver, which forwards to
    # the Calendar Service; a round (subscribe to new interviews, sweep) every 15 s, not 5 min
    env.setdefault("OPENSLOT_WATCH_NOTIFICATION_URL", watch_receiver_url(env))
    env.setdefault("OPENSLOT_WATCH_SWEEP_S", "15")
    return env


WATCH_RECEIVER_PATH = "/api/graph/notifications"  # dialogs/watch_receiver.py


def watch_receiver_url(env: Mapping[str, str]) -> str:
    """The bot's public Graph-notification receiver for this stack's bot port."""
    return f"http://127.0.0.1:{env['OPENSLOT_BOT_PORT']}{WATCH_RECEIVER_PATH}"


def _use_data_dir(env: dict[str, str], real: Mapping[str, str], data_dir: Path) -> None:
    """Every file of the stack in `data_dir`; fresh ports (and URLs) for a second stack."""
    files = {
        "OPENSLOT_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / 'openslot.db'}",
        "OPENSLOT_KEY_FILE": str(data_dir / "keys" / "kek.json"),
        "OPENSLOT_AUDIT_CHECKPOINT_FILE": str(data_dir / "audit" / "checkpoints.jsonl"),
        "OPENSLOT_CA_BUNDLE": str(data_dir / "devtenant" / "ca.pem"),
    }
    env.update({k: v for k, v in files.items() if k not in real})
    if data_dir == DEFAULT_DATA_DIR.resolve():
        return
    env.update({k: str(free_port()) for k in _PORTS if k not in real})
    devtenant = f"https://127.0.0.1:{env['OPENSLOT_DEVTENANT_PORT']}"
    urls = {
        "OPENSLOT_AUTHORITY_HOST": devtenant,
        "OPENSLOT_GRAPH_BASE_URL": f"{devtenant}/v1.0",
        "OPENSLOT_TOKEN_SERVICE_URL": devtenant,
        "OPENSLOT_CALENDAR_SERVICE_URL": f"http://{env['OPENSLOT_CALENDAR_SERVICE_HOST']}:{env['OPENSLOT_CALENDAR_SERVICE_PORT']}",
        "OPENSLOT_PUBLIC_BASE_URL": f"http://127.0.0.1:{env['OPENSLOT_BOT_PORT']}",
    }
    env.update({k: v for k, v in urls.items() if k not in real})


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_settings(env: Mapping[str, str], path: Path) -> None:
    """The stack's `OPENSLOT_*` settings as KEY=VALUE lines, secrets left out (mode 0600)."""
    lines = [
        f"{k}={v}"
        for k, v in sorted(env.items())
        if k.startswith("OPENSLOT_") and not any(m in k for m in _SECRET_MARKERS)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)


def wait_https(url: str, ca: Path, timeout_s: float = 30.0) -> None:
    """Wait until an HTTPS URL answers (trusting the devtenant CA)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ca.exists():
            try:
                ctx = create_default_context(cafile=str(ca))
                with urllib.request.urlopen(url, context=ctx, timeout=2):  # noqa: S310
                    return
            except OSError:
                pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def wait_http(url: str, timeout_s: float = 30.0) -> None:
    """Wait until a plain HTTP URL answers."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def bootstrap(env: dict[str, str]) -> None:
    """Key file, schema, and the sample tenant's credential (what admin consent stores)."""
    py = sys.executable
    for args in (
        ["keys", "init"],
        ["migrate"],
        ["tenant", "add", "--tenant-id", env["OPENSLOT_DEV_TENANT_ID"]],
    ):
        subprocess.run([py, "-m", "calendar_backend", *args], env=env, check=True, cwd=ROOT)  # noqa: S603


CLI_REDIRECT_URI = "http://localhost/openslot-cli"  # the sample app lists it (as `slots` uses it)


def user_token(env: Mapping[str, str], upn: str) -> str:
    """An access token for OpenSlot's API, signed in to devtenant as ``upn`` (authorization code
    flow with ``login_hint`` and ``prompt=none``: devtenant signs a known user in silently).

    Raises:
        RuntimeError: devtenant did not sign ``upn`` in.
    """
    http = requests.Session()
    http.verify, http.trust_env = env["OPENSLOT_CA_BUNDLE"], False
    app = msal.ConfidentialClientApplication(
        env["OPENSLOT_CLIENT_ID"],
        client_credential=env["OPENSLOT_TENANT_CLIENT_SECRET"],
        authority=f"{env['OPENSLOT_AUTHORITY_HOST'].rstrip('/')}/{env['OPENSLOT_DEV_TENANT_ID']}",
        instance_discovery=False,
        http_client=http,
    )
    scope = f"api://botid-{env['OPENSLOT_CLIENT_ID']}/access_as_user"
    with warnings.catch_warnings():  # msal recommends form_post; this local flow reads a redirect
        warnings.simplefilter("ignore", UserWarning)
        flow = app.initiate_auth_code_flow(
            [scope], redirect_uri=CLI_REDIRECT_URI, login_hint=upn, prompt="none"
        )
    location = http.get(flow["auth_uri"], allow_redirects=False, timeout=30).headers.get("Location", "")
    query = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
    result = app.acquire_token_by_auth_code_flow(flow, query) if location.startswith(CLI_REDIRECT_URI) else {}
    if "access_token" not in result:
        raise RuntimeError(f"devtenant did not sign {upn} in ({str(result.get('error'))[:64]})")
    return str(result["access_token"])


def seed_loop_templates(env: Mapping[str, str]) -> list[str]:
    """Save the tenant file's sample ``loopTemplates`` into the running Calendar Service, through
    its own API (``PUT /v1/loop-templates/{name}``: lock 1/2/3 and one audit row each), signed in
    as the tenant's first Bot Framework user (Alex Wilber in the sample). Idempotent: a template
    already saved under that name is left as it is (a manager may have edited it). Returns the
    names saved now.

    A tenant file without ``loopTemplates`` or Bot Framework users saves nothing.

    Raises:
        RuntimeError: devtenant did not sign the user in. OSError, ValueError, KeyError: the
        service refused, or a malformed tenant file.
    """
    tenant = json.loads((ROOT / env["OPENSLOT_TENANT_FILE"]).read_text(encoding="utf-8"))
    templates = [*(tenant.get("loopTemplates") or []), *(tenant.get("pooledLoopTemplates") or [])]
    if not templates:
        return []
    users = {u["id"]: u["userPrincipalName"] for u in tenant.get("users", [])}
    signed_in = [users[i] for i in (tenant.get("botFramework") or {}).get("signedInUsers", []) if i in users]
    if not signed_in:
        return []
    token = user_token(env, signed_in[0])
    base = env["OPENSLOT_CALENDAR_SERVICE_URL"].rstrip("/") + "/v1/loop-templates"

    def call(method: str, url: str, body: object = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # noqa: S310  (the local Calendar Service)
            url,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            doc: dict[str, Any] = json.load(resp)
            return doc

    saved = {t["name"] for t in call("GET", base)["templates"]}
    added = []
    for template in templates:
        name = str(template["name"])
        if name not in saved:
            call("PUT", f"{base}/{quote(name, safe='')}", {"template": template})
            added.append(name)
    return added


# Runs several `python -m calendar_backend` commands (argv lists as JSON on stdin) in one process:
# the CLI's own parser, use cases and audit, one interpreter start instead of one per command.
_CLI_BATCH = (
    "import json, sys\n"
    "from calendar_backend.admin import main\n"
    "for argv in json.load(sys.stdin):\n"
    "    code = main(argv)\n"
    "    if code:\n"
    "        sys.exit(code)\n"
)


def run_admin(env: Mapping[str, str], commands: list[list[str]]) -> list[dict[str, Any]]:
    """Run `python -m calendar_backend` commands (argv lists) in order, in one process, stopping
    at the first that fails; returns their JSON documents.

    Raises:
        RuntimeError: a command failed (its error document's message).
    """
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", _CLI_BATCH],
        input=json.dumps(commands),
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    docs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode:
        last = docs[-1] if docs else {}
        raise RuntimeError(f"admin command failed: {str(last.get('error', done.returncode))[:120]}")
    return docs


def pool_commands(tenant_id: str, pool: Mapping[str, Any]) -> list[list[str]]:
    """The `pool ...` commands that make one sample pool (tenant file ``pools`` item)."""
    name = str(pool["name"])

    def cmd(sub: str, *extra: str) -> list[str]:
        return ["pool", sub, "--tenant", tenant_id, "--name", name, *extra]

    create = cmd("create", "--role", str(pool.get("role", "")))
    if pool.get("owner"):
        create += ["--owner", str(pool["owner"])]
    create += ["--weekly-cap", str(pool.get("weeklyCap", 5)), "--daily-cap", str(pool.get("dailyCap", 2))]
    if pool.get("group"):
        create += ["--group", str(pool["group"])]
    commands = [create]
    for m in pool.get("members") or []:
        add = cmd("add-member", "--member", m["address"], "--zone", m.get("zone", "UTC"))
        add += ["--week-start", m.get("weekStart", "mon")]
        add += [
            f
            for k, flag in (("weeklyCap", "--weekly-cap"), ("dailyCap", "--daily-cap"))
            if k in m
            for f in (flag, str(m[k]))
        ]
        add += [f for hot in m.get("hot") or [] for f in ("--hot", hot)]
        commands.append(add)
    for t in pool.get("trainees") or []:
        add = cmd("add-trainee", "--member", t["address"], "--zone", t.get("zone", "UTC"))
        add += ["--shadow", str(t.get("shadow", 3)), "--reverse-shadow", str(t.get("reverseShadow", 3))]
        commands.append(add)
    if pool.get("autoRepair"):
        commands.append(cmd("set-auto-repair", "on"))
    return commands


def seed_pools(env: Mapping[str, str]) -> list[str]:
    """Make the tenant file's sample interviewer ``pools`` through the admin CLI (`python -m
    calendar_backend pool create | add-member | add-trainee ...`: the CLI's checks and one audit
    row per change). Idempotent: a pool that already exists under that name is left as it is (its
    owner may have changed it in the bot). Returns the names made now; none without ``pools``.

    Raises:
        RuntimeError: a command failed. OSError, ValueError, KeyError: a malformed tenant file.
    """
    tenant = json.loads((ROOT / env["OPENSLOT_TENANT_FILE"]).read_text(encoding="utf-8"))
    pools = tenant.get("pools") or []
    if not pools:
        return []
    tenant_id = env["OPENSLOT_DEV_TENANT_ID"]
    (listed,) = run_admin(env, [["pool", "list", "--tenant", tenant_id]])
    existing = {str(p["pool"]) for p in listed.get("pools", [])}
    missing = [p for p in pools if str(p["name"]) not in existing]
    if missing:
        run_admin(env, [c for p in missing for c in pool_commands(tenant_id, p)])
    return [str(p["name"]) for p in missing]


GROUP_READ = "GroupMember.Read.All"


def served_tenant_file(env: Mapping[str, str], data_dir: Path) -> str:
    """The tenant file devtenant serves: the configured one, or, when one of its sample ``pools``
    draws from an Entra group, a copy in ``DATA_DIR/devtenant`` whose apps were granted
    ``GroupMember.Read.All`` (what an admin grants for such a pool, README "Graph permissions"), so
    the group's members are read live."""
    path = ROOT / env["OPENSLOT_TENANT_FILE"]
    tenant = json.loads(path.read_text(encoding="utf-8"))
    if not any(p.get("group") for p in tenant.get("pools") or []):
        return env["OPENSLOT_TENANT_FILE"]
    for app in tenant.get("applications", []):
        roles = app.setdefault("requiredResourceAccess", {}).setdefault("application", [])
        if GROUP_READ not in roles:
            roles.append(GROUP_READ)
    served = data_dir / "devtenant" / "served-tenant.json"
    served.parent.mkdir(parents=True, exist_ok=True)
    served.write_text(json.dumps(tenant, indent=1, ensure_ascii=False), encoding="utf-8")
    return str(served)


def _http_receiver(env: Mapping[str, str]) -> bool:
    return env.get("OPENSLOT_WATCH_NOTIFICATION_URL", "").startswith("http://")


def start(
    argv: list[str], env: dict[str, str], log_dir: Path, name: str, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    """Start one process of the stack in its own process group, output in LOG_DIR/NAME.log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{name}.log").open("ab") as out:
        return subprocess.Popen(  # noqa: S603
            argv,
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(procs: list[subprocess.Popen[bytes]], timeout_s: float = 10.0) -> None:
    """SIGTERM every process group of the stack (newest first), then SIGKILL what lingers."""
    for proc in reversed(procs):
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for proc in reversed(procs):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        _signal_group(proc, signal.SIGKILL)  # children of an exited leader may linger
        proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _alive(proc: subprocess.Popen[bytes], name: str) -> None:
    if proc.poll() is not None:
        raise RuntimeError(f"{name} exited with {proc.returncode}; see its log")


PLAYGROUND_LOOPBACK = ROOT / "devtenant" / "playground" / "loopback.cjs"


def _loopback_node_options(env: Mapping[str, str]) -> str:
    """NODE_OPTIONS that make the Playground listen on 127.0.0.1 only (it has no host option)."""
    return f'{env.get("NODE_OPTIONS", "")} --require "{PLAYGROUND_LOOPBACK}"'.strip()


def start_stack(
    env: dict[str, str],
    data_dir: Path,
    *,
    bot: bool = True,
    playground: bool = True,
    say: Callable[[str], None] = lambda _line: None,
) -> list[subprocess.Popen[bytes]]:
    """Start devtenant, bootstrap, the Calendar Service, the bot and the Playground; return them.

    Ports and URLs come from ``env`` (see ``stack_env``); devtenant keeps its TLS material and keys
    in ``DATA_DIR/devtenant`` (``env["OPENSLOT_CA_BUNDLE"]`` is set to its CA) and every log goes
    to ``DATA_DIR/logs``. On any failure the processes already started are stopped and the error
    is re-raised (RuntimeError when a process does not come up).
    """
    logs, py = data_dir / "logs", sys.executable
    env["OPENSLOT_CA_BUNDLE"] = str(data_dir / "devtenant" / "ca.pem")
    procs: list[subprocess.Popen[bytes]] = []
    if not bot and env.get("OPENSLOT_WATCH_NOTIFICATION_URL") == watch_receiver_url(env):
        env["OPENSLOT_WATCH_NOTIFICATION_URL"] = ""  # no bot, no receiver: the watcher sweeps only
    try:
        port = env["OPENSLOT_DEVTENANT_PORT"]
        procs.append(
            start(
                [
                    py,
                    "-m",
                    "devtenant",
                    "--tenant",
                    served_tenant_file(env, data_dir),
                    "--port",
                    port,
                    "--data-dir",
                    str(data_dir / "devtenant"),
                    # the watcher's receiver is the local bot's plain-HTTP one (Graph needs HTTPS)
                    *(["--allow-http-notifications"] if _http_receiver(env) else []),
                ],
                env,
                logs,
                "devtenant",
            )
        )
        wait_https(
            f"https://127.0.0.1:{port}/{env['OPENSLOT_DEV_TENANT_ID']}/v2.0/.well-known/openid-configuration",
            Path(env["OPENSLOT_CA_BUNDLE"]),
        )
        _alive(procs[-1], "devtenant")
        say(f"devtenant           https://127.0.0.1:{port}")
        bootstrap(env)
        try:
            pools = seed_pools(env)
        except (RuntimeError, OSError, ValueError, KeyError) as exc:  # the stack runs without them
            say(f"pools               not made ({type(exc).__name__}: {str(exc)[:120]})")
        else:
            if pools:
                say(f"pools               {', '.join(pools)}")
        procs.append(start([py, "-m", "calendar_backend", "serve"], env, logs, "calendar"))
        wait_http(f"{env['OPENSLOT_CALENDAR_SERVICE_URL']}/v1/health")
        _alive(procs[-1], "Calendar Service")
        say(f"Calendar Service    {env['OPENSLOT_CALENDAR_SERVICE_URL']}")
        try:
            added = seed_loop_templates(env)
        except (RuntimeError, OSError, ValueError, KeyError) as exc:  # the stack runs without them
            say(f"loop templates      not saved ({type(exc).__name__}: {str(exc)[:120]})")
        else:
            if added:
                say(f"loop templates      {', '.join(added)}")
        if bot and (ROOT / "bot.py").exists():
            procs.append(start([py, "bot.py"], env, logs, "bot"))
            wait_http(f"http://127.0.0.1:{env['OPENSLOT_BOT_PORT']}/healthz")
            _alive(procs[-1], "bot")
            say(f"bot                 http://127.0.0.1:{env['OPENSLOT_BOT_PORT']}/api/messages")
        if bot and playground and PLAYGROUND_BIN.exists() and (ROOT / "bot.py").exists():
            pg_port = env["OPENSLOT_PLAYGROUND_PORT"]
            procs.append(
                start(
                    [
                        str(PLAYGROUND_BIN),
                        "start",
                        "-e",
                        f"http://127.0.0.1:{env['OPENSLOT_BOT_PORT']}/api/messages",
                        "-c",
                        "msteams",
                        "-p",
                        pg_port,
                        "--disable-telemetry",
                    ],
                    {**env, "NODE_OPTIONS": _loopback_node_options(env)},
                    logs,
                    "playground",
                    cwd=PLAYGROUND_BIN.parents[2],
                )
            )
            wait_http(f"http://127.0.0.1:{pg_port}")
            _alive(procs[-1], "Playground")
            say(f'\nOpen http://127.0.0.1:{pg_port} and type "schedule" (or "schedule a loop").')
    except BaseException:
        stop(procs)
        raise
    return procs


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _say(line: str) -> None:
    print(line, flush=True)  # noqa: T201


def main(argv: list[str] | None = None) -> int:
    """Run the stack until interrupted."""
    p = argparse.ArgumentParser(prog="python -m devtenant.stack")
    p.add_argument("--no-playground", action="store_true")
    p.add_argument("--no-bot", action="store_true")
    p.add_argument(
        "--tenant",
        type=Path,
        default=None,
        help="tenant file to serve (default OPENSLOT_TENANT_FILE); its app id is used",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="every file of the stack: database, key file, audit checkpoints, "
        "devtenant's TLS material and keys, logs, stack.env (default .data; "
        "another directory also gets free ports, for a second stack)",
    )
    args = p.parse_args(argv)
    data_dir = args.data_dir.resolve()
    env = stack_env(tenant_file=args.tenant, data_dir=data_dir)
    write_settings(env, data_dir / "stack.env")
    signal.signal(signal.SIGTERM, _interrupt)  # the children run in their own process groups
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs = start_stack(env, data_dir, bot=not args.no_bot, playground=not args.no_playground, say=_say)
        _say(f"Logs in {data_dir / 'logs'}; settings in {data_dir / 'stack.env'}. Ctrl-C to stop.")
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
        print("a process of the stack stopped; see the logs", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop(procs)


if __name__ == "__main__":
    sys.exit(main())
