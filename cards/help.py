"""Help card: what the bot does and what it can see."""

from __future__ import annotations

from cards.actions import CardAction, Verb, build_execute
from cards.elements import action_set, build_card, heading, note
from cards.loop_actions import LoopAction, LoopVerb, build_loop_execute
from cards.pool_actions import PoolAction, PoolVerb, build_pool_execute

__all__ = ["build_help"]

_STEPS = (
    "1. Choose **Schedule an interview** and tell me the candidate, the interviewers and the "
    "length.\n"
    "2. Pick one of the open times. Each is shown in your zone and the candidate's.\n"
    "3. Confirm. The invite goes out from your calendar with a Teams meeting link."
)


def build_help(flow: str) -> dict[str, object]:
    """Return the help card."""
    body = [
        heading("How OpenSlot works"),
        note(_STEPS),
        note(
            "No time fits? I tell you whose calendar is blocking and offer to look further "
            "ahead, try a shorter slot, or send the candidate a link that shows open times "
            "only."
        ),
        note(
            'Interview loops: choose **Schedule a loop** (or type "schedule a loop", or '
            '"loop Backend onsite for Dana Scully (dana@example.com) next week"). Use a saved '
            "loop or build one (sessions, people, order, breaks, days); I find whole-loop options, "
            "and book every session or none, with one Teams meeting for the loop."
        ),
        note(
            'Interviewer pools: type "my load" to see how many interviews you have this week and '
            'next against your caps (and your training progress). Pool owners type "pools" or '
            "\"pool Backend\" for the pool card: each member's load and caps, trainees' progress, "
            "and buttons to change a member's caps or add and remove members."
        ),
        note("Type **cancel** at any time to stop.", subtle=True),
        action_set(
            [
                build_execute("Schedule an interview", CardAction(Verb.SCHEDULE, flow), style="positive"),
                build_execute("My interviews", CardAction(Verb.MY_INTERVIEWS, flow)),
                build_loop_execute("Schedule a loop", LoopAction(LoopVerb.NEW, flow)),
                build_pool_execute("My load", PoolAction(PoolVerb.MY_LOAD, flow)),
            ]
        ),
    ]
    return build_card(body, fallback_text="OpenSlot help.")
