"""Events from spans made by other code: the raw OpenTelemetry API, GenAI conventions only.

An agent framework (or a provider SDK's instrumentation) emits ``invoke_agent``, ``chat``
and ``execute_tool`` spans with ``gen_ai.*`` attributes and no turn spans. The
``UsageAggregator`` + ``ExtensionSpanProcessor`` pair on the same provider must turn those
into the same events as kit-telemetry's own API: first added to a ``TracerProvider`` by
hand, then through ``kt.configure(tracer_provider=...)``.

The attribute names are spelled out as a foreign library would, on purpose.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from prometheus_client import CollectorRegistry

import kit_telemetry as kt
from kit_telemetry.pricing import PriceTable
from kit_telemetry.tokens import TokenUsage

EVENT_JSON = str(Path(__file__).parent / "extensions_fixtures" / "event_json.py")
RAISING = str(Path(__file__).parent / "extensions_fixtures" / "raising.py")

GPT_4O = kt.ModelPrice(input_per_mtok=2.5, output_per_mtok=10.0, cache_read_per_mtok=1.25)


def cost(input_tokens: int, cache_read: int, output: int) -> float:
    """What GPT_4O charges: per-token rates times each disjoint kind."""
    return (input_tokens * 2.5 + cache_read * 1.25 + output * 10.0) / 1e6


@dataclass
class Seen:
    """What the event_json extension reported."""

    events: list[kt.Event] = field(default_factory=list)
    spans: list[str | None] = field(default_factory=list)
    session_calls: list[int] = field(default_factory=list)
    session_cost_usd: list[float] = field(default_factory=list)

    def add(self, extension: str, message: str, kind: str) -> None:
        if extension != "event_json":
            return
        data = json.loads(message)
        self.events.append(kt.event_from_dict(data["event"]))
        self.spans.append(data["span"])
        self.session_calls.append(data["session_calls"])
        self.session_cost_usd.append(data["session_cost_usd"])

    def types(self) -> list[str]:
        return [e.type.value for e in self.events]

    def of(self, cls: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]


class CountingMetrics:
    """A HandlerErrorMetrics that counts by (extension, event)."""

    def __init__(self) -> None:
        self.errors: dict[tuple[str, str], int] = {}

    def record_handler_error(self, extension: str, event: str) -> None:
        key = (extension, event)
        self.errors[key] = self.errors.get(key, 0) + 1


@dataclass
class Pipeline:
    provider: TracerProvider
    tracer: Tracer
    runtime: kt.ExtensionSpanProcessor
    exporter: InMemorySpanExporter
    seen: Seen
    metrics: CountingMetrics


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    """A TracerProvider with the aggregator and the extension runtime added by hand."""
    provider = TracerProvider()
    aggregator = kt.UsageAggregator(pricer=PriceTable({"gpt-4o": GPT_4O}, bundled=False))
    metrics = CountingMetrics()
    runtime = kt.ExtensionSpanProcessor(
        aggregator, state_dir=tmp_path / "state", metrics=metrics, strict=True
    )
    exporter = InMemorySpanExporter()
    provider.add_span_processor(aggregator)
    provider.add_span_processor(runtime)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    seen = Seen()
    runtime.notifier = seen.add
    runtime.load(EVENT_JSON)
    yield Pipeline(
        provider, provider.get_tracer("some.agent.framework"), runtime, exporter, seen, metrics
    )
    provider.shutdown()


def agent_span(tracer: Tracer, name: str = "support", conversation: str = "conv-1") -> Any:
    return tracer.start_as_current_span(
        f"invoke_agent {name}",
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": name,
            "gen_ai.conversation.id": conversation,
        },
    )


def chat(
    tracer: Tracer,
    model: str,
    *,
    total_input: int,
    output: int,
    cache_read: int = 0,
    finish: str = "stop",
    provider: str | None = "openai",
    system: str | None = None,
) -> None:
    """A chat span as an instrumented provider SDK makes it: usage set before it ends."""
    attributes: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model}
    if provider is not None:
        attributes["gen_ai.provider.name"] = provider
    if system is not None:
        attributes["gen_ai.system"] = system
    with tracer.start_as_current_span(
        f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        span.set_attributes(
            {
                "gen_ai.usage.input_tokens": total_input,  # total input, cached included
                "gen_ai.usage.output_tokens": output,
                "gen_ai.usage.cache_read.input_tokens": cache_read,
                "gen_ai.response.finish_reasons": (finish,),
                "gen_ai.response.id": f"resp-{model}-{total_input}",
            }
        )


def tool(tracer: Tracer, name: str, call_id: str, *, error: str | None = None) -> None:
    with tracer.start_as_current_span(
        f"execute_tool {name}",
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": call_id,
        },
    ) as span:
        if error is not None:
            span.set_attribute("error.type", "ToolError")
            span.set_status(Status(StatusCode.ERROR, error))


def support_run(tracer: Tracer, conversation: str = "conv-1") -> None:
    """Two chats (the second with only the older gen_ai.system) and two tools, one failing."""
    with agent_span(tracer, conversation=conversation):
        chat(tracer, "gpt-4o", total_input=1200, cache_read=200, output=150, finish="tool_calls")
        tool(tracer, "bash", "call_1")
        tool(tracer, "read_file", "call_2", error="no such file")
        chat(tracer, "gpt-4o", total_input=300, output=20, provider=None, system="openai")


# --- a provider wired by hand --------------------------------------------------------------------
def test_foreign_spans_become_the_documented_events(pipeline: Pipeline) -> None:
    """invoke_agent/chat/execute_tool spans give agent_start, llm_usage, tool pairs, agent_end."""
    support_run(pipeline.tracer)
    seen = pipeline.seen
    assert seen.types() == [
        "agent_start",
        "user_input",
        "llm_usage",
        "tool_call",
        "tool_result",
        "tool_call",
        "tool_result",
        "llm_usage",
        "agent_end",
    ]
    assert seen.spans == [
        "invoke_agent support",
        "invoke_agent support",
        "chat gpt-4o",
        "execute_tool bash",
        "execute_tool bash",
        "execute_tool read_file",
        "execute_tool read_file",
        "chat gpt-4o",
        "invoke_agent support",
    ]
    start = seen.of(kt.AgentStartEvent)[0]
    assert (start.agent_name, start.session_id, start.prompt) == ("support", "conv-1", None)
    run_ids = {e.run_id for e in seen.events}
    assert len(run_ids) == 1 and None not in run_ids


def test_foreign_llm_usage_has_disjoint_tokens_and_table_cost(pipeline: Pipeline) -> None:
    """gen_ai.usage.input_tokens includes the cache; the event's input_tokens does not."""
    support_run(pipeline.tracer)
    first, second = pipeline.seen.of(kt.LLMUsageEvent)
    assert (first.provider, first.model, first.step) == ("openai", "gpt-4o", 0)
    assert (first.input_tokens, first.cache_read_tokens, first.output_tokens) == (1000, 200, 150)
    assert first.finish_reason == "tool_calls"
    assert first.response_id == "resp-gpt-4o-1200"
    assert first.cost_usd == pytest.approx(cost(1000, 200, 150))
    # The older gen_ai.system names the provider when gen_ai.provider.name is absent.
    assert (second.provider, second.step, second.input_tokens) == ("openai", 1, 300)
    assert second.cost_usd == pytest.approx(cost(300, 0, 20))
    assert second.duration_ms >= 0


