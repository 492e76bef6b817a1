"""Composition of devtenant's HTTPS app: Entra ID + Bot Framework + Graph (+ test controls).

`build_app` wires one `DevTenant` into every surface; `bind_socket` + `start_site` serve it
over TLS.
Request logging records method, path (never the query string), status and duration: no tokens,
no bodies, no calendar contents.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from devtenant.botframework import add_botframework_routes
from devtenant.control import add_control_routes, install_clock
from devtenant.entra import ISSUER_KEY, TokenIssuer, add_entra_routes
from devtenant.keys import SigningKeys
from devtenant.subscriptions import hub_for
from devtenant.tenant import DevTenant
from devtenant.tls import ensure_tls_files, server_ssl_context

log = logging.getLogger("devtenant")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(
    tenant: DevTenant, *, base_url: str, data_dir: Path, enable_controls: bool = True
) -> web.Application:
    """The devtenant aiohttp app for `tenant`, issuing tokens with issuer `{base_url}/{tid}/v2.0`.

    Signing keys persist in `data_dir` (`signing-keys.json`, `channel-keys.json`, mode 0600).
    Controls (`/_devtenant/...`) are mounted only when `enable_controls` is true.
    """
    app = web.Application(middlewares=[_access_log])
    issuer = TokenIssuer(
        tenant, base_url, SigningKeys(data_dir / "signing-keys.json", clock=lambda: tenant.clock())
    )
    channel_keys = SigningKeys(
        data_dir / "channel-keys.json",
        clock=lambda: tenant.clock(),
        endorsements=["msteams"],
        subject="botframework channel",
    )
    install_clock(issuer)
    add_entra_routes(app, issuer)
    add_botframework_routes(app, channel_keys)
    _add_graph(app, tenant, issuer)
    # change-notification receivers may use devtenant's own CA (tests, the local stack)
    hub_for(tenant).trust(ensure_tls_files(data_dir).ca_path)
    if enable_controls:
        add_control_routes(app)
    return app


def _add_graph(app: web.Application, tenant: DevTenant, issuer: TokenIssuer) -> None:
    try:
        from devtenant.graph import add_graph_routes
    except ImportError:
        log.warning("devtenant.graph is not available; Graph routes are not served")
        return
    add_graph_routes(app, tenant, issuer.verify_graph_token)


@web.middleware
async def _access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        log.info(
            "%s %s %d %.1fms",
            request.method,
            request.path,
            status,
            (time.perf_counter() - started) * 1000,
        )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0 picks a free port; read it with getsockname)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def base_url_for(host: str, port: int) -> str:
    """`https://host:port` with IPv6 hosts bracketed."""
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}:{port}"


async def start_site(app: web.Application, sock: socket.socket, ssl_context: ssl.SSLContext) -> web.AppRunner:
    """Serve `app` over TLS on an already bound socket; the caller cleans the runner up."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock, ssl_context=ssl_context).start()
    return runner


@dataclass(frozen=True)
class ThreadedServer:
    """devtenant running on its own event loop in a daemon thread (tests and benchmarks)."""

    base_url: str
    ca_path: Path
    issuer: TokenIssuer
    loop: asyncio.AbstractEventLoop
    stop: Callable[[], None]


def serve_in_thread(tenant: DevTenant, data_dir: Path, host: str = "127.0.0.1") -> ThreadedServer:
    """Serve `tenant` over HTTPS on a free port of `host` in a daemon thread until `stop()`.

    Its own loop lets synchronous clients (MSAL, requests) call it from the caller's loop thread.
    Raises `RuntimeError` if it does not come up within 30 s.
    """
    loop, ready = asyncio.new_event_loop(), threading.Event()
    sock = bind_socket(host, 0)
    base_url = base_url_for(host, sock.getsockname()[1])
    app = build_app(tenant, base_url=base_url, data_dir=data_dir)
    holder: dict[str, web.AppRunner] = {}

    async def start() -> None:
        holder["runner"] = await start_site(app, sock, server_ssl_context(data_dir))
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="devtenant", daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("devtenant did not start")

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return ThreadedServer(base_url, ensure_tls_files(data_dir).ca_path, app[ISSUER_KEY], loop, stop)
