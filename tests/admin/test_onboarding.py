"""Onboarding end to end against devtenant: consent URL → consent redirect to a loopback
listener → sealed credential → self-test (read, policy refusal by name, exact permissions).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from calendar_backend import allowlist, storage
from calendar_backend.keyring import create_keyring
from calendar_backend.onboarding import (
    ConsentError,
    LoopbackReceiver,
    Onboarding,
    PastedUrl,
    check_permissions,
    parse_consent_result,
)
from calendar_backend.pools import Pool
from calendar_backend.runtime import build_clients, open_runtime
from calendar_backend.sealing import tenant_credential_aad
from calendar_backend.tokens import AppCredential
from tests.admin.conftest import Admin
from tests.devtenant.fixtures import DevTenantHandle
from tests.service.conftest import make_settings

MEGAN, CHRISTIE = "meganb@contoso.example", "christiec@contoso.example"


def _credential(dt: DevTenantHandle) -> AppCredential:
    app = dt.tenant.applications()[0]
    return AppCredential(str(app["appId"]), str(app["passwordCredentials"][0]["secretText"]))


def _admin_browser(dt: DevTenantHandle, shown: list[str], *, deny: bool = False) -> str:
    """What the admin's browser does: open the consent URL, get redirected (not followed here)."""
    url = shown[0] + ("&deny=1" if deny else "")
    resp = dt.session().get(url, allow_redirects=False, timeout=10)
    assert resp.status_code == 302, resp.text
    return str(resp.headers["Location"])


async def _follow(location: str) -> None:
    async with aiohttp.ClientSession() as http, http.get(location) as resp:
        assert resp.status == 200


async def test_onboarding_end_to_end_against_devtenant(devtenant: DevTenantHandle, tmp_path: Path) -> None:
    settings = make_settings(devtenant, tmp_path)
    create_keyring(settings.key_file)
    app_id = str(devtenant.tenant.applications()[0]["appId"])
    devtenant.session().post(
        f"{devtenant.base_url}/_devtenant/apps/{app_id}/consent/revoke", timeout=10
    ).raise_for_status()
    cred = _credential(devtenant)
    async with open_runtime(settings) as rt:
        tokens, graph = build_clients(rt)
        flow = Onboarding(rt.store, rt.cipher, tokens, graph)
        # Before consent, the self-test says so instead of crashing.
        early = await flow.self_test(devtenant.tenant_id, cred, test_mailbox=MEGAN, outside_mailbox=CHRISTIE)
        assert not early.ok
        assert early.checks[0].name == "app_token"
        shown: list[str] = []
        async with LoopbackReceiver() as receiver:
            waiting = asyncio.create_task(
                flow.receive_consent(
                    receiver,
                    authority_host=settings.authority_host,
                    tenant=devtenant.tenant_id,
                    client_id=app_id,
                    show=shown.append,
                    timeout_s=30,
                )
            )
            while not shown:
                await asyncio.sleep(0.01)
            assert shown[0].startswith(f"{devtenant.base_url}/{devtenant.tenant_id}/adminconsent?")
            location = await asyncio.to_thread(_admin_browser, devtenant, shown)
            assert location.startswith(receiver.redirect_uri)
            await _follow(location)
            tenant_id = await waiting
        assert tenant_id == devtenant.tenant_id
        await flow.store_credential(tenant_id, cred)
        async with rt.store.transaction() as tx:  # an empty allow-list refuses nobody: not ok
            await allowlist.add_entry(tx, tenant_id, allowlist.parse_entry("user", MEGAN))
        report = await flow.self_test(tenant_id, cred, test_mailbox=MEGAN, outside_mailbox=CHRISTIE)
        async with rt.store.transaction() as tx:
            row = await storage.get_tenant(tx, tenant_id)
        assert row is not None
        assert (
            AppCredential.from_bytes(
                rt.cipher.decrypt(row.credential_blob, aad=tenant_credential_aad(tenant_id))
            )
            == cred
        )
    assert report.ok, report.to_json()
    by_name = {c.name: c for c in report.checks}
    assert set(by_name) == {
        "app_token",
        "read_test_mailbox",
        "access_policy_refuses",
        "allowlist_refuses",
        "permissions",
    }
    assert CHRISTIE in by_name["access_policy_refuses"].detail
    assert "ErrorAccessDenied" in by_name["access_policy_refuses"].detail
    with sqlite3.connect(tmp_path / "openslot.db") as db:
        ops = [r[0] for r in db.execute("SELECT operation FROM audit_log ORDER BY seq")]
    assert ops == ["tenant.selftest", "tenant.onboard", "tenant.selftest"]
    database = b"".join(p.read_bytes() for p in tmp_path.glob("openslot.db*"))
    assert cred.client_secret.encode() not in database  # stored sealed, never in plaintext


