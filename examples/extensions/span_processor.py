"""An extension that works on raw spans: it flags slow tool calls and redacts secrets.

Load it with ``kt.configure(extensions=["examples/extensions/span_processor.py"])`` or run it
in the demo (``KIT_SLOW_TOOL_MS=0`` flags every call, the demo's tools being instant)::

    KIT_SLOW_TOOL_MS=0 kit-telemetry demo --extension examples/extensions/span_processor.py

``api.add_span_processor`` hands an extension every span start and end, its own spans and
any other library's alike. Two processors, each doing what the span's life allows:

- ``SlowToolTagger``: at ``on_end`` a span is read-only, so a slow ``execute_tool`` span
  cannot be tagged itself. Its run is still open then, though: the processor keeps each
  live ``invoke_agent`` span and adds the slow call to that span's
  ``example.slow_tools.count`` / ``example.slow_tools.names`` attributes, which are exported
  with the run. It also notifies a warning and keeps per-tool counts for the ``slow-tools``
  command.
- ``SecretRedactor``: at ``on_start`` a span is still writable and no exporter has seen it,
  so tool-call arguments (on spans only when ``capture_content=True``) are scrubbed of
  API keys and passwords before export. Handlers still receive the real arguments
  in-process, in ``ToolCallEvent.arguments``.

The slow-call threshold is ``KIT_SLOW_TOOL_MS`` (milliseconds, default 250).
"""

from __future__ import annotations

import math
import os
import re
import threading

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

import kit_telemetry as kt

THRESHOLD_ENV = "KIT_SLOW_TOOL_MS"
DEFAULT_THRESHOLD_MS = 250.0

# GenAI names this extension reads, and the attributes it writes (ours: example.*).
OPERATION = "gen_ai.operation.name"
TOOL_NAME = "gen_ai.tool.name"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
CONVERSATION = "gen_ai.conversation.id"
SLOW_COUNT = "example.slow_tools.count"
SLOW_NAMES = "example.slow_tools.names"

REDACTED = "[REDACTED]"
# (pattern, replacement): provider API keys, bearer tokens, and the value of key=value or
# "key": "value" pairs whose key names a secret.
SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}"), REDACTED),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/-]{8,}=*"), rf"\1{REDACTED}"),
    (
        re.compile(
            r"(?i)\b(password|passwd|secret|token|api_key)([\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
        ),
        rf"\1\2{REDACTED}",
    ),
)


def threshold_ms() -> float:
    """The slow-call threshold from ``KIT_SLOW_TOOL_MS``, or the default.

    Raises:
        ValueError: the variable is set but is not a non-negative number of milliseconds.
    """
    raw = os.environ.get(THRESHOLD_ENV, "").strip()
    if not raw:
        return DEFAULT_THRESHOLD_MS
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{THRESHOLD_ENV}={raw!r} is not a number of milliseconds") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{THRESHOLD_ENV}={raw!r} must be a non-negative number of ms")
    return value


def redact(text: str) -> str:
    """``text`` with API keys, bearer tokens and ``password=...``-like values replaced."""
    for pattern, replacement in SECRETS:
        text = pattern.sub(replacement, text)
    return text


class SlowToolTagger(SpanProcessor):
    """Counts tool calls slower than a threshold on their (still open) run span.

    Args:
        api: where warnings go (``api.notify``).
        threshold_ms: a tool call at least this long is slow.
    """

    def __init__(self, api: kt.ExtensionAPI, threshold_ms: float) -> None:
        self._api = api
        self.threshold_ms = threshold_ms
        self._lock = threading.Lock()
        self._run_of: dict[int, Span] = {}  # live span id -> its open invoke_agent span
        self._slow_in_run: dict[int, list[str]] = {}  # run span id -> slow tool names
        self.slow_calls: dict[str, int] = {}  # tool name -> slow calls, process-wide
        self.max_ms: dict[str, float] = {}  # tool name -> slowest call seen

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        attributes = span.attributes or {}
        span_id = span.context.span_id
        with self._lock:
            if attributes.get(OPERATION) == "invoke_agent":
                self._run_of[span_id] = span
            elif span.parent is not None and span.parent.span_id in self._run_of:
                self._run_of[span_id] = self._run_of[span.parent.span_id]

    def on_end(self, span: ReadableSpan) -> None:
        span_id = span.context.span_id
        with self._lock:
            run = self._run_of.pop(span_id, None)
            if run is not None and run.context.span_id == span_id:
                self._slow_in_run.pop(span_id, None)
                return
        attributes = span.attributes or {}
        if attributes.get(OPERATION) != "execute_tool" or span.start_time is None:
            return
        elapsed_ms = ((span.end_time or span.start_time) - span.start_time) / 1e6
        if elapsed_ms < self.threshold_ms:
            return
        name = str(attributes.get(TOOL_NAME, "unknown"))
        with self._lock:
            self.slow_calls[name] = self.slow_calls.get(name, 0) + 1
            self.max_ms[name] = max(self.max_ms.get(name, 0.0), elapsed_ms)
            names: tuple[str, ...] = ()
            if run is not None:
                in_run = self._slow_in_run.setdefault(run.context.span_id, [])
                in_run.append(name)
                names = tuple(in_run)
        if run is not None and run.is_recording():
            run.set_attributes({SLOW_COUNT: len(names), SLOW_NAMES: names})
        session = attributes.get(CONVERSATION, "?")
        self._api.notify(
            f"slow tool call: {name} took {elapsed_ms:.1f} ms "
            f"(threshold {self.threshold_ms:g} ms) in session {session}",
            type="warning",
        )

    def report(self) -> str:
        """Slow calls per tool, slowest first."""
        with self._lock:
            rows = sorted(self.slow_calls.items(), key=lambda item: -self.max_ms[item[0]])
            if not rows:
                return f"no tool call took {self.threshold_ms:g} ms or more"
            return "\n".join(
                f"{name}: {count} slow call(s), slowest {self.max_ms[name]:.1f} ms"
                for name, count in rows
            )


class SecretRedactor(SpanProcessor):
    """Scrubs secrets from tool-call arguments while the span is still writable."""

    def __init__(self) -> None:
        self.redacted_spans = 0

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        arguments = (span.attributes or {}).get(TOOL_ARGUMENTS)
        if not isinstance(arguments, str):
            return
        cleaned = redact(arguments)
        if cleaned != arguments:
            span.set_attribute(TOOL_ARGUMENTS, cleaned)
            self.redacted_spans += 1


def setup(api: kt.ExtensionAPI) -> None:
    """Add the two processors and the ``slow-tools`` command."""
    tagger = SlowToolTagger(api, threshold_ms())
    api.add_span_processor(SecretRedactor())
    api.add_span_processor(tagger)
    api.register_command(
        kt.CommandDefinition(
            name="slow-tools",
            description="tool calls over the slow threshold, per tool",
            handler=lambda ctx, args: tagger.report(),
        )
    )