def test_foreign_tool_events_carry_names_ids_and_errors(pipeline: Pipeline) -> None:
    """A tool span with error status is a tool_result with is_error; both calls count."""
    support_run(pipeline.tracer)
    calls = pipeline.seen.of(kt.ToolCallEvent)
    results = pipeline.seen.of(kt.ToolResultEvent)
    assert [(c.tool_name, c.call_id) for c in calls] == [
        ("bash", "call_1"),
        ("read_file", "call_2"),
    ]
    assert [(r.tool_name, r.call_id, r.is_error) for r in results] == [
        ("bash", "call_1", False),
        ("read_file", "call_2", True),
    ]


def test_foreign_run_end_event_totals_one_turn_per_llm_call(pipeline: Pipeline) -> None:
    """Without turn spans each LLM call is one turn; the enriched end event sums the run."""
    support_run(pipeline.tracer)
    (end,) = pipeline.seen.of(kt.AgentEndEvent)
    assert end.agent_name == "support" and end.session_id == "conv-1"
    assert end.llm_call_count == 2
    assert end.turn_count == 2
    assert end.tool_call_count == 2
    assert end.tool_names == ("bash", "read_file")
    assert (end.input_tokens, end.cache_read_tokens, end.output_tokens) == (1300, 200, 170)
    assert end.cost_usd == pytest.approx(cost(1000, 200, 150) + cost(300, 0, 20))
    assert end.unpriced_call_count == 0
    assert end.stop_reason == "stop"
    assert end.error is None
    assert pipeline.seen.of(kt.TurnStartEvent) == [] and pipeline.seen.of(kt.TurnEndEvent) == []


