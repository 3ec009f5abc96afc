"""The demo's agent loop: a small coding agent, instrumented with kit-telemetry's API.

It is also the reference for instrumenting a real agent: one session per conversation,
one run per prompt, one turn per model call with the tool calls it asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kit_telemetry import usage
from kit_telemetry.errors import BudgetExceeded
from kit_telemetry.events import AgentEndEvent
from kit_telemetry.instrumentation import Session

from .pacing import Pacing
from .simulated import DemoModel, SimulatedModel
from .tools import SimulatedTools, tool_message

MAX_TURNS = 12
MAX_TOKENS = 1024
# Only Anthropic's Messages API requires max_tokens; agents on the others mostly leave it to
# the model's default. A call declared without it reserves no output against a budget, so
# a budget can end a little over its limit (the case the Exhausted alerts are for).
_DECLARES_MAX_TOKENS = frozenset({"anthropic"})

_FROM_PROVIDER = {
    "anthropic": usage.from_anthropic,
    "openai": usage.from_openai,
    "google": usage.from_gemini,
}
# The OpenTelemetry GenAI provider names of the simulated providers.
_GENAI_PROVIDER = {"anthropic": "anthropic", "openai": "openai", "google": "gcp.gemini"}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    """What one demo run produced."""

    session_id: str
    model: str
    end: AgentEndEvent | None
    failed_tools: int
    budget_stop: BudgetExceeded | None


def run_agent(
    session: Session,
    prompt: str,
    model: DemoModel,
    *,
    seed: int,
    tools: SimulatedTools,
    pacing: Pacing | None = None,
) -> RunOutcome:
    """Run one prompt to a final answer (or a budget stop) against the simulated model.

    ``pacing`` makes the model and the tools take wall time, so that the spans' durations
    and the metrics' rates look like a real agent's; without it the run takes milliseconds.
    """
    llm = SimulatedModel(seed, model.provider, model.model, api=model.api)
    normalise = _FROM_PROVIDER[model.provider]
    provider = _GENAI_PROVIDER[model.provider]
    messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    budget_stop: BudgetExceeded | None = None
    failed_tools = 0
    try:
        with session.run(prompt, agent_name="coder") as run:
            for _ in range(MAX_TURNS):
                with run.turn() as turn:
                    with turn.llm_call(
                        provider=provider,
                        model=model.model,
                        max_tokens=MAX_TOKENS if model.provider in _DECLARES_MAX_TOKENS else None,
                    ) as call:
                        response = llm.complete(messages, MAX_TOKENS)
                        if pacing is not None:
                            pacing.model_call(response.latency_s)
                        call.record_usage(**normalise(response.raw))
                    messages.append(response.message())
                    for request in response.tool_calls:
                        with turn.tool_call(
                            request.name, call_id=request.call_id, arguments=request.arguments
                        ) as tool:
                            if pacing is not None:
                                pacing.tool_call(request.name)
                            try:
                                result, is_error = tools.run(request.name, request.arguments)
                            except Exception as exc:  # a crashed tool is reported to the model
                                result, is_error = f"{type(exc).__name__}: {exc}", True
                            tool.set_result(result, is_error=is_error)
                        failed_tools += is_error
                        messages.append(tool_message(request, result, is_error))
                if not response.tool_calls:
                    run.set_response(response.text)
                    break
    except BudgetExceeded as exc:
        budget_stop = exc
    return RunOutcome(
        session_id=session.session_id,
        model=model.model,
        end=run.end_event,
        failed_tools=failed_tools,
        budget_stop=budget_stop,
    )
