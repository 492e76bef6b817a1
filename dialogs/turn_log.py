"""What bot.log says about a failed turn: where it failed and on what kind of activity.

The record carries the exception's type, the chain of its causes' types, every stack frame (file,
line, function, source line) and the activity's shape (type, invoke name, card verb, channel,
conversation kind, a short hash of the conversation id). It never carries exception messages,
activity text, card data other than the verb, user names, ids or tokens: a message can quote
anything (msrest's SerializationError quotes the whole object it failed on).
"""

from __future__ import annotations

import hashlib
import logging
import re
import traceback
from pathlib import Path

from botbuilder.core import TurnContext

_ROOT = Path(__file__).resolve().parents[1]
_MAX_CHAIN = 5
# What of the activity's own text may be logged: shapes that cannot hold an address, a JWT or a
# link (no "@", no "."), else "other".
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")
_INVOKE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}(/[A-Za-z][A-Za-z0-9_-]{0,39}){0,3}")
_CONVERSATION_TYPES = frozenset({"personal", "groupChat", "channel"})


def _safe(value: object, shape: re.Pattern[str]) -> str:
    text = str(value or "")
    return text if shape.fullmatch(text) else "other"


def _where(filename: str) -> str:
    path = Path(filename)
    try:
        return str(path.resolve().relative_to(_ROOT))
    except ValueError:
        parts = path.parts
        return "/".join(parts[parts.index("site-packages") + 1 :]) if "site-packages" in parts else path.name


def _frames(error: BaseException) -> list[str]:
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(current))
        if lines:
            lines.append(f"  caused by {type(current).__name__}:")
        for frame in traceback.extract_tb(current.__traceback__):
            lines.append(
                f"  {_where(frame.filename)}:{frame.lineno} in {frame.name}: "
                f"{(frame.line or '').strip()[:160]}"
            )
        current = current.__cause__ or current.__context__
    return lines


def _shape(context: TurnContext) -> str:
    activity = context.activity
    parts = [f"activity={_safe(activity.type, _WORD)}"]
    if activity.name:  # the sender's text: only an invoke name's shape (adaptiveCard/action)
        parts.append(f"name={_safe(activity.name, _INVOKE_NAME)}")
    value = activity.value
    if isinstance(value, dict):
        action = value.get("action")
        data = action.get("data") if isinstance(action, dict) else value
        verb = data.get("verb") if isinstance(data, dict) else None
        if isinstance(verb, str) and verb.isidentifier() and len(verb) <= 40:
            parts.append(f"verb={verb}")
    parts.append(f"channel={_safe(activity.channel_id, _WORD)}")
    conversation = activity.conversation
    if conversation is not None:
        kind = conversation.conversation_type or "personal"
        parts.append(f"conversation_type={kind if kind in _CONVERSATION_TYPES else 'other'}")
        if conversation.id:
            digest = hashlib.sha256(conversation.id.encode()).hexdigest()[:12]
            parts.append(f"conversation={digest}")
    return " ".join(parts)


def log_turn_failure(logger: logging.Logger, context: TurnContext, error: BaseException) -> None:
    """Log ``error`` (type, causes, frames) with the activity's shape; no message, no PII."""
    logger.error("turn failed: %s (%s)\n%s", type(error).__name__, _shape(context), "\n".join(_frames(error)))
