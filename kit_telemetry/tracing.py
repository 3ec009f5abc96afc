"""The span bridge: what travels beside a span in-process, and span-reading helpers.

Content that must not be exported unless ``capture_content`` is on (the prompt, tool
arguments and results, the response) rides in a ``SpanPayload`` next to the span instead of
in its attributes. The instrumentation API stages a payload before it starts a span (so
processors' ``on_start`` can read it), binds it to the span id once started and unbinds it
after the span has ended.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, Span
from opentelemetry.util.types import AttributeValue

from .events import Event


@dataclass(slots=True)
class SpanPayload:
    """In-process companion of a span made through kit-telemetry's API (mutable on purpose)."""

    content: Any = None  # run: the prompt; tool call: the arguments
    result: Any = None  # run: the response; tool call: the result
    end_event: Event | None = None  # filled by the aggregator when the span ends
    # A plain-dict mirror of the span's attributes, kept by the API as it sets them: the
    # processors read it instead of the SDK's locked, proxied mapping (the hot path).
    attributes: dict[str, AttributeValue] | None = None


class PayloadRegistry:
    """Maps live span ids to their payloads; one per process (see ``PAYLOADS``)."""

    __slots__ = ("_by_span", "_staged")

    def __init__(self) -> None:
        self._by_span: dict[int, SpanPayload] = {}
        self._staged = threading.local()

    def stage(self, payload: SpanPayload | None) -> None:
        """Offer ``payload`` to the ``on_start`` callbacks of the span about to start here."""
        self._staged.payload = payload

    def staged(self) -> SpanPayload | None:
        """The payload of the span starting on this thread (valid inside ``on_start``)."""
        payload: SpanPayload | None = getattr(self._staged, "payload", None)
        return payload

    def bind(self, span_id: int, payload: SpanPayload) -> None:
        """Attach ``payload`` to a started span and clear the staging slot."""
        self._by_span[span_id] = payload
        self._staged.payload = None

    def get(self, span_id: int) -> SpanPayload | None:
        """The payload of a live span, or None for spans made by other code."""
        return self._by_span.get(span_id)

    def unbind(self, span_id: int) -> None:
        """Forget a span's payload once the span has ended."""
        self._by_span.pop(span_id, None)

    def __len__(self) -> int:
        return len(self._by_span)


PAYLOADS = PayloadRegistry()


def set_attributes_while_ending(span: Span, attributes: Mapping[str, AttributeValue]) -> None:
    """Set attributes from ``SpanProcessor._on_ending``, before ``on_end`` sees the span.

    The SDK marks a span ended just before it calls ``_on_ending``, so the public setters
    refuse there (opentelemetry-sdk <= 1.45). The attributes are then written through the
    span's own bounded mapping, under the span's lock, which keeps the SDK's limits.
    """
    if span.is_recording():
        span.set_attributes(attributes)
        return
    bounded = getattr(span, "_attributes", None)
    lock = getattr(span, "_lock", None)
    if bounded is None or lock is None or not hasattr(bounded, "_immutable"):
        return
    with lock:
        bounded._immutable = False
        try:
            for key, value in attributes.items():
                bounded[key] = value
        finally:
            bounded._immutable = True


def parent_span_id(span: ReadableSpan) -> int | None:
    """The parent's span id, or None for a root span."""
    parent = span.parent
    return parent.span_id if parent is not None else None
