"""The validation table: every parameter of the public API and the rule it follows.

``FIELDS`` names each parameter (``"llm_call.max_tokens"``) and its :class:`Rule`: what is
allowed, and what a lenient ``Telemetry`` records instead of a bad value. One rule set
covers them all:

=============  ============================================================================
``text``       a non-empty ``str``; cleaned to valid UTF-8 and bounded (:mod:`.text`)
``count``      an ``int`` (not ``bool``) in ``[0, 2**63 - 1]``: what OTLP's int64 carries
``amount``     a finite ``int`` or ``float`` >= 0
``flag``       a ``bool``
``mapping``    a ``Mapping`` of non-empty ``str`` keys to ``str`` values
``path``       a ``str`` or ``os.PathLike`` that the file system can name
``content``    anything; not a ``str`` becomes its JSON text (the response: a ``str``)
``port``       an ``int`` (not ``bool``) in ``[1, 65535]``
``key``        a non-empty ``str`` of valid Unicode, kept exactly (a session state key)
``json``       a JSON value: ``str``, ``int``, finite ``float``, ``bool``, ``None``, ``list``,
               ``dict`` with ``str`` keys (see :mod:`kit_telemetry.json_values`)
``any``        anything; never refused (a default handed back, a message kept as given)
``error``      an exception (recorded as ``Type: message``), a ``str`` or ``None``
``sequence``   a ``list`` or ``tuple`` (of messages)
``usage``      a ``Mapping`` of token kinds (``input_tokens``...) to counts
``choice``     one of the rule's ``choices`` (configuration)
``seconds``    a finite ``int`` or ``float`` > 0 (configuration)
``size``       an ``int`` (not ``bool``) in ``[1, 2**63 - 1]`` (configuration)
``option``     what the rule ``says``; checked by the part that uses it (configuration)
=============  ============================================================================

Two rules, by who gives the value. The agent's loop (sessions, runs, calls, tools, state):
strict raises ``UsageError``, lenient records what it can, logs once per field and counts.
Configuration (``configure()``/``Telemetry(...)``, the ``configure.*`` rows, marked
``config=True``) is read once, at start-up, before any agent runs: a bad option is a
``ConfigError`` in both modes (:func:`check_option`), since going on would quietly run
with a configuration nobody asked for.

Content (prompts, tool arguments and results, responses) is cleaned and bounded where it
goes onto a span (``Runtime.clip``), so extension handlers see what the agent gave.

Each ``check_*`` function takes the error policy, the field and the value: a good value
comes back (text cleaned); a bad one is :meth:`ErrorPolicy.bad_input` - a ``UsageError``
naming the field, the value and what is allowed when strict, otherwise logged once per
field and counted - and its stand-in comes back, so the agent's call is still recorded.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeGuard

from ._errors import ErrorPolicy
from .errors import ConfigError
from .json_values import InvalidValue, json_copy, plain_key
from .text import MAX_TEXT_CHARS, clean_text, edge_path, edge_text
from .tokens import MAX_TOKENS, TOKEN_KINDS, TokenUsage

__all__ = [
    "FIELDS",
    "INT64_MAX",
    "Rule",
    "check_amount",
    "check_attributes",
    "check_content",
    "check_count",
    "check_flag",
    "check_option",
    "check_path",
    "check_port",
    "check_error",
    "check_messages",
    "check_required_text",
    "check_state_key",
    "check_state_value",
    "check_text",
    "check_usage",
    "is_count",
    "new_session_id",
    "to_text",
]

INT64_MAX: Final = MAX_TOKENS
"""The largest count: OTLP carries integers as int64."""

Kind = Literal[
    "text",
    "count",
    "amount",
    "flag",
    "mapping",
    "path",
    "content",
    "port",
    "key",
    "json",
    "any",
    "error",
    "sequence",
    "usage",
    "choice",
    "seconds",
    "size",
    "option",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """What one parameter accepts, and what stands in for a bad value when lenient.

    Attributes:
        kind: the rule set it follows (see the module docstring).
        optional: ``None`` is allowed (and means "not given").
        instead: what a lenient ``Telemetry`` records instead of a bad value.
        default: the stand-in text of a required ``text`` parameter.
        empty_ok: ``""`` is a value of this ``text`` parameter (an id that says "none").
        config: a configuration option: a bad value is a ``ConfigError`` at start-up, in
            strict and lenient mode alike.
        choices: the values of a ``choice`` parameter.
        says: what is allowed, where the kind's own words would not say it.
    """

    kind: Kind
    optional: bool = False
    instead: str
    default: str = ""
    empty_ok: bool = False
    config: bool = False
    choices: tuple[str, ...] = ()
    says: str = ""

    @property
    def allowed(self) -> str:
        """What is allowed, as a message says it."""
        if self.says:
            allowed = self.says
        elif self.kind == "choice":
            allowed = "one of " + ", ".join(self.choices)
        else:
            allowed = "a string" if self.empty_ok else _ALLOWED[self.kind]
        return f"{allowed} or None" if self.optional else allowed


_ALLOWED: Final[Mapping[Kind, str]] = {
    "text": "a non-empty string",
    "count": f"an int from 0 to {INT64_MAX}",
    "amount": "a finite number >= 0",
    "flag": "True or False",
    "mapping": "a mapping of non-empty string keys to string values",
    "path": "a str or os.PathLike a file can have",
    "content": "a string",
    "port": "an int from 1 to 65535",
    "key": "a non-empty string of valid Unicode (no surrogates)",
    "json": "a JSON value (str, int, finite float, bool, None, list, dict with str keys)",
    "any": "any value",
    "error": "an exception or a string",
    "sequence": "a list or tuple",
    "usage": "a mapping of token kinds (" + ", ".join(TOKEN_KINDS) + ") to counts",
    "choice": "one of its choices",
    "seconds": "a finite number of seconds > 0",
    "size": f"an int from 1 to {INT64_MAX}",
    "option": "what the option allows",
}

_AT_START_UP = "ConfigError at start-up (strict or not)"


def _option(
    kind: Kind, *, optional: bool = False, choices: tuple[str, ...] = (), says: str = ""
) -> Rule:
    """The row of a configuration option."""
    return Rule(
        kind=kind,
        optional=optional,
        config=True,
        instead=_AT_START_UP,
        choices=choices,
        says=says,
    )


_TOKENS = "usage ignored (earlier usage of the call is kept)"

FIELDS: Final[Mapping[str, Rule]] = {
    # Telemetry.session(...)
    "session.session_id": Rule(kind="text", optional=True, instead="a new random id is used"),
    "session.session_file": Rule(kind="path", optional=True, instead="the session has no file"),
    "session.user": Rule(
        kind="text", optional=True, empty_ok=True, instead="recorded as its str()"
    ),
    "session.subscription": Rule(kind="flag", instead="recorded by its truth"),
    "session.attributes": Rule(
        kind="mapping", optional=True, instead="only the good entries are kept"
    ),
    # Session.run(...)
    "run.prompt": Rule(kind="content", optional=True, instead="recorded as its JSON text"),
    "run.agent_name": Rule(
        kind="text", instead="recorded as its str() or 'agent'", default="agent"
    ),
    "run.agent_id": Rule(kind="text", optional=True, instead="recorded as its str()"),
    "run.provider": Rule(kind="text", optional=True, instead="recorded as its str()"),
    "run.system_instructions": Rule(
        kind="content", optional=True, instead="recorded as its JSON text"
    ),
    # Run.set_response(...)
    "set_response.response": Rule(
        kind="content", optional=True, instead="recorded as its JSON text"
    ),
    # Run/Turn.llm_call(...)
    "llm_call.provider": Rule(
        kind="text", instead="recorded as its str() or 'unknown'", default="unknown"
    ),
    "llm_call.model": Rule(
        kind="text", instead="recorded as its str() or 'unknown'", default="unknown"
    ),
    "llm_call.max_tokens": Rule(kind="count", optional=True, instead="treated as not given"),
    "llm_call.server_address": Rule(kind="text", optional=True, instead="recorded as its str()"),
    "llm_call.server_port": Rule(kind="port", optional=True, instead="ignored"),
    # Compared by loop guards only, never recorded: any JSON-like value.
    "llm_call.request": Rule(kind="content", optional=True, instead="compared as its JSON text"),
    "llm_call.estimated_input_tokens": Rule(
        kind="count", optional=True, instead="treated as not given"
    ),
    # LLMCall.record_usage(...)
    "record_usage.input_tokens": Rule(kind="count", instead=_TOKENS),
    "record_usage.output_tokens": Rule(kind="count", instead=_TOKENS),
    "record_usage.cache_read_tokens": Rule(kind="count", instead=_TOKENS),
    "record_usage.cache_write_tokens": Rule(kind="count", instead=_TOKENS),
    "record_usage.reasoning_tokens": Rule(kind="count", instead=_TOKENS),
    "record_usage.finish_reason": Rule(
        kind="text", optional=True, empty_ok=True, instead="recorded as its str()"
    ),
    "record_usage.response_id": Rule(
        kind="text", optional=True, empty_ok=True, instead="recorded as its str()"
    ),
    "record_usage.cost_usd": Rule(kind="amount", optional=True, instead=_TOKENS),
    "record_usage.response_model": Rule(
        kind="text", optional=True, instead="recorded as its str()"
    ),
    # Run/Turn.tool_call(...)
    "tool_call.name": Rule(
        kind="text", instead="recorded as its str() or 'unknown'", default="unknown"
    ),
    "tool_call.call_id": Rule(
        kind="text", optional=True, empty_ok=True, instead="recorded as its str()"
    ),
    "tool_call.arguments": Rule(kind="content", optional=True, instead="recorded as its JSON text"),
    # ToolCall.set_result(...)
    "tool_call.tool_type": Rule(kind="text", optional=True, instead="recorded as its str()"),
    # LLMCall.add_cost(...) and ToolCall.add_cost(...)
    "add_cost.usd": Rule(kind="amount", instead="the charge is ignored"),
    "add_cost.kind": Rule(kind="text", instead="recorded as its str() or 'other'", default="other"),
    "set_result.result": Rule(kind="content", optional=True, instead="recorded as its JSON text"),
    "set_result.is_error": Rule(kind="flag", instead="recorded by its truth"),
    # SessionState.get/set/delete, ExtensionContext.get_state/set_state/delete_state
    "state.key": Rule(
        kind="key",
        instead="nothing is read or changed (get gives the default, delete gives False)",
    ),
    "state.value": Rule(kind="json", instead="the write is dropped (the key keeps its value)"),
    "state.default": Rule(kind="any", optional=True, instead="returned as it was given"),
    # LLMCall.record_retry(...)
    "record_retry.attempt": Rule(kind="count", instead="the retry is not recorded"),
    "record_retry.error": Rule(kind="error", optional=True, instead="recorded as its str()"),
    # LLMCall.set_messages(...): shaped into GenAI messages; anything else is its JSON text
    "set_messages.input_messages": Rule(
        kind="any", optional=True, instead="recorded as its JSON text"
    ),
    "set_messages.output_messages": Rule(
        kind="any", optional=True, instead="recorded as its JSON text"
    ),
    "set_messages.system_instructions": Rule(
        kind="text", optional=True, empty_ok=True, instead="recorded as its str()"
    ),
    # Run.record_messages(...) and Turn.set_message(...): handed to handlers as given
    "record_messages.messages": Rule(kind="sequence", instead="ignored"),
    "set_message.message": Rule(kind="any", optional=True, instead="handed on as given"),
    # Turn.call_tool(...) and Turn.acall_tool(...)
    "call_tool.name": Rule(
        kind="text",
        instead="looked up as its str() (an unknown tool is an error outcome)",
        default="unknown",
    ),
    "call_tool.arguments": Rule(
        kind="any", optional=True, instead="checked against the tool's schema"
    ),
    "call_tool.call_id": Rule(
        kind="text", optional=True, empty_ok=True, instead="recorded as its str()"
    ),
    # Telemetry.price(...)
    "price.provider": Rule(
        kind="text", instead="looked up as its str() or 'unknown'", default="unknown"
    ),
    "price.model": Rule(
        kind="text", instead="looked up as its str() or 'unknown'", default="unknown"
    ),
    "price.usage": Rule(kind="usage", instead="the price is None (unknown)"),
    # configure(...) and Telemetry(...): ConfigError at start-up, strict or not
    "configure.service_name": _option("text", optional=True),
    "configure.tracer_provider": _option(
        "option", optional=True, says="an opentelemetry.sdk.trace.TracerProvider"
    ),
    "configure.meter_provider": _option(
        "option", optional=True, says="an opentelemetry.metrics.MeterProvider"
    ),
    "configure.exporters": _option(
        "option",
        optional=True,
        says="specs ('console', 'otlp-json:PATH', 'otlp', 'none') or SpanExporter objects",
    ),
    "configure.prometheus": _option(
        "option", optional=True, says="'HOST:PORT' or a prometheus_client CollectorRegistry"
    ),
    "configure.budgets": _option(
        "option", optional=True, says="a budgets TOML path, a list of Budget or a BudgetConfig"
    ),
    "configure.extensions": _option("option", says="extension module names or file paths"),
    "configure.extension_errors": _option("choice", choices=("raise", "log")),
    "configure.fail_closed_extensions": _option(
        "option", says="extension module names or file paths"
    ),
    "configure.state_dir": _option("path", optional=True),
    "configure.state_durability": _option("choice", choices=("sync", "batched")),
    "configure.prices": _option(
        "option", optional=True, says="a mapping of model names to ModelPrice, or a TOML path"
    ),
    "configure.subscription_providers": _option("option", says="provider names"),
    "configure.capture_content": _option(
        "option",
        optional=True,
        says="True, False or a callable (content, attribute) -> str | None",
    ),
    "configure.legacy_names": _option("flag", optional=True),
    "configure.max_content_chars": _option("size"),
    "configure.strict": _option("flag"),
    "configure.install_global": _option("flag"),
    "configure.console_stream": _option("option", optional=True, says="a text stream"),
    "configure.handler_timeout_s": _option("seconds"),
    "configure.max_series": _option("size"),
    "configure.created_series": _option("flag"),
}
"""Every parameter of the instrumentation API, by ``<entry point>.<parameter>``."""

# Shown in a message instead of a very long value.
_SHOWN_CHARS = 80


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
    shown = "" if value is None else _str_or_empty(value)
    if not shown:
        return None if rule.optional else rule.default
    return clean_text(shown)


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
            field, f"{field}: {_shown(value)} is not {rule.allowed}: {exc.detail}; {rule.instead}"
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


def check_option(field: str, value: object) -> None:
    """Refuse a bad configuration option at start-up, strict or not.

    Checks the ``choice``, ``seconds`` and ``size`` rows; the others are checked by the
    part of kit-telemetry that uses them, with the row's words.

    Raises:
        ConfigError: ``value`` is not allowed; names the option, the value and what is.
    """
    rule = FIELDS[field]
    assert rule.config, f"{field} is no configuration option"
    if value is None and rule.optional:
        return
    if rule.kind == "choice":
        fits = type(value) is str and value in rule.choices
    elif rule.kind == "seconds":
        fits = (
            isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf
        )
    elif rule.kind == "size":
        fits = type(value) is int and 1 <= value <= INT64_MAX
    else:
        raise AssertionError(f"{field}: check_option does not check {rule.kind} rows")
    if not fits:
        option = field.removeprefix("configure.")
        raise ConfigError(f"configure(): {option} {_shown(value)} is not {rule.allowed}")


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
    errors.bad_input(field, f"{field}: {_shown(value)} is not {rule.allowed}; {rule.instead}")


def _shown(value: object) -> str:
    """``value`` for a message: escaped (valid text) and short."""
    try:
        shown = ascii(value)
    except Exception:
        shown = f"<{type(value).__qualname__} object>"
    return shown if len(shown) <= _SHOWN_CHARS else shown[:_SHOWN_CHARS] + "..."


def _str_or_empty(value: object) -> str:
    try:
        text = str(value)
    except Exception:
        return ""
    return text if type(text) is str else ""
