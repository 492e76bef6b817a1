"""End-to-end: the real stack (devtenant, Calendar Service, bot, Microsoft 365 Agents Playground)
driven through the Playground's own web UI in headless Chromium, as a newcomer would use it.

Every process runs on random free ports with a temporary database, key file and devtenant data
directory (``devtenant.stack.start_stack``); screenshots of each step go to
``test-artifacts/e2e/``. The booked invite is then checked in devtenant: it must exist in every
attendee's calendar with Alex as organizer, a Teams join URL, and the times the cards showed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from devtenant import stack

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = stack.ROOT / "test-artifacts" / "e2e"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
# Alex's zone. The Playground stamps activities' localTimezone with its own process zone (TZ).
MANAGER_ZONE = "America/New_York"
REPLY_TIMEOUT_MS = 20_000
ALEX, MEGAN, ADELE = (f"{a}@contoso.example" for a in ("alexw", "meganb", "adelev"))
TEAMS_JOIN = "https://teams.microsoft.com/l/meetup-join/"
# Cards write "Tue 1 Dec, 11:00<en dash>11:45 EST" (a fact) and a slot row adds " · " and the
# candidate's range, e.g. "... EST · 21:30<en dash>22:15 IST".
DASH = "\u2013"
HOURS = rf"\d\d:\d\d{DASH}\d\d:\d\d"
TIME_RANGE = re.compile(rf"(\d{{1,2}}) (\w{{3}}), (\d\d:\d\d){DASH}(\d\d:\d\d)")
SLOT_ROW = re.compile(rf"{HOURS} \S+ · {HOURS} ")


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (make browser installs Debian's chromium)"
    if not stack.PLAYGROUND_BIN.exists():
        return "the Agents Playground is not installed (npm ci --prefix devtenant/playground)"
    if shutil.which("node") is None:
        return "node is not on PATH (the Agents Playground needs Node.js)"
    return None


if _missing():
    pytest.skip(str(_missing()), allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Stack:
    """The running stack: where the Playground is, and how to read devtenant's mailboxes."""

    playground_url: str
    devtenant_url: str
    ca: Path

    def events(self, mailbox: str) -> list[dict[str, Any]]:
        """The raw event store of ``mailbox`` (devtenant test control)."""
        ctx = ssl.create_default_context(cafile=str(self.ca))
        url = f"{self.devtenant_url}/_devtenant/mailboxes/{quote(mailbox)}/events"
        with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
            doc = json.load(resp)
        return list(doc["value"])


