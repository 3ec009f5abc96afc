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
from kit_telemetry.testing import capture
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


# --- every generation of the conventions, OpenLLMetry and OpenInference -------------------------
# Published prices per million tokens (Anthropic, Claude Sonnet 4.5; OpenAI, gpt-4o).
SONNET_INPUT, SONNET_OUTPUT, SONNET_CACHE_READ, SONNET_CACHE_WRITE = 3.00, 15.00, 0.30, 3.75
SONNET = kt.ModelPrice(
    input_per_mtok=SONNET_INPUT,
    output_per_mtok=SONNET_OUTPUT,
    cache_read_per_mtok=SONNET_CACHE_READ,
    cache_write_per_mtok=SONNET_CACHE_WRITE,
)
PRICES = {"claude-sonnet-4-5": SONNET, "gpt-4o": GPT_4O}

# A cache-heavy Claude call: 1,000 new input tokens, 100,000 read from and 20,000 written to
# the prompt cache, 2,000 output tokens.
UNCACHED, CACHE_READ, CACHE_WRITE, OUTPUT = 1_000, 100_000, 20_000, 2_000
TOTAL_INPUT = UNCACHED + CACHE_READ + CACHE_WRITE


def sonnet_usd(uncached: int, cache_read: int, cache_write: int, output: int) -> float:
    return (
        uncached * SONNET_INPUT
        + cache_read * SONNET_CACHE_READ
        + cache_write * SONNET_CACHE_WRITE
        + output * SONNET_OUTPUT
    ) / 1e6


CACHE_HEAVY_USD = sonnet_usd(UNCACHED, CACHE_READ, CACHE_WRITE, OUTPUT)

# (span name, attributes naming the call, attributes of its usage) as each instrumentation
# writes them; every one reports the prompt total with the cached tokens in it.
GENERATIONS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "gen_ai current (cache_write)": (
        "chat claude-sonnet-4-5",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
        },
        {
            "gen_ai.usage.input_tokens": TOTAL_INPUT,
            "gen_ai.usage.output_tokens": OUTPUT,
            "gen_ai.usage.cache_read.input_tokens": CACHE_READ,
            "gen_ai.usage.cache_write.input_tokens": CACHE_WRITE,
        },
    ),
    "gen_ai cache_creation, gen_ai.system": (
        "chat claude-sonnet-4-5",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
        },
        {
            "gen_ai.usage.input_tokens": TOTAL_INPUT,
            "gen_ai.usage.output_tokens": OUTPUT,
            "gen_ai.usage.cache_read.input_tokens": CACHE_READ,
            "gen_ai.usage.cache_creation.input_tokens": CACHE_WRITE,
        },
    ),
    "gen_ai prompt/completion (OpenLLMetry)": (
        "anthropic.chat",
        {
            "llm.request.type": "chat",
            "gen_ai.system": "Anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
        },
        {
            "gen_ai.usage.prompt_tokens": TOTAL_INPUT,
            "gen_ai.usage.completion_tokens": OUTPUT,
            "gen_ai.usage.cache_read_input_tokens": CACHE_READ,
            "gen_ai.usage.cache_creation_input_tokens": CACHE_WRITE,
        },
    ),
    "llm.usage (OpenLLMetry, first names)": (
        "anthropic.chat",
        {
            "llm.request.type": "completion",
            "gen_ai.system": "Anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
        },
        {
            "llm.usage.prompt_tokens": TOTAL_INPUT,
            "llm.usage.completion_tokens": OUTPUT,
            "gen_ai.usage.cache_read_input_tokens": CACHE_READ,
            "gen_ai.usage.cache_creation_input_tokens": CACHE_WRITE,
        },
    ),
    "OpenInference": (
        "Messages",
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "anthropic",
            "llm.system": "anthropic",
            "llm.model_name": "claude-sonnet-4-5",
        },
        {
            "llm.token_count.prompt": TOTAL_INPUT,
            "llm.token_count.completion": OUTPUT,
            "llm.token_count.prompt_details.cache_read": CACHE_READ,
            "llm.token_count.prompt_details.cache_write": CACHE_WRITE,
        },
    ),
}


