"""Two bots and two Calendar Services as real subprocesses on one fresh PostgreSQL database.

The cluster (module-scoped) is: devtenant in-process on a random HTTPS port, a fresh database
``openslot_scaleout_<random>`` on ``OPENSLOT_TEST_POSTGRES_URL`` (default
``postgresql+asyncpg://postgres@127.0.0.1:5432/``, dropped at the end), ``python -m calendar_backend
serve`` twice and ``python bot.py`` twice on random ports, and a fake Bot Framework connector (an
devtenant.bot_connector, in a thread) recording every activity the bots send. Bot ``i`` talks to Calendar
Service ``i``. When PostgreSQL is unreachable every test here is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url

from devtenant.bot_connector import FakeBotConnector
from tests.devtenant.fixtures import DevTenantHandle, devtenant_server  # noqa: F401
from tests.security.servers import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/"
STRIPPED_ENV = (
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
)


def _admin_dsn(url: str) -> str:
    return (
        make_url(url).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    )


def pg_admin(url: str, statement: str) -> None:
    """Run one statement on the server's ``postgres`` database (own loop, own thread)."""

    async def run() -> None:
        conn = await asyncpg.connect(_admin_dsn(url), timeout=3)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    if errors:
        raise errors[0]


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 40) -> None:
    """Wait for ``url`` to answer 200; fail with the process log if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{url} exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{url} did not come up:\n{log.read_text(errors='replace')[-3000:]}")


def start_connector() -> tuple[FakeBotConnector, Callable[[], None]]:
    """devtenant's fake Bot Connector on its own loop in a daemon thread; returns it and ``stop()``."""
    connector, serving = FakeBotConnector(), ExitStack()
    connector.url = serving.enter_context(serve_in_thread(connector.app))
    return connector, serving.close


@dataclass
class Cluster:
    """The running processes and how to reach them."""

    devtenant: DevTenantHandle
    database_url: str
    env: dict[str, str]
    calendar_urls: list[str]
    bot_urls: list[str]
    connector: FakeBotConnector
    procs: list[subprocess.Popen[bytes]]
    logs: Path

    @property
    def tenant_id(self) -> str:
        return self.devtenant.tenant_id

    def log_tail(self, name: str) -> str:
        """The end of process ``name``'s log (``bot0``, ``calendar1``, ...), for failure messages."""
        return (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``python -m calendar_backend ARGS`` against the shared database and key file."""
        return subprocess.run(
            [sys.executable, "-m", "calendar_backend", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def _base_env(dt: DevTenantHandle, database_url: str, tmp: Path) -> dict[str, str]:
    app = dt.tenant.applications()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSLOT_") and k not in STRIPPED_ENV}
    env.update(
        {
            "OPENSLOT_ENV": "dev",
            "OPENSLOT_DATABASE_URL": database_url,
            "OPENSLOT_KEY_FILE": str(tmp / "keys" / "kek.json"),
            "OPENSLOT_AUDIT_CHECKPOINT_FILE": str(tmp / "audit" / "checkpoints.jsonl"),
            "OPENSLOT_AUTHORITY_HOST": dt.base_url,
            "OPENSLOT_GRAPH_BASE_URL": f"{dt.base_url}/v1.0",
            "OPENSLOT_CA_BUNDLE": str(dt.ca_path),
            "OPENSLOT_CLIENT_ID": str(app["appId"]),
            "OPENSLOT_TENANT_CLIENT_SECRET": str(app["passwordCredentials"][0]["secretText"]),
            "OPENSLOT_DEV_TENANT_ID": dt.tenant_id,
            "OPENSLOT_TOKEN_SERVICE_URL": dt.base_url,
            "OPENSLOT_ALLOWED_SERVICE_URL_HOSTS": "127.0.0.1",
            "OPENSLOT_DEFAULT_NOTICE_MIN": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def _start_processes(
    env: dict[str, str], logs: Path, procs: list[subprocess.Popen[bytes]]
) -> tuple[list[str], list[str]]:
    """Start 2 Calendar Services, then 2 bots (bot i → service i); ``procs`` collects them."""
    calendars: list[str] = []
    bots: list[str] = []
    for i in range(2):
        port = free_port()
        log = logs / f"calendar{i}.log"
        proc = _spawn(
            [sys.executable, "-m", "calendar_backend", "serve"],
            {**env, "OPENSLOT_CALENDAR_SERVICE_PORT": str(port)},
            log,
        )
        procs.append(proc)
        calendars.append(f"http://127.0.0.1:{port}")
        wait_http(f"{calendars[-1]}/v1/health", proc, log)
    for i in range(2):
        port = free_port()
        log = logs / f"bot{i}.log"
        proc = _spawn(
            [sys.executable, "bot.py"],
            {
                **env,
                "OPENSLOT_BOT_PORT": str(port),
                "OPENSLOT_CALENDAR_SERVICE_URL": calendars[i],
                "OPENSLOT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            },
            log,
        )
        procs.append(proc)
        bots.append(f"http://127.0.0.1:{port}")
        wait_http(f"{bots[-1]}/healthz", proc, log)
    return calendars, bots


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A brand-new PostgreSQL database URL, dropped afterwards; skips when none is reachable."""
    base = os.environ.get("OPENSLOT_TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        pg_admin(base, "SELECT 1")
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.skip(
            f"scale-out test skipped: PostgreSQL not reachable at "
            f"{make_url(base).host}:{make_url(base).port or 5432} ({exc!r})"
        )
    name = f"openslot_scaleout_{secrets.token_hex(5)}"
    pg_admin(base, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def cluster(
    pg_database: str,
    devtenant_server: DevTenantHandle,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """Two Calendar Services and two bots sharing ``pg_database``; all stopped afterwards."""
    tmp = tmp_path_factory.mktemp("scaleout")
    env = _base_env(devtenant_server, pg_database, tmp)
    connector, stop_connector = start_connector()
    procs: list[subprocess.Popen[bytes]] = []
    cluster = Cluster(devtenant_server, pg_database, env, [], [], connector, procs, tmp)
    try:
        for args in (
            ("keys", "init"),
            ("migrate",),
            ("tenant", "add", "--tenant-id", devtenant_server.tenant_id),
        ):
            done = cluster.cli(*args)
            assert done.returncode == 0, done.stderr[-2000:]
        cluster.calendar_urls, cluster.bot_urls = _start_processes(env, tmp, procs)
        yield cluster
    finally:
        _stop(procs)
        stop_connector()
        devtenant_server.reset()
