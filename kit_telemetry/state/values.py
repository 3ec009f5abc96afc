"""State values: the rules for what a session state may hold, and private copies of it.

Keys are non-empty strings. Values are what JSON can hold: ``str``, ``int``, ``float``
(finite), ``bool``, ``None``, ``list`` and ``dict`` with string keys, nested up to
:data:`MAX_DEPTH` levels. Anything else is refused with a ``TypeError`` (or a ``ValueError``
for an empty key, a string holding surrogates or an int too large to write) that says
where in the value the bad part sits, so that a stored value always reads back exactly as
it was set, in this process and after a reload.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "InvalidValue",
    "check_key",
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


def check_key(key: object) -> None:
    """Refuse a key that is not a non-empty string.

    Raises:
        TypeError: ``key`` is not a string.
        ValueError: ``key`` is empty.
    """
    if not isinstance(key, str):
        raise TypeError(f"state key must be a str, got {type(key).__name__}: {key!r}")
    if not key:
        raise ValueError("state key must be a non-empty string")


def plain_key(key: object) -> str:
    """``key`` checked and as a plain ``str``, fit to be written as a JSON object key."""
    check_key(key)
    assert isinstance(key, str)
    try:
        return checked_str(str.__str__(key))
    except InvalidValue as exc:
        raise ValueError(f"state key {key!r}: {exc.message}") from None


def copy_value(value: Any) -> Any:
    """A deep copy of an already-validated JSON value (scalars are immutable)."""
    kind = type(value)
    if kind is dict:
        return {k: copy_value(v) for k, v in value.items()}
    if kind is list:
        return [copy_value(v) for v in value]
    return value


class InvalidValue(Exception):
    """Unwinds the walk in :func:`json_copy`, collecting where the bad part sits."""

    def __init__(self, error: type[Exception], message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.where: list[str] = []


def json_copy(value: object) -> Any:
    """Validate ``value`` as JSON data and return a private deep copy with plain types.

    Raises:
        TypeError: something in ``value`` is not a JSON value.
        ValueError: an int has too many digits to be written.
    """
    try:
        return walk(value, 0, set())
    except InvalidValue as exc:
        where = "".join(reversed(exc.where))
        at = f" at {where}" if where else ""
        raise exc.error(f"state value{at}: {exc.message}") from None


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
            raise InvalidValue(TypeError, f"nested more than {MAX_DEPTH} levels deep")
        marker = id(value)
        if marker in active:
            raise InvalidValue(TypeError, "contains itself (a circular reference)")
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
        TypeError,
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
                TypeError,
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
                ValueError, "string holds surrogate code points, which are not valid Unicode"
            ) from None
    return value


def _checked_int(value: int) -> int:
    if value.bit_length() > _BIG_INT_BITS:
        try:
            int.__repr__(value)
        except ValueError as exc:
            raise InvalidValue(ValueError, f"int is too large to write as JSON ({exc})") from None
    return value


def _checked_float(value: float) -> float:
    if not math.isfinite(value):
        raise InvalidValue(
            TypeError, f"float {value!r} is not a JSON value (JSON has no NaN or infinity)"
        )
    return value
