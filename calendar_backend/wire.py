"""The Calendar Service's wire primitives, shared by `contract` and `contract_loops`. PURE: stdlib only.

Times (UTC ISO 8601 with ``Z``), the person record the API returns, and the JSON Schema fragments
every pinned schema is built from. Callers import these through `calendar_backend.contract`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calendar_backend.errors import ValidationError

# Every pattern is anchored with `\Z`, never `$` (Python's `$` also matches before a final "\n"),
# and every character class is ASCII (`\d` would take any Unicode digit). Control characters in
# any string of any payload are refused before the schema by the service (`app._payload`).
EMAIL = {
    "type": "string",
    "minLength": 3,
    "maxLength": 254,
    "pattern": r"^[A-Za-z0-9._%+'\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\Z",
}
TIME = {
    "type": "string",
    "maxLength": 40,
    "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,7})?)?Z\Z",
}
ZONE = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[A-Za-z0-9_+\-/ .()]+\Z"}
NAME = {"type": "string", "minLength": 1, "maxLength": 120, "pattern": r"^[^\x00-\x1f\x7f<>]+\Z"}
ID = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[A-Za-z0-9\-_]+\Z"}
CLOCK = {"type": "string", "maxLength": 5, "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]\Z"}
TOKEN = {"type": "string", "minLength": 40, "maxLength": 128, "pattern": r"^[A-Za-z0-9_\-]+\Z"}


def obj(required: list[str], **props: Any) -> dict[str, Any]:
    """An object schema: exactly ``props``, ``required`` among them."""
    return {"type": "object", "additionalProperties": False, "required": required, "properties": props}


def parse_time(value: str) -> datetime:
    """Parse a wire time (`...Z`) into an aware UTC datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def format_time(value: datetime) -> str:
    """Format an aware datetime as the wire's UTC `YYYY-MM-DDTHH:MM:SSZ`."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


MAX_WINDOW = timedelta(days=61)


def parse_wire_time(field: str, raw: str) -> datetime:
    """A schema-valid wire time that is also a real instant in 2000..2199 (else a 400, never a 500).

    Raises:
        ValidationError: on ``field``.
    """
    try:
        value = parse_time(raw)
    except (ValueError, OverflowError) as exc:
        raise ValidationError(field, "is not a valid time") from exc
    if not 2000 <= value.year < 2200:
        raise ValidationError(field, "is out of range")
    return value


def parse_window(start_raw: str, end_raw: str) -> tuple[datetime, datetime]:
    """``[start, end)`` from the wire: both valid instants, end after start, at most 61 days.

    Raises:
        ValidationError: on ``start`` or ``end``.
    """
    start, end = parse_wire_time("start", start_raw), parse_wire_time("end", end_raw)
    if end <= start:
        raise ValidationError("end", "must be after start")
    if end - start > MAX_WINDOW:
        raise ValidationError("end", "the window may span at most 61 days")
    return start, end


def parse_zone(field: str, name: str) -> str:
    """``name`` if it is an IANA zone this host knows.

    Raises:
        ValidationError: on ``field``.
    """
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe" is a directory
        raise ValidationError(field, "is not a known time zone") from exc
    return name


@dataclass(frozen=True, slots=True)
class PersonOut:
    """A schedulable mailbox as the bot may show it."""

    address: str
    display_name: str
    time_zone: str
    is_room: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "address": self.address,
            "display_name": self.display_name,
            "time_zone": self.time_zone,
            "is_room": self.is_room,
        }
