"""``kit-telemetry report`` on files written by other tools: the Collector's file exporter
output of third-party instrumentations.

The spans come from real instrumentations (OpenInference's LangChain tracer around a
LangGraph agent; pydantic-ai's own GenAI instrumentation) through the OpenTelemetry SDK,
encoded by opentelemetry-exporter-otlp-proto-common into an ExportTraceServiceRequest and
written one JSON object per line with hex ids, the shape of the Collector's file exporter.
No kit-telemetry code writes the file. Costs are computed by hand from OpenAI's published
gpt-4o prices ($2.50 per million input tokens, $1.25 cached, $10 output).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kit_telemetry.cli import main
from kit_telemetry.report import NO_SESSION

_IDS = ("traceId", "spanId", "parentSpanId")


def usd(input_tokens: int, output: int, cache_read: int = 0) -> float:
    return (input_tokens * 2.5 + cache_read * 1.25 + output * 10.0) / 1e6


def write_collector_file(spans: list[ReadableSpan], path: Path) -> None:
    """One ExportTraceServiceRequest per line, ids in hex, as the Collector's file exporter."""
    request = MessageToDict(encode_spans(spans))
    for resource in request["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for key in _IDS:
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    path.write_text(json.dumps(request) + "\n", encoding="utf-8")


@pytest.fixture
def provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield tracer_provider, exporter
    tracer_provider.shutdown()


def report_json(path: Path, *extra: str) -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["report", str(path), "--json", *extra], out=out, err=err)
    assert code == 0, err.getvalue()
    doc: dict[str, Any] = json.loads(out.getvalue())
    return doc


def test_report_of_an_openinference_langgraph_file_has_its_runs_calls_and_cost(
    provider: tuple[TracerProvider, InMemorySpanExporter], tmp_path: Path
) -> None:
    """The root CHAIN is the run, LLM spans are calls (OpenInference token names), TOOL spans
    are tools; with --price the calls are priced."""
    from openinference.instrumentation.langchain import LangChainInstrumentor
    from test_frameworks import _langgraph_agent

    tracer_provider, exporter = provider
    instrumentor = LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        _langgraph_agent().invoke({"messages": [("user", "weather?")]})
    finally:
        instrumentor.uninstrument()
    path = tmp_path / "langgraph.jsonl"
    write_collector_file(list(exporter.get_finished_spans()), path)

    doc = report_json(path, "--price")
    (session,) = doc["sessions"]
    (run,) = session["runs"]
    totals = run["totals"]
    assert run["agent_name"] == "weather" and not run["inferred"]
    assert (totals["llm_call_count"], totals["tool_names"]) == (2, ["lookup"])
    assert (totals["tokens"]["input_tokens"], totals["tokens"]["cache_read_tokens"]) == (2500, 200)
    assert totals["tokens"]["output_tokens"] == 130
    assert totals["cost_usd"] == pytest.approx(usd(2500, 130, cache_read=200))
    assert totals["unpriced_call_count"] == 0
    (model,) = doc["models"]
    assert (model["provider"], model["model"]) == ("openai", "gpt-4o")

    unpriced = report_json(path)["totals"]
    assert (unpriced["unpriced_call_count"], unpriced["cost_usd"]) == (2, 0.0)


def test_report_of_a_pydantic_ai_file_ignores_the_agent_spans_aggregated_usage(
    provider: tuple[TracerProvider, InMemorySpanExporter], tmp_path: Path
) -> None:
    """pydantic-ai's invoke_agent span repeats the sum of its calls: counted once, not twice."""
    from pydantic_ai import Agent
    from pydantic_ai.capabilities.instrumentation import Instrumentation
    from pydantic_ai.messages import ModelResponse, TextPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.usage import RequestUsage

    def model(messages: list[Any], info: AgentInfo) -> ModelResponse:
        return ModelResponse(
            parts=[TextPart("hello")],
            usage=RequestUsage(input_tokens=800, cache_read_tokens=300, output_tokens=40),
            model_name="gpt-4o",
        )

    tracer_provider, exporter = provider
    settings = InstrumentationSettings(tracer_provider=tracer_provider)
    agent = Agent(
        FunctionModel(model, model_name="gpt-4o"),
        name="greeter",
        capabilities=[Instrumentation(settings=settings)],
    )
    agent.run_sync("hi")
    path = tmp_path / "pydantic_ai.jsonl"
    write_collector_file(list(exporter.get_finished_spans()), path)

    doc = report_json(path, "--price")
    (session,) = doc["sessions"]
    (run,) = session["runs"]
    assert run["agent_name"] == "greeter"
    assert session["session_id"] != NO_SESSION  # gen_ai.conversation.id
    assert run["totals"]["llm_call_count"] == 1
    assert run["totals"]["tokens"]["input_tokens"] == 500
    assert run["totals"]["cost_usd"] == pytest.approx(usd(500, 40, cache_read=300))


def test_report_counts_a_call_described_by_two_instrumentations_once(
    provider: tuple[TracerProvider, InMemorySpanExporter], tmp_path: Path
) -> None:
    """A framework's chat span around the SDK instrumentation's (OpenLLMetry names): one call,
    as the aggregator counts it, whichever convention each span uses."""
    tracer_provider, exporter = provider
    tracer = tracer_provider.get_tracer("some.framework")
    chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
    with tracer.start_as_current_span(
        "invoke_agent helper",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helper"},
    ):
        with tracer.start_as_current_span("chat gpt-4o", attributes=chat) as outer:
            with tracer.start_as_current_span(
                "openai.chat",
                attributes={
                    "llm.request.type": "chat",
                    "gen_ai.system": "OpenAI",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.prompt_tokens": 1000,
                    "gen_ai.usage.completion_tokens": 100,
                },
            ):
                pass
            outer.set_attributes(
                {"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}
            )
    path = tmp_path / "nested.jsonl"
    write_collector_file(list(exporter.get_finished_spans()), path)

    (run,) = report_json(path, "--price")["sessions"][0]["runs"]
    assert (run["totals"]["llm_call_count"], run["totals"]["tokens"]["input_tokens"]) == (1, 1000)
    assert run["totals"]["cost_usd"] == pytest.approx(usd(1000, 100))
