"""Loop card verbs, the data their buttons carry, and strict parsing of what comes back.

Same conventions as :mod:`cards.actions`: every button is an ``Action.Execute`` whose ``data`` is
``{"verb": <LoopVerb>, "flow": <opaque flow id>, ...verb-specific fields}`` with an
``Action.Submit`` fallback carrying the same title and data. Loop verbs all start with ``loop_``,
so the bot routes a press with ``is_loop_verb(data["verb"])`` before calling
:func:`cards.actions.parse_action` (which refuses them as unknown) or :func:`parse_loop_action`.

Fields: ``template_id``, ``option_id``, ``person`` and ``loop_id`` are opaque ids
(``[A-Za-z0-9._~:-]{1,128}``, ``person`` is the key the bot gave, never an address; ``loop_id``: a
booked loop, on the "My interviews" buttons); ``session`` is a session index 0..7;
``duration_min`` 5..480; ``days`` 1..14; ``break_min`` 0..240; ``page`` 1..50.

``loop_cap_override`` (issue 18) also takes ``cap_reason``, the text typed in its Input.Text
(not required by the card, so an empty reason reaches the bot and is refused with a clear error
there: :func:`check_reason`).

``loop_find`` (the builder's button) also takes the builder's inputs, all optional text:
``name``, ``order`` (``fixed``/``free``), ``max_break`` and ``max_days`` (digits), ``lunch`` and
``save`` (Input.Toggle ``"true"``/``"false"``), and per session ``s<i>_title``,
``s<i>_minutes`` (digits) and ``s<i>_people`` (names or addresses, comma-separated) for
``i`` in 0..``BUILDER_ROWS - 1``. They are checked for shape only (length, characters); the
template rules are :func:`calendar_backend.loop_templates.parse_template`'s, run by the bot on
:meth:`LoopBuilderInput.template_json` after it resolves the people.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

__all__ = [
    "BUILDER_ROWS",
    "REASON_FIELD",
    "REASON_MAX",
    "BuilderSession",
    "LoopAction",
    "LoopBuilderInput",
    "LoopVerb",
    "build_loop_execute",
    "check_reason",
    "is_loop_verb",
    "parse_loop_action",
]

BUILDER_ROWS: Final = 6
LUNCH: Final = {"title": "Lunch", "minutes": 45, "window": {"start": "11:30", "end": "13:30"}}


class LoopVerb(StrEnum):
    """Every verb a loop card button can carry. The value is the wire string."""

    USE_TEMPLATE = "loop_use_template"  # search with a saved template
    EDIT_TEMPLATE = "loop_edit_template"  # the builder, prefilled from a saved template
    NEW = "loop_new"  # an empty builder
    FIND = "loop_find"  # the builder's "Find loop times" (carries the builder's inputs)
    CHOOSE = "loop_choose"  # pick one loop option (then confirm)
    CONFIRM = "loop_confirm"  # book the chosen option: every session or none
    BACK = "loop_back"  # from the confirmation back to the options
    LENGTH = "loop_length"  # change one session's length, search again
    DROP_PERSON = "loop_drop_person"  # drop a person from one session, search again
    REPLACE_PERSON = "loop_replace_person"  # ask who replaces a person on one session
    DAYS = "loop_days"  # allow the loop to span this many days
    BREAK = "loop_break"  # allow breaks up to this many minutes
    FREE_ORDER = "loop_free_order"  # let the sessions run in any order
    WIDEN = "loop_widen"  # search this many more days
    MORE = "loop_more"  # the next page of options
    SEND_LINK = "loop_send_link"  # a candidate link for the loop: the candidate picks (issue 17)
    CAP_OVERRIDE = "loop_cap_override"  # use a pool member past their cap, with a reason (issue 18)
    # "My interviews": manage a booked loop (dialogs/loop_manage.py, cards/loop_manage.py).
    MANAGE = "loop_manage"  # the loop's detail card: its sessions, each movable
    CANCEL = "loop_cancel"  # asks "Cancel the whole loop?" first
    CANCEL_CONFIRMED = "loop_cancel_confirmed"
    CANCEL_SESSION = "loop_cancel_session"  # a loop cancels whole: says so, offers the choices
    MOVE = "loop_move"  # new times for the whole loop
    MOVE_SESSION = "loop_move_session"  # new times for one session
    MOVE_PICK = "loop_move_pick"  # move the whole loop to a search option
    MOVE_SESSION_PICK = "loop_move_session_pick"  # move one session to a time (option_id: its start)


def is_loop_verb(verb: object) -> bool:
    """True for the wire string of a :class:`LoopVerb` (how the bot routes a button press)."""
    return isinstance(verb, str) and verb in _VERBS


_VERBS: Final = frozenset(v.value for v in LoopVerb)
_ID: Final = re.compile(r"[A-Za-z0-9._~:-]{1,128}")
_IDS: Final = ("template_id", "option_id", "person", "loop_id")
_INTS: Final[Mapping[str, tuple[int, int]]] = {
    "session": (0, 7),
    "duration_min": (5, 480),
    "days": (1, 14),
    "break_min": (0, 240),
    "page": (1, 50),
}
_REQUIRED: Final[Mapping[LoopVerb, tuple[str, ...]]] = {
    LoopVerb.USE_TEMPLATE: ("template_id",),
    LoopVerb.EDIT_TEMPLATE: ("template_id",),
    LoopVerb.CHOOSE: ("option_id",),
    LoopVerb.CONFIRM: ("option_id",),
    LoopVerb.LENGTH: ("duration_min", "session"),
    LoopVerb.DROP_PERSON: ("person", "session"),
    LoopVerb.REPLACE_PERSON: ("person", "session"),
    LoopVerb.DAYS: ("days",),
    LoopVerb.BREAK: ("break_min",),
    LoopVerb.WIDEN: ("days",),
    LoopVerb.MORE: ("page",),
    LoopVerb.CAP_OVERRIDE: ("person", "session"),
    LoopVerb.MANAGE: ("loop_id",),
    LoopVerb.CANCEL: ("loop_id",),
    LoopVerb.CANCEL_CONFIRMED: ("loop_id",),
    LoopVerb.CANCEL_SESSION: ("loop_id", "session"),
    LoopVerb.MOVE: ("loop_id",),
    LoopVerb.MOVE_SESSION: ("loop_id", "session"),
    LoopVerb.MOVE_PICK: ("loop_id", "option_id"),
    LoopVerb.MOVE_SESSION_PICK: ("loop_id", "option_id", "session"),
}
REASON_FIELD: Final = "cap_reason"  # the Input.Text of "Over cap: use <name> anyway"
REASON_MAX: Final = 200
_REASON_RAW_MAX: Final = 2000  # what a press may carry at all; the rule (1-200) is check_reason's
_BUILDER_FIELDS: Final = frozenset(
    {"name", "order", "max_break", "max_days", "lunch", "save"}
    | {f"s{i}_{part}" for i in range(BUILDER_ROWS) for part in ("title", "minutes", "people")}
)
_TEXT: Final = re.compile(r"[^\x00-\x1f\x7f-\x9f<>\u2028\u2029]{0,400}")
_DIGITS: Final = re.compile(r"[0-9]{1,3}")
_INVOKE_KEYS: Final = frozenset({"action", "trigger", "authentication", "state"})
_INVOKE_ACTION_KEYS: Final = frozenset({"type", "verb", "data", "id", "title"})


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or _TEXT.fullmatch(value) is None:
        raise ValueError(f"{name} must be a short text without control characters or <>")
    return " ".join(value.split())


def _number(value: str, name: str) -> int | None:
    if not value:
        return None
    if _DIGITS.fullmatch(value) is None:
        raise ValueError(f"{name} must be a whole number")
    return int(value)


def _toggle(value: str, name: str) -> bool:
    if value not in ("", "true", "false"):
        raise ValueError(f"{name} must be true or false")
    return value == "true"


@dataclass(frozen=True, slots=True)
class BuilderSession:
    """One filled builder row: ``people`` as typed (names or addresses), split on , and ;."""

    title: str
    minutes: int | None
    people: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LoopBuilderInput:
    """The builder's inputs, shape-checked. Empty rows are left out."""

    name: str = ""
    order: str = "fixed"
    max_break: int | None = None
    max_days: int | None = None
    lunch: bool = False
    save: bool = False
    sessions: tuple[BuilderSession, ...] = ()

    @classmethod
    def of(cls, data: Mapping[str, object]) -> LoopBuilderInput:
        """Read the inputs from a ``loop_find`` data object (unknown keys refused earlier)."""
        text = {k: _text(data[k], k) for k in _BUILDER_FIELDS if k in data}
        order = text.get("order", "") or "fixed"
        if order not in ("fixed", "free"):
            raise ValueError("order must be fixed or free")
        rows = []
        for i in range(BUILDER_ROWS):
            title, minutes = text.get(f"s{i}_title", ""), text.get(f"s{i}_minutes", "")
            people = tuple(p.strip() for p in re.split(r"[,;]", text.get(f"s{i}_people", "")) if p.strip())
            if title or people:
                rows.append(BuilderSession(title, _number(minutes, f"s{i}_minutes"), people))
        return cls(
            name=text.get("name", ""),
            order=order,
            max_break=_number(text.get("max_break", ""), "max_break"),
            max_days=_number(text.get("max_days", ""), "max_days"),
            lunch=_toggle(text.get("lunch", ""), "lunch"),
            save=_toggle(text.get("save", ""), "save"),
            sessions=tuple(rows),
        )

    def template_json(self) -> dict[str, object]:
        """The loop template JSON (``calendar_backend.loop_templates``) these inputs describe.

        ``interviewers`` hold the people as typed: the bot replaces each with the address it
        resolves to before ``parse_template``, which then reports any problem per session. A
        lunch (45 min, 11:30-13:30 local) is added after the second session when asked for.
        """
        sessions: list[dict[str, object]] = [
            {"title": s.title, "minutes": s.minutes, "interviewers": list(s.people)} for s in self.sessions
        ]
        if self.lunch:
            sessions.insert(min(2, len(sessions)), dict(LUNCH))
        value: dict[str, object] = {"name": self.name or "Interview loop", "order": self.order}
        if self.max_break is not None:
            value["breaks"] = {"min_minutes": 0, "max_minutes": self.max_break}
        if self.max_days is not None:
            value["max_days"] = self.max_days
        value["sessions"] = sessions
        return value


