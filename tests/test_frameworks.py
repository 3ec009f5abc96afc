"""Recipes for agent frameworks, run offline with the real frameworks from PyPI.

Each framework runs with its own OpenTelemetry instrumentation on kit-telemetry's tracer
provider, against a fake model that reports usage the way the framework's real model
adapters do. Each test shows what a user of that framework gets: the enriched end event
(calls, tokens, cost), the Prometheus metrics, and a ``kt.Budget`` stopping the agent
before its next model call once the limit is reached (budgets are charged with the calls
of other code; a framework hook reads ``tel.budget_status()`` before each request).

Costs are computed by hand from OpenAI's published gpt-4o prices: $2.50 per million input
tokens, $1.25 per million cached input tokens, $10 per million output tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import kit_telemetry as kt
from kit_telemetry.testing import Capture, capture

GPT_4O = kt.ModelPrice(input_per_mtok=2.5, output_per_mtok=10.0, cache_read_per_mtok=1.25)
PRICES = {"gpt-4o": GPT_4O}


def usd(input_tokens: int, output: int, cache_read: int = 0) -> float:
    """gpt-4o's published rates, each token kind counted once."""
    return (input_tokens * 2.5 + cache_read * 1.25 + output * 10.0) / 1e6


def refuse_when_spent(tel: kt.Telemetry) -> None:
    """The recipe's budget check, for a framework's before-model-request hook."""
    for status in tel.budget_status():
        if status.remaining <= 0:
            raise kt.BudgetExceeded(
                status.name,
                scope_key=status.scope_key,
                limit=status.limit,
                spent=status.spent,
                reserved=status.reserved,
                requested=0.0,
                window_end=status.window_end,
                unit=status.unit,
            )


def ends(cap: Capture) -> list[kt.AgentEndEvent]:
    return [e for e in cap.events_of(kt.EventType.AGENT_END) if isinstance(e, kt.AgentEndEvent)]


def run_with_calls(cap: Capture, agent_name: str | None = None) -> kt.AgentEndEvent:
    """The end event of the run that made the LLM calls (the agent's, when it is named:
    runs around it include its calls as a sub-agent's)."""
    (end,) = [
        e
        for e in ends(cap)
        if e.llm_call_count and agent_name in (None, e.agent_name) and not e.subagent_count
    ]
    return end


# --- pydantic-ai -----------------------------------------------------------------------------


def _pydantic_ai_agent(cap: Capture, hooks: Any = None) -> Any:
    from pydantic_ai import Agent
    from pydantic_ai.capabilities.instrumentation import Instrumentation
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.usage import RequestUsage

    def model(messages: list[Any], info: AgentInfo) -> ModelResponse:
        # What OpenAIChatModel hands back: the tool call first, then the answer.
        if len(messages) == 1:
            return ModelResponse(
                parts=[ToolCallPart("lookup", {"q": "weather"})],
                usage=RequestUsage(input_tokens=1200, cache_read_tokens=200, output_tokens=50),
                model_name="gpt-4o",
                finish_reason="tool_call",
            )
        return ModelResponse(
            parts=[TextPart("sunny")],
            usage=RequestUsage(input_tokens=1500, output_tokens=80),
            model_name="gpt-4o",
            finish_reason="stop",
        )

    capabilities: list[Any] = [
        Instrumentation(
            settings=InstrumentationSettings(tracer_provider=cap.telemetry.tracer_provider)
        )
    ]
    if hooks is not None:
        capabilities.append(hooks)
    agent = Agent(
        FunctionModel(model, model_name="gpt-4o"), name="weather", capabilities=capabilities
    )

    @agent.tool_plain
    def lookup(q: str) -> str:
        return "sunny"

    return agent


def test_pydantic_ai_run_gives_an_enriched_end_event_and_metrics() -> None:
    """pydantic-ai's invoke_agent/chat/execute_tool spans: calls, disjoint tokens, cost, tool."""
    with capture(prices=PRICES) as cap:
        agent = _pydantic_ai_agent(cap)
        result = agent.run_sync("weather?")
        end = run_with_calls(cap)
        calls = cap.metric("kit_llm_calls_total", provider="function", model="gpt-4o", outcome="ok")
        input_tokens = cap.metric(
            "kit_llm_tokens_total", provider="function", model="gpt-4o", token_type="input"
        )
        tool_calls = cap.metric("kit_tool_calls_total", tool="lookup", outcome="ok")
        runs = cap.metric("kit_agent_runs_total", agent="weather", stop_reason="stop")
    assert result.output == "sunny"
    assert (end.agent_name, end.stop_reason) == ("weather", "stop")
    assert (end.llm_call_count, end.turn_count) == (2, 2)
    # 1200 prompt tokens of which 200 cached, then 1500: disjoint kinds.
    assert (end.input_tokens, end.cache_read_tokens, end.output_tokens) == (2500, 200, 130)
    # The invoke_agent span's gen_ai.aggregated_usage.* totals are not added on top.
    assert end.cost_usd == pytest.approx(usd(2500, 130, cache_read=200))
    assert end.cost_complete and end.tool_names == ("lookup",)
    assert (calls, input_tokens, tool_calls, runs) == (2, 2500, 1, 1)


