"""Leavers: refused at once, archived by the hourly delta job (clock-controlled), links revoked.

The job talks to devtenant's real `users/delta` with the tenant's app-only token; devtenant's
control routes disable or remove users.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta

from calendar_backend import storage
from calendar_backend.lifecycle import LeaverJob, get_delta_link, put_delta_link, run_every
from tests.admin.conftest import Admin
from tests.service.conftest import ALEX

MEGAN = "meganb@contoso.example"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _job(admin: Admin, clock: Clock) -> LeaverJob:
    rt = admin.stack.runtime
    return LeaverJob(rt.store, rt.cipher, admin.tokens, admin.graph, clock=clock)


async def _offer(admin: Admin, oid: str, upn: str) -> str:
    async with admin.stack.runtime.store.transaction() as tx:
        offer = await storage.create_offer(
            tx,
            tenant_id=admin.tenant_id,
            organizer_oid=oid,
            organizer_upn=upn,
            token_hash=hashlib.sha256(secrets.token_bytes(16)).digest(),
            interviewers=[MEGAN],
            display_names=["Megan Bowen"],
            duration_min=30,
            window_start=T0,
            window_end=T0 + timedelta(days=5),
            candidate_time_zone="UTC",
            expires_at=datetime.now(UTC) + timedelta(days=7),
        )
    return offer.id


async def _state(admin: Admin, oid: str, offer_id: str) -> tuple[bool, bool, str]:
    async with admin.stack.runtime.store.transaction() as tx:
        archived = await storage.is_archived(tx, admin.tenant_id, oid)
        cache = await storage.get_token_cache(tx, admin.tenant_id, oid)
        offer = await storage.get_offer(tx, offer_id)
    assert offer is not None
    return archived, cache is not None, offer.status.value


async def test_a_disabled_user_is_refused_at_once_then_archived_and_cleaned_up(admin: Admin) -> None:
    alex = admin.oid(ALEX)
    status, _ = await admin.find([MEGAN])
    assert status == 200  # Alex has a working sign-in and a sealed token cache
    offer_id = await _offer(admin, alex, ALEX)
    clock = Clock(T0)
    first = await _job(admin, clock).run_tenant(admin.tenant_id)  # baseline full round
    assert first.full_round
    assert alex not in first.archived
    admin.control(f"users/{alex}/disable")
    status, doc = await admin.find([MEGAN])  # refused at once: Entra refuses the OBO
    assert status == 403, doc
    assert await _state(admin, alex, offer_id) == (False, True, "open")
    clock.now = T0 + timedelta(hours=1)
    report = await _job(admin, clock).run_tenant(admin.tenant_id)
    assert not report.full_round
    assert report.archived == (alex,)
    assert (report.revoked_offers, report.deleted_caches) == (1, 1)
    assert await _state(admin, alex, offer_id) == (True, False, "revoked")
    rows = [r for r in admin.audit_rows("user.archive") if json.loads(r[3]) == [alex]]
    assert [(r[1], r[4]) for r in rows] == [("lifecycle", "ok")]
    # OpenSlot's own archived flag is checked on every call: even re-enabled in the tenant and
    # with a fresh, valid token, the archived user stays refused.
    admin.control(f"users/{alex}/enable")
    status, doc = await admin.find([MEGAN])
    assert status == 403, doc
    assert "slots" not in doc
    # Running again archives nobody twice.
    again = await _job(admin, clock).run_tenant(admin.tenant_id)
    assert again.archived == ()
    assert len([r for r in admin.audit_rows("user.archive") if json.loads(r[3]) == [alex]]) == 1


async def test_a_removed_user_is_archived_from_the_delta(admin: Admin) -> None:
    megan = admin.oid(MEGAN)
    status, _ = await admin.find([ALEX], upn=MEGAN)
    assert status == 200  # Megan used OpenSlot too
    clock = Clock(T0)
    await _job(admin, clock).run_tenant(admin.tenant_id)
    admin.control(f"users/{megan}/remove")
    report = await _job(admin, clock).run_tenant(admin.tenant_id)
    assert report.archived == (megan,)
    assert report.deleted_caches == 1


async def test_the_first_full_round_archives_known_users_already_gone(admin: Admin) -> None:
    megan = admin.oid(MEGAN)
    status, _ = await admin.find([ALEX], upn=MEGAN)
    assert status == 200
    admin.control(f"users/{megan}/remove")  # gone before OpenSlot ever synced the directory
    report = await _job(admin, Clock(T0)).run_tenant(admin.tenant_id)
    assert report.full_round
    assert megan in report.archived
    disabled_in_sample = {admin.oid("lidiah@contoso.example"), admin.oid("cameronw@contoso.example")}
    assert disabled_in_sample <= set(report.archived)
    assert admin.oid(ALEX) not in report.archived


async def test_an_expired_sync_state_starts_a_new_full_round(admin: Admin) -> None:
    async with admin.stack.runtime.store.transaction() as tx:
        await put_delta_link(
            tx, admin.tenant_id, f"{admin.stack.settings.graph_base_url}/users/delta?$deltatoken=99999", T0
        )
    report = await _job(admin, Clock(T0)).run_tenant(admin.tenant_id)
    assert report.full_round
    async with admin.stack.runtime.store.transaction() as tx:
        link = await get_delta_link(tx, admin.tenant_id)
    assert link is not None
    assert "99999" not in link


async def test_the_hourly_job_archives_a_leaver_within_the_24_hour_sla(admin: Admin) -> None:
    alex = admin.oid(ALEX)
    status, _ = await admin.find([MEGAN])
    assert status == 200
    clock = Clock(T0)
    disabled_at: list[datetime] = []
    job = _job(admin, clock)

    async def sleep(seconds: float) -> None:  # simulated time: each round is one hour later
        clock.now += timedelta(seconds=seconds)
        if clock.now >= T0 + timedelta(hours=5, minutes=0) and not disabled_at:
            clock.now += timedelta(minutes=17)  # the admin disables Alex at 14:17
            admin.control(f"users/{alex}/disable")
            disabled_at.append(clock.now)

    await run_every(timedelta(hours=1), job.run_all, sleep=sleep, rounds=24)
    async with admin.stack.runtime.store.transaction() as tx:
        archived = await storage.is_archived(tx, admin.tenant_id, alex)
        query = storage.archived_users.select().where(storage.archived_users.c.oid == alex)
        row = (await tx.execute(query)).one()
    assert archived
    lag = row.archived_at - disabled_at[0]
    assert timedelta(0) <= lag <= timedelta(hours=1) < timedelta(hours=24)


async def test_an_archived_user_cannot_be_booked_as_an_interviewer(admin: Admin) -> None:
    from tests.service.conftest import booking_body

    status, doc = await admin.find([MEGAN])
    assert status == 200
    slot = doc["slots"][0]
    megan = admin.oid(MEGAN)
    clock = Clock(T0)
    await _job(admin, clock).run_tenant(admin.tenant_id)
    admin.control(f"users/{megan}/disable")  # Megan leaves; her mailbox still exists
    assert (await _job(admin, clock).run_tenant(admin.tenant_id)).archived == (megan,)
    admin.control(f"users/{megan}/enable")  # even if the account comes back, OpenSlot's flag holds
    before = admin.stack.graph_requests()
    status, doc = await admin.stack.post(
        "/v1/interviews", booking_body([MEGAN], slot, "k-arch"), admin.stack.token()
    )
    assert status == 403, doc
    assert MEGAN in doc["message"]  # refused by name
    assert admin.stack.graph_requests() == before
    rows = admin.audit_rows("interview.create")
    assert [(json.loads(r[3]), r[4]) for r in rows] == [([MEGAN], "denied:archived")]
    assert rows[0][1] == admin.oid(ALEX)


async def test_a_refused_archived_user_is_named_by_oid_in_the_audit(admin: Admin) -> None:
    alex = admin.oid(ALEX)
    clock = Clock(T0)
    await _job(admin, clock).run_tenant(admin.tenant_id)
    admin.control(f"users/{alex}/disable")
    await _job(admin, clock).run_tenant(admin.tenant_id)
    admin.control(f"users/{alex}/enable")
    status, _ = await admin.find([MEGAN])
    assert status == 403
    denials = [r for r in admin.audit_rows() if str(r[4]).startswith("denied:lock2")]
    assert [r[1] for r in denials] == [alex]  # the refused user's oid, not "-"
