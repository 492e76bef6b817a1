"""`pool show` of a pool drawn from an Entra group (issue 18 follow-up): the CLI reads the group's
members with the tenant's app-only token (the way `allowlist add --group` reads Graph) and lists
them; when the group cannot be read it says the service reads it live, and never fails."""

from __future__ import annotations

from tests.admin.test_cli_contract import Cli, _pool, _pool_with_member, cli  # noqa: F401

GROUP = "5f3c1a52-8f0e-4e4b-9a43-1d2b3c4d5e6f"
MEMBERS = ["diegos@contoso.example", "leeg@contoso.example"]


def _group(cli: Cli, members: list[str]) -> None:
    tenant = cli.dt.tenant
    ids = [str(u["id"]) for u in (tenant.find_user(a) for a in members) if u is not None]
    tenant.data.setdefault("groups", []).append(
        {"id": GROUP, "displayName": "Backend interviewers", "members": ids}
    )


def test_pool_show_lists_the_groups_members(cli: Cli) -> None:
    _pool_with_member(cli)
    assert _pool(cli, "set-group", "--name", "Backend", "--group", GROUP).code == 0
    _group(cli, MEMBERS)
    doc = _pool(cli, "show", "--name", "Backend").doc  # GroupMember.Read.All not granted yet
    assert (doc["group"], doc["group_members"]) == (GROUP, "read live by the service")
    cli.dt.tenant.applications()[0]["requiredResourceAccess"]["application"].append("GroupMember.Read.All")
    doc = _pool(cli, "show", "--name", "Backend").doc
    assert doc["group_members"] == MEMBERS
    plain = _pool(cli, "set-group", "--name", "Backend", "--none").doc
    assert "group_members" not in plain
