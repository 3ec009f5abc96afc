"""The validation table: every parameter of the public API and the rule it follows.

``FIELDS`` names each parameter (``"llm_call.max_tokens"``) and its :class:`Rule`: what is
allowed, and what a lenient ``Telemetry`` records instead of a bad value. One rule set
covers them all:

=============  ============================================================================
``text``       a non-empty ``str``; cleaned to valid UTF-8 and bounded (:mod:`kit_telemetry.text`)
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

Configuration rows (``configure.*``, ``config=True``) are refused at start-up by
:mod:`.options`; the others by the ``check_*`` functions of :mod:`.checks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from ..tokens import MAX_TOKENS, TOKEN_KINDS

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


def shown(value: object) -> str:
    """``value`` for a message: escaped (valid text) and short."""
    try:
        text = ascii(value)
    except Exception:
        text = f"<{type(value).__qualname__} object>"
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
