"""Headless Chromium against the real servers: open a link, see open times in the candidate's zone,
book, see the confirmation; the manager is told in Teams and the event exists in devtenant."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.candidate.conftest import Env
from tests.service.conftest import ALEX

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        await b.close()


def _alex_events(env: Env) -> list[dict[str, Any]]:
    found = (
        env.stack.devtenant.session()
        .get(f"{env.stack.devtenant.base_url}/_devtenant/mailboxes/{ALEX}/events", timeout=10)
        .json()
    )
    events = found.get("value", found) if isinstance(found, dict) else found
    # the panel's event only (the candidate's own invite is a second event, checked elsewhere)
    return [
        e for e in events if e.get("subject") == "Interview: Dana Smith" and e.get("isOnlineMeeting") is True
    ]


async def test_candidate_books_in_detected_zone(candidate_env: Env, browser: Any) -> None:
    env = candidate_env
    token, _ = await env.make_offer([env.person("Megan Bowen"), env.person("Adele Vance")])
    context = await browser.new_context(timezone_id="Europe/Berlin", locale="de-DE")
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    external: list[str] = []
    page.on(
        "request",
        lambda r: external.append(r.url) if not r.url.startswith(str(env.bot.make_url("/"))) else None,
    )
    await page.goto(env.page_url(token))
    await page.wait_for_url(re.compile(r"\?tz=Europe%2FBerlin$"))  # detected, plain GET
    legend = await page.locator("legend").inner_text()
    assert "Germany (CE" in legend
    assert await page.locator("#tz").input_value() == "Europe/Berlin"
    labels = await page.locator("label.slot").all_inner_texts()
    assert labels
    assert all(re.search(r"CES?T$", t) for t in labels), labels
    html = await page.content()
    assert "CANARY-" not in html
    assert "Adele" not in html
    await page.locator("input[type=radio]").first.check()
    await page.get_by_role("button", name="Book this time").click()
    await page.get_by_text("Your interview is booked").wait_for()
    booked = await page.locator("main").inner_text()
    assert re.search(r"\d{2}:\d{2}\u2013\d{2}:\d{2} CES?T", booked), booked
    assert problems == []
    assert external == []
    assert len(env.teams.posted) == 1
    assert "Dana Smith booked" in env.teams.posted[0]["text"]
    assert len(_alex_events(env)) == 1
    await context.close()


async def test_page_works_without_javascript_in_offer_zone(candidate_env: Env, browser: Any) -> None:
    env = candidate_env
    token, _ = await env.make_offer([env.person("Megan Bowen")])
    context = await browser.new_context(
        java_script_enabled=False, timezone_id="Europe/Berlin", viewport={"width": 360, "height": 740}
    )
    page = await context.new_page()
    await page.goto(env.page_url(token))
    assert "Nepal (UTC+05:45)" in await page.locator("legend").inner_text()
    labels = await page.locator("label.slot").all_inner_texts()
    assert labels
    assert all(t.endswith("UTC+05:45") for t in labels), labels[:3]
    await page.select_option("#tz", "America/New_York")
    await page.get_by_role("button", name="Change time zone").click()
    assert "US Eastern" in await page.locator("legend").inner_text()
    await page.locator("input[type=radio]").nth(1).check()
    await page.get_by_role("button", name="Book this time").click()
    await page.get_by_text("Your interview is booked").wait_for()
    assert len(_alex_events(env)) == 1
    await context.close()