def test_ctx_usage_and_state_work_for_foreign_sessions(pipeline: Pipeline, tmp_path: Path) -> None:
    """The conversation id is the session: ctx.usage adds up, state lands under state_dir."""
    support_run(pipeline.tracer)
    seen = pipeline.seen
    usage_index = [i for i, e in enumerate(seen.events) if isinstance(e, kt.LLMUsageEvent)]
    assert [seen.session_calls[i] for i in usage_index] == [1, 2]
    assert seen.session_calls[-1] == 2
    assert seen.session_cost_usd[-1] == pytest.approx(cost(1000, 200, 150) + cost(300, 0, 20))
    pipeline.runtime.force_flush()
    sidecar = tmp_path / "state" / "conv-1.ext-state.json"
    assert json.loads(sidecar.read_text()) == {"tools": ["bash", "read_file"]}


def test_unknown_model_has_no_cost_and_is_counted_unpriced(pipeline: Pipeline) -> None:
    """An unpriced model gives cost_usd=None, never a silent 0, and the run says how many."""
    with agent_span(pipeline.tracer):
        chat(pipeline.tracer, "gpt-4o", total_input=100, output=10)
        chat(pipeline.tracer, "my-local-llama", total_input=5000, output=900, provider="ollama")
    priced, unpriced = pipeline.seen.of(kt.LLMUsageEvent)
    (end,) = pipeline.seen.of(kt.AgentEndEvent)
    assert priced.cost_usd == pytest.approx(cost(100, 0, 10))
    assert (unpriced.model, unpriced.provider, unpriced.cost_usd) == (
        "my-local-llama",
        "ollama",
        None,
    )
    assert end.unpriced_call_count == 1
    assert end.llm_call_count == 2
    assert end.input_tokens == 5100
    assert end.cost_usd == pytest.approx(cost(100, 0, 10))


def test_wrapper_chat_span_repeating_its_childs_usage_is_counted_once(pipeline: Pipeline) -> None:
    """A framework's chat span around the provider SDK's chat span: one call, not two."""
    tracer = pipeline.tracer
    with agent_span(tracer):
        with tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
            },
        ) as wrapper:
            chat(tracer, "gpt-4o", total_input=1200, cache_read=200, output=150)
            wrapper.set_attributes(
                {
                    "gen_ai.usage.input_tokens": 1200,
                    "gen_ai.usage.output_tokens": 150,
                    "gen_ai.usage.cache_read.input_tokens": 200,
                    "gen_ai.response.finish_reasons": ("stop",),
                }
            )
        tool(tracer, "bash", "call_1")
    usage = pipeline.seen.of(kt.LLMUsageEvent)
    (end,) = pipeline.seen.of(kt.AgentEndEvent)
    assert len(usage) == 1
    assert (usage[0].input_tokens, usage[0].cache_read_tokens) == (1000, 200)
    assert (end.llm_call_count, end.turn_count, end.input_tokens) == (1, 1, 1000)
    assert end.cost_usd == pytest.approx(cost(1000, 200, 150))
    assert end.tool_names == ("bash",)


def test_wrapper_with_usage_around_a_child_without_usage_is_counted_once(
    pipeline: Pipeline,
) -> None:
    """When only the framework's wrapper reports usage (the SDK span has none), that usage
    counts, once: the inner span must not use up the call as an empty, unpriced one."""
    tracer = pipeline.tracer
    with (
        agent_span(tracer),
        tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
            },
        ) as wrapper,
    ):
        with tracer.start_as_current_span(
            "chat gpt-4o",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
            },
        ):
            pass  # a streaming SDK span that never saw the usage
        wrapper.set_attributes({"gen_ai.usage.input_tokens": 400, "gen_ai.usage.output_tokens": 40})
    (end,) = pipeline.seen.of(kt.AgentEndEvent)
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (1, 400, 40)
    assert end.unpriced_call_count == 0
    assert end.cost_usd == pytest.approx(cost(400, 0, 40))


