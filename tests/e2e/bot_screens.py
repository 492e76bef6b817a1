"""Drive the Agents Playground through the bot's main cards and save each card, cropped, as a PNG.

Used by ``tests/e2e/test_bot_screenshots.py`` (``make screenshots`` writes to
``docs/bot/screenshots``; the README's "What the manager sees" shows them). ``capture`` needs only
a Playwright page on the Playground and a browser context to open the candidate's page in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPLY_TIMEOUT_MS = 20_000
CARD = ".ac-adaptiveCard"
LINK = re.compile(r"https?://\S+/c/\S+")
# (file stem, what the README calls it), in the order capture() makes them.
SCREENS = (
    ("welcome", "Welcome"),
    ("help", "Help"),
    ("panel-problem", "Panel problem, fixed in place"),
    ("no-slot", "No time fits, with reasons"),
    ("slot-picker", "Slot picker"),
    ("confirmation", "Confirmation"),
    ("booked", "Booked"),
    ("my-interviews", "My interviews"),
    ("cancel-question", "Cancel question"),
    ("candidate-link", "Candidate link"),
    ("booking-notice", "Candidate booked (manager's notice)"),
    ("loop-builder", "Interview loop: saved templates"),
    ("loop-options", "Interview loop: options"),
    ("loop-confirm", "Interview loop: confirmation"),
    ("loop-booked", "Interview loop: booked"),
    ("my-interviews-loop", "My interviews, with a loop"),
    ("my-load", "My load"),
    ("pool-card", "Pool card (its owner)"),
    ("loop-over-cap", "Pooled loop: over cap, one tap with a reason"),
    ("drift-repair", "Drift: a panelist declined, one-tap repairs"),
    ("reconnect", "Reconnect"),
)
DRIFT_TIMEOUT_MS = 90_000  # the watcher's round (15 s in the stack), Graph's notification, the bot's poll


@dataclass(frozen=True)
class StackHooks:
    """What the walk needs from the stack beyond the chat: the admin CLI (``argv`` lists) and a
    decline in devtenant as another user (``mailbox``, the event's subject)."""

    admin: Callable[[list[list[str]]], object]
    decline: Callable[[str, str], None]
    tenant_id: str


class Screens:
    """The Playground's chat, and a cropped PNG of a card per step."""

    def __init__(self, page: Any, out: Path) -> None:
        self.page, self.out = page, out
        out.mkdir(parents=True, exist_ok=True)
        self.saved: list[Path] = []

    def _await_new(self, expect: str | re.Pattern[str], before: int) -> None:
        """Wait until one more element shows ``expect`` than ``before`` (a new reply, not an
        older one that says the same)."""
        found = self.page.get_by_text(expect)
        for _ in range(REPLY_TIMEOUT_MS // 100):
            if found.count() > before:
                return
            self.page.wait_for_timeout(100)
        raise TimeoutError(f"no new {expect!r} within {REPLY_TIMEOUT_MS} ms")

    def say(self, text: str, expect: str | re.Pattern[str]) -> None:
        """Send ``text`` and wait for a new ``expect``."""
        before = self.page.get_by_text(expect).count()
        box = self.page.locator("textarea, [contenteditable=true]").first
        box.click()
        box.fill(text)
        box.press("Enter")
        self._await_new(expect, before)

    def press(self, button: str, expect: str | re.Pattern[str]) -> None:
        """Press ``button`` on the newest card that has it and wait for a new ``expect``."""
        before = self.page.get_by_text(expect).count()
        self.page.get_by_role("button", name=button, exact=True).last.click()
        self._await_new(expect, before)

    def card(self, name: str, containing: str | re.Pattern[str], max_height: int | None = None) -> Path:
        """Save the newest card that shows ``containing`` as ``<name>.png`` (the card only; its top
        ``max_height`` pixels when given, for a card too tall for a small PNG)."""
        card = self.page.locator(CARD).filter(has_text=containing).last
        card.scroll_into_view_if_needed()
        self.page.wait_for_timeout(200)  # let the card's images and fonts settle
        path = self.out / f"{name}.png"
        box = card.bounding_box() if max_height else None
        if box:
            clip = {
                "x": box["x"],
                "y": box["y"],
                "width": box["width"],
                "height": min(box["height"], max_height),
            }
            self.page.screenshot(path=str(path), animations="disabled", clip=clip)
        else:
            card.screenshot(path=str(path), animations="disabled")
        self.saved.append(path)
        return path

    def card_text(self, containing: str) -> str:
        return str(self.page.locator(CARD).filter(has_text=containing).last.inner_text())

    def messages(self, name: str, first: str, last: str) -> Path:
        """Save the chat from the message showing ``first`` to the one showing ``last``."""
        top = self.page.get_by_text(first).last
        bottom = self.page.get_by_text(last).last
        bottom.scroll_into_view_if_needed()
        self.page.wait_for_timeout(200)
        boxes = [b for b in (top.bounding_box(), bottom.bounding_box()) if b]
        margin = 16
        x0 = min(b["x"] for b in boxes) - 60  # the bot's avatar, left of its bubbles
        x1 = max(b["x"] + b["width"] for b in boxes) + margin
        y0 = boxes[0]["y"] - margin
        y1 = boxes[-1]["y"] + boxes[-1]["height"] + margin
        path = self.out / f"{name}.png"
        self.page.screenshot(
            path=str(path),
            animations="disabled",
            clip={"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0},
        )
        self.saved.append(path)
        return path


def capture(page: Any, context: Any, out: Path, hooks: StackHooks) -> list[Path]:  # noqa: PLR0915 - one walk
    """Walk the main cards in the Playground (``page`` has just shown the welcome card)."""
    s = Screens(page, out)
    # The Playground's log panel repeats every message: close it so only the chat matches.
    log_panel = page.get_by_text("Log Panel", exact=True)
    if log_panel.count():
        log_panel.locator("xpath=..").get_by_role("button").last.click()
        log_panel.wait_for(state="hidden", timeout=REPLY_TIMEOUT_MS)
    s.card("welcome", "Schedule an interview")
    s.say("help", "How OpenSlot works")
    s.card("help", "How OpenSlot works")

    s.say("schedule Dana Smith (dana@example.com)", "Who should interview?")
    s.say("Megan Bowen, Ben Walters", "Ben Walters has no mailbox")
    s.page.get_by_text("remove <name>").last.wait_for(timeout=REPLY_TIMEOUT_MS)
    s.messages("panel-problem", "Megan Bowen, Ben Walters", "remove <name>")
    s.say("cancel", re.compile("Cancelled|cancelled|Stopped|OK", re.IGNORECASE))

    s.say(
        "schedule Sam Lee (sam@example.com) with Megan and Adele, 45 min, next saturday",
        "Which time zone is the candidate in?",
    )
    s.say("London", "Any buffer between meetings")
    s.say("none", "No time fits yet")
    s.card("no-slot", "No time fits yet")
    s.say("cancel", re.compile("Cancelled|cancelled|Stopped|OK", re.IGNORECASE))

    s.say(
        "schedule Dana Smith (dana@example.com) with Megan and Adele, 45 min, next week",
        "Which time zone is the candidate in?",
    )
    s.say("India", "Any buffer between meetings")
    s.say("none", "Pick a time")
    page.get_by_role("button", name="Choose", exact=True).first.wait_for(timeout=REPLY_TIMEOUT_MS)
    s.card("slot-picker", "Pick a time")
    page.get_by_role("button", name="Choose", exact=True).first.click()
    page.get_by_text("Book this interview?", exact=True).last.wait_for(timeout=REPLY_TIMEOUT_MS)
    s.card("confirmation", "Book this interview?")
    s.press("Confirm", "Interview booked")
    page.get_by_text("Join Teams meeting", exact=True).last.wait_for(timeout=REPLY_TIMEOUT_MS)
    s.card("booked", "Interview booked")

    s.say("my interviews", "Dana Smith")
    s.card("my-interviews", "Dana Smith")
    s.press("Cancel", "Cancel this interview?")
    question = s.card_text("Cancel this interview?")
    s.card("cancel-question", "Cancel this interview?")
    # What a manager reads: names, not addresses; the candidate's time in their zone (India).
    assert "@" not in question, question
    assert "IST" in question, question
    s.press("Keep it", "Reschedule")  # back to the list

    s.say(
        "schedule Riley Chen (riley@example.com) with Megan and Adele, 45 min, next week",
        "Which time zone is the candidate in?",
    )
    s.say("India", "Any buffer between meetings")
    s.say("none", "Riley Chen")
    s.press("Send to candidate instead", "Booking link ready")
    s.card("candidate-link", "Booking link ready")
    link = LINK.search(s.card_text("Booking link ready"))
    assert link, "no booking link on the card"
    candidate = context.new_page()
    try:
        candidate.goto(link.group(0))
        candidate.locator("input[type=radio]").first.check()
        candidate.get_by_role("button", name="Book this time").click()
        candidate.get_by_role("heading", name="Your interview is booked").wait_for(timeout=REPLY_TIMEOUT_MS)
    finally:
        candidate.close()
    page.get_by_text("Interview booked by the candidate").last.wait_for(timeout=REPLY_TIMEOUT_MS)
    notice = s.card_text("Interview booked by the candidate")
    s.card("booking-notice", "Interview booked by the candidate")
    assert "Riley Chen" in notice, notice
    assert "IST" in notice, notice  # the candidate's time in their zone

    # An interview loop from a sample template (saved into the Calendar Service at start).
    s.say("schedule a loop", "Schedule an interview loop")
    s.card("loop-builder", "Schedule an interview loop")
    s.say(
        "loop Frontend screen and pairing for Kim Park (kim.park@example.com) next week",
        "Which time zone is the candidate in?",
    )
    s.say("India", "Pick a loop")
    viewport = page.viewport_size
    page.set_viewport_size({"width": viewport["width"], "height": 2600})  # five whole loops: a tall card
    s.card("loop-options", "Pick a loop", max_height=1000)  # the first options (a small PNG)
    page.set_viewport_size(viewport)
    s.press("Pick option 1", "Book this loop?")
    s.card("loop-confirm", "Book this loop?")
    s.press("Book the loop", "Interview loop booked")
    s.card("loop-booked", "Interview loop booked")
    pools_and_drift(s, hooks)

    s.say(
        "schedule Sam Lee (sam@example.com) with Megan and Adele, 45 min, next week",
        "Which time zone is the candidate in?",
    )
    s.say("London", "Any buffer between meetings")
    s.say("none", "Interview: Sam Lee")
    s.say("sign out", "You are signed out.")
    page.get_by_role("button", name="Show more times", exact=True).last.click()
    page.get_by_text("Please sign in again").last.wait_for(timeout=REPLY_TIMEOUT_MS)
    s.card("reconnect", "Please sign in again")
    return s.saved


BACKEND = ("meganb", "leeg", "isaiahl", "nestorw", "adelev", "johannal")  # the sample "Backend" pool


def pools_and_drift(s: Screens, hooks: StackHooks) -> None:
    """The loop in My interviews, my load, the pool card, a pooled loop over cap, a drift card."""
    page = s.page
    s.say("my interviews", "Interview loops")
    s.card("my-interviews-loop", "Interview loops")
    s.say("my load", "My interview load")
    s.card("my-load", "My interview load")
    s.say("pool Backend", "Interviewer pool")
    viewport = page.viewport_size
    page.set_viewport_size({"width": viewport["width"], "height": 2600})  # six members: a tall card
    s.card("pool-card", "Interviewer pool", max_height=1100)  # the first members (a small PNG)
    page.set_viewport_size(viewport)
    # Every Backend member at their cap this week: only caps keep the pooled sessions empty.
    caps = ["pool", "set-caps", "--tenant", hooks.tenant_id, "--name", "Backend", "--weekly-cap", "0"]
    hooks.admin([[*caps, "--member", f"{alias}@contoso.example"] for alias in BACKEND])
    s.say(
        "loop Backend pool onsite for Jo Lane (jo.lane@example.com) next week",
        "Which time zone is the candidate in?",
    )
    s.say("India", "No loop fits yet")
    page.get_by_role("button", name=re.compile("^Over cap: use")).last.wait_for(timeout=REPLY_TIMEOUT_MS)
    page.get_by_role("button", name=re.compile("^Over cap: use")).last.click()  # its reason box
    page.wait_for_timeout(300)
    s.card("loop-over-cap", "No loop fits yet")
    s.say("cancel", re.compile("Cancelled|cancelled|Stopped|OK", re.IGNORECASE))
    # Megan declines the interview booked above, in devtenant: the watcher's card reaches the chat.
    before = page.get_by_text("An interview needs a fix").count()
    hooks.decline("meganb@contoso.example", "Interview: Dana Smith")
    found = page.get_by_text("An interview needs a fix")
    for _ in range(DRIFT_TIMEOUT_MS // 250):
        if found.count() > before:
            break
        page.wait_for_timeout(250)
    else:
        raise TimeoutError("no drift card")
    s.card("drift-repair", "An interview needs a fix")