async def test_declined_consent_stores_nothing(devtenant: DevTenantHandle, tmp_path: Path) -> None:
    settings = make_settings(devtenant, tmp_path)
    create_keyring(settings.key_file)
    app_id = str(devtenant.tenant.applications()[0]["appId"])
    async with open_runtime(settings) as rt:
        tokens, graph = build_clients(rt)
        flow = Onboarding(rt.store, rt.cipher, tokens, graph)
        shown: list[str] = []

        async def pasted() -> str:  # the admin pastes the URL the browser ended on
            return await asyncio.to_thread(_admin_browser, devtenant, shown, deny=True)

        source = PastedUrl("http://localhost/openslot-cli", pasted)
        with pytest.raises(ConsentError, match="not granted"):
            await flow.receive_consent(
                source,
                authority_host=settings.authority_host,
                tenant=devtenant.tenant_id,
                client_id=app_id,
                show=shown.append,
                timeout_s=30,
            )
        async with rt.store.transaction() as tx:
            assert await storage.list_tenant_ids(tx) == []


def test_a_consent_result_for_another_onboarding_is_rejected() -> None:
    ok = "http://localhost:1234/openslot-cli?tenant=t1&state=abc&admin_consent=True"
    assert parse_consent_result(ok, "abc") == "t1"
    with pytest.raises(ConsentError, match="state"):
        parse_consent_result(ok, "other")
    with pytest.raises(ConsentError, match="granted"):
        parse_consent_result("http://localhost/x?tenant=t1&state=abc", "abc")


def test_permissions_must_be_exactly_what_openslot_asks_for() -> None:
    needed = frozenset({"Calendars.ReadWrite", "MailboxSettings.Read", "User.Read.All", "Place.Read.All"})
    assert check_permissions(needed, needs_groups=False).ok
    assert check_permissions(needed - {"User.Read.All"} | {"User.ReadBasic.All"}, needs_groups=False).ok
    more = check_permissions(needed | {"Mail.Read"}, needs_groups=False)
    assert more.excess == ("Mail.Read",)
    assert not more.ok
    less = check_permissions(needed - {"MailboxSettings.Read"}, needs_groups=False)
    assert less.missing == ("MailboxSettings.Read",)
    assert check_permissions(needed, needs_groups=True).missing == ("GroupMember.Read.All",)


async def test_self_test_reports_excess_and_missing_permissions(admin: Admin) -> None:
    roles = admin.app_registration()["requiredResourceAccess"]["application"]
    roles.remove("Place.Read.All")
    roles.append("Mail.Read")
    flow = Onboarding(admin.stack.runtime.store, admin.stack.runtime.cipher, admin.tokens, admin.graph)
    report = await flow.self_test(
        admin.tenant_id, _credential(admin.stack.devtenant), test_mailbox=MEGAN, outside_mailbox=CHRISTIE
    )
    perms = {c.name: c for c in report.checks}["permissions"]
    assert not report.ok
    assert not perms.ok
    assert "missing: Place.Read.All" in perms.detail
    assert "Mail.Read" in perms.detail


