"""JSON values: what a session state may hold, and private copies of it.

Keys are non-empty strings of valid Unicode. Values are what JSON can hold: ``str``,
``int``, ``float`` (finite), ``bool``, ``None``, ``list`` and ``dict`` with string keys,
nested up to :data:`MAX_DEPTH` levels. Anything else is refused with an
:class:`InvalidValue` that says where in the value the bad part sits, so that a stored value
always reads back exactly as it was set, in this process and after a reload. What a refusal
does (raise or drop the write) is the validation table's rule (``state.key``,
``state.value`` in :mod:`kit_telemetry.validation`), not this module's.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "InvalidValue",
    "checked_str",
    "copy_value",
    "json_copy",
    "plain_key",
    "walk",
]

MAX_DEPTH = 200
"""How deeply lists and dicts may nest.

Deep enough for any realistic state, shallow enough that encoding and loading never come
near the interpreter's recursion limit (which would make a stored value unwritable).
"""

# Python refuses to turn ints of more than ~4300 digits into text; above this many bits we
# check, so that such a value is refused at set() instead of poisoning every later write.
_BIG_INT_BITS = 14_000


def plain_key(key: object) -> str | None:
    """``key`` as a plain ``str`` fit to be a JSON object key, or None if it is no key.

    A key is a non-empty string of valid Unicode; a ``str`` subclass becomes the plain value.
    """
    if type(key) is not str:
        if not isinstance(key, str):
            return None
        key = str.__str__(key)
    if not key:
        return None
    try:
        return checked_str(key)
    except InvalidValue:
        return None


def copy_value(value: Any) -> Any:
    """A deep copy of an already-validated JSON value (scalars are immutable)."""
    kind = type(value)
    if kind is dict:
        return {k: copy_value(v) for k, v in value.items()}
    if kind is list:
        return [copy_value(v) for v in value]
    return value


class InvalidValue(Exception):
    """A value is no JSON value; unwinds the walk, collecting where the bad part sits.

    Attributes:
        message: what is wrong with the bad part.
        where: the path to the bad part, innermost first (``["[0]", "['a']"]``).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.where: list[str] = []

    @property
    def detail(self) -> str:
        """Where the bad part sits and what is wrong with it: ``at ['a'][0]: ...``."""
        where = "".join(reversed(self.where))
        return f"at {where}: {self.message}" if where else self.message


def json_copy(value: object) -> Any:
    """Validate ``value`` as JSON data and return a private deep copy with plain types.

    Raises:
        InvalidValue: something in ``value`` is not a JSON value, or an int has too many
            digits to be written.
    """
    return walk(value, 0, set())


def walk(value: object, depth: int, active: set[int]) -> Any:
    """Check ``value`` (nested ``depth`` levels deep) and copy it with plain types.

    Args:
        value: the value to check.
        depth: how deeply ``value`` is nested; 0 at the top.
        active: ids of the lists and dicts being walked, to find circular references.

    Raises:
        InvalidValue: something in ``value`` is refused.
    """
    kind = type(value)
    if value is None or kind is bool:
        return value
    if kind is str:
        return checked_str(value)  # type: ignore[arg-type]
    if kind is int:
        return _checked_int(value)  # type: ignore[arg-type]
    if kind is float:
        return _checked_float(value)  # type: ignore[arg-type]
    if kind is list or kind is dict:
        if depth >= MAX_DEPTH:
            raise InvalidValue(f"nested more than {MAX_DEPTH} levels deep")
        marker = id(value)
        if marker in active:
            raise InvalidValue("contains itself (a circular reference)")
        active.add(marker)
        try:
            if kind is list:
                return _walk_list(value, depth, active)  # type: ignore[arg-type]
            return _walk_dict(value, depth, active)  # type: ignore[arg-type]
        finally:
            active.discard(marker)
    # Subclasses of the JSON scalars (enums, for instance) are kept as the plain value,
    # which is what JSON would write and what a reload would give back.
    if isinstance(value, str):
        return checked_str(str.__str__(value))
    if isinstance(value, int):
        return _checked_int(int.__int__(value))
    if isinstance(value, float):
        return _checked_float(float.__float__(value))
    hint = "; use a list" if isinstance(value, (tuple, set, frozenset)) else ""
    raise InvalidValue(
        f"{kind.__name__} is not a JSON value (allowed: str, int, float, bool, None, "
        f"list, dict with str keys){hint}",
    )


def _walk_list(value: list[object], depth: int, active: set[int]) -> list[Any]:
    copied: list[Any] = []
    for index, item in enumerate(value):
        try:
            copied.append(walk(item, depth + 1, active))
        except InvalidValue as exc:
            exc.where.append(f"[{index}]")
            raise
    return copied


def _walk_dict(value: dict[object, object], depth: int, active: set[int]) -> dict[str, Any]:
    copied: dict[str, Any] = {}
    for raw_key, item in value.items():
        if type(raw_key) is str:
            key = checked_str(raw_key)
        elif isinstance(raw_key, str):
            key = checked_str(str.__str__(raw_key))
        else:
            raise InvalidValue(
                f"dict key {raw_key!r} is a {type(raw_key).__name__}; JSON object keys are strings",
            )
        try:
            copied[key] = walk(item, depth + 1, active)
        except InvalidValue as exc:
            exc.where.append(f"[{key!r}]")
            raise
    return copied


def checked_str(value: str) -> str:
    """``value``, if it is valid Unicode.

    Raises:
        InvalidValue: ``value`` holds surrogate code points.
    """
    # Surrogates are not text: JSON can only spell them as escapes, and a pair of them
    # would read back as one different character, so such strings cannot round-trip.
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidValue(
                "string holds surrogate code points, which are not valid Unicode"
            ) from None
    return value


def _checked_int(value: int) -> int:
    if value.bit_length() > _BIG_INT_BITS:
        try:
            int.__repr__(value)
        except ValueError as exc:
            raise InvalidValue(f"int is too large to write as JSON ({exc})") from None
    return value


def _checked_float(value: float) -> float:
    if not math.isfinite(value):
        raise InvalidValue(f"float {value!r} is not a JSON value (JSON has no NaN or infinity)")
    return value