@pytest.mark.parametrize("usage_at_start", [False, True], ids=["usage at end", "usage at start"])
@pytest.mark.parametrize("generation", list(GENERATIONS))
def test_every_convention_gives_disjoint_kinds_and_the_published_price(
    generation: str, usage_at_start: bool
) -> None:
    """A provider SDK instrumented by any of them, under a kit run: cache writes are priced as
    cache writes (not as input, which is 8 % low here), in the event, the run and the metrics."""
    name, call_attributes, usage_attributes = GENERATIONS[generation]
    with capture(prices=PRICES) as cap:
        tracer = cap.telemetry.tracer_provider.get_tracer("some.instrumentation")
        with cap.telemetry.session("s-1") as session, session.run("go") as run:
            start = {**call_attributes, **(usage_attributes if usage_at_start else {})}
            with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=start) as span:
                if not usage_at_start:
                    span.set_attributes(usage_attributes)
        (event,) = cap.events_of(kt.EventType.LLM_USAGE)
        labels = {"provider": "anthropic", "model": "claude-sonnet-4-5"}
        metrics = {
            kind: cap.metric("kit_llm_tokens_total", **labels, token_type=kind)
            for kind in ("input", "cache_read", "cache_write", "output")
        }
        cost_metric = cap.metric("kit_llm_cost_usd_total", **labels)
    assert isinstance(event, kt.LLMUsageEvent)
    assert (event.provider, event.model, event.session_id) == (
        "anthropic",
        "claude-sonnet-4-5",
        "s-1",
    )
    tokens = (event.input_tokens, event.cache_read_tokens, event.cache_write_tokens)
    assert tokens == (UNCACHED, CACHE_READ, CACHE_WRITE)
    assert event.output_tokens == OUTPUT
    assert event.cost_usd == pytest.approx(CACHE_HEAVY_USD)
    as_plain_input = sonnet_usd(UNCACHED + CACHE_WRITE, CACHE_READ, 0, OUTPUT)
    assert as_plain_input < 0.93 * CACHE_HEAVY_USD  # what reading one name too few costs
    end = run.end_event
    assert end is not None
    assert (end.llm_call_count, end.input_tokens, end.cache_write_tokens) == (1, UNCACHED, 20_000)
    assert end.cost_usd == pytest.approx(CACHE_HEAVY_USD)
    assert metrics == {
        "input": UNCACHED,
        "cache_read": CACHE_READ,
        "cache_write": CACHE_WRITE,
        "output": OUTPUT,
    }
    assert cost_metric == pytest.approx(CACHE_HEAVY_USD)


def test_the_first_spelling_of_a_count_wins_when_an_instrumentation_sends_two() -> None:
    """Mid-rename instrumentations send cache_write and cache_creation: counted once, not twice."""
    with capture(prices=PRICES) as cap:
        tracer = cap.telemetry.tracer_provider.get_tracer("some.instrumentation")
        with cap.telemetry.session("s-1") as session, session.run("go") as run:
            name, call_attributes, usage_attributes = GENERATIONS["gen_ai current (cache_write)"]
            with tracer.start_as_current_span(name, attributes=call_attributes) as span:
                span.set_attributes(
                    {**usage_attributes, "gen_ai.usage.cache_creation.input_tokens": CACHE_WRITE}
                )
    end = run.end_event
    assert end is not None
    assert (end.input_tokens, end.cache_write_tokens) == (UNCACHED, CACHE_WRITE)
    assert end.cost_usd == pytest.approx(CACHE_HEAVY_USD)


def test_a_total_smaller_than_its_cached_parts_is_read_as_the_uncached_input() -> None:
    """Instrumentations that pass on Anthropic's own input_tokens (cache excluded) lose no input."""
    with capture(prices=PRICES) as cap:
        tracer = cap.telemetry.tracer_provider.get_tracer("some.instrumentation")
        with cap.telemetry.session("s-1") as session, session.run("go") as run:
            name, call_attributes, _ = GENERATIONS["gen_ai current (cache_write)"]
            with tracer.start_as_current_span(name, attributes=call_attributes) as span:
                span.set_attributes(
                    {
                        "gen_ai.usage.input_tokens": UNCACHED,
                        "gen_ai.usage.output_tokens": OUTPUT,
                        "gen_ai.usage.cache_read.input_tokens": CACHE_READ,
                        "gen_ai.usage.cache_write.input_tokens": CACHE_WRITE,
                    }
                )
    end = run.end_event
    assert end is not None
    assert (end.input_tokens, end.cache_read_tokens, end.cache_write_tokens) == (
        UNCACHED,
        CACHE_READ,
        CACHE_WRITE,
    )
    assert end.cost_usd == pytest.approx(CACHE_HEAVY_USD)


