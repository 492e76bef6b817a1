"""The pools part of the Calendar Service API contract (issue 18: visibility and owner management).

PURE: stdlib only. ``calendar_backend.contract`` re-exports every name here and merges
:data:`POOL_SCHEMAS` into its ``SCHEMAS`` (lock 3), so callers import them from the contract.

- ``GET /v1/me/load`` → :class:`MyLoadOut`: the caller's load this week and next per pool they
  belong to (booked / cap, in the member's own zone and week), and their progress as a trainee;
- ``GET /v1/pools`` → ``{"pools": [PoolSummaryOut]}``: the pools the caller owns;
- ``GET /v1/pools/{id}`` → :class:`PoolCardOut`: the owner's pool card (members' load, caps,
  trainees' progress);
- ``POST /v1/pools/{id}/members`` (:class:`PoolMemberRequest`) → :class:`PoolCardOut`: add or
  remove a member, or set a member's caps (``None``: the pool's default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

MEMBER_ACTIONS: Final = ("add", "remove", "set_caps")
_EMAIL = {
    "type": "string",
    "minLength": 3,
    "maxLength": 254,
    "pattern": r"^[A-Za-z0-9._%+'\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\Z",
}
_ZONE = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[A-Za-z0-9_+\-/]+\Z"}
_CAP = {"type": ["integer", "null"], "minimum": 0, "maximum": 100}

POOL_SCHEMAS: dict[str, dict[str, Any]] = {
    "pool_member": {
        "type": "object",
        "additionalProperties": False,
        "required": ["action", "member"],
        "properties": {
            "action": {"type": "string", "enum": list(MEMBER_ACTIONS)},
            "member": _EMAIL,
            "weekly_cap": _CAP,
            "daily_cap": _CAP,
            "zone": _ZONE,
            "week_start": {"type": "integer", "minimum": 0, "maximum": 6},
        },
    },
}


@dataclass(frozen=True, slots=True)
class PoolMemberRequest:
    """``POST /v1/pools/{id}/members``: ``action`` one of :data:`MEMBER_ACTIONS`; caps ``None``
    mean the pool's default; ``zone`` ``None``: the member's mailbox zone (else UTC)."""

    action: str
    member: str
    weekly_cap: int | None = None
    daily_cap: int | None = None
    zone: str | None = None
    week_start: int = 0

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> PoolMemberRequest:
        """Parse a schema-valid body."""
        weekly, daily = doc.get("weekly_cap"), doc.get("daily_cap")
        return PoolMemberRequest(
            action=str(doc["action"]),
            member=str(doc["member"]).strip().lower(),
            weekly_cap=None if weekly is None else int(weekly),
            daily_cap=None if daily is None else int(daily),
            zone=doc.get("zone"),
            week_start=int(doc.get("week_start", 0)),
        )

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"action": self.action, "member": self.member}
        if self.action != "remove":
            body["weekly_cap"], body["daily_cap"] = self.weekly_cap, self.daily_cap
        if self.action == "add":
            body["week_start"] = self.week_start
            if self.zone:
                body["zone"] = self.zone
        return body


@dataclass(frozen=True, slots=True)
class WeekLoadOut:
    """One person's interviews in one of their local weeks (``week`` is its first local date)."""

    week: date
    booked: int

    def to_json(self) -> dict[str, object]:
        return {"week": self.week.isoformat(), "booked": self.booked}

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> WeekLoadOut:
        return WeekLoadOut(date.fromisoformat(str(doc["week"])), int(doc["booked"]))


