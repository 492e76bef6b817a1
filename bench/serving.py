"""Serve an aiohttp app over plain HTTP on a random loopback port (the benches' bot and services)."""

from __future__ import annotations

from aiohttp import web


async def serve_http(app: web.Application) -> tuple[web.AppRunner, str]:
    """Start ``app`` on 127.0.0.1 (no access log); returns its runner (the caller cleans it up) and URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"
