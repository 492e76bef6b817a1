"""Run an aiohttp app on 127.0.0.1 (random port) in a daemon thread with its own event loop, so that
synchronous drivers (hypothesis, schemathesis, requests) can call it like any remote server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path

from aiohttp import web

from tests.devtenant.fixtures import DevTenantHandle
from tests.service.conftest import running_service

AppFactory = Callable[[], AbstractAsyncContextManager[web.Application]]


@contextmanager
def serve_in_thread(make_app: Callable[[], web.Application]) -> Iterator[str]:
    """Yield the base URL of ``make_app()`` (called inside the server's loop); cleans up on exit."""

    @asynccontextmanager
    async def factory() -> AsyncIterator[web.Application]:
        yield make_app()

    with serve_cm_in_thread(factory) as url:
        yield url


@contextmanager
def serve_cm_in_thread(factory: AppFactory) -> Iterator[str]:
    """Like `serve_in_thread`, for apps that need async set-up and tear-down around their life."""
    loop = asyncio.new_event_loop()
    ready, done = threading.Event(), asyncio.Event()
    holder: dict[str, object] = {}

    async def main() -> None:
        try:
            async with factory() as app:
                runner = web.AppRunner(app)
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", 0).start()
                holder["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
                ready.set()
                await done.wait()
                await runner.cleanup()
        except BaseException as exc:
            holder["error"] = exc
            ready.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), name="sec-server", daemon=True)
    thread.start()
    if not ready.wait(60) or "url" not in holder:
        raise RuntimeError(f"server did not start: {holder.get('error')!r}")
    try:
        yield str(holder["url"])
    finally:
        loop.call_soon_threadsafe(done.set)
        thread.join(30)
        loop.close()


@asynccontextmanager
async def calendar_service(dt: DevTenantHandle, tmp: Path) -> AsyncIterator[web.Application]:
    """The real Calendar Service app (keyring, SQLite in ``tmp``, all three locks) onboarded to ``dt``."""
    async with running_service(dt, tmp) as (_rt, app):
        yield app
