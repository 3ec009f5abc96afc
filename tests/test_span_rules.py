"""Which spans of other code count as calls, and when: the rules of ``UsageAggregator``.

What a span is and its usage are read at its end, so an instrumentation may set
``gen_ai.operation.name`` (or ``openinference.span.kind``) and its token counts at any time
before ``end``. An LLM span outside any agent span is a run of its own. One model call
described by several instrumentations counts once; agent spans carrying totals never add
to their calls.

Prices are the published OpenAI gpt-4o rates, set explicitly so the arithmetic here is
the whole story: $2.50 per million input tokens, $1.25 cached, $10 output.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode, Tracer

import kit_telemetry as kt
from kit_telemetry.testing import Capture, capture

GPT_4O = kt.ModelPrice(input_per_mtok=2.5, output_per_mtok=10.0, cache_read_per_mtok=1.25)


def usd(input_tokens: int, output: int, cache_read: int = 0) -> float:
    return (input_tokens * 2.5 + cache_read * 1.25 + output * 10.0) / 1e6


def tracer_of(cap: Capture) -> Tracer:
    return cap.telemetry.tracer_provider.get_tracer("some.framework")


def chat_attributes(**extra: Any) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        **extra,
    }


def usage_attributes(total_input: int, output: int, cache_read: int = 0) -> dict[str, Any]:
    return {
        "gen_ai.usage.input_tokens": total_input,
        "gen_ai.usage.output_tokens": output,
        "gen_ai.usage.cache_read.input_tokens": cache_read,
        "gen_ai.response.finish_reasons": ("stop",),
    }


def sdk_chat(tracer: Tracer, total_input: int, output: int, cache_read: int = 0) -> None:
    """A provider SDK instrumentation's chat span: kind at start, usage before end."""
    with tracer.start_as_current_span(
        "chat gpt-4o", kind=SpanKind.CLIENT, attributes=chat_attributes()
    ) as span:
        span.set_attributes(usage_attributes(total_input, output, cache_read))


def agent(tracer: Tracer, conversation: str = "conv-1", **extra: Any) -> Any:
    return tracer.start_as_current_span(
        "invoke_agent helper",
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "helper",
            "gen_ai.conversation.id": conversation,
            **extra,
        },
    )


def one_end(cap: Capture) -> kt.AgentEndEvent:
    (end,) = cap.events_of(kt.EventType.AGENT_END)
    assert isinstance(end, kt.AgentEndEvent)
    return end


def calls_metric(cap: Capture) -> float | None:
    return cap.metric("kit_llm_calls_total", provider="openai", model="gpt-4o", outcome="ok")


# --- attributes that arrive after the start --------------------------------------------------


def test_a_chat_span_that_says_what_it_is_after_its_start_is_counted() -> None:
    """Frameworks often start a span and set gen_ai.operation.name a moment later."""
    with capture(prices={"gpt-4o": GPT_4O}) as cap:
        tracer = tracer_of(cap)
        with agent(tracer):
            with tracer.start_as_current_span("model request") as span:
                span.set_attributes(chat_attributes())
                span.set_attributes(usage_attributes(1200, 100, cache_read=200))
        end = one_end(cap)
        usage = cap.events_of(kt.EventType.LLM_USAGE)
        calls = calls_metric(cap)
    assert len(usage) == 1 and isinstance(usage[0], kt.LLMUsageEvent)
    assert (usage[0].model, usage[0].input_tokens, usage[0].cache_read_tokens) == (
        "gpt-4o",
        1000,
        200,
    )
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (1, 1000, 100)
    assert end.cost_usd == pytest.approx(usd(1000, 100, cache_read=200))
    assert calls == 1


def test_an_openinference_kind_set_after_the_start_is_read_at_the_end() -> None:
    """openinference.span.kind LLM and its token counts set late still make one priced call."""
    with capture(prices={"gpt-4o": GPT_4O}) as cap:
        tracer = tracer_of(cap)
        with agent(tracer):
            with tracer.start_as_current_span("ChatOpenAI") as span:
                span.set_attributes(
                    {
                        "openinference.span.kind": "LLM",
                        "llm.model_name": "gpt-4o",
                        "llm.provider": "openai",
                        "llm.token_count.prompt": 300,
                        "llm.token_count.completion": 30,
                    }
                )
        end = one_end(cap)
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (1, 300, 30)
    assert end.cost_usd == pytest.approx(usd(300, 30))