# --- the session named at a span's end ----------------------------------------------------------
def test_conversation_id_set_at_the_end_of_a_chat_span_names_the_runs_session() -> None:
    """The Responses API hands the conversation id back with the answer: the call, the run's end
    and the session totals carry it, and nothing stays counted under no session."""
    with capture(prices=PRICES) as cap:
        tracer = cap.telemetry.tracer_provider.get_tracer("framework")
        with tracer.start_as_current_span(
            "invoke_agent support",
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"},
        ):
            tool(tracer, "bash", "call_1")
            with tracer.start_as_current_span(
                "chat gpt-4o",
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                },
            ) as span:
                span.set_attributes(
                    {
                        "gen_ai.usage.input_tokens": 1200,
                        "gen_ai.usage.cache_read.input_tokens": 200,
                        "gen_ai.usage.output_tokens": 150,
                        "gen_ai.conversation.id": "conv_68a1",
                    }
                )
            chat(tracer, "gpt-4o", total_input=300, output=20)
        aggregator = cap.telemetry.aggregator
        late, nobody = aggregator.session_usage("conv_68a1"), aggregator.session_usage("")
        runs = cap.metric("kit_agent_runs_total", agent="support", stop_reason="stop")
    usage = cap.events_of(kt.EventType.LLM_USAGE)
    (end,) = cap.events_of(kt.EventType.AGENT_END)
    assert [e.session_id for e in usage] == ["conv_68a1", "conv_68a1"]
    assert isinstance(end, kt.AgentEndEvent) and end.session_id == "conv_68a1"
    expected = cost(1000, 200, 150) + cost(300, 0, 20)
    assert (late.run_count, late.llm_call_count, late.tool_call_count) == (1, 2, 1)
    assert (late.input_tokens, late.cache_read_tokens) == (1300, 200)
    assert late.cost_usd == pytest.approx(expected)
    assert (nobody.run_count, nobody.llm_call_count, nobody.input_tokens) == (0, 0, 0)
    assert nobody.tool_call_count == 0 and nobody.cost_usd == 0
    assert end.cost_usd == pytest.approx(expected)
    assert runs == 1


def test_conversation_id_set_at_the_end_of_the_agent_span_names_the_session() -> None:
    """An agent span that learns its conversation id last still ends in that session."""
    with capture(prices=PRICES) as cap:
        tracer = cap.telemetry.tracer_provider.get_tracer("framework")
        with tracer.start_as_current_span(
            "invoke_agent support",
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"},
        ) as agent:
            chat(tracer, "gpt-4o", total_input=400, output=40)
            agent.set_attribute("gen_ai.conversation.id", "conv-late")
        late = cap.telemetry.aggregator.session_usage("conv-late")
    (end,) = cap.events_of(kt.EventType.AGENT_END)
    assert isinstance(end, kt.AgentEndEvent)
    assert (end.session_id, end.llm_call_count) == ("conv-late", 1)
    assert (late.run_count, late.llm_call_count, late.input_tokens) == (1, 1, 400)
    assert late.cost_usd == pytest.approx(cost(400, 0, 40))


# --- OpenInference traces (Phoenix / Arize) ------------------------------------------------------
def oi_llm(tracer: Tracer, model: str, provider: str, usage: dict[str, Any]) -> None:
    """An OpenInference LLM span: the model at start, token counts just before the end."""
    with tracer.start_as_current_span(
        "ChatAnthropic",
        attributes={
            "openinference.span.kind": "LLM",
            "llm.model_name": model,
            "llm.provider": provider,
        },
    ) as span:
        span.set_attributes(usage)


