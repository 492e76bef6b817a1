"""Pool card verbs (issue 18), the data their buttons carry, and strict parsing of what comes back.

Same conventions as :mod:`cards.actions`: every button is an ``Action.Execute`` whose ``data`` is
``{"verb": <PoolVerb>, "flow": <opaque flow id>, ...verb-specific fields}`` with an
``Action.Submit`` fallback carrying the same title and data. Pool verbs all start with ``pool_``,
so the bot routes a press with :func:`is_pool_verb` before :func:`cards.actions.parse_action`
(which refuses them as unknown).

Fields: ``pool_id`` (the Calendar Service's pool id) and ``person`` (the key the bot gave a
member, never an address) are opaque ids ``[A-Za-z0-9._~:-]{1,128}``. The form cards' inputs come
back in ``data`` too: ``weekly_cap`` and ``daily_cap`` (``pool_save_caps``: ``"default"`` or
``""`` for the pool's default, else 0..100) and ``member`` (``pool_add``: a name or an address,
up to 120 characters, no control characters or ``<>``; empty: the bot asks again).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = ["MAX_CAP", "PoolAction", "PoolVerb", "build_pool_execute", "is_pool_verb", "parse_pool_action"]

MAX_CAP: Final = 100


class PoolVerb(StrEnum):
    """Every verb a pool card button can carry. The value is the wire string."""

    MY_LOAD = "pool_my_load"  # show (refresh) my load
    LIST = "pool_list"  # the pools I own
    OPEN = "pool_open"  # one pool's card
    EDIT = "pool_edit"  # the caps form of one member
    SAVE_CAPS = "pool_save_caps"  # the caps form's Save (carries weekly_cap, daily_cap)
    REMOVE = "pool_remove"  # remove one member
    ADD_FORM = "pool_add_form"  # the add-a-member form
    ADD = "pool_add"  # the add form's Add (carries member)


def is_pool_verb(verb: object) -> bool:
    """True for the wire string of a :class:`PoolVerb` (how the bot routes a button press)."""
    return isinstance(verb, str) and verb in _VERBS


_VERBS: Final = frozenset(v.value for v in PoolVerb)
_ID: Final = re.compile(r"[A-Za-z0-9._~:-]{1,128}")
_REQUIRED: Final[Mapping[PoolVerb, tuple[str, ...]]] = {
    PoolVerb.OPEN: ("pool_id",),
    PoolVerb.EDIT: ("person", "pool_id"),
    PoolVerb.SAVE_CAPS: ("person", "pool_id"),
    PoolVerb.REMOVE: ("person", "pool_id"),
    PoolVerb.ADD_FORM: ("pool_id",),
    PoolVerb.ADD: ("pool_id",),
}
_INPUTS: Final[Mapping[PoolVerb, tuple[str, ...]]] = {
    PoolVerb.SAVE_CAPS: ("daily_cap", "weekly_cap"),
    PoolVerb.ADD: ("member",),
}
_MEMBER: Final = re.compile(r"[^\x00-\x1f\x7f-\x9f<>\u2028\u2029]{0,120}")
_DIGITS: Final = re.compile(r"[0-9]{1,3}")
_INVOKE_KEYS: Final = frozenset({"action", "trigger", "authentication", "state"})
_INVOKE_ACTION_KEYS: Final = frozenset({"type", "verb", "data", "id", "title"})


@dataclass(frozen=True, slots=True)
class PoolAction:
    """A validated pool button press. Exactly the fields ``verb`` requires are set; caps ``None``
    mean the pool's default; violations raise ``ValueError``."""

    verb: PoolVerb
    flow: str
    pool_id: str | None = None
    person: str | None = None
    weekly_cap: int | None = None
    daily_cap: int | None = None
    member: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.flow, str) or _ID.fullmatch(self.flow) is None:
            raise ValueError("flow must be an opaque id string")
        required = _REQUIRED.get(self.verb, ())
        for name in ("pool_id", "person"):
            value = getattr(self, name)
            if (value is None) == (name in required):
                state = "requires" if name in required else "does not take"
                raise ValueError(f"verb {self.verb.value} {state} {name}")
            if value is not None and (not isinstance(value, str) or _ID.fullmatch(value) is None):
                raise ValueError(f"{name} must be an opaque id string")
        inputs = _INPUTS.get(self.verb, ())
        for name in ("weekly_cap", "daily_cap"):
            value = getattr(self, name)
            if value is not None and name not in inputs:
                raise ValueError(f"verb {self.verb.value} does not take {name}")
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CAP
            ):
                raise ValueError(f"{name} must be a whole number from 0 to {MAX_CAP}")
        if (self.member is not None) != (self.verb is PoolVerb.ADD):
            raise ValueError("only pool_add carries a member")
        if self.member is not None and _MEMBER.fullmatch(self.member) is None:
            raise ValueError("member must be a name or an address (up to 120 characters)")

    def to_data(self) -> dict[str, object]:
        """The ``data`` object the button carries (``verb``, ``flow``, then the fields, sorted);
        the form inputs are not part of it (the card adds them on submit)."""
        data: dict[str, object] = {"verb": self.verb.value, "flow": self.flow}
        for name in sorted(_REQUIRED.get(self.verb, ())):
            data[name] = getattr(self, name)
        return data


