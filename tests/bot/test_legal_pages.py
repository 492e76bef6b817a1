"""The bot serves the privacy statement and terms of use the Teams manifest links to."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.bot.test_endpoint import channel, client, settings_for  # noqa: F401


@pytest.mark.parametrize(("path", "title"), [("/privacy", "Privacy statement"), ("/terms", "Terms of use")])
async def test_bot_serves_the_pages_the_manifest_links_to(
    client: TestClient[Any, Any],
    path: str,
    title: str,
) -> None:
    resp = await client.get(path)
    assert resp.status == 200
    assert resp.content_type == "text/html"
    page = await resp.text()
    assert f"OpenSlot: {title}" in page
    assert "<script" not in page
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
