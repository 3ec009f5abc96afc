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
    "turn_count",
    "duration_ms",
)
KIT_RUN_PREFIX = "kit.run."
KIT_SESSION_PREFIX = "kit.session."
KIT_SESSION_RUN_COUNT = "kit.session.run_count"


def total_attribute(prefix: str, field: str) -> str:
    """The attribute name of one total, e.g. ``total_attribute(KIT_RUN_PREFIX, "cost_usd")``."""
    return prefix + field
