"""Every span name, span attribute and span event name kit-telemetry reads or writes.

GenAI names follow the OpenTelemetry GenAI semantic conventions; ``kit.*`` names are ours.
No other module spells these strings inline.
"""

from __future__ import annotations

from .tokens import TOKEN_KINDS

# --- GenAI semantic conventions -------------------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_SYSTEM = "gen_ai.system"  # the older name of gen_ai.provider.name, read for foreign spans
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"  # total input, cached tokens included
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
# The cache-write name of the current conventions (cache_creation was its first spelling).
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"

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
EVENT_USER_INPUT_TEXT = "kit.user_input.text"

KIT_SESSION_FILE = "kit.session.file"
KIT_SESSION_USER = "kit.session.user"
KIT_RUN_ID = "kit.run.id"
KIT_RUN_STOP_REASON = "kit.run.stop_reason"
KIT_RUN_RESPONSE = "kit.run.response"
KIT_TURN_INDEX = "kit.turn.index"
KIT_LLM_STEP = "kit.llm.step"
KIT_LLM_OUTCOME = "kit.llm.outcome"  # ok | error | budget_denied | cancelled
KIT_USAGE_COST_USD = "kit.usage.cost_usd"
# The provider reported no usable usage: the call is unpriced; these are kit's estimates.
KIT_USAGE_ESTIMATED = "kit.usage.estimated"
KIT_USAGE_ESTIMATED_INPUT_TOKENS = "kit.usage.estimated_input_tokens"
KIT_USAGE_ESTIMATED_OUTPUT_TOKENS = "kit.usage.estimated_output_tokens"
KIT_TOOL_IS_ERROR = "kit.tool.is_error"
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