def test_non_genai_spans_in_between_still_attribute_calls_to_the_run(pipeline: Pipeline) -> None:
    """A workflow step or an HTTP span between the run and its chat/tool spans changes nothing."""
    tracer = pipeline.tracer
    with agent_span(tracer), tracer.start_as_current_span("workflow.step plan"):
        with tracer.start_as_current_span("POST https://api.openai.com/v1/chat/completions"):
            chat(tracer, "gpt-4o", total_input=100, output=10)
        with tracer.start_as_current_span("sandbox.exec"):
            tool(tracer, "bash", "call_1")
    types = pipeline.seen.types()
    (end,) = pipeline.seen.of(kt.AgentEndEvent)
    assert types == [
        "agent_start",
        "user_input",
        "llm_usage",
        "tool_call",
        "tool_result",
        "agent_end",
    ]
    assert (end.llm_call_count, end.tool_call_count, end.input_tokens) == (1, 1, 100)


def test_concurrent_foreign_runs_keep_their_own_totals(pipeline: Pipeline) -> None:
    """Runs in two threads at once: each end event holds exactly its own run's calls."""
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def run(conversation: str, calls: int) -> None:
        try:
            with agent_span(pipeline.tracer, name=conversation, conversation=conversation):
                for i in range(calls):
                    if i < 3:  # the first three calls of both runs interleave
                        barrier.wait(timeout=10)
                    chat(pipeline.tracer, "gpt-4o", total_input=100 + i, output=10)
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(c, n)) for c, n in (("a", 3), ("b", 5))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    ends = {e.session_id: e for e in pipeline.seen.of(kt.AgentEndEvent)}
    assert (ends["a"].llm_call_count, ends["a"].input_tokens) == (3, 303)
    assert (ends["b"].llm_call_count, ends["b"].input_tokens) == (5, 510)


def test_handler_errors_on_foreign_spans_are_counted_and_spans_still_export(
    pipeline: Pipeline,
) -> None:
    """The runtime's own metrics hook counts handler errors; export is untouched."""
    pipeline.runtime.strict = False
    pipeline.runtime.load(RAISING)
    support_run(pipeline.tracer)
    assert pipeline.metrics.errors == {("raising", "llm_usage"): 2}
    assert len(pipeline.seen.of(kt.AgentEndEvent)) == 1
    assert [s.name for s in pipeline.exporter.get_finished_spans()][-1] == "invoke_agent support"


def test_bundled_price_table_prices_foreign_gpt_4o(tmp_path: Path) -> None:
    """With the default table (genai-prices' data) a foreign gpt-4o call is priced."""
    provider = TracerProvider()
    table = PriceTable()
    aggregator = kt.UsageAggregator(pricer=table)
    runtime = kt.ExtensionSpanProcessor(aggregator, strict=True)
    provider.add_span_processor(aggregator)
    provider.add_span_processor(runtime)
    seen = Seen()
    runtime.notifier = seen.add
    runtime.load(EVENT_JSON)
    support_run(provider.get_tracer("framework"))
    provider.shutdown()
    first = seen.of(kt.LLMUsageEvent)[0]
    expected = table.cost_usd(
        "openai", "gpt-4o", TokenUsage(input_tokens=1000, output_tokens=150, cache_read_tokens=200)
    )
    assert expected is not None and expected > 0
    assert first.cost_usd == pytest.approx(expected)


# --- kt.configure(tracer_provider=...) ----------------------------------------------------------
def test_configure_on_a_given_provider_serves_foreign_spans() -> None:
    """configure() joins the app's provider; raw spans feed handlers and metrics."""
    provider = TracerProvider()
    registry = CollectorRegistry()
    tel = kt.configure(
        tracer_provider=provider,
        prometheus=registry,
        prices={"gpt-4o": GPT_4O},
        strict=True,
    )
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    seen = Seen()
    tel._extensions.notifier = seen.add
    tel.load_extension(EVENT_JSON)
    with tel:
        support_run(provider.get_tracer("framework"), conversation="conv-cfg")
    (end,) = seen.of(kt.AgentEndEvent)
    assert seen.types()[0] == "agent_start" and seen.types()[-1] == "agent_end"
    assert (end.session_id, end.llm_call_count, end.tool_call_count) == ("conv-cfg", 2, 2)
    assert end.cost_usd == pytest.approx(cost(1000, 200, 150) + cost(300, 0, 20))
    calls = registry.get_sample_value(
        "kit_llm_calls_total", {"provider": "openai", "model": "gpt-4o", "outcome": "ok"}
    )
    tools = registry.get_sample_value(
        "kit_tool_calls_total", {"tool": "read_file", "outcome": "error"}
    )
    runs = registry.get_sample_value(
        "kit_agent_runs_total", {"agent": "support", "stop_reason": "stop"}
    )
    assert (calls, tools, runs) == (2, 1, 1)
    # The provider's own exporter still gets every span, untouched.
    assert len(exporter.get_finished_spans()) == 5