def test_a_tool_span_marked_after_its_start_gives_both_tool_events() -> None:
    """A late execute_tool still yields tool_call then tool_result and counts in the run."""
    with capture(prices={"gpt-4o": GPT_4O}) as cap:
        tracer = tracer_of(cap)
        with agent(tracer):
            with tracer.start_as_current_span("run tool") as span:
                span.set_attributes(
                    {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}
                )
        end = one_end(cap)
        types = [e.type for e in cap.events]
        tool_calls = cap.metric("kit_tool_calls_total", tool="search", outcome="ok")
    assert end.tool_names == ("search",)
    assert types.index(kt.EventType.TOOL_CALL) < types.index(kt.EventType.TOOL_RESULT)
    assert tool_calls == 1


# --- calls outside any agent span --------------------------------------------------------------


def test_a_chat_span_without_an_agent_is_a_run_of_its_own() -> None:
    """A bare instrumented SDK call is counted, priced, metered and ends an implicit run."""
    with capture(prices={"gpt-4o": GPT_4O}) as cap:
        tracer = tracer_of(cap)
        with tracer.start_as_current_span(
            "chat gpt-4o",
            kind=SpanKind.CLIENT,
            attributes=chat_attributes(**{"gen_ai.conversation.id": "conv-bare"}),
        ) as span:
            span.set_attributes(usage_attributes(500, 50))
        types = [e.type.value for e in cap.events]
        end = one_end(cap)
        (usage,) = cap.events_of(kt.EventType.LLM_USAGE)
        calls = calls_metric(cap)
        runs = cap.metric("kit_agent_runs_total", agent=end.agent_name, stop_reason="stop")
        session = cap.telemetry.aggregator.session_usage("conv-bare")
    assert types == ["agent_start", "user_input", "llm_usage", "agent_end"]
    assert isinstance(usage, kt.LLMUsageEvent)
    assert usage.run_id == end.run_id and usage.session_id == "conv-bare"
    assert end.session_id == "conv-bare"
    assert (end.llm_call_count, end.turn_count, end.input_tokens) == (1, 1, 500)
    assert end.cost_usd == pytest.approx(usd(500, 50))
    assert end.stop_reason == "stop"
    assert calls == 1 and runs == 1
    assert (session.run_count, session.llm_call_count) == (1, 1)


def test_two_bare_calls_are_two_runs() -> None:
    """Each call outside an agent span ends its own run with its own totals."""
    with capture(prices={"gpt-4o": GPT_4O}) as cap:
        tracer = tracer_of(cap)
        sdk_chat(tracer, 100, 10)
        sdk_chat(tracer, 200, 20)
        ends = cap.events_of(kt.EventType.AGENT_END)
    assert [(e.llm_call_count, e.input_tokens) for e in ends] == [(1, 100), (1, 200)]
    assert len({e.run_id for e in ends}) == 2


def test_a_late_marked_chat_span_without_an_agent_is_still_a_run() -> None:
    """No agent span and the operation set after the start: still one implicit run."""
    with capture(prices={"gpt-4o": GPT_4O}) as cap:
        tracer = tracer_of(cap)
        with tracer.start_as_current_span("llm") as span:
            span.set_attributes({**chat_attributes(), **usage_attributes(400, 40)})
        end = one_end(cap)
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (1, 400, 40)
    assert end.cost_usd == pytest.approx(usd(400, 40))


def test_a_framework_chat_span_around_the_sdk_span_without_an_agent_is_one_call_one_run() -> None:
    """Two instrumentations of one call outside any agent: one call, one run, ended once."""
    with capture(prices={"gpt-4o": GPT_4O}) as cap:
        tracer = tracer_of(cap)
        with tracer.start_as_current_span("chat gpt-4o", attributes=chat_attributes()) as outer:
            sdk_chat(tracer, 800, 80)
            outer.set_attributes(usage_attributes(800, 80))
        end = one_end(cap)
        usage = cap.events_of(kt.EventType.LLM_USAGE)
        calls = calls_metric(cap)
    assert len(usage) == 1
    assert (end.llm_call_count, end.input_tokens) == (1, 800)
    assert calls == 1