@dataclass(frozen=True, slots=True)
class LoopAction:
    """A validated loop button press. Exactly the fields ``verb`` requires are set (and
    ``builder`` only for ``loop_find``); violations raise ``ValueError``."""

    verb: LoopVerb
    flow: str
    template_id: str | None = None
    option_id: str | None = None
    person: str | None = None
    session: int | None = None
    duration_min: int | None = None
    days: int | None = None
    break_min: int | None = None
    page: int | None = None
    builder: LoopBuilderInput | None = field(default=None, compare=True)
    reason: str | None = None  # loop_cap_override's typed reason, as typed (check_reason)
    loop_id: str | None = None

    def __post_init__(self) -> None:
        if _ID.fullmatch(self.flow) is None:
            raise ValueError("flow must be an opaque id string")
        required = _REQUIRED.get(self.verb, ())
        for name in (*_IDS, *_INTS):
            value = getattr(self, name)
            if (value is None) == (name in required):
                state = "requires" if name in required else "does not take"
                raise ValueError(f"verb {self.verb.value} {state} {name}")
            if (
                name in _IDS
                and value is not None
                and (not isinstance(value, str) or not _ID.fullmatch(value))
            ):
                raise ValueError(f"{name} must be an opaque id string")
            if name in _INTS and value is not None:
                low, high = _INTS[name]
                if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                    raise ValueError(f"{name} must be an integer in [{low}, {high}]")
        if (self.builder is not None) != (self.verb is LoopVerb.FIND):
            raise ValueError("only loop_find carries the builder's inputs")
        if self.reason is not None and (
            self.verb is not LoopVerb.CAP_OVERRIDE
            or not isinstance(self.reason, str)
            or len(self.reason) > _REASON_RAW_MAX
        ):
            raise ValueError("only loop_cap_override carries a reason, as a short text")

    def to_data(self) -> dict[str, object]:
        """The ``data`` object the button carries (``verb``, ``flow``, then the fields, sorted)."""
        data: dict[str, object] = {"verb": self.verb.value, "flow": self.flow}
        for name in sorted(_REQUIRED.get(self.verb, ())):
            data[name] = getattr(self, name)
        return data


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


