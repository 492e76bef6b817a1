"""A plain-JSON fast path for msrest's generic-object serialiser (Adaptive Card content).

Every card OpenSlot sends is an ``Attachment`` whose ``content`` msrest types as ``object``; the
Bot Connector client serialises it with ``Serializer.serialize_object``, which visits every node
through a type switch, an enum probe (``serialize_unicode`` tries ``.value``) and ``eval`` of the
type name for each number: ~1 ms of CPU for an 8-slot picker (6 KB), about a tenth of a
scheduling turn. For a tree of exact ``dict``/``list``/``str``/``int``/``float``/``bool``/``None``
with string keys that walk returns an equal copy, so ``plain_json_copy`` makes that copy directly.
Anything else (a subclass such as a ``StrEnum``, a datetime, a model, a non-string key) or a call
with custom/XML serialisers goes to msrest's own method for the whole object, so the output is
always exactly msrest's.
"""

from __future__ import annotations

from typing import Any, Final

from msrest.serialization import Serializer

MSREST_SERIALIZE_OBJECT: Final = Serializer.serialize_object  # msrest's own, for the fallback
_LEAVES: Final = frozenset({str, int, float, bool, type(None)})


class _NotPlainError(Exception):
    """A node ``plain_json_copy`` leaves to msrest."""


def plain_json_copy(value: object) -> Any:
    """A copy of a plain JSON tree (new dicts and lists, the same leaves).

    Raises:
        _NotPlainError: at the first node that is not an exact plain JSON type.
    """
    kind = type(value)
    if kind in _LEAVES:
        return value
    if kind is dict:
        copy: dict[str, Any] = {}
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                raise _NotPlainError
            copy[key] = plain_json_copy(item)
        return copy
    if kind is list:
        return [plain_json_copy(item) for item in value]  # type: ignore[attr-defined]
    raise _NotPlainError


def _serialize_object(self: Serializer, attr: object, **kwargs: Any) -> Any:
    if type(attr) in (dict, list) and not kwargs.get("basic_types_serializers") and not kwargs.get("is_xml"):
        try:
            return plain_json_copy(attr)
        except _NotPlainError:
            pass
    return MSREST_SERIALIZE_OBJECT(self, attr, **kwargs)


def install() -> None:
    """Use the fast path in every ``Serializer`` built from now on (they bind the method at
    construction). Idempotent."""
    Serializer.serialize_object = _serialize_object  # type: ignore[method-assign]
