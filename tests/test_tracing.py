"""Our own attributes written without the SDK's checks, with the same result.

``set_clean_attributes``, and spans started without their attributes for the aggregator to
set (``start_attributes_can_wait``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    DEFAULT_ON,
    Decision,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceState
from opentelemetry.util.types import Attributes, AttributeValue
from prometheus_client import CollectorRegistry

import kit_telemetry as kt
from kit_telemetry.tracing import (
    TOOL,
    PayloadRegistry,
    SpanPayload,
    set_clean_attributes,
    start_attributes_can_wait,
)

USAGE: dict[str, AttributeValue] = {
    "gen_ai.usage.input_tokens": 5200,
    "gen_ai.usage.output_tokens": 310,
    "gen_ai.response.id": "msg_0123456789",
    "gen_ai.response.finish_reasons": ("tool_use",),
    "kit.usage.cost_usd": 0.0123,
}
START: dict[str, AttributeValue] = {"gen_ai.operation.name": "chat", "kit.llm.outcome": "pending"}


def _span(limits: SpanLimits | None = None) -> Span:
    tracer = TracerProvider(span_limits=limits or SpanLimits()).get_tracer("test")
    span = tracer.start_span("chat m", attributes=START)
    assert isinstance(span, Span)
    return span


def _written(limits: SpanLimits | None, attributes: Mapping[str, AttributeValue]) -> Any:
    """(attributes in order, dropped count) after our writer and after the public setter."""
    ours, public = _span(limits), _span(limits)
    set_clean_attributes(ours, attributes)
    public.set_attributes(attributes)
    ours.end()
    public.end()
    result = [(list(s.attributes.items()), s.dropped_attributes) for s in (ours, public)]
    return result[0], result[1]


def test_default_limits_give_the_same_attributes_in_the_same_order() -> None:
    ours, public = _written(None, USAGE)
    assert ours == public
    assert ours[0][-1] == ("kit.usage.cost_usd", 0.0123)


def test_a_value_length_limit_still_truncates() -> None:
    """The fast path never skips the SDK's truncation: with a limit it hands over to it."""
    ours, public = _written(SpanLimits(max_span_attribute_length=5), USAGE)
    assert ours == public
    assert dict(ours[0])["gen_ai.response.id"] == "msg_0"


def test_an_attribute_limit_still_drops_and_counts() -> None:
    ours, public = _written(SpanLimits(max_span_attributes=4), USAGE)
    assert ours == public
    assert len(ours[0]) == 4 and ours[1] == 3


def test_a_key_already_set_moves_to_the_end_as_with_the_sdk() -> None:
    ours, public = _written(None, {"kit.llm.outcome": "ok", "gen_ai.usage.input_tokens": 1})
    assert ours == public
    assert [k for k, _ in ours[0]][-2:] == ["kit.llm.outcome", "gen_ai.usage.input_tokens"]


def test_an_ended_span_is_left_alone() -> None:
    span = _span()
    span.end()
    set_clean_attributes(span, USAGE)
    assert dict(span.attributes or {}) == START


class _WritesWhileEnding(SpanProcessor):
    def __init__(self) -> None:
        self.ended: list[ReadableSpan] = []

    def _on_ending(self, span: Span) -> None:
        set_clean_attributes(span, USAGE, ending=True)

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


def test_while_ending_the_attributes_reach_on_end_within_the_limits() -> None:
    """From ``_on_ending`` the span is already marked ended; the attributes still land."""
    for limits, expected in (
        (SpanLimits(), {**START, **USAGE}),
        (
            SpanLimits(max_span_attribute_length=5),
            {
                **START,
                **USAGE,
                "kit.llm.outcome": "pendi",
                "gen_ai.response.id": "msg_0",
                "gen_ai.response.finish_reasons": ("tool_",),
            },
        ),
    ):
        provider = TracerProvider(span_limits=limits)
        processor = _WritesWhileEnding()
        provider.add_span_processor(processor)
        provider.get_tracer("test").start_span("chat m", attributes=START).end()
        [span] = processor.ended
        assert dict(span.attributes or {}) == expected
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=3))
    processor = _WritesWhileEnding()
    provider.add_span_processor(processor)
    provider.get_tracer("test").start_span("chat m", attributes=START).end()
    [span] = processor.ended
    assert len(span.attributes or {}) == 3 and span.dropped_attributes == 4


def test_a_span_of_another_implementation_gets_the_public_setter() -> None:
    seen: list[Mapping[str, AttributeValue]] = []

    class Recording(NonRecordingSpan):
        def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
            seen.append(dict(attributes))

    set_clean_attributes(Recording(SpanContext(1, 2, False)), USAGE)
    assert seen == [USAGE]