async def test_self_test_fails_when_no_access_policy_restricts_openslot(admin: Admin) -> None:
    admin.stack.devtenant.tenant.data["applicationAccessPolicies"] = []
    flow = Onboarding(admin.stack.runtime.store, admin.stack.runtime.cipher, admin.tokens, admin.graph)
    report = await flow.self_test(
        admin.tenant_id, _credential(admin.stack.devtenant), test_mailbox=MEGAN, outside_mailbox=CHRISTIE
    )
    policy = {c.name: c for c in report.checks}["access_policy_refuses"]
    assert not policy.ok
    assert CHRISTIE in policy.detail
    assert not report.ok


async def test_self_test_checks_openslots_own_allowlist(admin: Admin) -> None:
    async with admin.stack.runtime.store.transaction() as tx:
        await allowlist.add_entry(tx, admin.tenant_id, allowlist.parse_entry("user", MEGAN))
    flow = Onboarding(admin.stack.runtime.store, admin.stack.runtime.cipher, admin.tokens, admin.graph)
    report = await flow.self_test(
        admin.tenant_id, _credential(admin.stack.devtenant), test_mailbox=MEGAN, outside_mailbox=CHRISTIE
    )
    check = {c.name: c for c in report.checks}["allowlist_refuses"]
    assert check.ok, check
    assert CHRISTIE in check.detail
    assert report.ok


async def test_the_listener_ignores_a_stray_request_and_shows_a_failure_page(
    devtenant: DevTenantHandle, tmp_path: Path
) -> None:
    settings = make_settings(devtenant, tmp_path)
    create_keyring(settings.key_file)
    app_id = str(devtenant.tenant.applications()[0]["appId"])
    async with open_runtime(settings) as rt:
        tokens, graph = build_clients(rt)
        flow = Onboarding(rt.store, rt.cipher, tokens, graph)
        shown: list[str] = []
        async with LoopbackReceiver() as receiver:
            waiting = asyncio.create_task(
                flow.receive_consent(
                    receiver,
                    authority_host=settings.authority_host,
                    tenant=devtenant.tenant_id,
                    client_id=app_id,
                    show=shown.append,
                    timeout_s=30,
                )
            )
            while not shown:
                await asyncio.sleep(0.01)
            async with aiohttp.ClientSession() as http:  # a stray request: wrong state
                stray = f"{receiver.redirect_uri}?tenant=evil&state=guess&admin_consent=True"
                async with http.get(stray) as resp:
                    assert resp.status == 400
                    assert "does not belong" in await resp.text()
            await asyncio.sleep(0.05)
            assert not waiting.done()  # the onboarding goes on
            location = await asyncio.to_thread(_admin_browser, devtenant, shown, deny=True)
            async with aiohttp.ClientSession() as http, http.get(location) as resp:
                page = await resp.text()
                assert resp.status == 400
                assert "NOT connected" in page
                assert "AADSTS65004" in page
            with pytest.raises(ConsentError, match="AADSTS65004"):
                await waiting
        async with rt.store.transaction() as tx:
            assert await storage.list_tenant_ids(tx) == []


async def test_self_test_asks_for_group_member_read_all_once_a_pool_draws_from_a_group(admin: Admin) -> None:
    async with admin.stack.runtime.store.transaction() as tx:
        await storage.create_pool(
            tx, admin.tenant_id, Pool("Backend"), group_id="7d1e7c1a-5b2f-4c3d-8e9f-0a1b2c3d4e5f"
        )
    flow = Onboarding(admin.stack.runtime.store, admin.stack.runtime.cipher, admin.tokens, admin.graph)
    report = await flow.self_test(
        admin.tenant_id, _credential(admin.stack.devtenant), test_mailbox=MEGAN, outside_mailbox=CHRISTIE
    )
    perms = {c.name: c for c in report.checks}["permissions"]
    assert not perms.ok
    assert "missing: GroupMember.Read.All" in perms.detail
