"""devtenant's Graph authorization and event rendering, shared by the Graph route modules.

Permissions (app-only `roles`, delegated `scp`), application access policies, and what share role
a delegated caller holds on another user's calendar (platform.md C11-C13); events rendered as a
caller of that role sees them.
"""

from __future__ import annotations

import uuid

from devtenant import zones
from devtenant.graph_http import ACCESS_DENIED, Caller, GraphError, GraphRequest
from devtenant.tenant import DevTenant, JsonDict

CAL_READ = frozenset(
    {"Calendars.Read", "Calendars.ReadWrite", "Calendars.Read.Shared", "Calendars.ReadWrite.Shared"}
)
CAL_WRITE = frozenset({"Calendars.ReadWrite", "Calendars.ReadWrite.Shared"})
MAILBOX_READ = frozenset({"MailboxSettings.Read", "MailboxSettings.ReadWrite"})
USER_FULL = frozenset(
    {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)
USER_BASIC = USER_FULL | {"User.ReadBasic.All"}
PLACE_READ = frozenset({"Place.Read.All"})

# calendarPermission roles, weakest first; the mailbox owner ranks above all of them.
ROLE_RANK = {
    "none": 0,
    "freeBusyRead": 1,
    "limitedRead": 2,
    "read": 3,
    "custom": 3,
    "write": 4,
    "delegateWithoutPrivateEventAccess": 5,
    "delegateWithPrivateEventAccess": 6,
}
OWNER_RANK = 7


def resolve_mailbox(req: GraphRequest, key: str | None) -> JsonDict:
    """The user or room a mailbox route names (`None` = /me).

    Raises:
        GraphError: 400 for /me with an app-only token, 404 ErrorInvalidUser for unknown keys.
    """
    if key is None:
        if req.caller.user is None:
            raise GraphError(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        return req.caller.user
    mailbox = req.tenant.find_mailbox(key)
    if mailbox is None:
        raise GraphError(404, "ErrorInvalidUser", f"The requested user '{key}' is invalid.")
    return mailbox


def check_mailbox_enabled(mailbox: JsonDict) -> None:
    """Raises GraphError 404 MailboxNotEnabledForRESTAPI for a user without a mailbox."""
    if mailbox.get("hasMailbox") is False:
        raise GraphError(
            404,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )


def policy_allows(tenant: DevTenant, caller: Caller, mailbox: JsonDict) -> bool:
    """Whether the application access policies let an app-only caller reach `mailbox`.

    Delegated callers are never restricted. With several policies for the app, all must allow.
    """
    if not caller.is_app_only:
        return True
    for policy in tenant.data.get("applicationAccessPolicies", []):
        if str(policy.get("appId", "")).lower() != caller.app_id.lower():
            continue
        group = tenant.find_group(str(policy.get("policyScopeGroupId", "")))
        members = {str(m).lower() for m in (group or {}).get("members", [])}
        is_member = (
            str(mailbox["id"]).lower() in members or tenant.mailbox_address(mailbox).lower() in members
        )
        restrict = str(policy.get("accessRight", "")).lower() == "restrictaccess"
        if is_member != restrict:
            return False
    return True


def check_policy(tenant: DevTenant, caller: Caller, mailbox: JsonDict) -> None:
    """Raises GraphError 403 "Access to OData is disabled." when a policy denies the app."""
    if not policy_allows(tenant, caller, mailbox):
        raise GraphError(403, "ErrorAccessDenied", "Access to OData is disabled.")


def calendar_rank(caller: Caller, mailbox: JsonDict) -> int:
    """How much of `mailbox`'s calendar the caller may see: OWNER_RANK or a ROLE_RANK value.

    App-only callers (already past the access policy) rank as owner. A delegated caller's role is
    the calendarPermissions entry for their address, else the "My Organization" entry, else
    freeBusyRead (Exchange's default).
    """
    user = caller.user
    if user is None or str(user["id"]) == str(mailbox["id"]):
        return OWNER_RANK
    addresses = {str(user.get(k, "")).lower() for k in ("mail", "userPrincipalName")} - {""}
    default = "freeBusyRead"
    for entry in mailbox.get("calendarPermissions", []):
        email = entry.get("emailAddress") or {}
        address = str(email.get("address") or "").lower()
        if address in addresses:
            return ROLE_RANK.get(str(entry.get("role")), 0)
        if not address or email.get("name") == "My Organization":
            default = str(entry.get("role"))
    return ROLE_RANK.get(default, 0)


def open_calendar(
    req: GraphRequest, key: str | None, *, write: bool = False, min_rank: int = ROLE_RANK["limitedRead"]
) -> tuple[JsonDict, int]:
    """Authorize a calendar route and return (mailbox, caller's rank on it).

    Raises:
        GraphError: 403 missing permission / policy / share role, 404 unknown user or no mailbox.
    """
    req.caller.require(CAL_WRITE if write else CAL_READ)
    mailbox = resolve_mailbox(req, key)
    check_policy(req.tenant, req.caller, mailbox)
    check_mailbox_enabled(mailbox)
    rank = calendar_rank(req.caller, mailbox)
    if rank < (ROLE_RANK["write"] if write else min_rank):
        raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)
    return mailbox, rank


def etag_of(event: JsonDict) -> str:
    """The event's `@odata.etag`, W/"<changeKey>" (a changeKey is assigned if missing)."""
    change_key = event.setdefault("changeKey", uuid.uuid4().hex)
    return f'W/"{change_key}"'


def render_event(event: JsonDict, zone: str | None, rank: int) -> JsonDict:
    """An event as a caller of `rank` sees it, start/end in `zone` (UTC when None).

    limitedRead sees times, status, subject and location only; read and write see everything but a
    private event's subject and body; delegateWithPrivateEventAccess and the owner see all.
    """
    out = {k: v for k, v in event.items() if not k.startswith("_")}
    out["@odata.etag"] = etag_of(event)
    for key in ("start", "end"):
        if isinstance(event.get(key), dict):
            out[key] = zones.from_utc(zones.to_utc(event[key]), zone or "UTC")
    is_private = event.get("sensitivity") in ("private", "confidential")
    if rank <= ROLE_RANK["limitedRead"]:
        keep = {
            "@odata.etag",
            "id",
            "start",
            "end",
            "showAs",
            "isAllDay",
            "type",
            "isCancelled",
            "seriesMasterId",
            "sensitivity",
            "location",
            "subject",
            "iCalUId",
        }
        out = {k: v for k, v in out.items() if k in keep}
    if is_private and rank < ROLE_RANK["delegateWithPrivateEventAccess"]:
        for key in ("subject", "body", "bodyPreview"):
            out.pop(key, None)
    return out


def log_event_read(req: GraphRequest, op: str, mailbox: JsonDict) -> None:
    """Record the `$select` of an events read in `tenant.read_log` (None = every property)."""
    raw = req.query.get("$select")
    select = sorted({s.strip() for s in raw.split(",") if s.strip()}) if raw else None
    req.tenant.read_log.append(
        {
            "at": req.tenant.clock().isoformat(),
            "op": op,
            "app": req.caller.app_id,
            "mailbox": str(mailbox["id"]),
            "select": select,
        }
    )
