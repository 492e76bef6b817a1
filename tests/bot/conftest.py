"""Bot test fixtures: an in-memory FakeCalendarService (the client Protocol), SQL storage on a tmp
SQLite file, and a TestAdapter harness around the real OpenSlotBot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botbuilder.core import ConversationState, TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity, ChannelAccount, ConversationAccount
from sqlalchemy.ext.asyncio import create_async_engine

from calendar_backend import errors
from calendar_backend.client import CalendarServiceApi
from calendar_backend.contract import (
    BlockerOut,
    InterviewOut,
    MemberLoadOut,
    MyLoadOut,
    OfferOut,
    PersonCheckOut,
    PersonOut,
    PoolCardOut,
    PoolMemberRequest,
    PoolSummaryOut,
    SlotOut,
    SlotsResult,
    WeekLoadOut,
)
from calendar_backend.storage import create_engine as migrating_engine
from calendar_backend.storage import migrate
from dialogs.services import DialogServices
from dialogs.sql_storage import METADATA, SqlStorage
from dialogs.teams_bot import OpenSlotBot

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # a Wednesday
TOKEN = "user-token-for-alex"
CONNECTION = "openslot"
DIRECTORY = [
    PersonOut("meganb@contoso.example", "Megan Bowen", "America/Los_Angeles"),
    PersonOut("adelev@contoso.example", "Adele Vance", "Europe/London"),
    PersonOut("adamb@contoso.example", "Adam Brown", "UTC"),
    PersonOut("adams@contoso.example", "Adam Smith", "UTC"),
    PersonOut("room1@contoso.example", "Room 1", "UTC", is_room=True),
]


@dataclass
class FakeCalendarService(CalendarServiceApi):
    """In-memory Calendar Service. Records calls; slots are a fixed list unless `busy` is set."""

    slots: list[SlotOut] = field(
        default_factory=lambda: [
            SlotOut(NOW + timedelta(days=6, hours=h), NOW + timedelta(days=6, hours=h, minutes=45))
            for h in (1, 2, 4)
        ]
    )
    blockers: list[BlockerOut] = field(default_factory=list)
    taken_once: bool = False
    reconnect: bool = False
    offers_available: bool = True
    interviews: dict[str, InterviewOut] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    offer_requests: list[dict[str, Any]] = field(default_factory=list)
    slot_requests: list[dict[str, Any]] = field(default_factory=list)
    person_status: dict[str, str] = field(default_factory=dict)
    mailbox_zone: str | None = None
    create_requests: list[dict[str, Any]] = field(default_factory=list)
    disconnected: bool = False
    pools: dict[str, PoolCardOut] = field(default_factory=dict)  # the pools Alex owns, by id
    load: MyLoadOut = field(default_factory=lambda: MyLoadOut("alexw@contoso.example", (), ()))
    pool_changes: list[tuple[str, PoolMemberRequest]] = field(default_factory=list)

    def _check(self, token: str, op: str) -> None:
        self.calls.append(op)
        if token != TOKEN:
            raise errors.AuthError()
        if self.reconnect:
            raise errors.ReconnectRequiredError()

    async def find_slots(
        self,
        token: str,
        *,
        interviewers: list[str],
        duration_min: int,
        start: datetime,
        end: datetime,
        buffer_min: int = 0,
        rooms: list[str] | None = None,
        limit: int = 8,
        candidate_time_zone: str | None = None,
        candidate_day: tuple[str, str] | None = None,
    ) -> SlotsResult:
        self._check(token, "find_slots")
        self.slot_requests.append(
            {
                "interviewers": interviewers,
                "rooms": rooms,
                "candidate_time_zone": candidate_time_zone,
                "candidate_day": candidate_day,
            }
        )
        slots = tuple(
            SlotOut(s.start, s.start + timedelta(minutes=duration_min), s.outside_candidate_day)
            for s in self.slots
            if start <= s.start < end
        )
        return SlotsResult(
            slots,
            tuple(p for p in DIRECTORY if p.address in interviewers),
            tuple(self.blockers) if not slots else (),
        )

    async def create_interview(
        self,
        token: str,
        *,
        candidate_name: str,
        candidate_email: str,
        interviewers: list[str],
        start: datetime,
        end: datetime,
        idempotency_key: str,
        rooms: list[str] | None = None,
        time_zone: str | None = None,
        optional: list[str] | None = None,
        role: str | None = None,
        conversation_ref: dict[str, Any] | None = None,
    ) -> InterviewOut:
        self._check(token, "create_interview")
        self.create_requests.append({"interviewers": interviewers, "optional": optional, "role": role})
        if idempotency_key in self.by_key:
            return self.interviews[self.by_key[idempotency_key]]
        if self.taken_once:
            self.taken_once = False
            err = errors.SlotTakenError()
            err.fresh_slots = SlotsResult(  # type: ignore[attr-defined]
                (SlotOut(start + timedelta(days=1), end + timedelta(days=1)),), ()
            )
            raise err
        iid = f"iv{len(self.interviews) + 1}"
        self.interviews[iid] = InterviewOut(
            iid,
            "confirmed",
            start,
            end,
            f"Interview: {candidate_name}",
            (*interviewers, *(rooms or []), candidate_email),
            candidate_name,
            "https://teams.example/join/1",
            "ev1",
        )
        self.by_key[idempotency_key] = iid
        return self.interviews[iid]

    async def list_interviews(self, token: str) -> list[InterviewOut]:
        self._check(token, "list_interviews")
        return list(self.interviews.values())

    async def cancel_interview(self, token: str, interview_id: str) -> InterviewOut:
        self._check(token, "cancel_interview")
        if interview_id not in self.interviews:
            raise errors.NotFoundError()
        old = self.interviews[interview_id]
        self.interviews[interview_id] = InterviewOut(
            old.id,
            "cancelled",
            old.start,
            old.end,
            old.subject,
            old.attendees,
            old.candidate_name,
            old.join_url,
            old.event_id,
        )
        return self.interviews[interview_id]

    async def reschedule_interview(
        self, token: str, interview_id: str, *, start: datetime, end: datetime
    ) -> InterviewOut:
        self._check(token, "reschedule_interview")
        old = self.interviews[interview_id]
        self.interviews[interview_id] = InterviewOut(
            old.id,
            "confirmed",
            start,
            end,
            old.subject,
            old.attendees,
            old.candidate_name,
            old.join_url,
            old.event_id,
        )
        return self.interviews[interview_id]

    async def resolve_people(self, token: str, queries: list[str]) -> list[list[PersonOut]]:
        self._check(token, "resolve_people")
        return [
            [p for p in DIRECTORY if q.lower() == p.address or q.lower() in p.display_name.lower()]
            for q in queries
        ]

    async def my_time_zone(self, token: str) -> str | None:
        self._check(token, "my_time_zone")
        return self.mailbox_zone

    async def check_people(self, token: str, queries: list[str]) -> list[PersonCheckOut]:
        """resolve_people plus a status per name: ``person_status`` (address → status) and
        duplicates of an earlier name."""
        found = await self.resolve_people(token, queries)
        seen: set[str] = set()
        out = []
        for query, matches in zip(queries, found, strict=True):
            if not matches:
                out.append(PersonCheckOut(query, "not_found"))
            elif len(matches) > 1:
                out.append(PersonCheckOut(query, "ambiguous", choices=tuple(matches)))
            elif matches[0].address in seen:
                out.append(PersonCheckOut(query, "duplicate", matches[0]))
            else:
                seen.add(matches[0].address)
                out.append(
                    PersonCheckOut(query, self.person_status.get(matches[0].address, "ok"), matches[0])
                )
        return out

    async def create_offer(
        self,
        token: str,
        *,
        interviewers: list[str],
        duration_min: int,
        window_start: datetime,
        window_end: datetime,
        candidate_name: str,
        candidate_time_zone: str | None = None,
        conversation_ref: dict[str, Any] | None = None,
        candidate_email: str | None = None,
        manager_time_zone: str | None = None,
        role: str | None = None,
        show_interviewer_names: bool = False,
        day_hours: tuple[int, int] | None = None,
    ) -> OfferOut:
        self._check(token, "create_offer")
        self.offer_requests.append(
            {
                "interviewers": interviewers,
                "duration_min": duration_min,
                "window_start": window_start,
                "window_end": window_end,
                "candidate_name": candidate_name,
                "candidate_time_zone": candidate_time_zone,
                "conversation_ref": conversation_ref,
                "candidate_email": candidate_email,
                "manager_time_zone": manager_time_zone,
                "role": role,
                "show_interviewer_names": show_interviewer_names,
                "day_hours": day_hours,
            }
        )
        if not self.offers_available:
            raise errors.NotFoundError()
        return OfferOut("of1", "open", NOW + timedelta(days=7), "https://bot.example/c/abc")

    async def revoke_offer(self, token: str, offer_id: str) -> OfferOut:
        self._check(token, "revoke_offer")
        return OfferOut(offer_id, "revoked", NOW)

    async def disconnect(self, token: str) -> None:
        self._check(token, "disconnect")
        self.disconnected = True

    # A Calendar Service without the loop routes (tests/bot/loop_fakes.py has one with them): 404.
    async def list_loop_templates(self, token: str) -> Any:
        raise errors.NotFoundError()

    async def save_loop_template(self, token: str, name: str, template: Any) -> Any:
        raise errors.NotFoundError()

    async def delete_loop_template(self, token: str, name: str) -> None:
        raise errors.NotFoundError()

    async def search_loops(self, token: str, **_kwargs: Any) -> Any:
        raise errors.NotFoundError()

    async def book_loop(self, token: str, **_kwargs: Any) -> Any:
        raise errors.NotFoundError()

    async def list_loops(self, token: str) -> Any:
        raise errors.NotFoundError()

    async def cancel_loop(self, token: str, loop_id: str) -> Any:
        raise errors.NotFoundError()

    async def reschedule_loop(self, token: str, loop_id: str, sessions: Any) -> Any:
        raise errors.NotFoundError()

    # ---- interviewer pools (PoolCalendarApi) ----------------------------------------------------
    async def my_load(self, token: str) -> MyLoadOut:
        self._check(token, "my_load")
        return self.load

    async def list_pools(self, token: str) -> list[PoolSummaryOut]:
        self._check(token, "list_pools")
        return [
            PoolSummaryOut(p.id, p.name, p.role, len(p.members), len(p.trainees)) for p in self.pools.values()
        ]

    async def pool_card(self, token: str, pool_id: str) -> PoolCardOut:
        self._check(token, "pool_card")
        if pool_id not in self.pools:
            raise errors.NotFoundError("No pool of yours has that id.")
        return self.pools[pool_id]

    async def change_pool_member(self, token: str, pool_id: str, change: PoolMemberRequest) -> PoolCardOut:
        card = await self.pool_card(token, pool_id)
        self.pool_changes.append((pool_id, change))
        members = {m.address: m for m in card.members}
        if (change.action == "add") == (change.member in members):
            raise errors.ConflictError(f"{change.member} is already a member of this pool.")
        if change.action == "add":
            week = WeekLoadOut(NOW.date(), 0)
            members[change.member] = MemberLoadOut(
                change.member,
                change.zone or "UTC",
                0,
                card.default_weekly_cap,
                card.default_daily_cap,
                week,
                week,
            )
        elif change.action == "remove":
            del members[change.member]
        else:
            m = members[change.member]
            members[change.member] = replace(
                m,
                weekly_cap=card.default_weekly_cap if change.weekly_cap is None else change.weekly_cap,
                daily_cap=card.default_daily_cap if change.daily_cap is None else change.daily_cap,
                own_caps=change.weekly_cap is not None or change.daily_cap is not None,
            )
        self.pools[pool_id] = replace(card, members=tuple(members[a] for a in sorted(members)))
        return self.pools[pool_id]


@pytest.fixture
def fake() -> FakeCalendarService:
    return FakeCalendarService()


async def migrated_sqlite_url(path: Path) -> str:
    """A SQLite database at ``path`` migrated like production's (bot_state, the audit chain, ...)."""
    url = f"sqlite+aiosqlite:///{path}"
    migrator = migrating_engine(url)
    await migrate(migrator)
    await migrator.dispose()
    return url


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqlStorage]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    store = SqlStorage(engine)
    yield store
    await store.close()


def make_bot(storage: SqlStorage, fake: FakeCalendarService) -> OpenSlotBot:
    services = DialogServices(fake, CONNECTION, ConversationState(storage), clock=lambda: NOW)
    return OpenSlotBot(services)


def make_adapter(bot: OpenSlotBot, *, signed_in: bool = True) -> TestAdapter:
    template = Activity(
        channel_id="msteams",
        service_url="https://smba.trafficmanager.net/x/",
        from_property=ChannelAccount(id="29:alex", name="Alex Wilber"),
        recipient=ChannelAccount(id="28:bot", name="OpenSlot"),
        conversation=ConversationAccount(id="a:conv1"),
        local_timezone="Europe/London",
    )

    async def logic(context: TurnContext) -> None:
        await bot.on_turn(context)

    adapter = TestAdapter(logic, template)
    if signed_in:
        adapter.add_user_token(CONNECTION, "msteams", "29:alex", TOKEN)
    return adapter


@pytest.fixture
def bot(storage: SqlStorage, fake: FakeCalendarService) -> OpenSlotBot:
    return make_bot(storage, fake)


@pytest.fixture
def adapter(bot: OpenSlotBot) -> TestAdapter:
    return make_adapter(bot)
