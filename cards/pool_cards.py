"""Interviewer pool cards (issue 18): "my load", the owner's pools and pool card, and its forms.

Pure: the dialog layer turns the Calendar Service's answers into the views below. Loads are shown
as text bars (``■■■□□ 3 / 5``): booked this week and next against the weekly cap, each week the
member's own (their zone, their first day of week). People are shown by display name (an address's
local part when none is known), never by address; buttons name a member by an opaque key. Names
are shown literally (``plain``), never as markdown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cards.elements import action_set, build_card, field_rows, heading, note, plain
from cards.pool_actions import MAX_CAP, PoolAction, PoolVerb, build_pool_execute

__all__ = [
    "MemberView",
    "MyLoadView",
    "PoolCardView",
    "PoolLoadView",
    "PoolSummaryView",
    "TraineeView",
    "WeekView",
    "build_add_member_form",
    "build_member_caps_form",
    "build_my_load",
    "build_pool_card",
    "build_pool_list",
    "load_bar",
]

BAR_WIDTH: Final = 10
MAX_MEMBERS: Final = 40
_STAGES: Final = {"shadow": "Shadowing", "reverse_shadow": "Reverse shadowing", "graduated": "Graduated"}


@dataclass(frozen=True, slots=True)
class WeekView:
    """One local week: ``label`` (e.g. "week of Mon 7 Dec") and interviews booked in it."""

    label: str
    booked: int


@dataclass(frozen=True, slots=True)
class TraineeView:
    """A trainee's progress (``stage``: shadow, reverse_shadow or graduated)."""

    name: str
    stage: str
    shadow_done: int
    shadow_required: int
    reverse_shadow_done: int
    reverse_shadow_required: int
    pool: str = ""


@dataclass(frozen=True, slots=True)
class PoolLoadView:
    """The viewer's own load in one pool."""

    pool: str
    zone: str
    weekly_cap: int
    daily_cap: int
    this_week: WeekView
    next_week: WeekView


@dataclass(frozen=True, slots=True)
class MyLoadView:
    pools: tuple[PoolLoadView, ...]
    training: tuple[TraineeView, ...] = ()


@dataclass(frozen=True, slots=True)
class MemberView:
    """A pool member on the owner's card; ``key`` is the bot's opaque key for the member."""

    key: str
    name: str
    zone: str
    weekly_cap: int
    daily_cap: int
    this_week: WeekView
    next_week: WeekView
    own_caps: bool = False


@dataclass(frozen=True, slots=True)
class PoolCardView:
    pool_id: str
    name: str
    role: str
    default_weekly_cap: int
    default_daily_cap: int
    members: tuple[MemberView, ...]
    trainees: tuple[TraineeView, ...] = ()
    notice: str = ""  # what the last change did, or why it did not happen


@dataclass(frozen=True, slots=True)
class PoolSummaryView:
    pool_id: str
    name: str
    role: str
    members: int
    trainees: int


def load_bar(booked: int, cap: int) -> str:
    """``■■■□□ 3 / 5`` (at most ``BAR_WIDTH`` marks; over the cap says so)."""
    width = min(BAR_WIDTH, max(cap, booked))
    full = min(width, booked)
    bar = "■" * full + "□" * (width - full)
    text = f"{bar} {booked} / {cap}".strip()
    return text + " (over cap)" if booked > cap else text


def _progress(t: TraineeView) -> str:
    stage = _STAGES.get(t.stage, t.stage)
    return (
        f"{stage}: shadow {t.shadow_done} / {t.shadow_required}, "
        f"reverse shadow {t.reverse_shadow_done} / {t.reverse_shadow_required}"
    )


def _week_rows(this_week: WeekView, next_week: WeekView, cap: int) -> list[tuple[str, str]]:
    # the week's first day goes with the figures: in the narrow label column it wrapped to 3 lines
    return [
        ("This week", f"{load_bar(this_week.booked, cap)} ({this_week.label})"),
        ("Next week", f"{load_bar(next_week.booked, cap)} ({next_week.label})"),
    ]


def build_my_load(flow: str, view: MyLoadView) -> dict[str, object]:
    """ "My load": per pool, booked / weekly cap this week and next, and training progress."""
    body: list[dict[str, object]] = [heading("My interview load")]
    if not view.pools and not view.training:
        body.append(note("You are not in any interviewer pool yet. A pool owner or an admin adds you."))
    for p in view.pools:
        body += [
            plain(f"{p.pool}", weight="Bolder", separator=True),
            field_rows(
                [
                    *_week_rows(p.this_week, p.next_week, p.weekly_cap),
                    ("Caps", f"{p.weekly_cap} a week, {p.daily_cap} a day"),
                    ("Your weeks", p.zone),
                ]
            ),
        ]
    if view.training:
        body.append(plain("Training", weight="Bolder", separator=True))
        body.append(field_rows([(t.pool or "Pool", _progress(t)) for t in view.training]))
    body.append(
        action_set(
            [
                build_pool_execute("Refresh", PoolAction(PoolVerb.MY_LOAD, flow)),
                build_pool_execute("Pools I own", PoolAction(PoolVerb.LIST, flow)),
            ]
        )
    )
    return build_card(body, fallback_text="Your interview load this week and next.")