def test_openinference_trace_becomes_runs_calls_and_tools() -> None:
    """A LangGraph trace: the root CHAIN is the run, nested CHAINs are steps, LLM and TOOL spans
    are calls; session.id is the session; money from the published prices."""
    with capture(prices=PRICES) as cap:
        tracer = cap.telemetry.tracer_provider.get_tracer("openinference.instrumentation.langchain")
        with tracer.start_as_current_span(
            "LangGraph",
            attributes={"openinference.span.kind": "CHAIN", "session.id": "thread-7"},
        ):
            with tracer.start_as_current_span(
                "agent", attributes={"openinference.span.kind": "CHAIN"}
            ):
                oi_llm(
                    tracer,
                    "claude-sonnet-4-5",
                    "anthropic",
                    {
                        "llm.token_count.prompt": TOTAL_INPUT,
                        "llm.token_count.completion": OUTPUT,
                        "llm.token_count.prompt_details.cache_read": CACHE_READ,
                        "llm.token_count.prompt_details.cache_write": CACHE_WRITE,
                        "llm.token_count.completion_details.reasoning": 500,
                    },
                )
            with tracer.start_as_current_span(
                "tools", attributes={"openinference.span.kind": "CHAIN"}
            ):
                with tracer.start_as_current_span(
                    "read_file",
                    attributes={
                        "openinference.span.kind": "TOOL",
                        "tool.name": "read_file",
                        "tool.id": "toolu_01",
                    },
                ) as failing:
                    failing.set_status(Status(StatusCode.ERROR, "no such file"))
            oi_llm(
                tracer,
                "gpt-4o",
                "openai",
                {
                    "llm.token_count.prompt": 1200,
                    "llm.token_count.completion": 150,
                    "llm.token_count.prompt_details.cache_read": 200,
                },
            )
        tools = cap.metric("kit_tool_calls_total", tool="read_file", outcome="error")
    types = [e.type.value for e in cap.events]
    assert types == [
        "agent_start",
        "user_input",
        "llm_usage",
        "tool_call",
        "tool_result",
        "model_change",  # claude-sonnet-4-5 -> gpt-4o, derived for spans of other code too
        "llm_usage",
        "agent_end",
    ]
    claude, gpt = cap.events_of(kt.EventType.LLM_USAGE)
    assert isinstance(claude, kt.LLMUsageEvent) and isinstance(gpt, kt.LLMUsageEvent)
    assert (claude.provider, claude.model, claude.session_id) == (
        "anthropic",
        "claude-sonnet-4-5",
        "thread-7",
    )
    assert (claude.cache_write_tokens, claude.reasoning_tokens) == (CACHE_WRITE, 500)
    assert claude.cost_usd == pytest.approx(CACHE_HEAVY_USD)
    assert (gpt.input_tokens, gpt.cache_read_tokens) == (1000, 200)
    (result,) = cap.events_of(kt.EventType.TOOL_RESULT)
    assert isinstance(result, kt.ToolResultEvent)
    assert (result.tool_name, result.call_id, result.is_error) == ("read_file", "toolu_01", True)
    (end,) = cap.events_of(kt.EventType.AGENT_END)
    assert isinstance(end, kt.AgentEndEvent)
    assert (end.agent_name, end.session_id) == ("LangGraph", "thread-7")
    assert (end.llm_call_count, end.tool_names) == (2, ("read_file",))
    assert end.input_tokens == UNCACHED + 1000
    assert end.cost_usd == pytest.approx(CACHE_HEAVY_USD + cost(1000, 200, 150))
    assert tools == 1


def test_openinference_agent_span_is_a_run_and_names_its_agent() -> None:
    """An AGENT span (e.g. the OpenAI Agents SDK's) is a run even below another span."""
    with capture(prices=PRICES) as cap:
        tracer = cap.telemetry.tracer_provider.get_tracer("openinference.instrumentation")
        with tracer.start_as_current_span("workflow"):
            with tracer.start_as_current_span(
                "Triage",
                attributes={
                    "openinference.span.kind": "AGENT",
                    "agent.name": "triage",
                    "session.id": "s-oi",
                },
            ):
                oi_llm(
                    tracer,
                    "gpt-4o",
                    "openai",
                    {"llm.token_count.prompt": 100, "llm.token_count.completion": 10},
                )
    (end,) = cap.events_of(kt.EventType.AGENT_END)
    assert isinstance(end, kt.AgentEndEvent)
    assert (end.agent_name, end.session_id, end.llm_call_count) == ("triage", "s-oi", 1)
    assert end.cost_usd == pytest.approx(cost(100, 0, 10))
