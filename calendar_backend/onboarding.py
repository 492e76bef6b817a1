"""Onboarding a tenant: admin-consent URL, consent result, sealed credential, self-test.

Steps (``python -m calendar_backend tenant onboard``):

1. print the admin-consent URL (``{authority}/{tenant}/adminconsent?client_id&redirect_uri&state``);
2. receive the result: a tiny listener on ``http://localhost:<random port>/openslot-cli``
   (Entra ignores the port of a registered loopback redirect URI), or the redirected URL pasted
   by the admin; the ``state`` must match and ``admin_consent=True``;
3. store the tenant's app credential AES-256-GCM sealed (``tenants`` row);
4. self-test with an app-only token (client credentials): a test mailbox's free/busy is readable,
   a mailbox outside the application access policy / allow-list is refused (reported by name),
   and the token's granted ``roles`` are exactly what OpenSlot asks for.

The app token is decoded *without* verification only to read which roles were granted; it is never
trusted for authentication. Nothing here logs tokens, secrets or calendar contents.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from aiohttp import web

from calendar_backend import storage
from calendar_backend.allowlist import Entry, EntryKind, MailboxAllowList, list_entries
from calendar_backend.audit import AuditEvent, append_audit
from calendar_backend.crypto import CredentialCipher
from calendar_backend.errors import CalendarError
from calendar_backend.graph import CallStats, GraphClient
from calendar_backend.sealing import tenant_credential_aad
from calendar_backend.tokens import AppCredential, TokenBroker

CALLBACK_PATH: Final = "/openslot-cli"

# Each requirement is satisfied by any one of its alternatives (application permissions).
REQUIRED_ROLES: Final[tuple[tuple[str, ...], ...]] = (
    ("Calendars.ReadWrite",),
    ("MailboxSettings.Read",),
    ("User.Read.All", "User.ReadBasic.All"),
    ("Place.Read.All",),
)
# Granted without being excess: a narrower calendar read, and group reads for group allow-lists.
TOLERATED_ROLES: Final = frozenset({"Calendars.Read"})
GROUP_ROLE: Final = "GroupMember.Read.All"
# Delegated permissions (checked by Entra at each user's sign-in; listed for the README).
DELEGATED_SCOPES: Final = (
    "Calendars.ReadWrite",
    "MailboxSettings.Read",
    "User.ReadBasic.All",
    "Place.Read.All",
    "offline_access",
)


class ConsentError(Exception):
    """Admin consent was declined, or the result does not belong to this onboarding."""


def new_state() -> str:
    """A fresh unguessable ``state`` value binding the consent result to this run."""
    return secrets.token_urlsafe(24)


def consent_url(authority_host: str, tenant: str, client_id: str, redirect_uri: str, state: str) -> str:
    """The admin-consent URL an admin of ``tenant`` (id, domain or ``organizations``) opens."""
    query = urlencode({"client_id": client_id, "redirect_uri": redirect_uri, "state": state})
    return f"{authority_host.rstrip('/')}/{tenant}/adminconsent?{query}"


def parse_consent_result(url: str, expected_state: str) -> str:
    """The consenting tenant id from the redirected URL.

    Raises:
        ConsentError: wrong ``state``, an ``error`` answer (consent declined) or no consent.
    """
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items() if v}
    if not state_matches(url, expected_state):
        raise ConsentError("the consent result does not match this onboarding (state)")
    if "error" in query:
        detail = _printable(query["error"], 64)
        description = _printable(query.get("error_description", ""), 400)
        raise ConsentError(
            f"admin consent was not granted: {detail}" + (f" ({description})" if description else "")
        )
    if query.get("admin_consent", "").lower() != "true" or not query.get("tenant"):
        raise ConsentError("the consent result does not say admin consent was granted")
    return query["tenant"]


def state_matches(url: str, expected_state: str) -> bool:
    """True when the redirected URL carries this onboarding's ``state`` (constant time)."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items() if v}
    return secrets.compare_digest(query.get("state", "").encode(), expected_state.encode())


def _printable(text: str, limit: int) -> str:
    """Entra's error text (e.g. ``AADSTS65004: User declined...``) without control characters."""
    return "".join(c if c.isprintable() else " " for c in text)[:limit].strip()


class ConsentSource(Protocol):
    """Where the consent redirect arrives."""

    @property
    def redirect_uri(self) -> str:
        """The redirect URI to put in the consent URL."""
        ...

    async def wait(self, timeout_s: float) -> str:
        """The full redirected URL. Raises ``TimeoutError``."""
        ...


