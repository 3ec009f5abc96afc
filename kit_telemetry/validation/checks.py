"""The checks of the values the agent's loop gives (sessions, runs, calls, tools, state).

Each ``check_*`` function takes the error policy, the field and the value, and follows the
field's row of :data:`~kit_telemetry.validation.table.FIELDS`: a good value comes back
(text cleaned); a bad one is :meth:`ErrorPolicy.bad_input` - a ``UsageError`` naming the
field, the value and what is allowed when strict, otherwise logged once per field and
counted - and its stand-in comes back, so the agent's call is still recorded.

Content (prompts, tool arguments and results, responses) is cleaned and bounded where it
goes onto a span (``Runtime.clip``), so extension handlers see what the agent gave.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeGuard

from .._errors import ErrorPolicy
from ..json_values import InvalidValue, json_copy, plain_key
from ..text import MAX_TEXT_CHARS, clean_text, edge_path, edge_text
from ..tokens import TOKEN_KINDS, TokenUsage
from .table import FIELDS, INT64_MAX, Kind, Rule, shown


def is_count(value: object) -> TypeGuard[int]:
    """``value`` is a count: an ``int`` (not ``bool``) in ``[0, INT64_MAX]``."""
    return type(value) is int and 0 <= value <= INT64_MAX


def check_count(errors: ErrorPolicy, field: str, value: object) -> int | None:
    """A count, or None when not given (optional) or bad (reported).

    Raises:
        UsageError: strict, and ``value`` is no count.
    """
    if type(value) is int and 0 <= value <= INT64_MAX:
        return value
    rule = _rule(field, "count")
    if value is None and rule.optional:
        return None
    _refuse(errors, field, value, rule)
    return None


def check_amount(errors: ErrorPolicy, field: str, value: object) -> float | None:
    """A finite non-negative amount as a float, or None when not given or bad (reported).

    Raises:
        UsageError: strict, and ``value`` is no such number.
    """
    if type(value) is float and 0.0 <= value < math.inf:
        return value
    rule = _rule(field, "amount")
    if value is None and rule.optional:
        return None
    if isinstance(value, float) and 0 <= value < math.inf:
        return float(value)
    if type(value) is int and value >= 0:
        try:
            return float(value)
        except OverflowError:  # more than any float holds
            pass
    _refuse(errors, field, value, rule)
    return None


def check_text(errors: ErrorPolicy, field: str, value: object) -> str | None:
    """Text cleaned at the edge; a bad value becomes its stand-in (reported).

    A required field that is not text or is empty becomes ``str(value)`` when that is
    non-empty, else the rule's default; an optional one that is not text becomes its
    ``str()``, or None when that is empty.

    Returns:
        The text, or None for an optional field that was not given.

    Raises:
        UsageError: strict, and ``value`` is not allowed or needed cleaning.
    """
    if (
        type(value) is str
        and 0 < len(value) <= MAX_TEXT_CHARS
        and value.isascii()
        and "\x00" not in value
    ):
        return value  # the common case
    rule = _rule(field, "text")
    if value is None and rule.optional:
        return None
    if isinstance(value, str) and (value or rule.empty_ok):
        return edge_text(errors, field, str(value))
    _refuse(errors, field, value, rule)
    given = "" if value is None else _str_or_empty(value)
    if not given:
        return None if rule.optional else rule.default
    return clean_text(given)


def check_required_text(errors: ErrorPolicy, field: str, value: object) -> str:
    """:func:`check_text` of a required field (never None)."""
    text = check_text(errors, field, value)
    return text if text is not None else _rule(field, "text").default


def check_port(errors: ErrorPolicy, field: str, value: object) -> int | None:
    """A TCP port, or None when not given or bad (reported).

    Raises:
        UsageError: strict, and ``value`` is not a port.
    """
    if value is None or (type(value) is int and 0 < value <= 65535):
        return value
    _refuse(errors, field, value, _rule(field, "port"))
    return None


def check_flag(errors: ErrorPolicy, field: str, value: object) -> bool:
    """A bool; anything else is reported and counts by its truth (False if it has none).

    Raises:
        UsageError: strict, and ``value`` is not a bool.
    """
    if value is True or value is False:
        return value
    _refuse(errors, field, value, _rule(field, "flag"))
    try:
        return bool(value)
    except Exception:  # an object whose truth is an error (a NumPy array) is no flag
        return False


def check_attributes(errors: ErrorPolicy, field: str, value: object) -> dict[str, str]:
    """A copy of a mapping of text to text; bad entries are left out (reported once).

    Raises:
        UsageError: strict, and ``value`` is not such a mapping.
    """
    rule = _rule(field, "mapping")
    if value is None and rule.optional:
        return {}
    if not isinstance(value, Mapping):
        _refuse(errors, field, value, rule)
        return {}
    kept: dict[str, str] = {}
    bad = False
    try:
        for key, item in value.items():
            if type(key) is str and key and type(item) is str:
                kept[edge_text(errors, f"{field} key", key)] = edge_text(errors, field, item)
            else:
                bad = True
    except Exception:  # a mapping that fails to iterate keeps what it gave
        bad = True
    if bad:
        _refuse(errors, field, value, rule)
    return kept


def check_path(errors: ErrorPolicy, field: str, value: object) -> str | None:
    """A path with ``~`` expanded, as text; None when not given or bad (reported).

    A name the operating system gave (undecodable bytes spelt as lone surrogates) is kept
    as it is, so its file is found; see :func:`~kit_telemetry.text.edge_path`.

    Raises:
        UsageError: strict, and ``value`` is no path a file can have.
    """
    rule = _rule(field, "path")
    if value is None and rule.optional:
        return None
    if isinstance(value, (str, os.PathLike)):
        try:
            path = os.fspath(Path(value).expanduser())
        except (TypeError, ValueError, RuntimeError):
            pass  # a PathLike that gives no str, or a ~user that does not exist
        else:
            if isinstance(path, str) and path:
                return edge_path(errors, field, path)
    _refuse(errors, field, value, rule)
    return None


def check_content(errors: ErrorPolicy, field: str, value: object) -> str | None:
    """Content as text: a string as it is, anything else as its JSON text (reported).

    Content is cleaned (and bounded) only where it goes onto a span, so handlers see what
    the agent gave.

    Raises:
        UsageError: strict, and ``value`` is not a string (the prompt, arguments and
            results may be any JSON-like value; the response must be text).
    """
    if value is None or type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    if field == "set_response.response":
        _refuse(errors, field, value, _rule(field, "content"))
    return to_text(value)


def check_state_key(errors: ErrorPolicy, field: str, value: object) -> str | None:
    """A session state key as a plain ``str``, or None when bad (reported).

    Raises:
        UsageError: strict, and ``value`` is not a key.
    """
    key = plain_key(value)
    if key is None:
        _refuse(errors, field, value, _rule(field, "key"))
    return key


def check_state_value(errors: ErrorPolicy, field: str, value: object) -> tuple[bool, Any]:
    """``(True, a private copy of value)`` for a JSON value; ``(False, None)`` when bad.

    A bad value is reported with where in it the bad part sits.

    Raises:
        UsageError: strict, and ``value`` is no JSON value.
    """
    try:
        return True, json_copy(value)
    except InvalidValue as exc:
        rule = _rule(field, "json")
        errors.bad_input(
            field, f"{field}: {shown(value)} is not {rule.allowed}: {exc.detail}; {rule.instead}"
        )
        return False, None


def check_error(errors: ErrorPolicy, field: str, value: object) -> str | None:
    """What went wrong as text: an exception as ``Type: message``; None when not given.

    Raises:
        UsageError: strict, and ``value`` is neither an exception nor a string.
    """
    if value is None:
        return None
    if isinstance(value, BaseException):
        text = f"{type(value).__qualname__}: {_str_or_empty(value)}"
    elif isinstance(value, str):
        text = str(value)
    else:
        _refuse(errors, field, value, _rule(field, "error"))
        text = _str_or_empty(value)
    return edge_text(errors, field, text) if text else None


def check_messages(errors: ErrorPolicy, field: str, value: object) -> tuple[Any, ...] | None:
    """Messages as a tuple of what was given, or None when bad (reported).

    Raises:
        UsageError: strict, and ``value`` is not a list or tuple.
    """
    if isinstance(value, (list, tuple)):
        return tuple(value)
    _refuse(errors, field, value, _rule(field, "sequence"))
    return None


def check_usage(errors: ErrorPolicy, field: str, value: object) -> TokenUsage | None:
    """Token counts by kind (missing kinds are 0), or None when bad (reported).

    Raises:
        UsageError: strict, and ``value`` is no mapping of token kinds to counts.
    """
    rule = _rule(field, "usage")
    if isinstance(value, Mapping):
        try:
            counts = {kind: value.get(kind, 0) for kind in TOKEN_KINDS}
            unknown = [key for key in value if key not in TOKEN_KINDS]
        except Exception:  # a mapping that fails to read is no usage
            counts, unknown = {}, ["?"]
        if not unknown and counts and all(is_count(count) for count in counts.values()):
            return TokenUsage(**counts)
    _refuse(errors, field, value, rule)
    return None


def to_text(value: object) -> str:
    """``value`` as text: a string as it is, else its JSON text, else its ``repr``."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except Exception:
        pass
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__qualname__} object>"


def new_session_id() -> str:
    """A random session id, for a session given none (or a bad one)."""
    return uuid.uuid4().hex


def _rule(field: str, kind: Kind) -> Rule:
    rule = FIELDS[field]
    assert rule.kind == kind, f"{field} is a {rule.kind} field, not {kind}"
    return rule


def _refuse(errors: ErrorPolicy, field: str, value: object, rule: Rule) -> None:
    errors.bad_input(field, f"{field}: {shown(value)} is not {rule.allowed}; {rule.instead}")


def _str_or_empty(value: object) -> str:
    try:
        text = str(value)
    except Exception:
        return ""
    return text if type(text) is str else ""