def stack_overrides(tmp: Path) -> dict[str, str]:
    """OPENSLOT_* for a private stack on random ports with its own database and keys (and TZ)."""
    dt, cal, bot, pg = (free_port() for _ in range(4))
    devtenant = f"https://127.0.0.1:{dt}"
    return {
        "TZ": MANAGER_ZONE,
        "OPENSLOT_ENV": "dev",
        "OPENSLOT_DEVTENANT_PORT": str(dt),
        "OPENSLOT_AUTHORITY_HOST": devtenant,
        "OPENSLOT_GRAPH_BASE_URL": f"{devtenant}/v1.0",
        "OPENSLOT_TOKEN_SERVICE_URL": devtenant,
        "OPENSLOT_CALENDAR_SERVICE_PORT": str(cal),
        "OPENSLOT_CALENDAR_SERVICE_URL": f"http://127.0.0.1:{cal}",
        "OPENSLOT_BOT_PORT": str(bot),
        "OPENSLOT_PUBLIC_BASE_URL": f"http://127.0.0.1:{bot}",
        "OPENSLOT_PLAYGROUND_PORT": str(pg),
        "OPENSLOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'openslot.db'}",
        "OPENSLOT_KEY_FILE": str(tmp / "keys" / "kek.json"),
    }


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("e2e-stack")
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPENSLOT_")}
    env = stack.stack_env({**base, **stack_overrides(tmp)})
    try:
        procs = stack.start_stack(env, tmp)
    except (RuntimeError, subprocess.CalledProcessError) as err:
        logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                         for p in sorted((tmp / "logs").glob("*.log")))
        pytest.fail(f"the stack did not start: {err}\n{logs}")
    try:
        yield Stack(f"http://127.0.0.1:{env['OPENSLOT_PLAYGROUND_PORT']}",
                    f"https://127.0.0.1:{env['OPENSLOT_DEVTENANT_PORT']}",
                    Path(env["OPENSLOT_CA_BUNDLE"]))
    finally:
        stack.stop(procs)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Chat:
    """The Playground's personal chat with OpenSlot, plus numbered screenshots."""

    def __init__(self, page: Any, scenario: str) -> None:
        self.page = page
        self._scenario = scenario
        self._shots = 0
        for stale in ARTIFACTS.glob(f"{scenario}_*.png"):
            stale.unlink()

    def shot(self, step: str) -> Path:
        """Save a screenshot of the current page as ``<scenario>_<nn>_<step>.png``."""
        self._shots += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self._scenario}_{self._shots:02d}_{step}.png"
        self.page.screenshot(path=str(path))
        return path

    def say(self, text: str, expect: str | re.Pattern[str]) -> None:
        """Type ``text`` in the message box, send it, and wait for the bot's ``expect``."""
        box = self.page.locator("textarea, [contenteditable=true]").first  # the compose box
        box.click()
        box.fill(text)
        box.press("Enter")
        self.page.get_by_text(expect).last.wait_for(timeout=REPLY_TIMEOUT_MS)

    def press(self, button: str, expect: str) -> None:
        """Press the first ``button`` on the newest card and wait for ``expect`` on a card."""
        self.page.get_by_role("button", name=button, exact=True).first.click()
        self.page.get_by_text(expect, exact=True).last.wait_for(timeout=REPLY_TIMEOUT_MS)

    def shows(self, text: str) -> bool:
        return bool(self.page.get_by_text(text).count())

    def field(self, label: str) -> str:
        """The value next to ``label`` in the newest fact-style card (e.g. "Your time")."""
        row = self.page.get_by_text(label, exact=True).last
        return str(row.locator("xpath=following::*[normalize-space(text())][1]").inner_text())


@pytest.fixture
def chat(browser: Any, running_stack: Stack, request: pytest.FixtureRequest) -> Iterator[Chat]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000},
                                  timezone_id=MANAGER_ZONE, locale="en-US")
    page = context.new_page()
    page.goto(running_stack.playground_url)
    chat = Chat(page, request.node.name.removeprefix("test_"))
    # The bot's welcome card proves the Playground reached the bot.
    page.get_by_text("Schedule an interview", exact=True).first.wait_for(timeout=30_000)
    try:
        yield chat
    finally:
        chat.shot("last")
        context.close()


def span_of(text: str, year: int, zone: str) -> tuple[datetime, datetime]:
    """The aware (start, end) of "1 Dec, 11:00-11:45" (en dash) in ``zone``, ``year`` given."""
    match = TIME_RANGE.search(text)
    assert match, f"no time range in {text!r}"
    day, month, start, end = match.groups()
    tz = ZoneInfo(zone)
    fmt = "%Y %d %b %H:%M"
    return (datetime.strptime(f"{year} {day} {month} {start}", fmt).replace(tzinfo=tz),
            datetime.strptime(f"{year} {day} {month} {end}", fmt).replace(tzinfo=tz))


def graph_time(value: dict[str, str]) -> datetime:
    """A Graph dateTimeTimeZone as an aware UTC datetime (devtenant stores UTC here)."""
    assert value["timeZone"] == "UTC", value
    return datetime.fromisoformat(value["dateTime"]).replace(tzinfo=UTC)


def booked_events(running_stack: Stack, mailbox: str, candidate: str, *,
                  theirs: bool = False) -> list[dict[str, Any]]:
    """The booking's panel events (``theirs``: the candidate's own invite, a second event)."""
    return [e for e in running_stack.events(mailbox)
            if candidate in str(e.get("subject", "")) and not e.get("isCancelled")
            and (e.get("isOnlineMeeting") is not True) == theirs]


