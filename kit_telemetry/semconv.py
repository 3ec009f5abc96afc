"""Every span name, span attribute and span event name kit-telemetry reads or writes.

GenAI names follow the OpenTelemetry GenAI semantic conventions; ``kit.*`` names are ours.
No other module spells these strings inline.
"""

from __future__ import annotations

from .tokens import TOKEN_KINDS

# --- GenAI semantic conventions -------------------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_SYSTEM = (
    "gen_ai.system"  # provider.name before; read on foreign spans, legacy_names writes it
)
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"  # total input, cached tokens included
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
# The cache-write count under its current name (semantic-conventions-genai spans.yaml,
# attributes.gen_ai.usage); it is part of gen_ai.usage.input_tokens.
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
# Not a GenAI name: some instrumentations spell cache writes this way; read, never written.
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"  # an attribute of gen_ai.client.token.usage
GEN_AI_AGENT_ID = "gen_ai.agent.id"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

# --- older generations of the GenAI names, read on spans of other instrumentations ---------
# gen_ai.usage.prompt_tokens / completion_tokens: the GenAI names before input/output
# (semconv <= 1.26, OpenLLMetry's LLM_USAGE_PROMPT_TOKENS); prompt includes cached tokens.
GEN_AI_USAGE_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"
GEN_AI_USAGE_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"
# OpenLLMetry (traceloop opentelemetry-semantic-conventions-ai) cache and reasoning names.
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_FLAT = "gen_ai.usage.cache_read_input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_FLAT = "gen_ai.usage.cache_creation_input_tokens"
GEN_AI_USAGE_REASONING_TOKENS_FLAT = "gen_ai.usage.reasoning_tokens"
# OpenLLMetry's first names (llm.usage.*); prompt includes cached tokens.
LLM_USAGE_PROMPT_TOKENS = "llm.usage.prompt_tokens"
LLM_USAGE_COMPLETION_TOKENS = "llm.usage.completion_tokens"
# OpenLLMetry marks its LLM spans with llm.request.type instead of gen_ai.operation.name.
LLM_REQUEST_TYPE = "llm.request.type"
LLM_REQUEST_TYPES = frozenset({"chat", "completion"})
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
ERROR_TYPE = "error.type"
# The conventions' value for "none of the known ones" (error.type, gen_ai.provider.name).
OTHER_VALUE = "_OTHER"

# GenAI metric names (OpenTelemetry instruments; Prometheus reads them with _ and a unit).
METRIC_GEN_AI_CLIENT_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_GEN_AI_CLIENT_OPERATION_DURATION = "gen_ai.client.operation.duration"
# Defined in semantic-conventions-genai model/gen-ai/metrics.yaml; newer than the
# opentelemetry-semantic-conventions package, which does not list them yet.
METRIC_GEN_AI_INVOKE_AGENT_DURATION = "gen_ai.invoke_agent.duration"
METRIC_GEN_AI_EXECUTE_TOOL_DURATION = "gen_ai.execute_tool.duration"
GENAI_SPEC_NAMES_NEWER_THAN_PACKAGE = frozenset(
    {METRIC_GEN_AI_INVOKE_AGENT_DURATION, METRIC_GEN_AI_EXECUTE_TOOL_DURATION}
)

# The OpenTelemetry exception event (what Span.record_exception adds).
EVENT_EXCEPTION = "exception"
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_STACKTRACE = "exception.stacktrace"

# gen_ai.operation.name values
OP_INVOKE_AGENT = "invoke_agent"
OP_CHAT = "chat"
OP_EXECUTE_TOOL = "execute_tool"
# Operations of other instrumentations that are LLM calls too.
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})

