"""Booked interview loops on "My interviews": one entry per loop, its detail card (every session,
each movable), "Cancel the whole loop?", the move options (whole loop or one session) and the
result cards.

Times are shown in the manager's zone and the candidate's (``format_slot``); people by display
name, never by address. Every button is a loop verb carrying the loop's opaque id (and a session
index or a move option): :mod:`dialogs.loop_manage` answers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cards.actions import CardAction, Verb, build_execute
from cards.elements import action_set, build_card, field_rows, heading, join_names, note, plain
from cards.local_time import format_slot
from cards.loop_actions import LoopAction, LoopVerb, build_loop_execute
from cards.views import ZonePair

__all__ = [
    "ManagedLoop",
    "ManagedSession",
    "MoveOption",
    "build_loop_cancel_question",
    "build_loop_cancel_session",
    "build_loop_cancelled",
    "build_loop_detail",
    "build_loop_move_options",
    "build_loop_moved",
    "loop_entry",
]


@dataclass(frozen=True, slots=True)
class ManagedSession:
    """One session of a booked loop as a card shows it (``people`` and ``room``: display names)."""

    index: int
    title: str
    start: datetime
    end: datetime
    people: tuple[str, ...] = ()
    room: str | None = None


@dataclass(frozen=True, slots=True)
class ManagedLoop:
    """A booked loop as a card shows it; ``interviewers``: how many distinct people are on it."""

    loop_id: str
    title: str
    candidate_name: str
    sessions: tuple[ManagedSession, ...]
    zones: ZonePair
    interviewers: int

    @property
    def start(self) -> datetime:
        """The first session's start."""
        return min(s.start for s in self.sessions)

    @property
    def end(self) -> datetime:
        """The last session's end."""
        return max(s.end for s in self.sessions)

    def session(self, index: int) -> ManagedSession | None:
        """The session with ``index``, if the loop has it."""
        return next((s for s in self.sessions if s.index == index), None)


@dataclass(frozen=True, slots=True)
class MoveOption:
    """New times for the loop (or one session): ``option_id`` is what the pick button carries."""

    option_id: str
    sessions: tuple[ManagedSession, ...]


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _act(title: str, action: LoopAction, style: str | None = None) -> dict[str, object]:
    return build_loop_execute(title, action, style=style)


def _when(loop: ManagedLoop) -> str:
    return format_slot(loop.start, loop.end, loop.zones)


def _summary(loop: ManagedLoop) -> list[dict[str, object]]:
    return [
        plain(f"Interview loop: {loop.candidate_name}", weight="Bolder"),
        field_rows(
            [
                ("Loop", loop.title),
                ("When", _when(loop)),
                ("Sessions", _count(len(loop.sessions), "session")),
            ]
        ),
    ]


def _session_rows(session: ManagedSession, zones: ZonePair) -> dict[str, object]:
    rows = [(session.title, format_slot(session.start, session.end, zones))]
    if session.people:
        rows.append(("With", join_names(list(session.people))))
    if session.room:
        rows.append(("Room", session.room))
    return field_rows(rows)


def loop_entry(flow: str, loop: ManagedLoop) -> dict[str, object]:
    """The loop's entry on "My interviews": what, when (both zones), how many sessions, and
    Sessions / Move loop / Cancel loop."""
    lid = loop.loop_id
    return {
        "type": "Container",
        "separator": True,
        "items": [
            *_summary(loop),
            action_set(
                [
                    _act("Sessions", LoopAction(LoopVerb.MANAGE, flow, loop_id=lid)),
                    _act("Move loop", LoopAction(LoopVerb.MOVE, flow, loop_id=lid)),
                    _act("Cancel loop", LoopAction(LoopVerb.CANCEL, flow, loop_id=lid), "destructive"),
                ]
            ),
        ],
    }


def _back(flow: str) -> dict[str, object]:
    return build_execute("My interviews", CardAction(Verb.MY_INTERVIEWS, flow))


def build_loop_detail(flow: str, loop: ManagedLoop) -> dict[str, object]:
    """Every session of the loop with Move session / Cancel session, then the loop's own buttons."""
    lid = loop.loop_id
    body: list[dict[str, object]] = [heading("Interview loop"), *_summary(loop)]
    for s in sorted(loop.sessions, key=lambda s: s.start):
        body.append(
            {
                "type": "Container",
                "separator": True,
                "items": [
                    _session_rows(s, loop.zones),
                    action_set(
                        [
                            _act(
                                f"Move {s.title}",
                                LoopAction(LoopVerb.MOVE_SESSION, flow, loop_id=lid, session=s.index),
                            ),
                            _act(
                                f"Cancel {s.title}",
                                LoopAction(LoopVerb.CANCEL_SESSION, flow, loop_id=lid, session=s.index),
                            ),
                        ]
                    ),
                ],
            }
        )
    body.append(
        action_set(
            [
                _act("Move loop", LoopAction(LoopVerb.MOVE, flow, loop_id=lid)),
                _act("Cancel loop", LoopAction(LoopVerb.CANCEL, flow, loop_id=lid), "destructive"),
                _back(flow),
            ]
        )
    )
    return build_card(body, fallback_text="Interview loop.")


