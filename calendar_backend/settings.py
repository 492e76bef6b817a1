"""The Calendar Service's settings: one frozen object, built once from the environment.

Every setting is an `OPENSLOT_*` environment variable listed in `.env.example`. Nothing else in the
service reads the environment.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from calendar_backend.branding import Branding, load_branding
from calendar_backend.errors import ValidationError
from calendar_backend.outbound import OutboundPolicy

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///.data/openslot.db"


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret string whose repr never shows the value."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('**********')" if self.value else "Secret('')"

    def __str__(self) -> str:
        return self.__repr__()


@dataclass(frozen=True, slots=True)
class BusyPolicy:
    """Which Graph `showAs` values block a slot (per tenant configurable; DESIGN.md defaults)."""

    blocking: frozenset[str] = frozenset({"busy", "oof", "tentative", "unknown"})


@dataclass(frozen=True, slots=True)
class BackendSettings:
    """Everything the Calendar Service needs to run; see `.env.example` for each variable."""

    env: str  # "dev" or "prod"
    host: str
    port: int
    database_url: str
    key_file: Path
    authority_host: str  # e.g. https://login.microsoftonline.com (no trailing slash)
    graph_base_url: str  # e.g. https://graph.microsoft.com/v1.0
    ca_bundle: Path | None  # extra trusted CA (devtenant); None = system store
    client_id: str  # OpenSlot's Entra app id = the audience of user tokens
    required_scope: str = "access_as_user"
    graph_scopes: tuple[str, ...] = (
        "https://graph.microsoft.com/Calendars.ReadWrite",
        "https://graph.microsoft.com/MailboxSettings.Read",
        "https://graph.microsoft.com/User.ReadBasic.All",
        "https://graph.microsoft.com/Place.Read.All",  # rooms in directory/resolve
    )
    clock_skew_s: int = 300
    busy_policy: BusyPolicy = BusyPolicy()
    default_notice_min: int = 60
    graph_timeout_s: float = 20.0
    graph_max_attempts: int = 5
    graph_max_backoff_s: float = 30.0
    graph_concurrency: int = 4
    public_base_url: str = "http://127.0.0.1:3978"
    offer_ttl_hours: int = 168
    candidate_change_limit: int = 2
    candidate_cutoff_hours: int = 24
    trusted_tenants: tuple[str, ...] = ()
    # Signed audit checkpoints are appended here as JSON lines (outside the database).
    audit_checkpoint_file: Path = Path(".data/audit/checkpoints.jsonl")
    recovery_stale_min: int = 10  # a pending booking older than this is reconciled (recovery.py)
    recovery_interval_s: int = 300  # how often `serve` runs the reconciler (0 = start-up only)
    crash_at: str = ""  # TEST HOOK (dev only): os._exit(137) at this named point of a booking
    # Where slot search reads calendars: "schedule" (getSchedule, free/busy) or "calendar_view"
    # (calendarView through $batch where the caller may read events; getSchedule for the rest).
    availability_source: str = "schedule"
    # Company name and logo on the candidate page, per tenant id ("*" = default); see branding.py.
    branding: Mapping[str, Branding] = field(default_factory=dict)
    # Where a stored conversation reference's serviceUrl may point (the bot's own allow-list,
    # OPENSLOT_ALLOWED_SERVICE_URL_HOSTS/_PORTS), checked by calendar_backend/outbound.py.
    allowed_service_hosts: tuple[str, ...] = ("smba.trafficmanager.net",)
    allowed_service_ports: frozenset[int] = frozenset()
    # The drift watcher (watch.py): the public URL Graph posts change notifications to (the bot's
    # receiver forwarding to /v1/watch/notifications; empty = no subscriptions, sweeps only) and
    # how often upcoming interviews of the next 2 days are swept with getSchedule.
    watch_notification_url: str = ""
    watch_sweep_s: int = 300
    # The drift feed's shared key (`POST /v1/watch/feed`, the bot's poller; ``watch_feed.py``).
    watch_feed_key: str = field(default="", repr=False)
    # How often `serve` credits trainees' completed sessions (pools_completion.py; 0 = never).
    training_sweep_s: int = 900

    @property
    def service_url_policy(self) -> OutboundPolicy:
        """The outbound-URL policy for conversation references (dev: loopback http allowed)."""
        return OutboundPolicy(self.allowed_service_hosts, self.allowed_service_ports, self.env == "dev")


def load_settings(environ: Mapping[str, str]) -> BackendSettings:
    """Build settings from an environment mapping; raises `ValidationError` naming a bad variable."""

    def get(name: str, default: str | None = None) -> str:
        value = environ.get(f"OPENSLOT_{name}", default)
        if value is None or value == "":
            if default is not None:
                return default
            raise ValidationError(f"OPENSLOT_{name}", "is required")
        return value

    def get_int(name: str, default: int) -> int:
        raw = get(name, str(default))
        try:
            return int(raw)
        except ValueError as exc:
            raise ValidationError(f"OPENSLOT_{name}", "must be an integer") from exc

    env = get("ENV", "dev")
    if env not in {"dev", "prod"}:
        raise ValidationError("OPENSLOT_ENV", "must be dev or prod")
    host = get("CALENDAR_SERVICE_HOST", "127.0.0.1")
    _require_private(host)
    ca = environ.get("OPENSLOT_CA_BUNDLE", "")
    blocking = get("BUSY_STATUSES", "busy,oof,tentative,unknown")
    try:
        service_urls = OutboundPolicy.from_csv(
            get("ALLOWED_SERVICE_URL_HOSTS", "smba.trafficmanager.net"),
            ports=environ.get("OPENSLOT_ALLOWED_SERVICE_URL_PORTS", ""),
        )
    except ValueError as exc:
        raise ValidationError("OPENSLOT_ALLOWED_SERVICE_URL_PORTS", str(exc)) from exc
    return BackendSettings(
        env=env,
        host=host,
        port=get_int("CALENDAR_SERVICE_PORT", 8780),
        database_url=get("DATABASE_URL", DEFAULT_DATABASE_URL),
        key_file=Path(get("KEY_FILE", ".data/keys/kek.json")),
        authority_host=get("AUTHORITY_HOST", "https://login.microsoftonline.com").rstrip("/"),
        graph_base_url=get("GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0").rstrip("/"),
        ca_bundle=Path(ca) if ca else None,
        client_id=get("CLIENT_ID"),
        clock_skew_s=min(get_int("CLOCK_SKEW_S", 300), 300),
        busy_policy=BusyPolicy(frozenset(s.strip() for s in blocking.split(",") if s.strip())),
        default_notice_min=get_int("DEFAULT_NOTICE_MIN", 60),
        graph_max_attempts=get_int("GRAPH_MAX_ATTEMPTS", 5),
        graph_concurrency=get_int("GRAPH_CONCURRENCY", 4),
        public_base_url=get("PUBLIC_BASE_URL", "http://127.0.0.1:3978").rstrip("/"),
        offer_ttl_hours=get_int("OFFER_TTL_HOURS", 168),
        candidate_change_limit=get_int("CANDIDATE_CHANGE_LIMIT", 2),
        candidate_cutoff_hours=get_int("CANDIDATE_CUTOFF_HOURS", 24),
        # Default: beside the key file's folder (.data/keys/kek.json → .data/audit/checkpoints.jsonl),
        # so a stack (or a test) with its own key file never shares another's checkpoints.
        audit_checkpoint_file=Path(
            get(
                "AUDIT_CHECKPOINT_FILE",
                str(
                    Path(get("KEY_FILE", ".data/keys/kek.json")).parent.parent / "audit" / "checkpoints.jsonl"
                ),
            )
        ),
        recovery_stale_min=get_int("RECOVERY_STALE_MIN", 10),
        recovery_interval_s=get_int("RECOVERY_INTERVAL_S", 300),
        crash_at=_crash_point(env, environ.get("OPENSLOT_CRASH_AT", "")),
        availability_source=_availability_source(get("AVAILABILITY_SOURCE", "schedule")),
        branding=load_branding(
            Path(environ["OPENSLOT_BRANDING_FILE"]) if environ.get("OPENSLOT_BRANDING_FILE") else None
        ),
        allowed_service_hosts=service_urls.hosts,
        allowed_service_ports=service_urls.ports,
        watch_notification_url=get("WATCH_NOTIFICATION_URL", ""),
        watch_sweep_s=get_int("WATCH_SWEEP_S", 300),
        watch_feed_key=_feed_key(env, environ),
        training_sweep_s=get_int("TRAINING_SWEEP_S", 900),
    )


MIN_FEED_KEY = 32


def _feed_key(env: str, environ: Mapping[str, str]) -> str:
    """``OPENSLOT_WATCH_FEED_KEY``: ≥ 32 ASCII characters; required in prod while the watcher is on."""
    key = environ.get("OPENSLOT_WATCH_FEED_KEY", "").strip()
    if key and len(key) < MIN_FEED_KEY:
        raise ValidationError("OPENSLOT_WATCH_FEED_KEY", f"must be at least {MIN_FEED_KEY} characters")
    if not key.isascii():  # the feed's compare takes ASCII keys only (watch_feed.DriftFeed.authenticate)
        raise ValidationError("OPENSLOT_WATCH_FEED_KEY", "must be ASCII")
    if not key and env == "prod" and environ.get("OPENSLOT_WATCH_NOTIFICATION_URL", "").strip():
        raise ValidationError("OPENSLOT_WATCH_FEED_KEY", "is required while the drift watcher is on")
    return key


AVAILABILITY_SOURCES = frozenset({"schedule", "calendar_view"})


def _availability_source(value: str) -> str:
    """`schedule` (getSchedule only) or `calendar_view` (calendarView, getSchedule fallback)."""
    if value not in AVAILABILITY_SOURCES:
        raise ValidationError(
            "OPENSLOT_AVAILABILITY_SOURCE", f"must be one of {sorted(AVAILABILITY_SOURCES)}"
        )
    return value


CRASH_POINTS = frozenset(
    {"after_pending", "after_graph_create", "during_audit", "after_candidate_create"}
    | {"loop_after_reserve", "loop_before_confirm"}  # a loop's steps (loop_booking.py)
    | {f"loop_after_session_{k}" for k in range(1, 9)}
    | {"watch_after_claim", "watch_after_write"}  # a drift repair's apply (watch_recover.py)
)


def _crash_point(env: str, value: str) -> str:
    """The crash-injection test hook: a known point name, and only in the dev profile."""
    if not value:
        return ""
    if env != "dev":
        raise ValidationError("OPENSLOT_CRASH_AT", "is a test hook and is refused outside dev")
    if value not in CRASH_POINTS:
        raise ValidationError("OPENSLOT_CRASH_AT", f"must be one of {sorted(CRASH_POINTS)}")
    return value


def _require_private(host: str) -> None:
    """The Calendar Service binds to loopback or a private interface only."""
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise ValidationError("OPENSLOT_CALENDAR_SERVICE_HOST", "must be an IP address") from exc
    if not (address.is_loopback or address.is_private) or address.is_unspecified:
        raise ValidationError("OPENSLOT_CALENDAR_SERVICE_HOST", "must be a loopback or private address")