def parse_loop_action(value: Mapping[str, object]) -> LoopAction:
    """Parse an ``adaptiveCard/action`` invoke value or a plain ``data`` object of a loop card.

    Raises:
        ValueError: on any deviation from the shapes the loop cards emit (module docstring).
    """
    if not isinstance(value, Mapping):
        raise ValueError("value must be an object")  # noqa: TRY004 - the contract is ValueError
    data = _unwrap(value) if "action" in value else value
    raw_verb = data.get("verb")
    if not is_loop_verb(raw_verb):
        raise ValueError("unknown loop verb")
    verb = LoopVerb(str(raw_verb))
    allowed = {"verb", "flow", *_REQUIRED.get(verb, ())} | (
        _BUILDER_FIELDS if verb is LoopVerb.FIND else set()
    )
    if verb is LoopVerb.CAP_OVERRIDE:
        allowed.add(REASON_FIELD)
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"unexpected fields: {sorted(unknown)}")
    flow = data.get("flow")
    if not isinstance(flow, str):
        raise ValueError("flow must be an opaque id string")  # noqa: TRY004 - the contract is ValueError
    fields = {name: data[name] for name in (*_IDS, *_INTS) if name in data}
    builder = LoopBuilderInput.of(data) if verb is LoopVerb.FIND else None
    reason = data.get(REASON_FIELD, "") if verb is LoopVerb.CAP_OVERRIDE else None
    if reason is not None and not isinstance(reason, str):
        raise ValueError("cap_reason must be text")
    return LoopAction(verb, flow, builder=builder, reason=reason, **fields)  # type: ignore[arg-type]


def check_reason(raw: str | None) -> str | None:
    """A cap override's reason as stored: trimmed, 1 to ``REASON_MAX`` characters, no control
    or format characters (line breaks included); ``None`` when it breaks a rule."""
    if raw is None:
        return None
    text = raw.strip()
    if not text or len(text) > REASON_MAX:
        return None
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text):
        return None
    return text


def build_loop_execute(title: str, action: LoopAction, *, style: str | None = None) -> dict[str, object]:
    """An ``Action.Execute`` for ``action`` with an ``Action.Submit`` fallback (as cards.actions)."""
    data = action.to_data()
    execute: dict[str, object] = {
        "type": "Action.Execute",
        "title": title,
        "verb": action.verb.value,
        "data": data,
    }
    if style is not None:
        execute["style"] = style
    execute["fallback"] = {"type": "Action.Submit", "title": title, "data": dict(data)}
    return execute
