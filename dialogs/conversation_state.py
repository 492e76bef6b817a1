"""``ConversationState`` whose change check is the JSON text the storage stores, not jsonpickle.

botbuilder's ``BotState`` decides "changed?" by comparing ``str(jsonpickle.Pickler().flatten(state))``
taken when the state is loaded with the same taken at the end of the turn, and takes it a third time
after the write: three walks over the whole dialog stack per turn (the largest single cost of a
scheduling turn). ``SqlStorage`` already turns the state into canonical JSON text to store it
(``encode_item``: the same allow-list, ``e_tag`` left out), so here that text *is* the hash:

- on load from ``SqlStorage`` the stored text itself is the hash (no walk at all);
- at the end of the turn the state is encoded once; equal text → nothing is written, otherwise the
  very same text is written (``EncodedItem``), not serialised again.

"Changed" therefore means exactly "the stored JSON would differ" (the ``e_tag`` is not part of it;
the storage sets that). Loading takes the stored text as is; if some stored value did not encode
back to the very same text, the only effect would be one unneeded write (the tests check that dialog
stacks with prompts and their activities do). Semantics kept: eTag optimistic
concurrency (the item still carries the eTag it was read with; ``SqlStorage`` checks it), a write only
when something changed, ``force=True``. One botbuilder quirk is not kept: ``BotState.load`` reads the
storage again whenever the cached state is still empty, i.e. twice on a conversation's first turn; here
a state read this turn is not read again (a racing first turn then gets the create-only eTag conflict
instead of silently taking over the other turn's state).

Other storages (``MemoryStorage`` in tests) get the same text, computed from the state at load; state
that the allow-list refuses falls back to botbuilder's jsonpickle hash (``SqlStorage`` then refuses to
write it, as before).
"""

from __future__ import annotations

from typing import Any, Final

from botbuilder.core import ConversationState, TurnContext
from botbuilder.core.bot_state import CachedBotState
from jsonpickle.pickler import Pickler  # type: ignore[import-untyped]

from dialogs.sql_storage import EncodedItem, SqlStorage, encode_item

_PICKLED: Final = "jsonpickle:"  # never the start of encode_item's text, which is always "{...}"


class JsonCachedState(CachedBotState):
    """One turn's cached state; ``hash`` is the state's JSON text as ``encode_item`` makes it."""

    def __init__(self, state: dict[str, Any] | None = None, stored: str | None = None) -> None:
        # Not super().__init__: that would walk the state with jsonpickle once more.
        self.state: dict[str, Any] = state if state is not None else {}
        self.hash: str = stored if stored is not None else self.compute_hash(self.state)

    def compute_hash(self, obj: object) -> str:
        """``encode_item(obj)``; jsonpickle's text (prefixed) for state the allow-list refuses."""
        try:
            return encode_item(obj)
        except TypeError:
            return _PICKLED + str(Pickler().flatten(obj))


class JsonConversationState(ConversationState):
    """Drop-in ``ConversationState`` (same storage keys, same stored JSON) with a cheap change check."""

    async def load(self, turn_context: TurnContext, force: bool = False) -> None:
        """Read the state once per turn (``force`` reads again) and cache it in the turn."""
        cached = self.get_cached_state(turn_context)
        if cached is not None and not isinstance(cached, JsonCachedState):
            await super().load(turn_context, force)  # clear_state's placeholder: botbuilder's path
            return
        if cached is not None and not force:
            return
        key = self.get_storage_key(turn_context)
        if isinstance(self._storage, SqlStorage):
            item, stored = (await self._storage.read_with_data([key])).get(key, (None, None))
            turn_context.turn_state[self._context_service_key] = JsonCachedState(item, stored)
            return
        found = await self._storage.read([key])
        turn_context.turn_state[self._context_service_key] = JsonCachedState(found.get(key))

    async def save_changes(self, turn_context: TurnContext, force: bool = False) -> None:
        """Write the state when its JSON text differs from the loaded one (or when ``force``)."""
        cached = self.get_cached_state(turn_context)
        if not isinstance(cached, JsonCachedState):
            await super().save_changes(turn_context, force)
            return
        text = cached.compute_hash(cached.state)
        if text == cached.hash and not force:
            return
        key = self.get_storage_key(turn_context)
        sql = isinstance(self._storage, SqlStorage)
        encoded = sql and not text.startswith(_PICKLED)
        await self._storage.write({key: EncodedItem(cached.state, text) if encoded else cached.state})
        # SqlStorage only sets the item's e_tag, which the text leaves out; other storages may
        # change more, so their state is encoded again (as botbuilder does after a write).
        cached.hash = text if encoded else cached.compute_hash(cached.state)