def build_pool_execute(title: str, action: PoolAction, *, style: str | None = None) -> dict[str, object]:
    """An ``Action.Execute`` for ``action`` with an ``Action.Submit`` fallback (as cards.actions)."""
    data = action.to_data()
    execute: dict[str, object] = {"type": "Action.Execute", "title": title, "verb": action.verb.value}
    execute["data"] = data
    if style is not None:
        execute["style"] = style
    execute["fallback"] = {"type": "Action.Submit", "title": title, "data": dict(data)}
    return execute


def _unwrap(value: Mapping[str, object]) -> Mapping[str, object]:
    if set(value) - _INVOKE_KEYS:
        raise ValueError("unexpected invoke fields")
    action = value["action"]
    if not isinstance(action, Mapping) or set(action) - _INVOKE_ACTION_KEYS:
        raise ValueError("action must be an Action.Execute object")
    data = action.get("data")
    if action.get("type") != "Action.Execute" or not isinstance(data, Mapping):
        raise ValueError("action must be an Action.Execute with data")
    if action.get("verb") != data.get("verb"):
        raise ValueError("action verb and data verb disagree")
    return data


def _cap(value: object, name: str) -> int | None:
    """A cap input: ``""`` (or absent) is the pool's default; else a whole number (range: PoolAction)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a whole number")  # noqa: TRY004 - the contract is ValueError
    text = value.strip()
    if text in {"", "default"}:
        return None
    if _DIGITS.fullmatch(text) is None:
        raise ValueError(f"{name} must be a whole number from 0 to {MAX_CAP}")
    return int(text)


def parse_pool_action(value: Mapping[str, object]) -> PoolAction:
    """Parse an ``adaptiveCard/action`` invoke value or a plain ``data`` object of a pool card.

    Raises:
        ValueError: on any deviation from the shapes the pool cards emit (module docstring).
    """
    if not isinstance(value, Mapping):
        raise ValueError("value must be an object")  # noqa: TRY004 - the contract is ValueError
    data = _unwrap(value) if "action" in value else value
    raw_verb = data.get("verb")
    if not is_pool_verb(raw_verb):
        raise ValueError("unknown pool verb")
    verb = PoolVerb(str(raw_verb))
    allowed = {"verb", "flow", *_REQUIRED.get(verb, ()), *_INPUTS.get(verb, ())}
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"unexpected fields: {sorted(unknown)}")
    member = data.get("member")
    if verb is PoolVerb.ADD:
        if member is None:
            member = ""  # nothing typed: the bot asks again
        if not isinstance(member, str):
            raise ValueError("member must be a name or an address")
        member = " ".join(member.split())
    flow, pool_id, person = data.get("flow"), data.get("pool_id"), data.get("person")
    return PoolAction(
        verb,
        flow,  # type: ignore[arg-type]  # checked by PoolAction
        pool_id=pool_id,  # type: ignore[arg-type]
        person=person,  # type: ignore[arg-type]
        weekly_cap=_cap(data.get("weekly_cap"), "weekly_cap"),
        daily_cap=_cap(data.get("daily_cap"), "daily_cap"),
        member=member if verb is PoolVerb.ADD else None,  # type: ignore[arg-type]
    )
