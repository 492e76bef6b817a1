"""Kill the Calendar Service while it applies a drift repair (issue 19 follow-up, watch_recover.py).

Real processes (`python -m calendar_backend serve`, `OPENSLOT_CRASH_AT`, ``os._exit(137)``): Alex
books Megan; Alex deletes the event in Outlook; the watcher's round records the ``deleted`` drift
with its repairs; Alex applies ``rebook`` and the process dies

- after the Outlook write (``watch_after_write``): after a restart, once the lease (2 min, aged
  here) ran out, the watcher's round closes the row as ``applied``: no second create;
- after the claim, before any write (``watch_after_claim``): the round opens the row again and
  the manager's next tap applies it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from calendar_backend import storage
from calendar_backend.settings import BackendSettings
from calendar_backend.storage import watch as store_watch
from tests.devtenant.fixtures import DevTenantHandle
from tests.reliability.conftest import organizer_events
from tests.reliability.test_crash import _booking, _call, _env, _slot, prepared, serve  # noqa: F401
from tests.service.conftest import ALEX

SWEEP = {"watch_sweep_s": "1"}


async def _drift(settings: BackendSettings) -> list[store_watch.DriftRow]:
    engine = storage.create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            return await store_watch.all_drift(conn)
    finally:
        await engine.dispose()


async def _age_leases(settings: BackendSettings) -> None:
    engine = storage.create_engine(settings.database_url)
    try:
        async with engine.begin() as conn:
            old = datetime.now(UTC) - timedelta(minutes=3)
            await conn.execute(sa.update(store_watch.watch_drift).values(applying_since=old))
    finally:
        await engine.dispose()


async def _until(settings: BackendSettings, status: str) -> store_watch.DriftRow:
    for _ in range(200):
        found = [d for d in await _drift(settings) if d.kind == "deleted"]
        if found and found[0].status == status and found[0].repairs:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no deleted drift {status}: {await _drift(settings)}")


def _rebooks(dt: DevTenantHandle) -> list[dict[str, object]]:
    return [
        e
        for e in organizer_events(dt, ALEX)
        if str(e.get("transactionId", "")).startswith("openslot-rebook-")
    ]


@pytest.mark.parametrize(
    ("point", "outcome"), [("watch_after_write", "applied"), ("watch_after_claim", "open")]
)
async def test_a_death_mid_apply_is_settled_from_outlook_after_a_restart(
    devtenant: DevTenantHandle, tmp_path: Path, prepared: BackendSettings, point: str, outcome: str
) -> None:
    dt, token = devtenant, devtenant.mint_user_token(ALEX)
    async with aiohttp.ClientSession() as http:
        async with serve(_env(dt, prepared, tmp_path, **SWEEP), tmp_path) as svc:
            slot = await _slot(http, svc, token)
            status, made = await _call(http, svc, "/v1/interviews", _booking(slot, "w-1"), token)
            assert status == 201, made
            gone = dt.session().post(
                f"{dt.base_url}/_devtenant/mailboxes/{ALEX}/events/{made['event_id']}/delete",
                json={},
                timeout=10,
            )
            assert gone.status_code == 200, gone.text
            item = await _until(prepared, "open")  # the round recorded it, with its repairs
        assert item.repairs[0]["id"] == "rebook"
        async with serve(_env(dt, prepared, tmp_path, crash_at=point), tmp_path) as svc:
            with pytest.raises(aiohttp.ClientError):
                await _call(http, svc, f"/v1/watch/drift/{item.id}/apply", {"repair": "rebook"}, token)
            assert await svc.proc.wait() == 137
        assert (await _until(prepared, "applying")).applied_repair == "rebook"
        written = len(_rebooks(dt))
        assert written == (1 if outcome == "applied" else 0)
        await _age_leases(prepared)
        async with serve(_env(dt, prepared, tmp_path, **SWEEP), tmp_path) as svc:
            settled = await _until(prepared, outcome)  # the restarted process's round
            assert len(_rebooks(dt)) == written  # no second write
            if outcome == "open":  # the manager taps again: applied once
                status, done = await _call(
                    http, svc, f"/v1/watch/drift/{item.id}/apply", {"repair": "rebook"}, token
                )
                assert status == 200, done
                assert len(_rebooks(dt)) == 1
    assert settled.id == item.id
