"""Card verbs, the data every button carries, and strict parsing of what comes back.

Every button OpenSlot renders is an ``Action.Execute`` (Universal Actions, card version >= 1.4)
whose ``data`` is ``{"verb": <Verb>, "flow": <opaque flow id>, ...verb-specific fields}``. Each
``Action.Execute`` carries an ``Action.Submit`` fallback with the same title and data, so older
Teams clients post a message whose ``value`` is that data (platform.md §E1).

``parse_action`` accepts either shape the bot can receive:
- the ``adaptiveCard/action`` invoke value ``{"action": {"type": "Action.Execute", "verb", "data"},
  "trigger": ...}``, or
- the plain ``data`` object (``Action.Submit`` fallback).
Anything else (unknown verb, unknown or missing field, wrong type, out-of-range number, a verb
that disagrees with ``data.verb``) raises ``ValueError``.

"Send to candidate" also takes the link options the card's inputs add to ``data`` (all optional):
``role`` (text, 1..120 characters after trimming, no control characters or ``<>``; empty means
none), ``show_names`` (``"true"``/``"false"``, the Input.Toggle values), ``day_start`` and
``day_end`` (``"HH:00"``: the candidate's day in whole hours, 00..23 and 01..24, start < end).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = ["CardAction", "Verb", "build_execute", "build_refresh", "parse_action"]


class Verb(StrEnum):
    """Every verb a card button can carry. The value is the wire string."""

    SCHEDULE = "schedule"
    MY_INTERVIEWS = "my_interviews"
    HELP = "help"
    CHOOSE_SLOT = "choose_slot"
    CONFIRM = "confirm"
    BACK = "back"
    WIDEN_DAYS = "widen_days"
    SHORTEN = "shorten"
    MORE_SLOTS = "more_slots"
    SEND_TO_CANDIDATE = "send_to_candidate"
    CANCEL_INTERVIEW = "cancel_interview"  # asks "Cancel this interview?" first
    CANCEL_INTERVIEW_CONFIRMED = "cancel_interview_confirmed"
    KEEP_INTERVIEW = "keep_interview"
    RESCHEDULE_INTERVIEW = "reschedule_interview"
    REVOKE_OFFER = "revoke_offer"
    SIGN_IN = "sign_in"
    EDIT_DURATION = "edit_duration"  # the slot card's "Change ..." buttons: ask again, search again
    EDIT_WINDOW = "edit_window"
    EDIT_PANEL = "edit_panel"
    EDIT_ZONE = "edit_zone"
    REFRESH = "refresh"
    # Fix the search from the slot card (issue 13 defects 3 and 14).
    DROP_PERSON = "drop_person"
    OPTIONAL_PERSON = "optional_person"
    OTHER_DAYS = "other_days"
    APPLY_REPAIR = "apply_repair"  # the drift card's buttons (issue 19): one repair of one drift item


_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._~:-]{1,128}")
_INT_BOUNDS: Final[Mapping[str, tuple[int, int]]] = {
    "days": (1, 60),
    "duration_min": (5, 480),
    "page": (1, 50),
}
_STR_FIELDS: Final = frozenset({"slot_id", "interview_id", "offer_id", "person", "drift_id", "repair"})
_FIELDS_BY_VERB: Final[Mapping[Verb, frozenset[str]]] = {
    Verb.CHOOSE_SLOT: frozenset({"slot_id"}),
    Verb.CONFIRM: frozenset({"slot_id"}),
    Verb.WIDEN_DAYS: frozenset({"days"}),
    Verb.SHORTEN: frozenset({"duration_min"}),
    Verb.MORE_SLOTS: frozenset({"page"}),
    Verb.CANCEL_INTERVIEW: frozenset({"interview_id"}),
    Verb.CANCEL_INTERVIEW_CONFIRMED: frozenset({"interview_id"}),
    Verb.KEEP_INTERVIEW: frozenset({"interview_id"}),
    Verb.RESCHEDULE_INTERVIEW: frozenset({"interview_id"}),
    Verb.REVOKE_OFFER: frozenset({"offer_id"}),
    Verb.DROP_PERSON: frozenset({"person"}),
    Verb.OPTIONAL_PERSON: frozenset({"person"}),
    Verb.APPLY_REPAIR: frozenset({"drift_id", "repair"}),
}
# Optional card inputs a verb accepts (they come back only from the inputs of its own card).
_OPTIONS_BY_VERB: Final[Mapping[Verb, frozenset[str]]] = {
    Verb.SEND_TO_CANDIDATE: frozenset({"role", "show_names", "day_start", "day_end"}),
}
_OPTION_FIELDS: Final = ("role", "show_names", "day_start", "day_end")
MAX_ROLE: Final = 120
_ROLE_PATTERN: Final = re.compile(r"[^\x00-\x1f\x7f-\x9f<>\u2028\u2029]{1,120}")
_HOUR_PATTERN: Final = re.compile(r"([01][0-9]|2[0-4]):00")
_INVOKE_KEYS: Final = frozenset({"action", "trigger", "authentication", "state"})
# Teams clients (and the Agents Playground) add the pressed button's `title`: presentation only.
_INVOKE_ACTION_KEYS: Final = frozenset({"type", "verb", "data", "id", "title"})


@dataclass(frozen=True, slots=True)
class CardAction:
    """A validated button press. Only the fields that belong to ``verb`` are set.

    Invariants: ``flow`` and every id match ``[A-Za-z0-9._~:-]{1,128}``; ``days`` is 1..60,
    ``duration_min`` 5..480 (minutes), ``page`` 1..50; a field is not None exactly when the verb
    requires it. Violations raise ``ValueError``.
    """

    verb: Verb
    flow: str
    slot_id: str | None = None
    interview_id: str | None = None
    offer_id: str | None = None
    days: int | None = None
    duration_min: int | None = None
    page: int | None = None
    person: str | None = None
    role: str | None = None
    show_names: bool | None = None
    day_start: int | None = None
    day_end: int | None = None
    drift_id: str | None = None
    repair: str | None = None

    def __post_init__(self) -> None:
        _check_id("flow", self.flow)
        required = _FIELDS_BY_VERB.get(self.verb, frozenset())
        for name in (*_STR_FIELDS, *_INT_BOUNDS):
            value = getattr(self, name)
            if (value is None) == (name in required):
                state = "requires" if name in required else "does not take"
                raise ValueError(f"verb {self.verb.value} {state} {name}")
            if value is not None:
                _check_field(name, value)
        self._check_options()

    def _check_options(self) -> None:
        allowed = _OPTIONS_BY_VERB.get(self.verb, frozenset())
        for name in _OPTION_FIELDS:
            if getattr(self, name) is not None and name not in allowed:
                raise ValueError(f"verb {self.verb.value} does not take {name}")
        if self.role is not None and _ROLE_PATTERN.fullmatch(self.role) is None:
            raise ValueError("role must be 1..120 characters without control characters or <>")
        if self.show_names is not None and not isinstance(self.show_names, bool):
            raise ValueError("show_names must be a boolean")
        for name, (low, high) in (("day_start", (0, 23)), ("day_end", (1, 24))):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
            ):
                raise ValueError(f"{name} must be a whole hour in [{low}, {high}]")
        if self.day_start is not None and self.day_end is not None and self.day_start >= self.day_end:
            raise ValueError("day_start must be before day_end")

    def to_data(self) -> dict[str, object]:
        """Return the ``data`` object the button carries (``verb``, ``flow``, then the fields)."""
        data: dict[str, object] = {"verb": self.verb.value, "flow": self.flow}
        for name in sorted(_FIELDS_BY_VERB.get(self.verb, frozenset())):
            data[name] = getattr(self, name)
        return data


def _check_id(name: str, value: object) -> str:
    if not isinstance(value, str) or _ID_PATTERN.fullmatch(value) is None:
        raise ValueError(f"{name} must be an opaque id string")
    return value


def _check_field(name: str, value: object) -> str | int:
    return _check_id(name, value) if name in _STR_FIELDS else _check_int(name, value)


def _check_int(name: str, value: object) -> int:
    low, high = _INT_BOUNDS[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}]")
    return value


def _parse_data(data: Mapping[str, object]) -> CardAction:
    raw_verb = data.get("verb")
    if not isinstance(raw_verb, str):
        raise ValueError("verb must be a string")  # noqa: TRY004 - the contract is ValueError
    try:
        verb = Verb(raw_verb)
    except ValueError:
        raise ValueError("unknown verb") from None
    allowed = (
        {"verb", "flow"} | _FIELDS_BY_VERB.get(verb, frozenset()) | _OPTIONS_BY_VERB.get(verb, frozenset())
    )
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"unexpected fields: {sorted(unknown)}")
    return CardAction(
        verb,
        _check_id("flow", data.get("flow")),
        slot_id=_optional_id(data, "slot_id"),
        interview_id=_optional_id(data, "interview_id"),
        offer_id=_optional_id(data, "offer_id"),
        days=_optional_int(data, "days"),
        duration_min=_optional_int(data, "duration_min"),
        page=_optional_int(data, "page"),
        person=_optional_id(data, "person"),
        role=_optional_role(data),
        show_names=_optional_toggle(data, "show_names"),
        day_start=_optional_hour(data, "day_start"),
        drift_id=_optional_id(data, "drift_id"),
        repair=_optional_id(data, "repair"),
        day_end=_optional_hour(data, "day_end"),
    )


def _optional_role(data: Mapping[str, object]) -> str | None:
    """An Input.Text role: trimmed, ``None`` when absent or empty."""
    if "role" not in data:
        return None
    value = data["role"]
    if not isinstance(value, str) or len(value) > 4 * MAX_ROLE:
        raise ValueError("role must be a short string")
    return value.strip(" ") or None  # other whitespace (tabs, new lines) is refused


def _optional_toggle(data: Mapping[str, object], name: str) -> bool | None:
    """An Input.Toggle value: ``"true"``/``"false"`` (or a JSON boolean), else ``ValueError``."""
    if name not in data:
        return None
    value = data[name]
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ValueError(f"{name} must be true or false")


def _optional_hour(data: Mapping[str, object], name: str) -> int | None:
    """An Input.ChoiceSet whole hour ``"HH:00"`` (00..24); the range is checked by CardAction."""
    if name not in data:
        return None
    value = data[name]
    if not isinstance(value, str) or _HOUR_PATTERN.fullmatch(value) is None:
        raise ValueError(f"{name} must be a whole hour HH:00")
    return int(value[:2])


def _optional_id(data: Mapping[str, object], name: str) -> str | None:
    return _check_id(name, data[name]) if name in data else None


def _optional_int(data: Mapping[str, object], name: str) -> int | None:
    return _check_int(name, data[name]) if name in data else None


def _unwrap_invoke(value: Mapping[str, object]) -> Mapping[str, object]:
    unknown = set(value) - _INVOKE_KEYS
    if unknown:
        raise ValueError(f"unexpected invoke fields: {sorted(unknown)}")
    action = value["action"]
    if not isinstance(action, Mapping) or set(action) - _INVOKE_ACTION_KEYS:
        raise ValueError("action must be an Action.Execute object")
    data = action.get("data")
    if action.get("type") != "Action.Execute" or not isinstance(data, Mapping):
        raise ValueError("action must be an Action.Execute with data")
    if action.get("verb") != data.get("verb"):
        raise ValueError("action verb and data verb disagree")
    return data


def parse_action(value: Mapping[str, object]) -> CardAction:
    """Parse an ``adaptiveCard/action`` invoke value or a plain ``data`` object.

    Raises:
        ValueError: on any deviation from the shapes the cards emit (see module docstring).
    """
    if not isinstance(value, Mapping):
        raise ValueError("value must be an object")  # noqa: TRY004 - the contract is ValueError
    data = _unwrap_invoke(value) if "action" in value else value
    return _parse_data(data)


def build_execute(title: str, action: CardAction, *, style: str | None = None) -> dict[str, object]:
    """Return an ``Action.Execute`` for ``action`` with an ``Action.Submit`` fallback.

    ``style`` is an Adaptive Card action style (``positive``/``destructive``) or None.
    """
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


MAX_REFRESH_USERS: Final = 60


def build_refresh(flow: str, user_ids: tuple[str, ...]) -> dict[str, object]:
    """Return a card ``refresh`` block that re-renders ``flow`` for ``user_ids`` (Teams MRIs).

    Raises:
        ValueError: if ``user_ids`` is empty or longer than 60 (Teams' limit, platform.md §E1).
    """
    if not 1 <= len(user_ids) <= MAX_REFRESH_USERS:
        raise ValueError(f"refresh needs 1..{MAX_REFRESH_USERS} user ids")
    action = CardAction(Verb.REFRESH, flow)
    return {
        "action": {"type": "Action.Execute", "verb": action.verb.value, "data": action.to_data()},
        "userIds": list(user_ids),
    }
