"""The console exporter: one readable line per finished agent run.

A run line looks like::

    run coder (session s-1): 3 turns, 3 LLM calls, 5 tools (2 failed), tokens in 1,200 /
    cache 4,000 read / 0 write / out 310, $0.0123, 1.84 s, stop=end_turn

(on one line). It is made from the ``kit.run.*`` totals the aggregator writes on the run span
(``invoke_agent {agent_name}``); every other span is only looked at to count failed tools.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TextIO

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from kit_telemetry.semconv import (
    ERROR_TYPE,
    GEN_AI_AGENT_NAME,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_OPERATION_NAME,
    KIT_RUN_PREFIX,
    KIT_RUN_STOP_REASON,
    KIT_TOOL_IS_ERROR,
    OP_EXECUTE_TOOL,
    OP_INVOKE_AGENT,
    TOTAL_FIELDS,
    total_attribute,
)
from kit_telemetry.tokens import TOKEN_KINDS, TokenUsage

__all__ = ["ConsoleRunExporter", "format_run_line"]

_logger = logging.getLogger("kit_telemetry")

# Indexed by field name so a field renamed in semconv fails loudly here, not silently as 0.
_RUN = {name: total_attribute(KIT_RUN_PREFIX, name) for name in TOTAL_FIELDS}

# Failed-tool counts wait here for their run span; spans whose run never arrives (foreign
# traces, runs sampled out) must not grow this without bound.
_MAX_PENDING_SPANS = 10_000


def _number(attributes: Mapping[str, object], key: str) -> float | None:
    value = attributes.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _count(attributes: Mapping[str, object], field: str) -> int:
    value = _number(attributes, _RUN[field])
    return int(value) if value is not None else 0


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _cost(attributes: Mapping[str, object]) -> str:
    llm_calls = _count(attributes, "llm_call_count")
    unpriced = _count(attributes, "unpriced_call_count")
    cost_usd = _number(attributes, _RUN["cost_usd"])
    if llm_calls and unpriced >= llm_calls:
        return "unpriced"
    if cost_usd is None:
        return "cost unknown"
    if not unpriced and attributes.get(_RUN["cost_complete"]) is not False:
        return f"${cost_usd:.4f}"
    # Some call had no price: the sum is what the priced calls cost, a lower bound.
    text = f"≥${cost_usd:.4f}"
    if unpriced:
        text += f" (+{_plural(unpriced, 'unpriced call')})"
    return text


def format_run_line(
    attributes: Mapping[str, object],
    *,
    span_name: str = "",
    duration_s: float | None = None,
    is_error: bool = False,
    failed_tools: int = 0,
) -> str:
    """Format the one-line summary of an agent run from its run span's attributes.

    Works on the attributes of a live ``ReadableSpan`` or of a ``SpanRecord`` read back
    from an OTLP/JSON file.

    Args:
        attributes: the run span's attributes (``kit.run.*`` totals, agent name, session id).
        span_name: the run span's name; the agent name is taken from it when the
            ``gen_ai.agent.name`` attribute is missing.
        duration_s: the span's own duration, used when ``kit.run.duration_ms`` is missing.
        is_error: the span's status is ERROR; shown as ``stop=error`` when no stop reason
            was recorded.
        failed_tools: how many of the run's tool calls failed; shown when above zero.

    Returns:
        The line, without a trailing newline.
    """
    agent = attributes.get(GEN_AI_AGENT_NAME)
    if not isinstance(agent, str) or not agent:
        prefix = OP_INVOKE_AGENT + " "
        agent = span_name[len(prefix) :] if span_name.startswith(prefix) else "agent"
    head = f"run {agent}"
    session = attributes.get(GEN_AI_CONVERSATION_ID)
    if isinstance(session, str) and session:
        head += f" (session {session})"

    tools = _plural(_count(attributes, "tool_call_count"), "tool")
    if failed_tools:
        tools += f" ({failed_tools:,} failed)"
    usage = TokenUsage(**{kind: _count(attributes, kind) for kind in TOKEN_KINDS})
    tokens = (
        f"tokens in {usage.input_tokens:,} / cache {usage.cache_read_tokens:,} read"
        f" / {usage.cache_write_tokens:,} write / out {usage.output_tokens:,}"
    )
    if usage.reasoning_tokens:
        tokens += f" ({usage.reasoning_tokens:,} reasoning)"
    parts = [
        _plural(_count(attributes, "turn_count"), "turn"),
        _plural(_count(attributes, "llm_call_count"), "LLM call"),
        tools,
        tokens,
        _cost(attributes),
    ]
    duration_ms = _number(attributes, _RUN["duration_ms"])
    if duration_ms is not None:
        parts.append(f"{duration_ms / 1000:.2f} s")
    elif duration_s is not None:
        parts.append(f"{duration_s:.2f} s")
    stop = attributes.get(KIT_RUN_STOP_REASON)
    if not isinstance(stop, str) or not stop:
        stop = "error" if is_error else None
    if stop is not None:
        error_type = attributes.get(ERROR_TYPE)
        parts.append(f"stop={stop} ({error_type})" if error_type else f"stop={stop}")
    return f"{head}: {', '.join(parts)}"


class ConsoleRunExporter(SpanExporter):
    """Writes one readable line per finished agent run to a text stream.

    Run spans are those whose ``gen_ai.operation.name`` is ``invoke_agent``. Failed tool
    calls (``execute_tool`` spans with ``kit.tool.is_error`` set or an ERROR status) are
    counted on their way up the span tree and shown on their run's line; every other span
    writes nothing.

    Args:
        stream: where lines go; ``None`` means ``sys.stderr`` as it is at each export (so a
            redirected ``sys.stderr`` is honoured). The stream is flushed after each export
            and never closed by the exporter.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        # span id -> failed tool calls seen in its subtree, until the span itself ends.
        self._failed_below: OrderedDict[int, int] = OrderedDict()
        self._shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write a line for each run span in ``spans``; FAILURE if the stream cannot be written."""
        lines: list[str] = []
        with self._lock:
            if self._shut_down:
                return SpanExportResult.FAILURE
            for span in spans:
                line = self._observe(span)
                if line is not None:
                    lines.append(line)
        if not lines:
            return SpanExportResult.SUCCESS
        stream = self._stream if self._stream is not None else sys.stderr
        try:
            stream.write("".join(line + "\n" for line in lines))
            stream.flush()
        except (OSError, ValueError):
            # ValueError is what a closed stream raises.
            _logger.warning("console exporter cannot write its run lines", exc_info=True)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _observe(self, span: ReadableSpan) -> str | None:
        # Spans end children first and batches keep end order, so a run's tool spans have
        # been seen by the time the run span arrives.
        attributes: Mapping[str, object] = span.attributes or {}
        context = span.context
        failed = self._failed_below.pop(context.span_id, 0) if context is not None else 0
        operation = attributes.get(GEN_AI_OPERATION_NAME)
        if operation == OP_INVOKE_AGENT:
            duration_s = None
            if span.start_time is not None and span.end_time is not None:
                duration_s = (span.end_time - span.start_time) / 1e9
            return format_run_line(
                attributes,
                span_name=span.name,
                duration_s=duration_s,
                is_error=span.status.status_code is StatusCode.ERROR,
                failed_tools=failed,
            )
        if operation == OP_EXECUTE_TOOL and (
            attributes.get(KIT_TOOL_IS_ERROR) is True or span.status.status_code is StatusCode.ERROR
        ):
            failed += 1
        if failed and span.parent is not None:
            parent_id = span.parent.span_id
            self._failed_below[parent_id] = self._failed_below.get(parent_id, 0) + failed
            self._failed_below.move_to_end(parent_id)
            while len(self._failed_below) > _MAX_PENDING_SPANS:
                self._failed_below.popitem(last=False)
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Lines are flushed as they are written; nothing is held back."""
        return True

    def shutdown(self) -> None:
        """Stop writing (the stream stays open: it belongs to the caller). Idempotent."""
        with self._lock:
            self._shut_down = True
            self._failed_below.clear()
