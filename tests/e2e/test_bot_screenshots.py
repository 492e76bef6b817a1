"""The bot's main cards, rendered in the real Agents Playground and saved as cropped PNGs.

``make screenshots`` writes them to ``docs/bot/screenshots`` (the README's "What the manager
sees"); otherwise they go to ``test-artifacts/bot``. Looking at them found defects the builders'
unit tests did not, so the test also checks what a manager reads on them.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from devtenant import stack
from tests.e2e.bot_screens import SCREENS, StackHooks, capture
from tests.e2e.test_playground import MANAGER_ZONE, Stack, browser, running_stack

pytestmark = pytest.mark.browser
__all__ = ["browser", "running_stack"]  # the Playground suite's fixtures, one stack per module

SHOTS = Path(os.environ.get("OPENSLOT_BOT_SCREENSHOTS_DIR") or stack.ROOT / "test-artifacts" / "bot")
ARTIFACTS = stack.ROOT / "test-artifacts" / "bot"
MAX_BYTES = 100_000


@pytest.fixture
def manager_page(browser: Any, running_stack: Stack) -> Iterator[tuple[Any, Any]]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 1000}, timezone_id=MANAGER_ZONE, locale="en-US"
    )
    page = context.new_page()
    page.goto(running_stack.playground_url)
    page.get_by_text("Schedule an interview", exact=True).first.wait_for(timeout=30_000)
    try:
        yield page, context
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "last-page.png"))  # the whole page, to debug
        context.close()


def hooks_of(running: Stack) -> StackHooks:
    """The admin CLI on the stack's own settings, and devtenant's "decline as that attendee"."""

    def decline(mailbox: str, subject: str) -> None:
        event = next(
            e
            for e in reversed(running.events(mailbox))
            if e.get("subject") == subject and not e.get("isCancelled")
        )
        req = urllib.request.Request(
            f"{running.devtenant_url}/_devtenant/mailboxes/{quote(mailbox)}/events/{quote(event['id'])}/respond",
            data=json.dumps({"response": "declined", "sendResponse": False}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        ctx = ssl.create_default_context(cafile=str(running.ca))
        with urllib.request.urlopen(req, context=ctx, timeout=10):
            pass

    return StackHooks(
        lambda commands: stack.run_admin(running.env, commands),
        decline,
        running.env["OPENSLOT_DEV_TENANT_ID"],
    )


def test_main_cards_as_the_manager_sees_them(manager_page: tuple[Any, Any], running_stack: Stack) -> None:
    page, context = manager_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    saved = capture(page, context, SHOTS, hooks_of(running_stack))
    assert [p.stem for p in saved] == [stem for stem, _ in SCREENS]
    readme = (stack.ROOT / "README.md").read_text(encoding="utf-8")
    for stem, _ in SCREENS:
        assert f"docs/bot/screenshots/{stem}.png" in readme, f"README does not show {stem}"
    for path in saved:
        size = path.stat().st_size
        assert 0 < size <= MAX_BYTES, f"{path.name}: {size} bytes"