def build_loop_cancel_question(flow: str, loop: ManagedLoop) -> dict[str, object]:
    """ "Cancel the whole loop?": who is told, then "Yes, cancel the loop" and "Keep it"."""
    lid = loop.loop_id
    body = [
        heading("Cancel the whole loop?"),
        *_summary(loop),
        note(
            f"The candidate and {_count(loop.interviewers, 'interviewer')} get a cancellation. "
            "This cannot be undone.",
        ),
        action_set(
            [
                _act(
                    "Yes, cancel the loop",
                    LoopAction(LoopVerb.CANCEL_CONFIRMED, flow, loop_id=lid),
                    "destructive",
                ),
                _act("Keep it", LoopAction(LoopVerb.MANAGE, flow, loop_id=lid)),
            ]
        ),
    ]
    return build_card(body, fallback_text="Cancel the whole loop?")


def build_loop_cancel_session(flow: str, loop: ManagedLoop, session: ManagedSession) -> dict[str, object]:
    """A loop is cancelled whole (never a partial loop): say so, offer moving the session or
    cancelling the whole loop."""
    lid = loop.loop_id
    body = [
        heading(f"Cancel {session.title}?"),
        _session_rows(session, loop.zones),
        note(
            "A loop is cancelled as a whole, so the candidate never gets half a loop. "
            "Move this session to another time, or cancel the whole loop."
        ),
        action_set(
            [
                _act(
                    f"Move {session.title}",
                    LoopAction(LoopVerb.MOVE_SESSION, flow, loop_id=lid, session=session.index),
                ),
                _act("Cancel loop", LoopAction(LoopVerb.CANCEL, flow, loop_id=lid), "destructive"),
                _act("Keep it", LoopAction(LoopVerb.MANAGE, flow, loop_id=lid)),
            ]
        ),
    ]
    return build_card(body, fallback_text=f"Cancel {session.title}?")


def build_loop_cancelled(flow: str, loop: ManagedLoop, *, already: bool = False) -> dict[str, object]:
    """The loop was cancelled (``already``: by an earlier press; nothing was sent again)."""
    text = (
        "Already done: this loop was cancelled before. Nobody was told twice."
        if already
        else "Every session was cancelled in Outlook; the candidate and the interviewers were told."
    )
    body = [
        heading("Interview loop cancelled"),
        *_summary(loop),
        note(text, subtle=True),
        action_set([_back(flow)]),
    ]
    return build_card(body, fallback_text="Interview loop cancelled.")


def build_loop_move_options(
    flow: str,
    loop: ManagedLoop,
    options: Sequence[MoveOption],
    *,
    session: ManagedSession | None = None,
    problem: str | None = None,
) -> dict[str, object]:
    """New times for the whole loop (``session`` None) or one session, each with a pick button."""
    lid = loop.loop_id
    title = f"Move {session.title}" if session else "Move the loop"
    now = format_slot(session.start, session.end, loop.zones) if session else _when(loop)
    body: list[dict[str, object]] = [
        heading(title),
        plain(f"Interview loop: {loop.candidate_name}", weight="Bolder"),
        field_rows([("Now", now)]),
    ]
    if problem:
        body.append(note(problem, color="Warning"))
    if not options:
        body.append(
            note(
                "No other time fits everyone in the next working days."
                + (" Try moving the whole loop." if session else "")
            )
        )
    for n, option in enumerate(options, 1):
        if session is None:
            pick = LoopAction(LoopVerb.MOVE_PICK, flow, loop_id=lid, option_id=option.option_id)
        else:
            pick = LoopAction(
                LoopVerb.MOVE_SESSION_PICK,
                flow,
                loop_id=lid,
                option_id=option.option_id,
                session=session.index,
            )
        rows = [(s.title, format_slot(s.start, s.end, loop.zones)) for s in option.sessions]
        body.append(
            {
                "type": "Container",
                "separator": True,
                "items": [
                    plain(f"Option {n}", weight="Bolder"),
                    field_rows(rows),
                    action_set([_act(f"Move to option {n}", pick, "positive")]),
                ],
            }
        )
    back = [_act("Back", LoopAction(LoopVerb.MANAGE, flow, loop_id=lid))]
    if session is not None:
        back.insert(0, _act("Move loop", LoopAction(LoopVerb.MOVE, flow, loop_id=lid)))
    body.append(action_set(back))
    return build_card(body, fallback_text=title + ".")


def build_loop_moved(flow: str, loop: ManagedLoop, *, already: bool = False) -> dict[str, object]:
    """The loop after a move (``already``: an earlier press had moved it there)."""
    text = (
        "Already done: the loop is at these times. Nothing was changed again."
        if already
        else "Outlook was updated; everyone on a moved session got the new time."
    )
    body: list[dict[str, object]] = [heading("Interview loop moved"), *_summary(loop)]
    body += [_session_rows(s, loop.zones) for s in sorted(loop.sessions, key=lambda s: s.start)]
    body += [
        note(text, subtle=True),
        action_set([_act("Sessions", LoopAction(LoopVerb.MANAGE, flow, loop_id=loop.loop_id)), _back(flow)]),
    ]
    return build_card(body, fallback_text="Interview loop moved.")
