"""Reading SDK keyword arguments: the counts and names a request carries, or None."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def count_arg(kwargs: Mapping[str, Any], *names: str) -> int | None:
    """The first of ``names`` given as a non-negative int (SDK "not given" markers are None)."""
    for name in names:
        value = kwargs.get(name)
        if type(value) is int and value >= 0:
            return value
    return None


def text_arg(kwargs: Mapping[str, Any], name: str, default: str = "unknown") -> str:
    """``kwargs[name]`` when it is a non-empty string, else ``default``."""
    value = kwargs.get(name)
    return value if isinstance(value, str) and value else default


def field(obj: object, name: str) -> Any:
    """``obj[name]`` or ``obj.name``, None when absent."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)
