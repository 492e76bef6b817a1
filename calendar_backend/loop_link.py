"""Candidate links for interview loops (issue 17): one link books a whole loop.

The manager's side (`offers.OfferService.create_offer` with a loop template) resolves the
template's rooms once, when the link is made (`link_template`), and stores the template with the
offer; the mailbox gate then runs for every person AND room then and on every view
(`candidate.CandidateLink`, as for single links). The link holder's side (`LoopLink`):

- **options**: whole-loop options by day in the candidate's zone, computed live with the loop
  engine (`loops.find_loops`) on calendars read now (`SlotSearch.free_of`, one availability read,
  audited), minimum notice as for slots; each option's sessions as titles and times only (never
  an interviewer's or a room's address);
- **book**: ONE POST books the entire loop through `LoopBookings.book_as` (all sessions or none,
  the option must still be offered, idempotent on a transaction id derived from the offer);
- **move**: the whole loop to another option (each session keeps its room), one change counted;
- **cancel**: every session, one change counted; the link opens again while changes are left.
"""

from __future__ import annotations

from dataclasses import replace

from calendar_backend import storage
from calendar_backend.contract import CreateOfferRequest
from calendar_backend.directory import Directory
from calendar_backend.errors import (
    ConflictError,
    InvalidTemplateError,
    NotFoundError,
)
from calendar_backend.loop_pools import load_pools, pooled
from calendar_backend.loop_search import LoopTemplates, checked_template
from calendar_backend.loop_templates import (
    LoopTemplate,
    LoopTemplateError,
    RoomInfo,
    RoomNeed,
    resolve_rooms,
)
from calendar_backend.slots import Interval
from calendar_backend.tenancy import TenantContext


async def link_template(
    store: storage.Store, directory: Directory, tenant_id: str, token: str, req: CreateOfferRequest
) -> LoopTemplate:
    """The link's template (inline or the tenant's saved one), each session's room need resolved
    to a list of rooms now (Graph's room list, with the manager's token).

    Raises:
        InvalidTemplateError: the template (or a room need) cannot be used. NotFoundError: no
        saved template of that name.
    """
    if req.loop_template is not None:
        template = checked_template(req.loop_template)
    else:
        async with store.transaction() as tx:
            row = await storage.get_loop_template(tx, tenant_id, str(req.loop_template_name))
        if row is None:
            raise NotFoundError("There is no loop template of that name.")
        template = checked_template(row.template)
    rooms: list[RoomInfo] = []
    if any(s.room is not None and not s.room.any_of for s in template.sessions):
        rooms = await directory.room_infos(token)
    try:
        lists = resolve_rooms(template, rooms)
    except LoopTemplateError as exc:
        raise InvalidTemplateError(tuple(p.message for p in exc.problems)) from exc
    sessions = tuple(
        replace(s, room=RoomNeed(any_of=lists[i]) if s.room is not None else None)
        for i, s in enumerate(template.sessions)
    )
    return replace(template, sessions=sessions)


async def check_link_pools(
    store: storage.Store,
    templates: LoopTemplates | None,
    ctx: TenantContext,
    template: LoopTemplate,
    window: Interval,
) -> None:
    """Refuse a link whose pooled sessions cannot be drawn now, before it is made (the candidate
    would otherwise see no options): the pools are loaded as the manager's loop search does
    (`loop_pools.load_pools`, groups read live, app-only).

    Raises:
        InvalidTemplateError: a session names a pool the tenant does not have, a pool's Entra group
        cannot be read, or a pool has too few members (each problem names the pool).
    """
    if not pooled(template):
        return
    live = await templates.live_pools(ctx, template) if templates is not None else {}
    async with store.transaction() as tx:
        pools = await load_pools(tx, ctx.tenant_id, template, window, live)
    problems = tuple(text for _session, text in pools.short(template))
    if problems:
        raise InvalidTemplateError(problems)


def template_mailboxes(template: LoopTemplate) -> tuple[list[str], list[str]]:
    """Every interviewer and every room of a resolved template, each once (the gate's input)."""
    people = list(dict.fromkeys(a.lower() for s in template.sessions for a in s.interviewers))
    rooms = list(dict.fromkeys(r for s in template.sessions if s.room for r in s.room.any_of))
    return people, [r for r in rooms if r not in people]


def stored_template(offer: storage.OfferRow) -> LoopTemplate:
    """The template stored with a loop link (checked again: it was valid when stored)."""
    if offer.loop_template is None:
        raise ConflictError("This link is not for an interview loop.")
    return checked_template(offer.loop_template)
