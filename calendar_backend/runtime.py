"""The Calendar Service runtime: settings → keyring, migrated database, HTTP session, web app, serve.

`serve` (``python -m calendar_backend serve``) and the admin commands (calendar_backend/admin.py)
share one :class:`Runtime`, opened by :func:`open_runtime`. While it serves, background tasks run
the hourly leaver job, a signed audit checkpoint and the crash-recovery reconciler.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web

from calendar_backend import storage
from calendar_backend.app import SERVICE_KEY, build_app
from calendar_backend.audit import write_checkpoint
from calendar_backend.auth import JwksCache, TokenValidator
from calendar_backend.cli import EXIT_CONFIG, CliError
from calendar_backend.crypto import CredentialCipher
from calendar_backend.errors import DecryptionError
from calendar_backend.graph import GraphClient
from calendar_backend.keyring import KeyringError, load_keyring
from calendar_backend.lifecycle import LeaverJob, run_every
from calendar_backend.pools_completion import TrainingSweep
from calendar_backend.recovery import Reconciler
from calendar_backend.sealing import tenant_credential_aad
from calendar_backend.service import CalendarService
from calendar_backend.settings import BackendSettings
from calendar_backend.tokens import TokenBroker


@dataclass
class Runtime:
    """Everything `serve` and the admin commands share, built once."""

    settings: BackendSettings
    store: storage.Store
    cipher: CredentialCipher
    session: aiohttp.ClientSession


@asynccontextmanager
async def open_runtime(settings: BackendSettings) -> AsyncIterator[Runtime]:
    """Keyring, database (migrated) and one HTTP session; closed on exit."""
    cipher = CredentialCipher(load_keyring(settings.key_file))
    engine = storage.create_engine(settings.database_url)
    await storage.migrate(engine)
    ssl_ctx = ssl.create_default_context(cafile=str(settings.ca_bundle) if settings.ca_bundle else None)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_ctx, limit=100))
    try:
        yield Runtime(settings, storage.Store(engine), cipher, session)
    finally:
        await session.close()
        await engine.dispose()


def build_web_app(rt: Runtime) -> web.Application:
    """The aiohttp application with every collaborator wired from settings."""
    s = rt.settings
    jwks = JwksCache(rt.session, s.authority_host)
    validator = TokenValidator(
        jwks,
        authority_host=s.authority_host,
        client_id=s.client_id,
        required_scope=s.required_scope,
        leeway_s=s.clock_skew_s,
    )
    tokens, graph = build_clients(rt)
    service = CalendarService(s, rt.store, rt.cipher, tokens, graph)
    return build_app(service, validator)


async def serve(settings: BackendSettings) -> None:
    """Run the API until interrupted. A keyring that cannot be used ends start-up with one line on
    stderr and exit status 2 (no traceback).

    Raises:
        SystemExit: the keyring file is missing, unreadable, too open or malformed.
    """
    try:
        await _serve(settings)
    except KeyringError as exc:
        print(f"refusing to start: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None


async def _serve(settings: BackendSettings) -> None:
    async with open_runtime(settings) as rt:
        await check_keyring_opens_store(rt)
        app = build_web_app(rt)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else settings.port  # port 0 = any
        print(  # noqa: T201
            f"Calendar Service listening on http://{settings.host}:{port}",
            flush=True,
        )
        background = start_admin_tasks(rt)
        background.append(start_recovery(rt))
        background.extend(start_watch(app))
        background.extend(start_training_sweep(rt))
        try:
            await asyncio.Event().wait()
        finally:
            for task in background:
                task.cancel()
            await runner.cleanup()


def build_clients(rt: Runtime) -> tuple[TokenBroker, GraphClient]:
    """The token broker and Graph client (the API and the admin jobs use the same settings)."""
    s = rt.settings
    graph = GraphClient(
        rt.session,
        s.graph_base_url,
        timeout_s=s.graph_timeout_s,
        max_attempts=s.graph_max_attempts,
        max_backoff_s=s.graph_max_backoff_s,
        concurrency=s.graph_concurrency,
    )
    tokens = TokenBroker(s.authority_host, str(s.ca_bundle) if s.ca_bundle else None, s.graph_scopes)
    return tokens, graph


def start_admin_tasks(rt: Runtime, interval: timedelta = timedelta(hours=1)) -> list[asyncio.Task[None]]:
    """Hourly background work in `serve`: the leaver job and a signed audit checkpoint."""
    tokens, graph = build_clients(rt)
    job = LeaverJob(rt.store, rt.cipher, tokens, graph)
    return [
        asyncio.create_task(run_every(interval, job.run_all)),
        asyncio.create_task(run_every(interval, lambda: audit_checkpoint(rt))),
    ]


def start_watch(app: web.Application) -> list[asyncio.Task[None]]:
    """The drift watcher (watch.py): the inbox worker, and a round (watch new interviews, renew
    subscriptions, sweep) every `watch_sweep_s`."""
    watcher = app[SERVICE_KEY].watch
    return [
        asyncio.create_task(watcher.run_worker()),
        asyncio.create_task(run_every(watcher.config.sweep_every, watcher.round)),
    ]


def start_training_sweep(rt: Runtime) -> list[asyncio.Task[None]]:
    """Trainees' completed sessions credited (pools_completion.py) now and every
    `training_sweep_s` (none when it is 0)."""
    interval = rt.settings.training_sweep_s
    if interval <= 0:
        return []
    sweep = TrainingSweep(rt.store, lambda: datetime.now(UTC))
    return [asyncio.create_task(run_every(timedelta(seconds=interval), sweep.run_once))]


def start_recovery(rt: Runtime) -> asyncio.Task[None]:
    """Reconcile stale pending bookings now (start-up) and every `recovery_interval_s`."""
    reconciler = build_reconciler(rt)
    interval = rt.settings.recovery_interval_s
    if interval <= 0:
        return asyncio.create_task(_run_recovery_once(reconciler))
    return asyncio.create_task(reconciler.run_forever(timedelta(seconds=interval)))


async def _run_recovery_once(reconciler: Reconciler) -> None:
    await reconciler.run_once()


def build_reconciler(rt: Runtime, stale_min: int | None = None) -> Reconciler:
    """The crash-recovery reconciler (calendar_backend/recovery.py) wired like the API."""
    tokens, graph = build_clients(rt)
    minutes = rt.settings.recovery_stale_min if stale_min is None else stale_min
    return Reconciler(rt.store, rt.cipher, tokens, graph, stale_after=timedelta(minutes=minutes))


async def audit_checkpoint(rt: Runtime, at: datetime | None = None) -> dict[str, object]:
    """Sign the audit head with the keyring's signing key (outside the DB), store it and append
    it to `OPENSLOT_AUDIT_CHECKPOINT_FILE` (a 0600 JSON-lines file). Returns the checkpoint."""
    key_id, key = load_keyring(rt.settings.key_file).signing_key()
    async with rt.store.transaction() as tx:
        checkpoint = (await write_checkpoint(tx, key_id, key, at=at)).to_dict()
    path = rt.settings.audit_checkpoint_file
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(checkpoint, sort_keys=True) + "\n")
    return checkpoint


async def check_keyring_opens_store(rt: Runtime) -> None:
    """Start-up check: every stored envelope names a key of this keyring, and every tenant
    credential opens. Raises CliError (config) otherwise (e.g. `keys init` after a lost key file).
    """
    active = set(load_keyring(rt.settings.key_file).active_ids)
    failed = 0
    async with rt.store.transaction() as tx:
        blobs = [b async for b in storage.iter_encrypted(tx)]
    for blob in blobs:  # every envelope names an active key; tenant credentials really open
        if blob.key_id not in active:
            failed += 1
        elif blob.kind is storage.BlobKind.TENANT_CREDENTIAL:
            try:
                rt.cipher.decrypt(blob.blob, aad=tenant_credential_aad(blob.ident[0]))
            except DecryptionError:
                failed += 1
    if failed:
        raise CliError(
            EXIT_CONFIG,
            f"{failed} of {len(blobs)} stored envelopes do not open with the keyring {rt.settings.key_file}",
            "restore the key file they were sealed with (e.g. from Key Vault; a new "
            "`keys init` cannot open them); `keys status` lists the key ids in use",
        )