def build_pool_list(flow: str, pools: Sequence[PoolSummaryView]) -> dict[str, object]:
    """The pools the viewer owns, each with an Open button."""
    body: list[dict[str, object]] = [heading("Your interviewer pools")]
    if not pools:
        body.append(note("You don't own any interviewer pool. An admin creates pools and names their owner."))
    for p in pools[:MAX_MEMBERS]:
        role = f" ({p.role})" if p.role else ""
        body += [
            plain(f"{p.name}{role}: {p.members} members, {p.trainees} in training", separator=True),
            action_set([build_pool_execute("Open", PoolAction(PoolVerb.OPEN, flow, pool_id=p.pool_id))]),
        ]
    body.append(action_set([build_pool_execute("My load", PoolAction(PoolVerb.MY_LOAD, flow))]))
    return build_card(body, fallback_text="Your interviewer pools.")


def _member(flow: str, pool_id: str, m: MemberView) -> dict[str, object]:
    caps = f"{m.weekly_cap} a week, {m.daily_cap} a day" + ("" if m.own_caps else " (pool default)")
    return {
        "type": "Container",
        "separator": True,
        "items": [
            plain(m.name, weight="Bolder"),
            field_rows(
                [*_week_rows(m.this_week, m.next_week, m.weekly_cap), ("Caps", caps), ("Zone", m.zone)]
            ),
            action_set(
                [
                    build_pool_execute(
                        "Edit caps", PoolAction(PoolVerb.EDIT, flow, pool_id=pool_id, person=m.key)
                    ),
                    build_pool_execute(
                        "Remove",
                        PoolAction(PoolVerb.REMOVE, flow, pool_id=pool_id, person=m.key),
                        style="destructive",
                    ),
                ]
            ),
        ],
    }


def build_pool_card(flow: str, view: PoolCardView) -> dict[str, object]:
    """The owner's pool card: each member's load this week and next against their caps, with
    Edit caps / Remove, trainees' progress, and Add a member."""
    role = f" ({view.role})" if view.role else ""
    body: list[dict[str, object]] = [
        heading("Interviewer pool"),
        plain(f"{view.name}{role}", weight="Bolder"),
    ]
    if view.notice:
        body.append(plain(view.notice, subtle=True))
    body.append(
        note(
            f"Default caps: {view.default_weekly_cap} a week, {view.default_daily_cap} a day. "
            "Each member's week is their own (their time zone and first day of week).",
            subtle=True,
        )
    )
    if not view.members:
        body.append(note("No members yet."))
    body += [_member(flow, view.pool_id, m) for m in view.members[:MAX_MEMBERS]]
    if len(view.members) > MAX_MEMBERS:
        body.append(note(f"And {len(view.members) - MAX_MEMBERS} more (see `pool show` in the admin CLI)."))
    if view.trainees:
        body.append(plain("Trainees", weight="Bolder", separator=True))
        body += [plain(f"{t.name}: {_progress(t)}") for t in view.trainees]  # a long name wraps whole
    body.append(
        action_set(
            [
                build_pool_execute(
                    "Add a member",
                    PoolAction(PoolVerb.ADD_FORM, flow, pool_id=view.pool_id),
                    style="positive",
                ),
                build_pool_execute("My pools", PoolAction(PoolVerb.LIST, flow)),
            ]
        )
    )
    return build_card(body, fallback_text=f"Interviewer pool {view.name}.")


def _cap_input(input_id: str, label: str, default: int, current: int | None) -> dict[str, object]:
    values = sorted({*range(11), *([current] if current is not None else [])})
    choices = [{"title": f"Pool default ({default})", "value": "default"}]
    choices += [{"title": str(v), "value": str(v)} for v in values if 0 <= v <= MAX_CAP]
    return {
        "type": "Input.ChoiceSet",
        "id": input_id,
        "label": label,
        "style": "compact",
        "value": "default" if current is None else str(current),
        "choices": choices,
    }


def build_member_caps_form(
    flow: str, view: PoolCardView, member: MemberView, *, weekly: int | None, daily: int | None
) -> dict[str, object]:
    """The small form to set one member's caps (``None``: the pool's default)."""
    key = member.key
    body: list[dict[str, object]] = [
        heading("Edit caps"),
        plain(f"{member.name} in {view.name}", weight="Bolder"),
        _cap_input("weekly_cap", "Interviews a week", view.default_weekly_cap, weekly),
        _cap_input("daily_cap", "Interviews a day", view.default_daily_cap, daily),
        action_set(
            [
                build_pool_execute(
                    "Save",
                    PoolAction(PoolVerb.SAVE_CAPS, flow, pool_id=view.pool_id, person=key),
                    style="positive",
                ),
                build_pool_execute("Back", PoolAction(PoolVerb.OPEN, flow, pool_id=view.pool_id)),
            ]
        ),
    ]
    return build_card(body, fallback_text=f"Edit the caps of a member of {view.name}.")


def build_add_member_form(flow: str, view: PoolCardView, *, problem: str = "") -> dict[str, object]:
    """The small form to add a member by name or address (resolved like a panel's names)."""
    body: list[dict[str, object]] = [heading("Add a member"), plain(view.name, weight="Bolder")]
    if problem:
        body.append(plain(problem))
    body += [
        {
            "type": "Input.Text",
            "id": "member",
            "label": "Name or email",
            "placeholder": "e.g. Megan Bowen",
            "maxLength": 120,
        },
        note(
            f"They get the pool's default caps ({view.default_weekly_cap} a week, "
            f"{view.default_daily_cap} a day).",
            subtle=True,
        ),
        action_set(
            [
                build_pool_execute(
                    "Add", PoolAction(PoolVerb.ADD, flow, pool_id=view.pool_id, member=""), style="positive"
                ),
                build_pool_execute("Back", PoolAction(PoolVerb.OPEN, flow, pool_id=view.pool_id)),
            ]
        ),
    ]
    return build_card(body, fallback_text=f"Add a member to {view.name}.")
