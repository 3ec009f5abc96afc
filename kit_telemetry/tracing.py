"""The span bridge: what travels beside a span in-process, and reading GenAI spans.

A span made through kit-telemetry's API has a ``SpanPayload``: the facts the processors
need (its role, session, names, usage), typed, plus content that must not be exported
unless ``capture_content`` is on (the prompt, tool arguments and results, the response).
The API stages the payload before it starts the span (so ``on_start`` callbacks can read
it), binds it to the span id once started and unbinds it after the span has ended.

Spans made by other instrumentations have no payload: ``payload_from_attributes`` reads
the same facts from their GenAI attributes, so the processors treat both alike.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from . import semconv as sc
from .events import Event
from .tokens import TokenUsage

if TYPE_CHECKING:
    from .totals import RunningTotals, RunTally

# What a span is, for the processors.
RUN, TURN, LLM, TOOL, SESSION_START, SESSION_END, OTHER = range(7)

_ERROR = StatusCode.ERROR  # a module global: a read through the enum class costs more


class LLMUsage(NamedTuple):
    """One LLM call's usage, as the aggregator counts it."""

    tokens: TokenUsage
    cost_usd: float | None  # None: unpriced
    finish_reason: str | None
    response_id: str | None
    priced: bool = True  # False: nobody has looked the price up yet (spans of other code)


class SpanPayload:
    """The in-process companion of a span (mutable on purpose: the API fills it as it goes).

    Attributes:
        role: RUN, TURN, LLM, TOOL, SESSION_START, SESSION_END or OTHER.
        session_id: the conversation id.
        name: agent name (run), model (LLM call), tool name (tool call).
        detail: turn index (turn), provider (LLM call), call id (tool call), session file.
        content: the prompt (run) or the arguments (tool call).
        result: the response (run) or the tool's result.
        usage: the LLM call's usage, when it reported any.
        outcome: an LLM call's outcome: ok, error, budget_denied or cancelled.
        is_error: a tool call failed.
        stop_reason: why a run stopped, when the API knows better than the last finish reason.
        end_event: the end event the aggregator built, for the API to hand out.
        parent: the payload of the enclosing span made through the API, if any.

    The aggregator keeps its bookkeeping of a span it counts here too:

    Attributes:
        run: the run the span belongs to; None while (or if) the aggregator does not count it.
        turn: the enclosing turn's totals (a turn span: its own).
        llm_parent: the payload of the nearest enclosing LLM-call span.
        counted_below: a descendant LLM call already counted this call's usage.
    """

    __slots__ = (
        "content",
        "counted_below",
        "detail",
        "end_event",
        "is_error",
        "llm_parent",
        "name",
        "outcome",
        "parent",
        "result",
        "role",
        "run",
        "session_id",
        "stop_reason",
        "turn",
        "usage",
    )

    def __init__(
        self,
        role: int,
        session_id: str,
        name: str = "",
        detail: Any = None,
        content: Any = None,
        parent: SpanPayload | None = None,
    ) -> None:
        self.role = role
        self.parent = parent
        self.session_id = session_id
        self.name = name
        self.detail = detail
        self.content = content
        self.result: Any = None
        self.usage: LLMUsage | None = None
        self.outcome = "ok"
        self.is_error = False
        self.stop_reason: str | None = None
        self.end_event: Event | None = None
        self.run: RunTally | None = None
        self.turn: RunningTotals | None = None
        self.llm_parent: SpanPayload | None = None
        self.counted_below = False


class PayloadRegistry:
    """Maps live span ids to their payloads; one per process (see ``PAYLOADS``).

    ``get`` is the dict's own method: the processors look a payload up for every span.
    """

    __slots__ = ("_by_span", "_staged", "get")

    def __init__(self) -> None:
        self._by_span: dict[int, SpanPayload] = {}
        self._staged = threading.local()
        # The payload of a live span, or None for spans made by other code.
        self.get: Callable[[int], SpanPayload | None] = self._by_span.get

    def stage(self, payload: SpanPayload | None) -> None:
        """Offer ``payload`` to the ``on_start`` callbacks of the span about to start here."""
        self._staged.payload = payload

    def staged(self) -> SpanPayload | None:
        """The payload of the span starting on this thread (valid inside ``on_start``)."""
        payload: SpanPayload | None = getattr(self._staged, "payload", None)
        return payload

    def bind(self, span_id: int, payload: SpanPayload) -> None:
        """Attach ``payload`` to a started span and clear the staging slot."""
        self._by_span[span_id] = payload
        self._staged.payload = None

    def unbind(self, span_id: int) -> None:
        """Forget a span's payload once the span has ended."""
        self._by_span.pop(span_id, None)

    def __len__(self) -> int:
        return len(self._by_span)