@dataclass(frozen=True, slots=True)
class MemberLoadOut:
    """A member of a pool: their zone and week, caps (``own_caps``: set for them, not the pool's
    defaults) and their load this week and next (booked against ``weekly_cap``)."""

    address: str
    zone: str
    week_start: int
    weekly_cap: int
    daily_cap: int
    this_week: WeekLoadOut
    next_week: WeekLoadOut
    own_caps: bool = False
    display_name: str = ""  # from the directory, else the address's local part

    def to_json(self) -> dict[str, object]:
        return {
            "address": self.address,
            "display_name": self.display_name,
            "zone": self.zone,
            "week_start": self.week_start,
            "weekly_cap": self.weekly_cap,
            "daily_cap": self.daily_cap,
            "this_week": self.this_week.to_json(),
            "next_week": self.next_week.to_json(),
            "own_caps": self.own_caps,
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> MemberLoadOut:
        return MemberLoadOut(
            address=str(doc["address"]),
            zone=str(doc["zone"]),
            week_start=int(doc["week_start"]),
            weekly_cap=int(doc["weekly_cap"]),
            daily_cap=int(doc["daily_cap"]),
            this_week=WeekLoadOut.from_json(doc["this_week"]),
            next_week=WeekLoadOut.from_json(doc["next_week"]),
            own_caps=bool(doc.get("own_caps", False)),
            display_name=str(doc.get("display_name") or ""),
        )


@dataclass(frozen=True, slots=True)
class TraineeProgressOut:
    """A trainee's progress: completed shadow / reverse-shadow sessions against the required
    counts, and the ``stage`` (``shadow``, ``reverse_shadow`` or ``graduated``)."""

    address: str
    stage: str
    shadow_done: int
    shadow_required: int
    reverse_shadow_done: int
    reverse_shadow_required: int
    pool: str = ""
    display_name: str = ""  # from the directory, else the address's local part

    def to_json(self) -> dict[str, object]:
        return {
            "address": self.address,
            "display_name": self.display_name,
            "stage": self.stage,
            "shadow_done": self.shadow_done,
            "shadow_required": self.shadow_required,
            "reverse_shadow_done": self.reverse_shadow_done,
            "reverse_shadow_required": self.reverse_shadow_required,
            "pool": self.pool,
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> TraineeProgressOut:
        return TraineeProgressOut(
            address=str(doc["address"]),
            stage=str(doc["stage"]),
            shadow_done=int(doc["shadow_done"]),
            shadow_required=int(doc["shadow_required"]),
            reverse_shadow_done=int(doc["reverse_shadow_done"]),
            reverse_shadow_required=int(doc["reverse_shadow_required"]),
            pool=str(doc.get("pool", "")),
            display_name=str(doc.get("display_name") or ""),
        )


@dataclass(frozen=True, slots=True)
class PoolSummaryOut:
    """One line of ``GET /v1/pools``."""

    id: str
    name: str
    role: str
    members: int
    trainees: int

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "members": self.members,
            "trainees": self.trainees,
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> PoolSummaryOut:
        return PoolSummaryOut(
            str(doc["id"]), str(doc["name"]), str(doc["role"]), int(doc["members"]), int(doc["trainees"])
        )


@dataclass(frozen=True, slots=True)
class PoolCardOut:
    """The pool card's data for its owner."""

    id: str
    name: str
    role: str
    default_weekly_cap: int
    default_daily_cap: int
    members: tuple[MemberLoadOut, ...]
    trainees: tuple[TraineeProgressOut, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "default_weekly_cap": self.default_weekly_cap,
            "default_daily_cap": self.default_daily_cap,
            "members": [m.to_json() for m in self.members],
            "trainees": [t.to_json() for t in self.trainees],
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> PoolCardOut:
        return PoolCardOut(
            id=str(doc["id"]),
            name=str(doc["name"]),
            role=str(doc["role"]),
            default_weekly_cap=int(doc["default_weekly_cap"]),
            default_daily_cap=int(doc["default_daily_cap"]),
            members=tuple(MemberLoadOut.from_json(m) for m in doc["members"]),
            trainees=tuple(TraineeProgressOut.from_json(t) for t in doc["trainees"]),
        )


@dataclass(frozen=True, slots=True)
class PoolLoadOut:
    """The caller's load in one pool they belong to (their zone and week for that pool)."""

    pool_id: str
    pool: str
    zone: str
    weekly_cap: int
    daily_cap: int
    this_week: WeekLoadOut
    next_week: WeekLoadOut

    def to_json(self) -> dict[str, object]:
        return {
            "pool_id": self.pool_id,
            "pool": self.pool,
            "zone": self.zone,
            "weekly_cap": self.weekly_cap,
            "daily_cap": self.daily_cap,
            "this_week": self.this_week.to_json(),
            "next_week": self.next_week.to_json(),
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> PoolLoadOut:
        return PoolLoadOut(
            pool_id=str(doc["pool_id"]),
            pool=str(doc["pool"]),
            zone=str(doc["zone"]),
            weekly_cap=int(doc["weekly_cap"]),
            daily_cap=int(doc["daily_cap"]),
            this_week=WeekLoadOut.from_json(doc["this_week"]),
            next_week=WeekLoadOut.from_json(doc["next_week"]),
        )


@dataclass(frozen=True, slots=True)
class MyLoadOut:
    """``GET /v1/me/load``: the caller's address, load per pool, and training progress."""

    address: str
    pools: tuple[PoolLoadOut, ...]
    training: tuple[TraineeProgressOut, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "address": self.address,
            "pools": [p.to_json() for p in self.pools],
            "training": [t.to_json() for t in self.training],
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> MyLoadOut:
        return MyLoadOut(
            address=str(doc["address"]),
            pools=tuple(PoolLoadOut.from_json(p) for p in doc["pools"]),
            training=tuple(TraineeProgressOut.from_json(t) for t in doc["training"]),
        )
