"""The drift repair card (issue 19): "Adele declined System design (Tue 15 Dec 16:00 your time)",
each repair one tap away (``Verb.APPLY_REPAIR``), then "Applied: …" or a clear error. Pure.

A repair is the Calendar Service's ``{"id", "kind": "replace"|"move"|"rebook"|"release", ...}``
(docs/watcher.md); ``replace`` shows ``in_name`` (a display name) when given, never an address.
An item the watcher already repaired itself (a pool's auto-repair: ``applied``) is shown as done:
"Adele declined System design; Bob replaces her (same time)", no buttons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cards.actions import CardAction, Verb, build_execute
from cards.elements import action_set, build_card, heading, note, plain
from cards.local_time import format_instant

__all__ = [
    "DriftView",
    "build_drift_applied",
    "build_drift_auto_applied",
    "build_drift_failed",
    "build_drift_repair",
    "drift_views",
    "headline",
    "repair_label",
]

_WHAT = {
    "declined": "declined",
    "moved": "moved",
    "deleted": "deleted",
    "conflict": "has a new conflict with",
}
MAX_REPAIRS = 5


@dataclass(frozen=True, slots=True)
class DriftView:
    """One drift item as the manager sees it. ``start`` is aware (UTC); ``zone`` is the manager's."""

    drift_id: str
    kind: str
    who: str
    title: str
    start: datetime
    zone: ZoneInfo
    repairs: tuple[Mapping[str, Any], ...]
    applied: Mapping[str, Any] | None = None  # the feed's ``applied``: done by the watcher itself


def _time(value: object, zone: ZoneInfo) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if instant.tzinfo is None:
        return None
    return format_instant(instant, zone)


def headline(view: DriftView) -> str:
    """ "Adele declined System design (Tue 15 Dec 16:00 your time)"; without a name (the answer to
    a tap knows only an address, never shown) "An interviewer declined ..." / "... was deleted"; a
    UTC time (the manager's zone unknown) is not called theirs: "(Tue 15 Dec, 16:00 UTC)"."""
    when = format_instant(view.start, view.zone)
    if view.zone.key != "UTC":
        when += " your time"
    if not view.who:
        if view.kind in ("moved", "deleted"):
            booked = "booked for " if view.kind == "moved" else ""
            return f"{view.title} was {view.kind} ({booked}{when})"
        what = _WHAT.get(view.kind, "changed")
        return f"An interviewer {what} {view.title} ({when})"
    if view.kind == "moved":
        return f"{view.who} moved {view.title} (booked for {when})"
    what = _WHAT.get(view.kind, "changed")
    return f"{view.who} {what} {view.title} ({when})"


def repair_label(repair: Mapping[str, Any], zone: ZoneInfo) -> str | None:
    """The button title of one repair; ``None`` when the repair is not one this card knows."""
    kind, rid = repair.get("kind"), repair.get("id")
    if kind == "replace":
        name = repair.get("in_name") or repair.get("in")
        return f"Replace with {name} at the same time" if isinstance(name, str) and name else None
    if kind == "move":
        when = _time(repair.get("start"), zone)
        if when is None:
            return None
        return f"Restore {when}" if rid == "restore" else f"Move to {when}"
    if kind == "release":  # a loop's session: the service cancels the loop whole
        return (
            "Cancel the whole loop (every session)"
            if repair.get("scope") == "loop"
            else "Release the booking"
        )
    if kind == "rebook":
        return "Book it again at the same time"
    return None


def build_drift_repair(view: DriftView, *, notice: str | None = None) -> dict[str, object]:
    """The card with one button per repair (at most ``MAX_REPAIRS``); ``notice`` above them
    (e.g. "That time was just taken: here are the current repairs."). An item the watcher already
    repaired (``view.applied``) gets `build_drift_auto_applied` instead."""
    if view.applied is not None:
        return build_drift_auto_applied(view)
    text = headline(view)
    body: list[dict[str, object]] = [heading("An interview needs a fix"), plain(text)]
    if notice:
        body.append(note(notice, color="attention"))
    buttons: list[dict[str, object]] = []
    for repair in view.repairs[:MAX_REPAIRS]:
        label = repair_label(repair, view.zone)
        rid = repair.get("id")
        if label is None or not isinstance(rid, str):
            continue
        action = CardAction(Verb.APPLY_REPAIR, f"drift-{view.drift_id}", drift_id=view.drift_id, repair=rid)
        buttons.append(build_execute(label, action, style="positive" if not buttons else None))
    if buttons:
        body.append(note("One tap applies it: one Outlook update.", subtle=True))
        body.append(action_set(buttons))
    else:
        body.append(note("No repair is available now: please fix it in Outlook.", subtle=True))
    return build_card(body, fallback_text=text)


def build_drift_applied(view: DriftView, repair: Mapping[str, Any]) -> dict[str, object]:
    """The final card: "Applied: <repair>"."""
    label = repair_label(repair, view.zone) or "the repair"
    body = [heading("Fixed"), plain(headline(view), subtle=True), plain(f"Applied: {label}.")]
    return build_card(body, fallback_text=f"Applied: {label}.")


def build_drift_auto_applied(view: DriftView) -> dict[str, object]:
    """ "Adele declined System design; Bob replaces her (same time)": done by the watcher (the
    pool's auto-repair), nothing to tap."""
    name = str((view.applied or {}).get("in_name") or "Someone from the pool")
    text = f"{headline(view)}; {name} replaces them (same time)."
    body = [
        heading("Fixed automatically"),
        plain(text),
        note("The interviewer pool repairs declines itself; the invite was updated.", subtle=True),
    ]
    return build_card(body, fallback_text=text)


def build_drift_failed(view: DriftView | None, message: str) -> dict[str, object]:
    """The card when the repair could not be applied (no buttons: nothing left to tap)."""
    body = [heading("Not applied")]
    if view is not None:
        body.append(plain(headline(view), subtle=True))
    body.append(plain(message))
    return build_card(body, fallback_text=message)


def drift_views(items: Sequence[Mapping[str, Any]], zone: ZoneInfo) -> list[DriftView]:
    """Feed or list items (``id``, ``kind``, ``who``, ``title``, ``start``, ``repairs``) as views;
    items without a readable start are skipped."""
    out = []
    for item in items:
        start = item.get("start")
        try:
            instant = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        except ValueError:
            continue
        if instant.tzinfo is None:
            continue
        repairs = tuple(r for r in item.get("repairs", ()) if isinstance(r, Mapping))
        out.append(
            DriftView(
                str(item.get("id", "")),
                str(item.get("kind", "")),
                str(item.get("who") or ""),
                str(item.get("title") or "the interview"),
                instant,
                zone,
                repairs,
                item["applied"] if isinstance(item.get("applied"), Mapping) else None,
            )
        )
    return out