class LoopbackReceiver:
    """Listens once on 127.0.0.1 (random port) for the consent redirect. Use ``async with``."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._runner: web.AppRunner | None = None
        self._result: asyncio.Future[str] | None = None
        self._state: str | None = None

    def expect_state(self, state: str) -> None:
        """Only a redirect carrying ``state`` ends the wait; any other request is ignored."""
        self._state = state

    async def __aenter__(self) -> LoopbackReceiver:
        self._result = asyncio.get_running_loop().create_future()
        app = web.Application()
        app.router.add_get(CALLBACK_PATH, self._callback)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def redirect_uri(self) -> str:
        """``http://localhost:<port>/openslot-cli``."""
        return f"http://localhost:{self._port}{CALLBACK_PATH}"

    async def wait(self, timeout_s: float) -> str:
        """The redirected URL, once the admin's browser arrives."""
        assert self._result is not None  # noqa: S101
        return await asyncio.wait_for(asyncio.shield(self._result), timeout_s)

    async def _callback(self, request: web.Request) -> web.Response:
        url = str(request.url)
        if self._state is None or not state_matches(url, self._state):
            return web.Response(
                status=400, text=("This request does not belong to the running OpenSlot onboarding; ignored.")
            )
        if self._result is not None and not self._result.done():
            self._result.set_result(url)
        try:
            parse_consent_result(url, self._state)
        except ConsentError as exc:
            return web.Response(
                status=400,
                text=(f"OpenSlot was NOT connected: {exc}. Close this tab and see the command line."),
            )
        return web.Response(text="OpenSlot received admin consent. You can close this tab.")


@dataclass(frozen=True, slots=True)
class PastedUrl:
    """The admin pastes the URL the browser was redirected to (no listener needed)."""

    redirect_uri: str
    read_line: Callable[[], Awaitable[str]]

    async def wait(self, timeout_s: float) -> str:
        """Read one pasted line."""
        return (await asyncio.wait_for(self.read_line(), timeout_s)).strip()


