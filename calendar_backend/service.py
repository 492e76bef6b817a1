"""The Calendar Service's composition root: builds the use cases and holds them.

One module owns each capability; they talk to each other through public methods only:

- `tenancy.Tenancy`: lock 2 (tenant access + credential), the mailbox gate wiring, the delegated
  (on-behalf-of) token, disconnect, the audit helper;
- `directory.Directory`: resolve and check people, the caller's zone, directory look-ups;
- `search.SlotSearch`: find slots, require a time to be offered, fresh options;
- `booking.Bookings`: reserve → recheck → write → confirm | withdraw | resume (the only Graph
  event-write path);
- `interviews.Interviews`: the manager's create / list / cancel / reschedule;
- `offers.OfferService`: candidate links, the manager's side (create, list, revoke);
- `candidate.CandidateLink`: the link holder's side (see, book, cancel, reschedule).

`CalendarService` keeps the methods the HTTP API (`app.py`) calls, each one line over a use case.
Orchestration only: no HTTP types.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from calendar_backend import storage
from calendar_backend.allowlist import MailboxAllowList
from calendar_backend.auth import Principal
from calendar_backend.availability import BusyRules, ShowAs
from calendar_backend.booking import Bookings
from calendar_backend.candidate import CandidateLink
from calendar_backend.contract import (
    CreateInterviewRequest,
    FindSlotsRequest,
    InterviewOut,
    PersonCheckOut,
    PersonOut,
    RescheduleRequest,
    SlotsResult,
)
from calendar_backend.crypto import CredentialCipher
from calendar_backend.directory import Directory
from calendar_backend.gate import MailboxGate
from calendar_backend.graph import GraphClient
from calendar_backend.interviews import Interviews, crash_point
from calendar_backend.offers import OfferService
from calendar_backend.search import SlotSearch
from calendar_backend.settings import BackendSettings
from calendar_backend.tenancy import Tenancy
from calendar_backend.tokens import TokenBroker


class CalendarService:
    """The use cases of one process; every method is safe to call concurrently."""

    def __init__(
        self,
        settings: BackendSettings,
        store: storage.Store,
        cipher: CredentialCipher,
        tokens: TokenBroker,
        graph: GraphClient,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        allowlist: MailboxAllowList | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._tokens = tokens
        self._graph = graph
        self.gate = MailboxGate(store, graph, allowlist or MailboxAllowList(graph))
        rules = BusyRules(frozenset(ShowAs(s) for s in settings.busy_policy.blocking))
        hook = partial(crash_point, settings)
        self.tenancy = Tenancy(store, cipher, tokens, self.gate, clock)
        self.directory = Directory(self.tenancy, graph, clock)
        self.search = SlotSearch(settings, store, graph, self.tenancy, rules, clock)
        self.bookings = Bookings(store, graph, rules, self.tenancy.audit, hook)
        self.interviews = Interviews(
            settings, store, graph, self.tenancy, self.directory, self.search, self.bookings, clock, hook
        )
        parts = (settings, store, cipher, clock, self.tenancy, self.directory, self.search, self.bookings)
        self.offers = OfferService(*parts)
        self.candidate = CandidateLink(*parts)

    async def audit_denial(
        self, tenant_id: str, operation: str, reason: str, request_id: str, actor_oid: str | None = None
    ) -> None:
        """See `Tenancy.audit_denial`."""
        await self.tenancy.audit_denial(tenant_id, operation, reason, request_id, actor_oid)

    async def find_slots(
        self, principal: Principal, assertion: str, req: FindSlotsRequest, request_id: str
    ) -> SlotsResult:
        """See `SlotSearch.find_slots`."""
        return await self.search.find_slots(principal, assertion, req, request_id)

    async def create_interview(
        self, principal: Principal, assertion: str, req: CreateInterviewRequest, request_id: str
    ) -> InterviewOut:
        """See `Interviews.create`."""
        return await self.interviews.create(principal, assertion, req, request_id)

    async def list_interviews(
        self, principal: Principal, assertion: str | None = None, request_id: str = "-"
    ) -> list[InterviewOut]:
        """See `Interviews.list_upcoming`."""
        return await self.interviews.list_upcoming(principal, assertion, request_id)

    async def cancel_interview(
        self, principal: Principal, assertion: str, interview_id: str, request_id: str
    ) -> InterviewOut:
        """See `Interviews.cancel`."""
        return await self.interviews.cancel(principal, assertion, interview_id, request_id)

    async def reschedule_interview(
        self, principal: Principal, assertion: str, interview_id: str, req: RescheduleRequest, request_id: str
    ) -> InterviewOut:
        """See `Interviews.reschedule`."""
        return await self.interviews.reschedule(principal, assertion, interview_id, req, request_id)

    async def resolve_people(
        self, principal: Principal, assertion: str, queries: list[str], request_id: str
    ) -> list[list[PersonOut]]:
        """See `Directory.resolve_people`."""
        return await self.directory.resolve_people(principal, assertion, queries, request_id)

    async def check_people(
        self, principal: Principal, assertion: str, queries: list[str], request_id: str
    ) -> list[PersonCheckOut]:
        """See `Directory.check_people`."""
        return await self.directory.check_people(principal, assertion, queries, request_id)

    async def my_time_zone(self, principal: Principal, assertion: str, request_id: str) -> str | None:
        """See `Directory.my_time_zone`."""
        return await self.directory.my_time_zone(principal, assertion, request_id)

    async def disconnect(self, principal: Principal, request_id: str) -> None:
        """See `Tenancy.disconnect`."""
        await self.tenancy.disconnect(principal, request_id)
