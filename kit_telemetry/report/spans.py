"""One span as the report reads it: what it stands for and its attribute values, typed.

Attribute values arrive from files written by any instrumentation, so each accessor turns
a missing, empty or ill-typed value into ``None`` (or zero, or empty) instead of raising.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Protocol

from .. import semconv, tracing
from ..tokens import TokenUsage
from .model import UNKNOWN, SpanCategory

# OTLP status codes.
_STATUS_ERROR = 2

_TURN_NAME = re.compile(r"^turn \d+$")


class SpanLike(Protocol):
    """What the report reads from a span (``exporters.otlp_json_reader.SpanRecord`` fits)."""

    @property
    def trace_id(self) -> str: ...
    @property
    def span_id(self) -> str: ...
    @property
    def parent_span_id(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def start_ns(self) -> int: ...
    @property
    def end_ns(self) -> int: ...
    @property
    def attributes(self) -> Mapping[str, object]: ...
    @property
    def status_code(self) -> int: ...
    @property
    def status_message(self) -> str | None: ...


# --- attribute access -----------------------------------------------------------------


def attr_number(attrs: Mapping[str, object], key: str) -> float | None:
    """A finite number (numeric strings too), or ``None`` when absent or not a number."""
    value = attrs.get(key)
    # bool is an int subclass; a boolean where a count belongs is not a count.
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def attr_count(attrs: Mapping[str, object], key: str) -> int:
    """A non-negative whole count; 0 when absent or not a number."""
    value = attr_number(attrs, key)
    return max(0, int(value)) if value is not None else 0


def attr_text(attrs: Mapping[str, object], key: str) -> str | None:
    """The value as text, or ``None`` when absent or empty."""
    value = attrs.get(key)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def attr_strings(attrs: Mapping[str, object], key: str) -> tuple[str, ...]:
    """A list value as strings (a lone string as one); empty when absent."""
    value = attrs.get(key)
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    if isinstance(value, str) and value:
        return (value,)
    return ()


# --- classification -------------------------------------------------------------------


_CATEGORIES: dict[int, SpanCategory] = {
    tracing.RUN: "run",
    tracing.LLM: "llm",
    tracing.TOOL: "tool",
    tracing.TURN: "turn",
}


def categorize(span: SpanLike) -> SpanCategory:
    """What a span stands for: read as the aggregator reads live spans (the GenAI
    conventions, OpenLLMetry, OpenInference), failing that from its name."""
    name = span.name
    if name in (semconv.SPAN_SESSION_START, semconv.SPAN_SESSION_END):
        return "session"
    role = tracing.role_from_attributes(span.attributes, name, root=not span.parent_span_id)
    if role in _CATEGORIES:
        return _CATEGORIES[role]
    operation = attr_text(span.attributes, semconv.GEN_AI_OPERATION_NAME)
    if _TURN_NAME.match(name):
        return "turn"
    if operation is None and semconv.OPENINFERENCE_SPAN_KIND not in span.attributes:
        # Older instrumentations name spans by the convention but omit the operation.
        head = name.split(" ", 1)[0]
        if head == semconv.OP_INVOKE_AGENT:
            return "run"
        if head in semconv.LLM_OPERATIONS:
            return "llm"
        if head == semconv.OP_EXECUTE_TOOL:
            return "tool"
    return "other"


def is_error(span: SpanLike) -> bool:
    """True when the span's status is ERROR or it carries ``error.type``."""
    return span.status_code == _STATUS_ERROR or semconv.ERROR_TYPE in span.attributes


def model_of(span: SpanLike) -> str:
    """The requested (else responding) model, else the name's second word, else ``UNKNOWN``."""
    model: str | None = tracing.call_names(span.attributes)[1] or None
    if model is None and " " in span.name:
        model = span.name.split(" ", 1)[1]
    return model or UNKNOWN


def provider_of(span: SpanLike) -> str:
    """The provider (``gen_ai.provider.name``, ``gen_ai.system``, OpenInference's), else ``"-"``."""
    return tracing.call_names(span.attributes)[0] or "-"


def has_usage(span: SpanLike) -> bool:
    """Whether an LLM span reports token counts in any convention."""
    return tracing.tokens_from_attributes(span.attributes) is not None


def tokens_of(span: SpanLike) -> TokenUsage:
    """An LLM span's token counts by disjoint kind, in any convention (absent counts are 0)."""
    tokens = tracing.tokens_from_attributes(span.attributes, reasoning_within_output=False)
    return tokens or TokenUsage()


def is_kit_call(span: SpanLike) -> bool:
    """An LLM span made by kit-telemetry's API (it says its outcome; unpriced means unpriced)."""
    return semconv.KIT_LLM_OUTCOME in span.attributes


def tool_name_of(span: SpanLike) -> str:
    """The tool's name, else the span name's second word, else ``UNKNOWN``."""
    name: str | None = tracing.tool_name_of(span.attributes) or None
    if name is None and " " in span.name:
        name = span.name.split(" ", 1)[1]
    if name is None and semconv.OPENINFERENCE_SPAN_KIND in span.attributes:
        name = span.name  # OpenInference names a tool span after the tool
    return name or UNKNOWN


def error_text(span: SpanLike) -> str | None:
    """What went wrong, as "Type: message", or ``None`` for a span without error."""
    if not is_error(span):
        return None
    kind = attr_text(span.attributes, semconv.ERROR_TYPE)
    message = span.status_message or None
    if kind and message:
        # kit-telemetry's messages already read "Type: message"; don't say the type twice.
        return message if message.startswith(f"{kind}:") else f"{kind}: {message}"
    return kind or message or "error"