def test_pydantic_ai_agent_is_stopped_by_a_budget_before_its_next_model_call() -> None:
    """A $0.004 budget: the first call ($0.00325) fits, the second is refused before the request."""
    from pydantic_ai.capabilities.hooks import Hooks

    with capture(prices=PRICES, budgets=[kt.Budget(name="cap", limit_usd=0.003)]) as cap:
        hooks = Hooks()
        requests: list[int] = []

        @hooks.on.before_model_request
        async def check(ctx: Any, request: Any) -> Any:
            refuse_when_spent(cap.telemetry)
            requests.append(1)
            return request

        agent = _pydantic_ai_agent(cap, hooks)
        with pytest.raises(kt.BudgetExceeded) as refused:
            agent.run_sync("weather?")
        (status,) = cap.telemetry.budget_status()
        usage = cap.events_of(kt.EventType.LLM_USAGE)
        # pydantic-ai sets the provider only once the request is made: the name says the model.
        denied = cap.metric(
            "kit_llm_calls_total", provider="unknown", model="gpt-4o", outcome="budget_denied"
        )
    assert len(requests) == 1 and len(usage) == 1
    assert refused.value.budget == "cap"
    # The refused request's chat span is a denied call, not a failed or unpriced one.
    assert denied == 1
    assert status.spent == pytest.approx(usd(1000, 50, cache_read=200))


# --- OpenAI Agents SDK, through openinference-instrumentation-openai-agents -----------------


