"""Spans made through the API, as other processors, samplers and exporters see them."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes
from prometheus_client import CollectorRegistry

import kit_telemetry as kt
from kit_telemetry import semconv as sc
from kit_telemetry.tracing import TOOL, PayloadRegistry, SpanPayload


class _ReadsAtStart(SpanProcessor):
    """Records the attributes each span has when its on_start runs."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

        self.ended: list[dict[str, Any]] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.seen.append(dict(span.attributes or {}))

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(dict(span.attributes or {}))


class _AttributeSampler(Sampler):
    """Samples on an attribute, as a user's sampler may."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        self.seen.append(dict(attributes or {}))
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "by attribute"


def _one_run(tel: kt.Telemetry) -> None:
    with tel.session("s-1") as session, session.run("go", agent_name="coder") as run:
        with run.turn() as turn:
            with turn.llm_call("anthropic", "claude-sonnet-4-5", max_tokens=64) as call:
                call.record_usage(input_tokens=10, output_tokens=5, finish_reason="end_turn")
            with turn.tool_call("bash", call_id="t-1", arguments={"cmd": "ls"}) as tool:
                tool.set_result("a.py")


def test_every_processor_sees_the_attributes_at_start() -> None:
    """Processors added after ours, and extensions' raw processors, see them in on_start."""
    provider = TracerProvider()
    tel = kt.Telemetry(tracer_provider=provider, exporters=(), prometheus=CollectorRegistry())
    after = _ReadsAtStart()
    provider.add_span_processor(after)
    _one_run(tel)
    tel.shutdown()
    tool = next(a for a in after.seen if a.get("gen_ai.operation.name") == "execute_tool")
    assert tool == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "bash",
        "gen_ai.tool.call.id": "t-1",
        "gen_ai.conversation.id": "s-1",
    }


def test_a_sampler_that_reads_attributes_gets_them() -> None:
    """A sampler other than the SDK's own may look at them: spans then start with them."""
    sampler = _AttributeSampler()
    tel = kt.Telemetry(
        tracer_provider=TracerProvider(sampler=sampler),
        exporters=(),
        prometheus=CollectorRegistry(),
    )
    _one_run(tel)
    tel.shutdown()
    assert {"gen_ai.tool.name": "bash"}.items() <= next(
        a for a in sampler.seen if a.get("gen_ai.operation.name") == "execute_tool"
    ).items()


def test_a_processor_that_works_at_start_before_ours_gets_them() -> None:
    provider = TracerProvider()
    before = _ReadsAtStart()
    provider.add_span_processor(before)
    tel = kt.Telemetry(tracer_provider=provider, exporters=(), prometheus=CollectorRegistry())
    _one_run(tel)
    tel.shutdown()
    assert any(a.get("gen_ai.tool.call.id") == "t-1" for a in before.seen)


def test_run_and_session_totals_are_on_their_spans_for_every_processor() -> None:
    """Our run and session-end spans carry their totals before they end, set publicly."""
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    tel = kt.Telemetry(tracer_provider=provider, exporters=(), prometheus=CollectorRegistry())
    after = _ReadsAtStart()
    provider.add_span_processor(after)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _one_run(tel)
    tel.shutdown()
    run = next(a for a in after.ended if a.get(sc.GEN_AI_OPERATION_NAME) == sc.OP_INVOKE_AGENT)
    assert run[sc.KIT_RUN_PREFIX + "llm_call_count"] == 1
    assert run[sc.KIT_RUN_PREFIX + "tool_names"] == ("bash",)
    assert run[sc.KIT_RUN_PREFIX + "input_tokens"] == 10
    assert run[sc.KIT_RUN_STOP_REASON] == "end_turn"
    session = next(s for s in exporter.get_finished_spans() if s.name == sc.SPAN_SESSION_END)
    assert session.attributes is not None
    assert session.attributes[sc.KIT_SESSION_RUN_COUNT] == 1
    assert session.attributes[sc.KIT_SESSION_PREFIX + "output_tokens"] == 5


def test_a_call_span_ends_when_the_call_ends_not_after_its_bookkeeping() -> None:
    """The span's end is taken when the block exits: pricing and settling are not the call."""
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    tel = kt.Telemetry(
        tracer_provider=provider,
        exporters=(),
        prometheus=CollectorRegistry(),
        budgets=[kt.Budget(name="b", scope="session", limit_usd=10.0)],
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with tel.session("s") as session, session.run("go") as run:
        with run.llm_call("anthropic", "claude-sonnet-4-5", max_tokens=10) as call:
            call.record_usage(input_tokens=10, output_tokens=5)
            exited_ns = time.time_ns()
    tel.shutdown()
    chat = next(s for s in exporter.get_finished_spans() if s.name.startswith("chat "))
    assert chat.end_time is not None and chat.start_time is not None
    assert chat.end_time - exited_ns < 1_000_000  # within 1 ms of the block's exit
    assert chat.attributes is not None and chat.attributes[sc.KIT_USAGE_COST_USD] > 0


def test_a_staged_payload_is_seen_only_by_the_thread_that_staged_it() -> None:
    """Spans start on many threads at once: each on_start must find its own payload."""
    registry = PayloadRegistry()
    mine = SpanPayload(TOOL, "s-1", "bash")
    registry.stage(mine)
    seen: list[object] = []
    barrier = threading.Barrier(2)

    def other() -> None:
        seen.append(registry.staged())  # nothing staged on this thread yet
        theirs = SpanPayload(TOOL, "s-1", "grep")
        registry.stage(theirs)
        barrier.wait()
        barrier.wait()
        seen.append(registry.staged())

    thread = threading.Thread(target=other)
    thread.start()
    barrier.wait()  # the other thread has staged its own payload meanwhile
    assert registry.staged() is mine
    registry.bind(1, mine)  # binding clears this thread's slot only
    assert registry.staged() is None
    barrier.wait()
    thread.join()
    assert seen[0] is None
    assert isinstance(seen[1], SpanPayload) and seen[1].name == "grep"