def test_a_late_marked_framework_span_around_the_sdk_span_counts_once() -> None:
    """The wrapper said it was a chat only after its child started: still one call."""
    with capture(prices={"gpt-4o": GPT_4O}) as cap:
        tracer = tracer_of(cap)
        with agent(tracer):
            with tracer.start_as_current_span("model request") as outer:
                outer.set_attributes(chat_attributes())
                sdk_chat(tracer, 600, 60)
                outer.set_attributes(usage_attributes(600, 60))
        end = one_end(cap)
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (1, 600, 60)


# --- one call, several instrumentations --------------------------------------------------------


def test_kits_llm_call_around_an_instrumented_sdk_call_counts_once_as_kits() -> None:
    """Our llm_call span counts; the SDK instrumentation's span inside it does not."""
    with capture(prices={"gpt-4o": GPT_4O}) as cap:
        tracer = tracer_of(cap)
        with cap.telemetry.session("s") as session, session.run("go") as run:
            with run.llm_call("openai", "gpt-4o") as call:
                sdk_chat(tracer, 1000, 100)
                call.record_usage(input_tokens=1000, output_tokens=100)
        usage = cap.events_of(kt.EventType.LLM_USAGE)
        calls = calls_metric(cap)
    end = run.end_event
    assert end is not None
    assert len(usage) == 1
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (1, 1000, 100)
    assert end.cost_usd == pytest.approx(usd(1000, 100))
    assert calls == 1


def test_kits_llm_call_without_usage_takes_the_instrumented_calls_usage() -> None:
    """Wrapping an instrumented SDK call in llm_call (for budgets) needs no record_usage."""
    with capture(prices={"gpt-4o": GPT_4O}) as cap:
        tracer = tracer_of(cap)
        with cap.telemetry.session("s") as session, session.run("go") as run:
            with run.llm_call("openai", "gpt-4o"):
                sdk_chat(tracer, 700, 70, cache_read=100)
    end = run.end_event
    assert end is not None
    assert (end.llm_call_count, end.unpriced_call_count) == (1, 0)
    assert (end.input_tokens, end.cache_read_tokens, end.output_tokens) == (600, 100, 70)
    assert end.cost_usd == pytest.approx(usd(600, 70, cache_read=100))


def test_three_nested_instrumentations_of_one_call_count_once() -> None:
    """Framework span, its model adapter's span and the SDK span: one call, not two."""
    with capture(prices={"gpt-4o": GPT_4O}) as cap:
        tracer = tracer_of(cap)
        with agent(tracer):
            with tracer.start_as_current_span("chat gpt-4o", attributes=chat_attributes()) as a:
                with tracer.start_as_current_span("chat gpt-4o", attributes=chat_attributes()) as b:
                    sdk_chat(tracer, 900, 90)
                    b.set_attributes(usage_attributes(900, 90))
                a.set_attributes(usage_attributes(900, 90))
        end = one_end(cap)
    assert (end.llm_call_count, end.input_tokens) == (1, 900)


def test_an_agent_span_with_usage_totals_adds_nothing_to_its_calls() -> None:
    """invoke_agent spans that repeat the sum of their calls in gen_ai.usage.* count 0 extra."""
    with capture(prices={"gpt-4o": GPT_4O}) as cap:
        tracer = tracer_of(cap)
        with agent(tracer) as span:
            sdk_chat(tracer, 100, 10)
            sdk_chat(tracer, 200, 20)
            span.set_attributes(usage_attributes(300, 30))
        end = one_end(cap)
        calls = calls_metric(cap)
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (2, 300, 30)
    assert end.cost_usd == pytest.approx(usd(300, 30))
    assert calls == 2