@pytest.fixture
def openai_agents_tracing(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The OpenInference instrumentor, uninstrumented after the test (it is process-wide)."""
    from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

    instrumentor = OpenAIAgentsInstrumentor()
    yield instrumentor
    instrumentor.uninstrument()


def _openai_agents_model() -> Any:
    from agents.items import ModelResponse
    from agents.models.interface import Model
    from agents.tracing import generation_span
    from agents.usage import Usage
    from openai.types.responses import (
        ResponseFunctionToolCall,
        ResponseOutputMessage,
        ResponseOutputText,
    )
    from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

    class FakeChatCompletionsModel(Model):
        """Answers like OpenAIChatCompletionsModel, with a generation span of its usage."""

        def __init__(self) -> None:
            self.calls = 0

        async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
            self.calls += 1
            output: list[Any]
            if self.calls == 1:
                output = [
                    ResponseFunctionToolCall(
                        type="function_call", call_id="c1", name="lookup", arguments="{}", id="f1"
                    )
                ]
                tokens = (1200, 50)
            else:
                text = ResponseOutputText(type="output_text", text="sunny", annotations=[])
                output = [
                    ResponseOutputMessage(
                        id="m1",
                        type="message",
                        role="assistant",
                        status="completed",
                        content=[text],
                    )
                ]
                tokens = (1500, 80)
            with generation_span(
                model="gpt-4o", model_config={"base_url": "https://api.openai.com/v1/"}
            ) as span:
                span.span_data.usage = {"input_tokens": tokens[0], "output_tokens": tokens[1]}
            usage = Usage(
                requests=1,
                input_tokens=tokens[0],
                output_tokens=tokens[1],
                total_tokens=sum(tokens),
                input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
                output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
            )
            return ModelResponse(output=output, usage=usage, response_id=f"resp-{self.calls}")

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    return FakeChatCompletionsModel()


def _openai_agent() -> Any:
    from agents import Agent, function_tool

    @function_tool
    def lookup() -> str:
        """Look the weather up."""
        return "sunny"

    return Agent(name="weather", model=_openai_agents_model(), tools=[lookup])


def test_openai_agents_run_gives_an_enriched_end_event_and_metrics(
    openai_agents_tracing: Any,
) -> None:
    """OpenInference's AGENT/LLM/TOOL spans of an Agents SDK run: calls, tokens, cost, tool."""
    from agents import Runner

    with capture(prices=PRICES) as cap:
        openai_agents_tracing.instrument(tracer_provider=cap.telemetry.tracer_provider)
        result = Runner.run_sync(_openai_agent(), "weather?")
        end = run_with_calls(cap, "weather")
        (workflow,) = [e for e in ends(cap) if e.subagent_count]
        calls = cap.metric("kit_llm_calls_total", provider="openai", model="gpt-4o", outcome="ok")
        output_tokens = cap.metric(
            "kit_llm_tokens_total", provider="openai", model="gpt-4o", token_type="output"
        )
        tool_calls = cap.metric("kit_tool_calls_total", tool="lookup", outcome="ok")
    assert result.final_output == "sunny"
    assert end.agent_name == "weather"
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (2, 2700, 130)
    assert end.cost_usd == pytest.approx(usd(2700, 130))
    assert end.tool_names == ("lookup",)
    # The SDK's workflow span around the agent's rolls the agent's calls up, as a parent run.
    assert (workflow.llm_call_count, workflow.cost_usd) == (2, pytest.approx(usd(2700, 130)))
    assert (calls, output_tokens, tool_calls) == (2, 130, 1)


def test_openai_agents_run_is_stopped_by_a_budget_before_its_next_model_call(
    openai_agents_tracing: Any,
) -> None:
    """RunHooks.on_llm_start refuses the second call once the first spent the budget."""
    from agents import RunHooks, Runner

    class BudgetHooks(RunHooks[Any]):
        def __init__(self, tel: kt.Telemetry) -> None:
            self.tel = tel
            self.started = 0

        async def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
            refuse_when_spent(self.tel)
            self.started += 1

    with capture(prices=PRICES, budgets=[kt.Budget(name="cap", limit_usd=0.003)]) as cap:
        openai_agents_tracing.instrument(tracer_provider=cap.telemetry.tracer_provider)
        hooks = BudgetHooks(cap.telemetry)
        with pytest.raises(kt.BudgetExceeded):
            Runner.run_sync(_openai_agent(), "weather?", hooks=hooks)
        (status,) = cap.telemetry.budget_status()
    assert hooks.started == 1
    assert status.spent == pytest.approx(usd(1200, 50))


# --- LangGraph, through openinference-instrumentation-langchain ------------------------------


@pytest.fixture
def langchain_tracing() -> Iterator[Any]:
    from openinference.instrumentation.langchain import LangChainInstrumentor

    instrumentor = LangChainInstrumentor()
    yield instrumentor
    instrumentor.uninstrument()


def _langgraph_agent(callbacks: list[Any] | None = None) -> Any:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool
    from langgraph.prebuilt import create_react_agent

    class FakeChatModel(GenericFakeChatModel):
        """Answers like ChatOpenAI: a tool call, then text, each with usage_metadata."""

        model_name: str = "gpt-4o"

        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

        def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
            # What ChatOpenAI reports to tracers: OpenInference reads provider and model here.
            params = super()._get_ls_params(stop=stop, **kwargs)
            params.update(ls_provider="openai", ls_model_name="gpt-4o")
            return params

    answers = iter(
        [
            AIMessage(
                content="",
                tool_calls=[{"name": "lookup", "args": {}, "id": "call_1"}],
                usage_metadata={
                    "input_tokens": 1200,
                    "output_tokens": 50,
                    "total_tokens": 1250,
                    "input_token_details": {"cache_read": 200},
                },
                response_metadata={"model_name": "gpt-4o"},
            ),
            AIMessage(
                content="sunny",
                usage_metadata={"input_tokens": 1500, "output_tokens": 80, "total_tokens": 1580},
                response_metadata={"model_name": "gpt-4o"},
            ),
        ]
    )

    @tool
    def lookup() -> str:
        """Look the weather up."""
        return "sunny"

    model = FakeChatModel(messages=answers, callbacks=callbacks)
    return create_react_agent(model, [lookup], name="weather")


def test_langgraph_run_gives_an_enriched_end_event_and_metrics(langchain_tracing: Any) -> None:
    """A LangGraph ReAct agent's CHAIN/LLM/TOOL spans: calls, tokens, cost, tool."""
    with capture(prices=PRICES) as cap:
        langchain_tracing.instrument(tracer_provider=cap.telemetry.tracer_provider)
        result = _langgraph_agent().invoke({"messages": [("user", "weather?")]})
        end = run_with_calls(cap)
        tool_calls = cap.metric("kit_tool_calls_total", tool="lookup", outcome="ok")
    assert result["messages"][-1].content == "sunny"
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (2, 2500, 130)
    assert end.cache_read_tokens == 200
    assert end.cost_usd == pytest.approx(usd(2500, 130, cache_read=200))
    assert end.tool_names == ("lookup",)
    assert tool_calls == 1


def test_langgraph_agent_is_stopped_by_a_budget_before_its_next_model_call(
    langchain_tracing: Any,
) -> None:
    """A callback handler that raises refuses the second model call once the budget is spent."""
    from langchain_core.callbacks import BaseCallbackHandler

    class BudgetCallback(BaseCallbackHandler):
        raise_error = True  # LangChain swallows callback errors unless told otherwise

        def __init__(self, tel: kt.Telemetry) -> None:
            self.tel = tel
            self.started = 0

        def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
            refuse_when_spent(self.tel)
            self.started += 1

    with capture(prices=PRICES, budgets=[kt.Budget(name="cap", limit_usd=0.003)]) as cap:
        langchain_tracing.instrument(tracer_provider=cap.telemetry.tracer_provider)
        callback = BudgetCallback(cap.telemetry)
        with pytest.raises(kt.BudgetExceeded):
            _langgraph_agent([callback]).invoke({"messages": [("user", "weather?")]})
        (status,) = cap.telemetry.budget_status()
    assert callback.started == 1
    assert status.spent == pytest.approx(usd(1000, 50, cache_read=200))
