"""Cost of ``tel.instrument("openai")`` per SDK call, against the bare call and the official
OpenTelemetry instrumentation (``opentelemetry-instrumentation-openai-v2``).

One call = ``client.chat.completions.create(...)`` of the real openai SDK, answered in
process by an ``httpx2.MockTransport`` with a chat completion (usage with cached and
reasoning tokens): the SDK builds, sends and parses the request as it would over the
network, and no socket noise hides the instrumentation's cost. Variants:

- ``bare``: no instrumentation.
- ``official``: the official instrumentation alone (spans to a discarding exporter).
- ``kit``: ``tel.instrument("openai")``, calls made in an open run (each call its
  implicit turn, as ``run.llm_call`` does): span, usage, pricing, aggregation, Prometheus
  metrics, a session budget admitted before the request and settled after it.
- ``kit, no run``: the same outside any run: each call gets an implicit run.
- ``kit + official``: both (kit instrumented after the official one, as documented).

Measured in the same process, interleaved (each round runs every variant back to back),
medians of the per-round ratios to ``bare`` and to ``official``.

Needs the ``openai`` SDK and ``opentelemetry-instrumentation-openai-v2`` (the ``test`` extra).

Run: ``.venv/bin/python benchmarks/bench_instrument.py [--calls 300] [--rounds 15]``
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager

import httpx2
import openai
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

import kit_telemetry as kt

MODEL = "o4-mini"
MESSAGES = [{"role": "user", "content": "Say hello."}]
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello."},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 300,
            "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 200},
            "completion_tokens_details": {"reasoning_tokens": 100},
        },
    }
).encode()


class DiscardExporter(SpanExporter):
    """Accepts and drops every span."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _answer(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, headers={"content-type": "application/json"}, content=COMPLETION)


def _client() -> openai.OpenAI:
    http = httpx2.Client(transport=httpx2.MockTransport(_answer))
    return openai.OpenAI(
        base_url="http://bench.invalid/v1", api_key="bench", max_retries=0, http_client=http
    )


def _provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardExporter(), max_queue_size=65536))
    return provider


def _telemetry() -> kt.Telemetry:
    return kt.Telemetry(
        tracer_provider=_provider(),
        exporters=(),
        prometheus=CollectorRegistry(),
        budgets=[kt.Budget(name="session", scope="session", limit_usd=1e6)],
    )


@contextmanager
def _official() -> Iterator[None]:
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=_provider())
    try:
        yield
    finally:
        instrumentor.uninstrument()


@contextmanager
def _kit(tel: kt.Telemetry, *, in_run: bool) -> Iterator[None]:
    tel.instrument("openai")
    try:
        if in_run:
            with tel.session("bench") as session, session.run("bench"):
                yield
        else:
            yield
    finally:
        tel.uninstrument()


Setup = Callable[[], ExitStack]


def variants(tel: kt.Telemetry) -> dict[str, Setup]:
    """Each variant: what to enter (instrumentations, an open run) around its batch."""

    def bare() -> ExitStack:
        return ExitStack()

    def official() -> ExitStack:
        stack = ExitStack()
        stack.enter_context(_official())
        return stack

    def kit() -> ExitStack:
        stack = ExitStack()
        stack.enter_context(_kit(tel, in_run=True))
        return stack

    def kit_no_run() -> ExitStack:
        stack = ExitStack()
        stack.enter_context(_kit(tel, in_run=False))
        return stack

    def both() -> ExitStack:
        stack = ExitStack()
        stack.enter_context(_official())
        stack.enter_context(_kit(tel, in_run=True))
        return stack

    return {
        "bare": bare,
        "official": official,
        "kit": kit,
        "kit, no run": kit_no_run,
        "kit + official": both,
    }


def measure(client: openai.OpenAI, setup: Setup, calls: int) -> float:
    """Microseconds of the calling thread's CPU per call, over one batch."""
    with setup():
        gc.collect()
        start = time.thread_time()
        for _ in range(calls):
            client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=100)
        return (time.thread_time() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300, help="calls per batch")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved batches per variant")
    args = parser.parse_args()
    client = _client()
    tel = _telemetry()
    setups = variants(tel)
    for setup in setups.values():  # warm-up: imports, caches, the first price lookup
        measure(client, setup, 50)
    samples: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(args.rounds):
        for name, setup in setups.items():
            samples[name].append(measure(client, setup, args.calls))
    tel.shutdown()
    print(
        f"per chat.completions.create (openai {openai.__version__}, in-process transport); "
        f"thread CPU; median of {args.rounds} x {args.calls}"
    )
    for name, values in samples.items():
        print(f"  {name:<16} {statistics.median(values):8.1f} us")
    for baseline in ("bare", "official"):
        for name in setups:
            if name in ("bare", baseline):
                continue
            ratios = [v / b for v, b in zip(samples[name], samples[baseline], strict=True)]
            label = f"{name} / {baseline}"
            print(f"  ratio {label:<28} {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