def test_unrelated_spans_outside_runs_are_forgotten_at_their_end() -> None:
    """HTTP and other spans are tracked only while live: nothing stays behind."""
    with capture() as cap:
        tracer = tracer_of(cap)
        for _ in range(50):
            with tracer.start_as_current_span("GET /health"):
                with tracer.start_as_current_span("SELECT"):
                    pass
        open_spans = cap.telemetry.aggregator.open_span_count()
        events = list(cap.events)
    assert open_spans == 0
    assert events == []


def test_an_agent_span_known_only_at_its_end_holds_the_run_of_its_calls() -> None:
    """OpenInference's LangChain tracer sets every attribute just before the end: the root
    CHAIN is the run, named at its end, with the calls and tools that ended inside it."""
    with capture(prices={"gpt-4o": GPT_4O}) as cap:
        tracer = tracer_of(cap)
        with tracer.start_as_current_span("planner") as root:
            for prompt, completion in ((100, 10), (200, 20)):
                with tracer.start_as_current_span("ChatOpenAI") as llm:
                    llm.set_attributes(
                        {
                            "openinference.span.kind": "LLM",
                            "llm.model_name": "gpt-4o",
                            "llm.provider": "openai",
                            "llm.token_count.prompt": prompt,
                            "llm.token_count.completion": completion,
                        }
                    )
                with tracer.start_as_current_span("search") as tool:
                    tool.set_attributes({"openinference.span.kind": "TOOL", "tool.name": "search"})
            root.set_attributes({"openinference.span.kind": "CHAIN", "session.id": "thread-7"})
        end = one_end(cap)
        (start,) = cap.events_of(kt.EventType.AGENT_START)
        runs = cap.metric("kit_agent_runs_total", agent="planner", stop_reason="unknown")
    assert (end.agent_name, end.session_id) == ("planner", "thread-7")
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (2, 300, 30)
    assert end.tool_names == ("search", "search")
    assert end.cost_usd == pytest.approx(usd(300, 30))
    assert start.run_id == end.run_id
    assert runs == 1


def test_a_tool_span_that_names_its_tool_at_the_end_counts_under_that_name() -> None:
    """OpenInference's Agents SDK tracer marks a TOOL at start and names it at the end."""
    with capture() as cap:
        tracer = tracer_of(cap)
        with agent(tracer):
            with tracer.start_as_current_span(
                "lookup", attributes={"openinference.span.kind": "TOOL"}
            ) as span:
                span.set_attribute("tool.name", "lookup")
        end = one_end(cap)
        (call,) = cap.events_of(kt.EventType.TOOL_CALL)
    assert end.tool_names == ("lookup",)
    assert isinstance(call, kt.ToolCallEvent) and call.tool_name == "lookup"


def test_a_call_refused_by_a_budget_inside_another_librarys_span_counts_as_denied() -> None:
    """A framework hook raising BudgetExceeded leaves a failed chat span: a denied call,
    not a failed, unpriced one."""
    with capture() as cap:
        tracer = tracer_of(cap)
        with agent(tracer):
            with tracer.start_as_current_span(
                "chat gpt-4o", attributes={"gen_ai.operation.name": "chat"}
            ) as span:
                span.record_exception(
                    kt.BudgetExceeded(
                        "cap", scope_key="global", limit=1, spent=1, reserved=0, requested=0
                    )
                )
                span.set_status(StatusCode.ERROR)
        end = one_end(cap)
        denied = cap.metric(
            "kit_llm_calls_total", provider="unknown", model="gpt-4o", outcome="budget_denied"
        )
        usage = cap.events_of(kt.EventType.LLM_USAGE)
    assert (end.llm_call_count, end.unpriced_call_count) == (0, 0)
    assert usage == [] and denied == 1


def test_calls_of_other_code_are_charged_to_budgets() -> None:
    """Budgets see what instrumented SDKs and frameworks spend, at the published price."""
    with capture(prices={"gpt-4o": GPT_4O}, budgets=[kt.Budget(name="day", limit_usd=1.0)]) as cap:
        tracer = tracer_of(cap)
        with agent(tracer):
            sdk_chat(tracer, 1000, 100, cache_read=400)
        sdk_chat(tracer, 500, 50)  # outside any agent: charged too
        (status,) = cap.telemetry.budget_status()
    assert status.spent == pytest.approx(usd(600, 100, cache_read=400) + usd(500, 50))
