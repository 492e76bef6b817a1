"""The Calendar Service's composition root: builds the use cases and holds them.

One module owns each capability; they talk to each other through public methods only:

- `tenancy.Tenancy`: lock 2 (tenant access + credential), the mailbox gate wiring, the delegated
  (on-behalf-of) token, disconnect, the audit helper;
- `directory.Directory`: resolve and check people, the caller's zone, directory look-ups;
- `search.SlotSearch`: find slots, require a time to be offered, fresh options;
- `booking.Bookings`: reserve → recheck → write → confirm | withdraw | resume (the only Graph
  event-write path);
- `interviews.Interviews`: the manager's create / list / cancel / reschedule;
- `loop_booking.LoopBookings`: interview loops, all sessions or none (book / list / cancel / move);
- `offers.OfferService`: candidate links, the manager's side (create, list, revoke);
- `candidate.CandidateLink`: the link holder's side (see, book, cancel, reschedule);
- `loop_search.LoopTemplates` / `loop_search.LoopSearch`: saved interview loop templates and the
  loop search (issue 17).
- `watch.Watcher` (``watch``): the drift watcher (subscriptions, notifications, sweeps) and
  `watch_repairs.RepairPlanner` (``repairs``): its repairs, computed and applied.
- `pool_views.PoolViews`: interviewer pools seen from the bot (my load, the owner's pool card).

`CalendarService` only builds and holds them (``tenancy``, ``directory``, ``search``, ``bookings``,
``interviews``, ``loops``, ``offers``, ``candidate``, ``loop_templates``, ``loops_search``); the HTTP API
(`app.py`) calls the use cases directly.
Orchestration only: no HTTP types.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

from calendar_backend import storage
from calendar_backend.allowlist import MailboxAllowList
from calendar_backend.availability import BusyRules, ShowAs
from calendar_backend.booking import Bookings
from calendar_backend.candidate import CandidateLink
from calendar_backend.crypto import CredentialCipher
from calendar_backend.directory import Directory
from calendar_backend.gate import MailboxGate
from calendar_backend.graph import GraphClient
from calendar_backend.interviews import Interviews, crash_point
from calendar_backend.loop_booking import LoopBookings
from calendar_backend.loop_search import LoopSearch, LoopTemplates
from calendar_backend.offers import OfferService
from calendar_backend.pool_groups import PoolGroups
from calendar_backend.pool_views import PoolViews
from calendar_backend.pools_outside import OutsideLoad
from calendar_backend.search import SlotSearch
from calendar_backend.settings import BackendSettings
from calendar_backend.tenancy import Tenancy
from calendar_backend.tokens import TokenBroker
from calendar_backend.watch import WatchConfig, Watcher
from calendar_backend.watch_feed import DirectoryNames, DriftFeed
from calendar_backend.watch_repairs import RepairPlanner

UTC_NOW: Callable[[], datetime] = partial(datetime.now, UTC)  # the wall clock, aware UTC


class CalendarService:
    """The use cases of one process, built once; each is safe to use concurrently."""

    def __init__(
        self,
        settings: BackendSettings,
        store: storage.Store,
        cipher: CredentialCipher,
        tokens: TokenBroker,
        graph: GraphClient,
        clock: Callable[[], datetime] = UTC_NOW,
        allowlist: MailboxAllowList | None = None,
    ) -> None:
        self._tokens = tokens  # the process's clients, as tests reach them
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
        self.offers = OfferService(settings, store, cipher, clock, self.tenancy, self.directory)
        self.pool_groups = PoolGroups(graph, self.tenancy)  # pools' Entra groups, read live (issue 18)
        self.loop_templates = LoopTemplates(store, self.tenancy, clock, self.pool_groups)
        self.offers.loop_templates = self.loop_templates  # a pooled link's pools checked when made
        self.loops_search = LoopSearch(
            settings, self.tenancy, self.directory, self.search, self.loop_templates, rules, clock,
            OutsideLoad(store, self.tenancy, graph),  # issue 18: outside "Interview" events as load
        )  # fmt: skip
        self.loops = LoopBookings(
            store, self.tenancy, self.directory, self.search, self.bookings, clock, hook, self.loops_search
        )
        self.candidate = CandidateLink(
            settings, store, cipher, clock, self.tenancy, self.directory, self.search, self.bookings,
            self.loops,
        )  # fmt: skip
        self.repairs = RepairPlanner(
            store, graph, self.search, self.bookings, self.tenancy, rules, clock, self.pool_groups,
            crash_point=hook,  # OPENSLOT_CRASH_AT=watch_after_claim|watch_after_write (watch_recover)
        )  # fmt: skip
        watch = WatchConfig(
            settings.watch_notification_url,
            dev=settings.env == "dev",
            sweep_every=timedelta(seconds=settings.watch_sweep_s),
        )
        names = DirectoryNames(store, cipher, tokens, graph, self.gate)
        self.drift_feed = DriftFeed(
            settings, store, cipher, clock, names, zone_of=names.zone
        )  # the bot's push
        self.watch = Watcher(store, cipher, tokens, graph, self.gate, rules, clock, watch, self.repairs)
        self.pools = PoolViews(
            store, self.tenancy, self.directory, graph, clock, self.pool_groups, names
        )  # issue 18 (names: members' display names on the pool card, cached per process)
