"""``set_clean_attributes``: our own attributes written without the SDK's checks, same result."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, Span, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext
from opentelemetry.util.types import AttributeValue

from kit_telemetry.tracing import set_clean_attributes

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