# --- OpenInference (Arize Phoenix: openinference-semantic-conventions) --------------------
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
OI_KIND_LLM = "LLM"
OI_KIND_TOOL = "TOOL"
OI_KIND_AGENT = "AGENT"
OI_KIND_CHAIN = "CHAIN"  # a workflow; the run only at the root of a trace (LangChain, LangGraph)
OI_LLM_MODEL_NAME = "llm.model_name"
OI_LLM_PROVIDER = "llm.provider"
OI_LLM_SYSTEM = "llm.system"
# llm.token_count.prompt is the whole prompt; the prompt_details.* counts are parts of it.
OI_LLM_TOKEN_COUNT_PROMPT = "llm.token_count.prompt"
OI_LLM_TOKEN_COUNT_COMPLETION = "llm.token_count.completion"
OI_LLM_TOKEN_COUNT_CACHE_READ = "llm.token_count.prompt_details.cache_read"
OI_LLM_TOKEN_COUNT_CACHE_WRITE = "llm.token_count.prompt_details.cache_write"
OI_LLM_TOKEN_COUNT_REASONING = "llm.token_count.completion_details.reasoning"
OI_LLM_FINISH_REASON = "llm.finish_reason"
OI_SESSION_ID = "session.id"
OI_AGENT_NAME = "agent.name"
OI_TOOL_NAME = "tool.name"
OI_TOOL_ID = "tool.id"

# --- kit-telemetry's own --------------------------------------------------------------
SPAN_SESSION_START = "kit.session.start"
SPAN_SESSION_END = "kit.session.end"
EVENT_USER_INPUT = "kit.user_input"
# The prompt and the answer under their names before gen_ai.input.messages and
# gen_ai.output.messages: written only with legacy_names.
EVENT_USER_INPUT_TEXT = "kit.user_input.text"
EVENT_RETRY = "kit.retry"  # a span event of an LLM call that is retried
KIT_RETRY_ATTEMPT = "kit.retry.attempt"
KIT_RETRY_ERROR = "kit.retry.error"

KIT_SESSION_FILE = "kit.session.file"
KIT_SESSION_USER = "kit.session.user"
KIT_RUN_ID = "kit.run.id"
KIT_RUN_STOP_REASON = "kit.run.stop_reason"
KIT_RUN_RESPONSE = "kit.run.response"  # legacy_names only, as EVENT_USER_INPUT_TEXT
KIT_RUN_MESSAGES = "kit.run.messages"  # JSON text, under content capture only
KIT_TURN_MESSAGE = "kit.turn.message"  # JSON text, under content capture only
KIT_TURN_INDEX = "kit.turn.index"
KIT_LLM_STEP = "kit.llm.step"
KIT_LLM_OUTCOME = "kit.llm.outcome"  # ok | error | budget_denied | cancelled
KIT_USAGE_COST_USD = "kit.usage.cost_usd"
KIT_USAGE_EXTRA_COST_USD = "kit.usage.extra_cost_usd"  # charges that are not tokens
KIT_USAGE_EXTRA_COST_KINDS = "kit.usage.extra_cost_kinds"  # e.g. ("web_search",)
# The provider reported no usable usage: the call is unpriced; these are kit's estimates.
KIT_USAGE_ESTIMATED = "kit.usage.estimated"
KIT_USAGE_ESTIMATED_INPUT_TOKENS = "kit.usage.estimated_input_tokens"
KIT_USAGE_ESTIMATED_OUTPUT_TOKENS = "kit.usage.estimated_output_tokens"
KIT_TOOL_IS_ERROR = "kit.tool.is_error"
KIT_TOOL_OUTCOME = "kit.tool.outcome"  # set when not ok: blocked
KIT_BLOCKED_BY = "kit.blocked.extension"  # the extension that blocked the call
KIT_BUDGET_DENIED = "kit.budget.denied"  # the name of the budget that refused the call

# Totals written on run spans (kit.run.*) and session-end spans (kit.session.*).
TOTAL_FIELDS = (
    "llm_call_count",
    "tool_call_count",
    "tool_names",
    *TOKEN_KINDS,
    "cost_usd",
    "unpriced_call_count",
    "cost_complete",
    "turn_count",
    "duration_ms",
)
KIT_RUN_PREFIX = "kit.run."
KIT_SESSION_PREFIX = "kit.session."
KIT_SESSION_RUN_COUNT = "kit.session.run_count"
# False when some call of the run (session) had no price: its cost_usd is a lower bound.
KIT_RUN_COST_COMPLETE = "kit.run.cost_complete"
KIT_SESSION_COST_COMPLETE = "kit.session.cost_complete"


def total_attribute(prefix: str, field: str) -> str:
    """The attribute name of one total, e.g. ``total_attribute(KIT_RUN_PREFIX, "cost_usd")``."""
    return prefix + field
