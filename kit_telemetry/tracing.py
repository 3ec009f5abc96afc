"""The span bridge: what travels beside a span in-process, and reading GenAI spans.

A span made through kit-telemetry's API has a ``SpanPayload``: the facts the processors
need (its role, session, names, usage), typed, plus content that must not be exported
unless ``capture_content`` is on (the prompt, tool arguments and results, the response).
The API stages the payload before it starts the span (so ``on_start`` callbacks can read
it), binds it to the span id once started and unbinds it after the span has ended.

Spans made by other instrumentations have no payload: ``payload_from_attributes`` reads
the same facts from their attributes (every generation of the GenAI conventions,
OpenLLMetry's and OpenInference's), so the processors treat both alike.
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
    from .decisions import Verdict
    from .totals import RunningTotals, RunTally

# What a span is, for the processors.
RUN, TURN, LLM, TOOL, SESSION_START, SESSION_END, OTHER = range(7)

# How a span of other code names the exception that refused its call (error.type or
# exception.type: the class name, qualified or not).
_BUDGET_EXCEEDED = "BudgetExceeded"

# The name of a model or tool a span of other code does not (yet) say.
UNKNOWN_NAME = "unknown"

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
        usage: the LLM call's usage, when it reported any; for a tool call, its own cost
            (``add_cost``) with no tokens.
        outcome: an LLM call's outcome: ok, error, budget_denied or cancelled.
        is_error: a tool call failed.
        stop_reason: why a run stopped, when the API knows better than the last finish reason.
        end_event: the end event the aggregator built, for the API to hand out.
        parent: the payload of the enclosing span made through the API, if any.
        verdict: the extensions' decision on this span's start or end event, for the API.
        asked: the tool result was put to the extensions already (at ``set_result``).
        error: why a run stopped, in words, when it did not fail (``AgentEndEvent.error``).
        messages: what the agent recorded for a run (``run.record_messages``); a turn's
            message (``turn.set_message``) is its ``result``.

    The aggregator keeps its bookkeeping of a span it counts here too:

    Attributes:
        run: the run the span belongs to; None while (or if) the aggregator does not count it.
        turn: the enclosing turn's totals (a turn span: its own).
        up: the payload of the enclosing span the aggregator tracks (its own or of other
            code), whether or not it belongs to a run.
        own: the span was made through kit-telemetry's API (its LLM calls always count).
        counted_below: a descendant LLM call already counted this call's usage.
        usage_below: the usage of another instrumentation's span of the same call, nested
            in one of our LLM-call spans (used when ours reported none).
        implicit: this LLM span holds the implicit run of calls made outside any agent span.
    """

    __slots__ = (
        "asked",
        "content",
        "counted_below",
        "detail",
        "end_event",
        "error",
        "implicit",
        "is_error",
        "messages",
        "name",
        "outcome",
        "own",
        "parent",
        "result",
        "role",
        "run",
        "session_id",
        "stop_reason",
        "turn",
        "up",
        "usage",
        "usage_below",
        "verdict",
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
        self.up: SpanPayload | None = None
        self.own = False
        self.counted_below = False
        self.verdict: Verdict | None = None
        self.asked = False
        self.error: str | None = None
        self.messages: tuple[Any, ...] = ()
        self.usage_below: LLMUsage | None = None
        self.implicit = False


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
class _UsageNames(NamedTuple):
    """Where one convention keeps a call's token counts.

    Every convention read here reports the prompt total *with* its cached tokens (the
    GenAI conventions say so; OpenLLMetry and OpenInference add Anthropic's cache reads
    and writes to its ``input_tokens``), so the uncached input is the total minus the
    cache parts. Of each tuple of names the first one present counts: an instrumentation
    in the middle of a rename may emit two spellings of the same count.
    """

    total_input: str
    output: str
    cache_read: tuple[str, ...]
    cache_write: tuple[str, ...]
    reasoning: tuple[str, ...]  # a part of output


_GEN_AI_CACHE_READ = (
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_FLAT,
)
_GEN_AI_CACHE_WRITE = (
    sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_FLAT,
)
_GEN_AI_REASONING = (sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, sc.GEN_AI_USAGE_REASONING_TOKENS_FLAT)

# In order of preference: the first convention with a total input or an output count wins.
_USAGE_CONVENTIONS = (
    _UsageNames(  # GenAI conventions, current names
        sc.GEN_AI_USAGE_INPUT_TOKENS,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS,
        _GEN_AI_CACHE_READ,
        _GEN_AI_CACHE_WRITE,
        _GEN_AI_REASONING,
    ),
    _UsageNames(  # GenAI conventions before input/output; OpenLLMetry
        sc.GEN_AI_USAGE_PROMPT_TOKENS,
        sc.GEN_AI_USAGE_COMPLETION_TOKENS,
        _GEN_AI_CACHE_READ,
        _GEN_AI_CACHE_WRITE,
        _GEN_AI_REASONING,
    ),
    _UsageNames(  # OpenLLMetry's first names
        sc.LLM_USAGE_PROMPT_TOKENS,
        sc.LLM_USAGE_COMPLETION_TOKENS,
        _GEN_AI_CACHE_READ,
        _GEN_AI_CACHE_WRITE,
        _GEN_AI_REASONING,
    ),
    _UsageNames(  # OpenInference
        sc.OI_LLM_TOKEN_COUNT_PROMPT,
        sc.OI_LLM_TOKEN_COUNT_COMPLETION,
        (sc.OI_LLM_TOKEN_COUNT_CACHE_READ,),
        (sc.OI_LLM_TOKEN_COUNT_CACHE_WRITE,),
        (sc.OI_LLM_TOKEN_COUNT_REASONING,),
    ),
)
_SESSION_KEYS = (sc.GEN_AI_CONVERSATION_ID, sc.OI_SESSION_ID)
_MODEL_KEYS = (sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_RESPONSE_MODEL, sc.OI_LLM_MODEL_NAME)
_PROVIDER_KEYS = (sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_SYSTEM, sc.OI_LLM_PROVIDER, sc.OI_LLM_SYSTEM)


def payload_from_attributes(span: ReadableSpan) -> SpanPayload:
    """The facts of a span made by other code, read from its attributes.

    Read: the GenAI conventions (``gen_ai.operation.name``), OpenLLMetry's LLM spans
    (``llm.request.type``) and OpenInference's span kinds (``openinference.span.kind``:
    LLM, TOOL, AGENT, and CHAIN at the root of a trace, which is how LangChain and
    LangGraph agents appear).
    """
    attributes = span.attributes or {}
    op = attributes.get(sc.GEN_AI_OPERATION_NAME)
    session_id = _first_str(attributes, _SESSION_KEYS)
    if op is None:
        kind = attributes.get(sc.OPENINFERENCE_SPAN_KIND)
        if kind is not None:
            return _openinference_payload(span, attributes, kind, session_id)
        if attributes.get(sc.LLM_REQUEST_TYPE) in sc.LLM_REQUEST_TYPES:
            op = sc.OP_CHAT
    if op == sc.OP_INVOKE_AGENT:
        return SpanPayload(RUN, session_id, _str(attributes, sc.GEN_AI_AGENT_NAME) or "agent")
    if op in sc.LLM_OPERATIONS:
        return _llm_payload(attributes, session_id, span.name)
    if op == sc.OP_EXECUTE_TOOL:
        return SpanPayload(
            TOOL,
            session_id,
            _str(attributes, sc.GEN_AI_TOOL_NAME) or UNKNOWN_NAME,
            _str(attributes, sc.GEN_AI_TOOL_CALL_ID) or None,
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


def _llm_payload(attributes: Mapping[str, Any], session_id: str, span_name: str) -> SpanPayload:
    # Providers are matched in lower case: OpenLLMetry writes gen_ai.system "Anthropic".
    provider = _first_str(attributes, _PROVIDER_KEYS).lower()
    model = _first_str(attributes, _MODEL_KEYS)
    if not model:
        # The conventions name the span "{operation} {model}": a call refused or failed
        # before the instrumentation set its attributes still says its model there.
        operation, _, named = span_name.partition(" ")
        model = named if operation in sc.LLM_OPERATIONS and named else UNKNOWN_NAME
    return SpanPayload(LLM, session_id, model, provider or UNKNOWN_NAME)


def _openinference_payload(
    span: ReadableSpan, attributes: Mapping[str, Any], kind: object, session_id: str
) -> SpanPayload:
    if kind == sc.OI_KIND_LLM:
        return _llm_payload(attributes, session_id, span.name)
    if kind == sc.OI_KIND_TOOL:
        return SpanPayload(
            TOOL,
            session_id,
            _str(attributes, sc.OI_TOOL_NAME) or UNKNOWN_NAME,
            _str(attributes, sc.OI_TOOL_ID) or None,
        )
    parent = span.parent
    if kind == sc.OI_KIND_AGENT or (
        kind == sc.OI_KIND_CHAIN and (parent is None or parent.is_remote)
    ):
        return SpanPayload(RUN, session_id, _str(attributes, sc.OI_AGENT_NAME) or span.name)
    return SpanPayload(OTHER, session_id)


def role_from_attributes(attributes: Mapping[str, Any], name: str, *, root: bool) -> int:
    """What a finished span read back from a file is: RUN, TURN, LLM, TOOL or OTHER.

    The same reading as ``payload_from_attributes``, for spans that are not live (``root``:
    the span has no parent, which makes an OpenInference CHAIN the run).
    """
    op = attributes.get(sc.GEN_AI_OPERATION_NAME)
    if op is None:
        kind = attributes.get(sc.OPENINFERENCE_SPAN_KIND)
        if kind == sc.OI_KIND_LLM:
            return LLM
        if kind == sc.OI_KIND_TOOL:
            return TOOL
        if kind == sc.OI_KIND_AGENT or (kind == sc.OI_KIND_CHAIN and root):
            return RUN
        if kind is not None:
            return OTHER
        if attributes.get(sc.LLM_REQUEST_TYPE) in sc.LLM_REQUEST_TYPES:
            return LLM
    if op == sc.OP_INVOKE_AGENT:
        return RUN
    if op in sc.LLM_OPERATIONS:
        return LLM
    if op == sc.OP_EXECUTE_TOOL:
        return TOOL
    if op is None and sc.KIT_TURN_INDEX in attributes:
        return TURN
    return OTHER


def call_names(attributes: Mapping[str, Any]) -> tuple[str, str]:
    """An LLM span's (provider, model) in any convention read here ("" when not said)."""
    return _first_str(attributes, _PROVIDER_KEYS).lower(), _first_str(attributes, _MODEL_KEYS)


def tokens_from_attributes(
    attributes: Mapping[str, Any], *, reasoning_within_output: bool = True
) -> TokenUsage | None:
    """An LLM span's disjoint token counts in any convention read here (None: no usage).

    ``reasoning_within_output=False`` keeps a reasoning count larger than the output as
    the span says it (a report shows the file; the aggregator keeps the invariant).
    """
    return _tokens_of(attributes, reasoning_within_output)


def agent_name_of(attributes: Mapping[str, Any]) -> str:
    """The agent name an agent span gives (GenAI or OpenInference), or ""."""
    return _str(attributes, sc.GEN_AI_AGENT_NAME) or _str(attributes, sc.OI_AGENT_NAME)


def tool_name_of(attributes: Mapping[str, Any]) -> str:
    """The tool name a tool span gives (GenAI or OpenInference), or ""."""
    return _str(attributes, sc.GEN_AI_TOOL_NAME) or _str(attributes, sc.OI_TOOL_NAME)


def session_of(attributes: Mapping[str, Any]) -> str:
    """The conversation id a span gives (GenAI or OpenInference), or ""."""
    return _first_str(attributes, _SESSION_KEYS)


def read_end_attributes(span: ReadableSpan, payload: SpanPayload) -> None:
    """Fill a foreign span's payload with what its attributes say at its end."""
    attributes = span.attributes or {}
    error = span.status.status_code is _ERROR
    if payload.role == LLM:
        payload.outcome = _str(attributes, sc.KIT_LLM_OUTCOME) or ("error" if error else "ok")
        tokens = _tokens_of(attributes)
        if error and tokens is None and _refused_by_a_budget(span, attributes):
            # A framework hook raised our BudgetExceeded before the request went out.
            payload.outcome = "budget_denied"
        if tokens is not None:
            cost = _float(attributes.get(sc.KIT_USAGE_COST_USD))
            reasons = attributes.get(sc.GEN_AI_RESPONSE_FINISH_REASONS)
            reason = reasons[0] if isinstance(reasons, (tuple, list)) and reasons else None
            if not isinstance(reason, str):
                reason = _str(attributes, sc.OI_LLM_FINISH_REASON) or None
            payload.usage = LLMUsage(
                tokens=tokens,
                cost_usd=cost,
                priced=cost is not None,
                finish_reason=reason,
                response_id=_str(attributes, sc.GEN_AI_RESPONSE_ID) or None,
            )
    elif payload.role == TOOL:
        payload.is_error = error or attributes.get(sc.KIT_TOOL_IS_ERROR) is True
    elif payload.role == RUN:
        payload.stop_reason = _str(attributes, sc.KIT_RUN_STOP_REASON) or None


def _refused_by_a_budget(span: ReadableSpan, attributes: Mapping[str, Any]) -> bool:
    if _str(attributes, sc.ERROR_TYPE).endswith(_BUDGET_EXCEEDED):
        return True
    return any(
        event.name == sc.EVENT_EXCEPTION
        and str((event.attributes or {}).get(sc.EXCEPTION_TYPE, "")).endswith(_BUDGET_EXCEEDED)
        for event in span.events
    )


def _tokens_of(attributes: Mapping[str, Any], within_output: bool = True) -> TokenUsage | None:
    """A call's disjoint token counts, from the first convention it reports usage in."""
    for names in _USAGE_CONVENTIONS:
        if names.total_input in attributes or names.output in attributes:
            break
    else:
        return None
    total_input = _int(attributes, names.total_input)
    cache_read = _first_int(attributes, names.cache_read)
    cache_write = _first_int(attributes, names.cache_write)
    output = _int(attributes, names.output)
    input_tokens = total_input - cache_read - cache_write
    if input_tokens < 0:
        # The parts exceed the whole, so this instrumentation passed on Anthropic's own
        # input_tokens (which excludes the cache) as the total: it is the uncached input.
        input_tokens = total_input
    return TokenUsage(
        input_tokens=input_tokens,
        output_tokens=output,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=(
            min(_first_int(attributes, names.reasoning), output)
            if within_output
            else _first_int(attributes, names.reasoning)
        ),
    )


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


def _first_str(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _first_int(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> int:
    for key in keys:
        if key in attributes:
            return _int(attributes, key)
    return 0
