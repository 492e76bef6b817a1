"""`python -m devtenant.stack`: run the whole local stack for `make run` and the end-to-end tests.

Starts devtenant (HTTPS), bootstraps the sample tenant's admin consent into the Calendar Service
(the key file, the database, the encrypted tenant credential), then the Calendar Service, the bot and the
Microsoft 365 Agents Playground, and prints the URL to open. Ctrl-C stops everything.

Settings come from `.env.example`, then `.env` (if present), then the real environment, later winning.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from ssl import create_default_context

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


def stack_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every process of the stack gets."""
    env = read_env_file(ROOT / ".env.example")
    env.update(read_env_file(ROOT / ".env"))
    env.update(dict(base or os.environ))
    tenant = json.loads((ROOT / env["OPENSLOT_TENANT_FILE"]).read_text(encoding="utf-8"))
    app = tenant["applications"][0]
    env.setdefault("OPENSLOT_CLIENT_ID", app["appId"])
    if not env.get("OPENSLOT_CLIENT_ID"):
        env["OPENSLOT_CLIENT_ID"] = app["appId"]
    env["OPENSLOT_DEV_TENANT_ID"] = tenant["tenant"]["id"]
    env["OPENSLOT_TENANT_CLIENT_SECRET"] = app["passwordCredentials"][0]["secretText"]
    # Python's ssl, aiohttp and requests all trust devtenant's CA through these.
    ca = str(ROOT / env["OPENSLOT_CA_BUNDLE"])
    env["OPENSLOT_CA_BUNDLE"] = ca
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


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
    for args in (["keys", "init"], ["migrate"],
                 ["tenant", "add", "--tenant-id", env["OPENSLOT_DEV_TENANT_ID"]]):
        subprocess.run([py, "-m", "calendar_backend", *args], env=env, check=True, cwd=ROOT)  # noqa: S603


def start(argv: list[str], env: dict[str, str], log_dir: Path, name: str,
          cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    """Start one process of the stack in its own process group, output in LOG_DIR/NAME.log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{name}.log").open("ab") as out:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdout=out,  # noqa: S603
                                stderr=subprocess.STDOUT, start_new_session=True)


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
    return f"{env.get('NODE_OPTIONS', '')} --require \"{PLAYGROUND_LOOPBACK}\"".strip()


def start_stack(env: dict[str, str], data_dir: Path, *, bot: bool = True, playground: bool = True,
                say: Callable[[str], None] = lambda _line: None) -> list[subprocess.Popen[bytes]]:
    """Start devtenant, bootstrap, the Calendar Service, the bot and the Playground; return them.

    Ports and URLs come from ``env`` (see ``stack_env``); devtenant keeps its TLS material and keys
    in ``DATA_DIR/devtenant`` (``env["OPENSLOT_CA_BUNDLE"]`` is set to its CA) and every log goes
    to ``DATA_DIR/logs``. On any failure the processes already started are stopped and the error
    is re-raised (RuntimeError when a process does not come up).
    """
    logs, py = data_dir / "logs", sys.executable
    env["OPENSLOT_CA_BUNDLE"] = str(data_dir / "devtenant" / "ca.pem")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        port = env["OPENSLOT_DEVTENANT_PORT"]
        procs.append(start([py, "-m", "devtenant", "--tenant", env["OPENSLOT_TENANT_FILE"],
                            "--port", port, "--data-dir", str(data_dir / "devtenant")],
                           env, logs, "devtenant"))
        wait_https(f"https://127.0.0.1:{port}/{env['OPENSLOT_DEV_TENANT_ID']}"
                   "/v2.0/.well-known/openid-configuration", Path(env["OPENSLOT_CA_BUNDLE"]))
        _alive(procs[-1], "devtenant")
        say(f"devtenant           https://127.0.0.1:{port}")
        bootstrap(env)
        procs.append(start([py, "-m", "calendar_backend", "serve"], env, logs, "calendar"))
        wait_http(f"{env['OPENSLOT_CALENDAR_SERVICE_URL']}/v1/health")
        _alive(procs[-1], "Calendar Service")
        say(f"Calendar Service    {env['OPENSLOT_CALENDAR_SERVICE_URL']}")
        if bot and (ROOT / "bot.py").exists():
            procs.append(start([py, "bot.py"], env, logs, "bot"))
            wait_http(f"http://127.0.0.1:{env['OPENSLOT_BOT_PORT']}/healthz")
            _alive(procs[-1], "bot")
            say(f"bot                 http://127.0.0.1:{env['OPENSLOT_BOT_PORT']}/api/messages")
        if bot and playground and PLAYGROUND_BIN.exists() and (ROOT / "bot.py").exists():
            pg_port = env["OPENSLOT_PLAYGROUND_PORT"]
            procs.append(start(
                [str(PLAYGROUND_BIN), "start", "-e",
                 f"http://127.0.0.1:{env['OPENSLOT_BOT_PORT']}/api/messages", "-c", "msteams",
                 "-p", pg_port, "--disable-telemetry"],
                {**env, "NODE_OPTIONS": _loopback_node_options(env)}, logs, "playground",
                cwd=PLAYGROUND_BIN.parents[2]))
            wait_http(f"http://127.0.0.1:{pg_port}")
            _alive(procs[-1], "Playground")
            say(f"\nOpen http://127.0.0.1:{pg_port} and type \"schedule\".")
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
    p.add_argument("--data-dir", type=Path, default=ROOT / ".data",
                   help="devtenant's TLS material and keys (DIR/devtenant) and logs (DIR/logs)")
    args = p.parse_args(argv)
    env = stack_env()
    data_dir = args.data_dir.resolve()
    signal.signal(signal.SIGTERM, _interrupt)  # the children run in their own process groups
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs = start_stack(env, data_dir, bot=not args.no_bot,
                            playground=not args.no_playground, say=_say)
        _say(f"Logs in {data_dir / 'logs'}. Ctrl-C to stop.")
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
