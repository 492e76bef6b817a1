"""'Send a link to the candidate' on the loop options card (issue 17): the link card for a loop link,
made with the flow's template, window, candidate and the manager's conversation reference."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from botbuilder.core.adapters import TestAdapter

from calendar_backend.contract import OfferOut
from dialogs.loop_link import LoopLinkApi
from dialogs.sql_storage import SqlStorage
from tests.bot.conftest import NOW, make_adapter, make_bot
from tests.bot.loop_fakes import FakeLoopCalendar
from tests.bot.test_loop_dialog import card_of, heading, press, text_of, to_options

URL = "https://bot.example/c/" + "A" * 43


@dataclass
class FakeLoopLinks(FakeLoopCalendar):
    """FakeLoopCalendar that also mints loop links (records each request)."""

    loop_offers: list[dict[str, Any]] = field(default_factory=list)

    async def create_loop_offer(
        self,
        token: str,
        *,
        template: dict[str, Any],
        window_start: datetime,
        window_end: datetime,
        candidate_name: str,
        candidate_time_zone: str | None = None,
        conversation_ref: dict[str, Any] | None = None,
        candidate_email: str | None = None,
        manager_time_zone: str | None = None,
    ) -> OfferOut:
        self._loop_check(token, "create_loop_offer")
        self.loop_offers.append(
            {
                "template": template,
                "window": (window_start, window_end),
                "candidate_name": candidate_name,
                "candidate_time_zone": candidate_time_zone,
                "candidate_email": candidate_email,
                "conversation_ref": conversation_ref,
                "manager_time_zone": manager_time_zone,
            }
        )
        return OfferOut("offer-1", "open", NOW + timedelta(days=7), URL)


@pytest.fixture
def links() -> FakeLoopLinks:
    return FakeLoopLinks()


@pytest.fixture
def chat(storage: SqlStorage, links: FakeLoopLinks) -> TestAdapter:
    return make_adapter(make_bot(storage, links))


def test_the_fake_mints_loop_links() -> None:
    assert isinstance(FakeLoopLinks(), LoopLinkApi)


async def test_send_a_link_for_the_loop(chat: TestAdapter, links: FakeLoopLinks) -> None:
    options = await to_options(chat)
    card = card_of(await press(chat, options, "Send a link to the candidate"))
    assert heading(card) == "Booking link ready"
    assert URL in str(card)
    assert "E-mail to candidate" in text_of(card)
    [made] = links.loop_offers
    assert made["template"]["name"] == "Backend onsite"
    assert made["candidate_name"] == "Dana Scully"
    assert made["candidate_email"] == "dana@example.com"
    assert made["candidate_time_zone"] == "Asia/Kolkata"
    assert made["conversation_ref"]
    start, end = made["window"]
    assert start < end
    assert links.loop_bookings == []  # nothing booked: the candidate picks


async def test_without_loop_links_the_button_answers_plainly(storage: SqlStorage) -> None:
    chat = make_adapter(make_bot(storage, FakeLoopCalendar()))
    options = await to_options(chat)
    card = card_of(await press(chat, options, "Send a link to the candidate"))
    assert "not available" in text_of(card)