# --- start attributes set by the aggregator ------------------------------------------------------
class _ReadsAtStart(SpanProcessor):
    """Records the attributes each span has when its on_start runs."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.seen.append(dict(span.attributes or {}))


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


def _exported(
    *, late: bool | None, limits: SpanLimits | None = None, sampler: Sampler | None = None
) -> tuple[bool, list[tuple[str, list[tuple[str, Any]], int]]]:
    """Whether the run's spans started without attributes, and the spans exported."""
    provider = TracerProvider(span_limits=limits or SpanLimits(), sampler=sampler)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # before ours: idle at start
    tel = kt.Telemetry(tracer_provider=provider, exporters=(), prometheus=CollectorRegistry())
    chosen = tel._late_start_attributes
    if late is not None:
        tel._late_start_attributes = late
    _one_run(tel)
    tel.shutdown()
    spans = [
        (s.name, list((s.attributes or {}).items()), s.dropped_attributes)
        for s in exporter.get_finished_spans()
    ]
    return chosen, spans


VARYING = ("duration_ms", "kit.run.id")


def _varying_masked(
    spans: list[tuple[str, list[tuple[str, Any]], int]],
) -> list[tuple[str, list[tuple[str, Any]], int]]:
    # Durations and the run id (the trace id) differ from run to run; nothing else may.
    return [
        (name, [(k, "*" if k.endswith(VARYING) else v) for k, v in attributes], dropped)
        for name, attributes, dropped in spans
    ]


def test_spans_started_without_attributes_come_out_the_same() -> None:
    """The aggregator sets them first thing: names, attributes, order and drops all alike."""
    chosen, late = _exported(late=None)
    _, given = _exported(late=False)
    assert chosen is True
    assert _varying_masked(late) == _varying_masked(given)
    tool = next(attributes for name, attributes, _ in late if name == "execute_tool bash")
    assert dict(tool)["gen_ai.tool.call.id"] == "t-1"


def test_under_span_limits_the_late_attributes_are_truncated_and_dropped_alike() -> None:
    limits = SpanLimits(max_span_attributes=3, max_span_attribute_length=4)
    chosen, late = _exported(late=None, limits=limits)
    _, given = _exported(late=False, limits=limits)
    assert chosen is True
    assert _varying_masked(late) == _varying_masked(given)
    chat = next(s for s in late if s[0] == "chat claude-sonnet-4-5")
    assert len(chat[1]) == 3 and chat[2] > 0
    assert all(len(v) <= 4 for _, v in chat[1] if isinstance(v, str))


def test_every_processor_sees_the_attributes_at_start() -> None:
    """Processors added after ours, and extensions' raw processors, see them in on_start."""
    provider = TracerProvider()
    tel = kt.Telemetry(tracer_provider=provider, exporters=(), prometheus=CollectorRegistry())
    after = _ReadsAtStart()
    provider.add_span_processor(after)
    assert tel._late_start_attributes is True
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
    chosen, _ = _exported(late=None, sampler=sampler)
    assert chosen is False
    assert {"gen_ai.tool.name": "bash"}.items() <= next(
        a for a in sampler.seen if a.get("gen_ai.operation.name") == "execute_tool"
    ).items()


def test_a_processor_that_works_at_start_before_ours_gets_them() -> None:
    provider = TracerProvider()
    before = _ReadsAtStart()
    provider.add_span_processor(before)
    tel = kt.Telemetry(tracer_provider=provider, exporters=(), prometheus=CollectorRegistry())
    assert tel._late_start_attributes is False
    _one_run(tel)
    tel.shutdown()
    assert any(a.get("gen_ai.tool.call.id") == "t-1" for a in before.seen)


@pytest.mark.parametrize(
    ("sampler", "expected"),
    [
        (ALWAYS_ON, True),
        (DEFAULT_ON, True),
        (ParentBasedTraceIdRatio(0.5), True),
        (TraceIdRatioBased(0.25), True),
        (ParentBased(_AttributeSampler()), False),
        (ParentBased(ALWAYS_ON, local_parent_sampled=_AttributeSampler()), False),
        (_AttributeSampler(), False),
    ],
    ids=[
        "always-on",
        "parent-based",
        "parent-ratio",
        "ratio",
        "custom-root",
        "custom-child",
        "custom",
    ],
)
def test_only_the_sdks_attribute_blind_samplers_let_attributes_wait(
    sampler: Sampler, expected: bool
) -> None:
    provider = TracerProvider(sampler=sampler)
    first = _ReadsAtStart()
    assert start_attributes_can_wait(provider, first) is False  # not on the provider
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    provider.add_span_processor(first)
    assert start_attributes_can_wait(provider, first) is expected


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