def test_newcomer_books_an_interview(chat: Chat, running_stack: Stack) -> None:
    chat.say("schedule", "What is the candidate's name?")
    chat.shot("asked_name")
    chat.say("Dana Smith", "What is Dana Smith's e-mail?")
    chat.say("dana@example.com", "Who should interview?")
    chat.say("Megan Bowen and Adele Vance", "How long is the interview?")
    chat.shot("asked_duration")
    chat.say("45", "When?")
    chat.say("next week", "Which time zone is the candidate in?")
    chat.say("India", "Any buffer between meetings")
    chat.say("none", "Pick a time")
    chat.page.get_by_role("button", name="Choose", exact=True).first.wait_for()
    chat.shot("slot_card")

    first_row = chat.page.get_by_text(SLOT_ROW).first.inner_text()
    assert "IST" in first_row, first_row  # both zones on every row: the manager's, then India's
    assert chat.shows("45 min with Megan Bowen and Adele Vance")

    chat.press("Choose", "Book this interview?")
    chat.shot("confirmation_card")
    your_time, their_time = chat.field("Your time"), chat.field("Their time")
    assert your_time in first_row
    assert their_time.split(", ")[1] in first_row

    chat.press("Confirm", "Interview booked")
    chat.page.get_by_text("Join Teams meeting", exact=True).wait_for()
    chat.shot("booked_card")
    assert chat.field("Your time") == your_time

    [organizer_copy] = booked_events(running_stack, ALEX, "Dana Smith")
    year = graph_time(organizer_copy["start"]).year
    start, end = (graph_time(organizer_copy[k]) for k in ("start", "end"))
    assert (start, end) == span_of(your_time, year, MANAGER_ZONE)
    assert (start, end) == span_of(their_time, year, "Asia/Kolkata")
    assert (end - start).total_seconds() == 45 * 60
    for mailbox in (ALEX, MEGAN, ADELE):
        [event] = booked_events(running_stack, mailbox, "Dana Smith")
        assert event["organizer"]["emailAddress"]["address"] == ALEX, mailbox
        assert event["isOnlineMeeting"] is True
        assert str(event["onlineMeeting"]["joinUrl"]).startswith(TEAMS_JOIN), mailbox
        assert event["onlineMeeting"]["joinUrl"] == organizer_copy["onlineMeeting"]["joinUrl"]
        assert (graph_time(event["start"]), graph_time(event["end"])) == (start, end)
        attendees = {a["emailAddress"]["address"].lower() for a in event["attendees"]}
        assert {MEGAN, ADELE} <= attendees, mailbox
        assert "dana@example.com" not in attendees, mailbox  # the candidate has their own
    [own] = booked_events(running_stack, ALEX, "Dana Smith", theirs=True)
    assert [a["emailAddress"]["address"] for a in own["attendees"]] == ["dana@example.com"]
    assert organizer_copy["onlineMeeting"]["joinUrl"] in own["body"]["content"]


def test_one_message_command_goes_straight_to_the_zone_question(chat: Chat) -> None:
    chat.say("schedule Dana Smith (dana@example.com) with Megan and Adele, 45 min, next week",
             "Which time zone is the candidate in?")
    chat.shot("asked_zone")
    for question in ("candidate's name", "e-mail?", "Who should interview?",
                     "How long is the interview?", "When? e.g."):
        assert not chat.shows(question), f"asked again: {question}"
    chat.say("London", "Any buffer between meetings")
    chat.say("none", "Pick a time")
    chat.page.get_by_role("button", name="Choose", exact=True).first.wait_for()
    chat.shot("slot_card")
    assert chat.shows("Interview: Dana Smith")
    assert chat.shows("45 min with Megan Bowen and Adele Vance")
    rows = chat.page.get_by_text(SLOT_ROW)
    assert rows.count() >= 1
    assert all(row.endswith((" GMT", " BST")) for row in rows.all_inner_texts())  # London