PAYLOADS = PayloadRegistry()


# --- spans of other instrumentations --------------------------------------------------------
def payload_from_attributes(span: ReadableSpan) -> SpanPayload:
    """The facts of a span made by other code, read from its GenAI attributes."""
    attributes = span.attributes or {}
    op = attributes.get(sc.GEN_AI_OPERATION_NAME)
    session_id = _str(attributes, sc.GEN_AI_CONVERSATION_ID)
    if op == sc.OP_INVOKE_AGENT:
        return SpanPayload(RUN, session_id, _str(attributes, sc.GEN_AI_AGENT_NAME) or "agent")
    if op in sc.LLM_OPERATIONS:
        model = _str(attributes, sc.GEN_AI_REQUEST_MODEL) or _str(
            attributes, sc.GEN_AI_RESPONSE_MODEL
        )
        provider = _str(attributes, sc.GEN_AI_PROVIDER_NAME) or _str(attributes, sc.GEN_AI_SYSTEM)
        return SpanPayload(LLM, session_id, model or "unknown", provider or "unknown")
    if op == sc.OP_EXECUTE_TOOL:
        call_id = attributes.get(sc.GEN_AI_TOOL_CALL_ID)
        return SpanPayload(
            TOOL,
            session_id,
            _str(attributes, sc.GEN_AI_TOOL_NAME) or "unknown",
            call_id if isinstance(call_id, str) else None,
        )
    if op is None and sc.KIT_TURN_INDEX in attributes:
        return SpanPayload(TURN, session_id, detail=_int(attributes, sc.KIT_TURN_INDEX))
    if span.name == sc.SPAN_SESSION_START:
        file = attributes.get(sc.KIT_SESSION_FILE)
        return SpanPayload(
            SESSION_START, session_id, detail=file if isinstance(file, str) else None
        )
    if span.name == sc.SPAN_SESSION_END:
        return SpanPayload(SESSION_END, session_id)
    return SpanPayload(OTHER, session_id)


def read_end_attributes(span: ReadableSpan, payload: SpanPayload) -> None:
    """Fill a foreign span's payload with what its attributes say at its end."""
    attributes = span.attributes or {}
    error = span.status.status_code is _ERROR
    if payload.role == LLM:
        payload.outcome = _str(attributes, sc.KIT_LLM_OUTCOME) or ("error" if error else "ok")
        if (
            sc.GEN_AI_USAGE_INPUT_TOKENS in attributes
            or sc.GEN_AI_USAGE_OUTPUT_TOKENS in attributes
        ):
            total_input = _int(attributes, sc.GEN_AI_USAGE_INPUT_TOKENS)
            cache_read = _int(attributes, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)
            cache_write = _int(attributes, sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS)
            cost = _float(attributes.get(sc.KIT_USAGE_COST_USD))
            reasons = attributes.get(sc.GEN_AI_RESPONSE_FINISH_REASONS)
            reason = reasons[0] if isinstance(reasons, (tuple, list)) and reasons else None
            response_id = attributes.get(sc.GEN_AI_RESPONSE_ID)
            tokens = TokenUsage(
                input_tokens=max(total_input - cache_read - cache_write, 0),
                output_tokens=_int(attributes, sc.GEN_AI_USAGE_OUTPUT_TOKENS),
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
                reasoning_tokens=_int(attributes, sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS),
            )
            payload.usage = LLMUsage(
                tokens=tokens,
                cost_usd=cost,
                priced=cost is not None,
                finish_reason=reason if isinstance(reason, str) else None,
                response_id=response_id if isinstance(response_id, str) else None,
            )
    elif payload.role == TOOL:
        payload.is_error = error or attributes.get(sc.KIT_TOOL_IS_ERROR) is True
    elif payload.role == RUN:
        payload.stop_reason = _str(attributes, sc.KIT_RUN_STOP_REASON) or None


def error_type_of(span: ReadableSpan) -> str:
    """The ``error.type`` of a failed span, or "" when it did not fail."""
    if span.status.status_code is not _ERROR:
        return ""
    return _str(span.attributes or {}, sc.ERROR_TYPE) or "_OTHER"


def _float(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _int(attributes: Mapping[str, Any], key: str) -> int:
    value = _float(attributes.get(key))
    return max(int(value), 0) if value is not None else 0


def _str(attributes: Mapping[str, Any], key: str) -> str:
    value = attributes.get(key)
    return value if isinstance(value, str) else ""