@dataclass(frozen=True, slots=True)
class PermissionReport:
    """Granted app roles against what OpenSlot asks for. ``ok`` iff nothing missing or extra."""

    granted: tuple[str, ...]
    missing: tuple[str, ...]
    excess: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when the grant is exactly what OpenSlot needs."""
        return not self.missing and not self.excess


def granted_roles(app_token: str) -> frozenset[str]:
    """The ``roles`` claim of an app-only token, read WITHOUT verifying it (reporting only)."""
    claims = jwt.decode(app_token, options={"verify_signature": False})
    roles = claims.get("roles", [])
    return frozenset(str(r) for r in roles) if isinstance(roles, list) else frozenset()


def check_permissions(granted: frozenset[str], *, needs_groups: bool) -> PermissionReport:
    """Compare granted roles with :data:`REQUIRED_ROLES` (+ GroupMember.Read.All for groups)."""
    required = [*REQUIRED_ROLES, (GROUP_ROLE,)] if needs_groups else list(REQUIRED_ROLES)
    missing = [" or ".join(alts) for alts in required if not granted & set(alts)]
    known = {r for alts in required for r in alts} | TOLERATED_ROLES | {GROUP_ROLE}
    excess = sorted(granted - known)
    return PermissionReport(tuple(sorted(granted)), tuple(missing), tuple(excess))


@dataclass(frozen=True, slots=True)
class Check:
    """One self-test line: a stable name, pass/fail, and a human explanation (no secrets)."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class SelfTestReport:
    """All checks; ``ok`` iff every check passed."""

    tenant_id: str
    checks: tuple[Check, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, object]:
        """JSON form printed by the CLI."""
        return {
            "tenant_id": self.tenant_id,
            "ok": self.ok,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


class Onboarding:
    """Stores a consented tenant's credential and self-tests it against Entra and Graph."""

    def __init__(
        self,
        store: storage.Store,
        cipher: CredentialCipher,
        tokens: TokenBroker,
        graph: GraphClient,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        allowlist: MailboxAllowList | None = None,
        actor: str = "admin-cli",
    ) -> None:
        self._actor = actor
        self._store = store
        self._cipher = cipher
        self._tokens = tokens
        self._graph = graph
        self._clock = clock
        self._allowlist = allowlist or MailboxAllowList(graph, ttl=timedelta(0))

    async def receive_consent(
        self,
        source: ConsentSource,
        *,
        authority_host: str,
        tenant: str,
        client_id: str,
        show: Callable[[str], None],
        timeout_s: float = 600.0,
    ) -> str:
        """Show the consent URL, wait for the redirect, return the consenting tenant id.

        Raises:
            ConsentError: declined, wrong state, or another tenant than ``tenant`` (when it is
                a tenant id).
            TimeoutError: nobody came back within ``timeout_s``.
        """
        state = new_state()
        expect = getattr(source, "expect_state", None)
        if callable(expect):
            expect(state)
        show(consent_url(authority_host, tenant, client_id, source.redirect_uri, state))
        tenant_id = parse_consent_result(await source.wait(timeout_s), state)
        if _looks_like_id(tenant) and tenant.lower() != tenant_id.lower():
            raise ConsentError("consent came from another tenant than the one being onboarded")
        return tenant_id

    async def store_credential(self, tenant_id: str, credential: AppCredential) -> None:
        """Seal and store the tenant's app credential (the tenant becomes ``active``)."""
        blob = self._cipher.encrypt(credential.to_bytes(), aad=tenant_credential_aad(tenant_id))
        async with self._store.transaction() as tx:
            await storage.put_tenant(tx, tenant_id, blob, self._cipher.key_id_of(blob), [], now=self._clock())
            await append_audit(tx, self._event(tenant_id, "tenant.onboard", (), "ok"))

    async def self_test(
        self, tenant_id: str, credential: AppCredential, *, test_mailbox: str, outside_mailbox: str
    ) -> SelfTestReport:
        """Run every check (each failure is reported, none raises) and audit the run."""
        try:
            token = await self._tokens.for_app(tenant_id, credential)
        except CalendarError as exc:
            return await self._finish(
                tenant_id,
                [
                    Check(
                        "app_token",
                        False,
                        (
                            f"Entra ID refused OpenSlot's app-only token ({exc.code}); "
                            "was admin consent granted?"
                        ),
                    )
                ],
                (test_mailbox, outside_mailbox),
            )
        async with self._store.transaction() as tx:
            entries = await list_entries(tx, tenant_id)
            grouped_pools = any(r.group_id for r in await storage.list_pools(tx, tenant_id))  # issue 18
        checks = [Check("app_token", True, "OpenSlot obtained an app-only token.")]
        checks.append(await self._read_check(token, test_mailbox))
        checks.append(await self._policy_check(token, test_mailbox, outside_mailbox))
        checks.append(await self._allowlist_check(tenant_id, token, entries, test_mailbox, outside_mailbox))
        report = check_permissions(
            granted_roles(token),
            needs_groups=grouped_pools or any(e.kind is EntryKind.GROUP for e in entries),
        )
        checks.append(Check("permissions", report.ok, _permission_detail(report)))
        return await self._finish(tenant_id, checks, (test_mailbox, outside_mailbox))

    async def _schedule_error(self, token: str, requester: str, mailbox: str) -> str | None:
        start = self._clock().replace(microsecond=0)
        schedules = await self._graph.get_schedules(
            token, requester, [mailbox], start, start + timedelta(days=1), stats=CallStats()
        )
        return schedules[mailbox.lower()].error

    async def _read_check(self, token: str, mailbox: str) -> Check:
        try:
            error = await self._schedule_error(token, mailbox, mailbox)
        except CalendarError as exc:
            error = exc.code
        if error:
            return Check("read_test_mailbox", False, f"{mailbox}: free/busy could not be read ({error}).")
        return Check("read_test_mailbox", True, f"{mailbox}: free/busy is readable.")

    async def _policy_check(self, token: str, inside: str, outside: str) -> Check:
        try:
            error = await self._schedule_error(token, inside, outside)
        except CalendarError as exc:
            error = exc.code
        if error:
            return Check(
                "access_policy_refuses",
                True,
                f"{outside}: refused by the application access policy ({error}).",
            )
        return Check(
            "access_policy_refuses",
            False,
            (
                f"{outside}: readable with the app token; the tenant's application access policy "
                "does not restrict OpenSlot (New-ApplicationAccessPolicy -AccessRight RestrictAccess)."
            ),
        )

    async def _allowlist_check(
        self, tenant_id: str, token: str, entries: Sequence[Entry], inside: str, outside: str
    ) -> Check:
        if not entries:
            return Check(
                "allowlist_refuses",
                False,
                "OpenSlot's allow-list is empty: it refuses nobody, so every mailbox the "
                "access policy allows is schedulable. Add users or groups with "
                "`allowlist add`.",
            )

        async def app_token() -> str:
            return token

        try:
            refused = await self._allowlist.refused(tenant_id, entries, [inside, outside], app_token)
        except CalendarError as exc:
            return Check("allowlist_refuses", False, f"allow-list groups unreadable: {exc.message}")
        ok = outside in refused and inside not in refused
        return Check(
            "allowlist_refuses", ok, f"OpenSlot's allow-list refuses: {', '.join(refused) or 'nobody'}."
        )

    async def _finish(self, tenant_id: str, checks: list[Check], targets: tuple[str, ...]) -> SelfTestReport:
        report = SelfTestReport(tenant_id, tuple(checks))
        async with self._store.transaction() as tx:
            await append_audit(
                tx, self._event(tenant_id, "tenant.selftest", targets, "ok" if report.ok else "failed")
            )
        return report

    def _event(self, tenant_id: str, operation: str, targets: tuple[str, ...], result: str) -> AuditEvent:
        return AuditEvent(
            tenant_id=tenant_id,
            actor_oid=self._actor,
            operation=operation,
            targets=tuple(t.lower() for t in targets),
            result=result,
            at=self._clock(),
            request_id=f"onboarding-{secrets.token_hex(8)}",
        )


def _permission_detail(report: PermissionReport) -> str:
    parts = [f"granted: {', '.join(report.granted) or 'none'}"]
    if report.missing:
        parts.append(f"missing: {', '.join(report.missing)}")
    if report.excess:
        parts.append(f"more than OpenSlot asks for (remove): {', '.join(report.excess)}")
    return "; ".join(parts)


def _looks_like_id(tenant: str) -> bool:
    return len(tenant) == 36 and tenant.count("-") == 4
