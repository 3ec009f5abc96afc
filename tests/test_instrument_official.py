"""``tel.instrument("openai")`` beside the official OpenTelemetry instrumentation of the SDK.

Both make a span for the same call (``opentelemetry-instrumentation-openai-v2``'s nests
under kit's, whose span is current while the request is sent); the call must be counted
and priced once, at the price of the usage kit read from the response.
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from fake_providers import OPENAI_USAGE, FakeProviders
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

from kit_telemetry import semconv as sc
from kit_telemetry.testing import Capture, capture

# https://platform.openai.com/docs/pricing (o4-mini, standard tier), USD per million tokens.
O4_MINI_INPUT = 1.10
O4_MINI_CACHED_INPUT = 0.275
O4_MINI_OUTPUT = 4.40
MODEL = "o4-mini"
MESSAGES = [{"role": "user", "content": "Say hello."}]
COST = (
    (OPENAI_USAGE["prompt_tokens"] - OPENAI_USAGE["cached_tokens"]) * O4_MINI_INPUT
    + OPENAI_USAGE["cached_tokens"] * O4_MINI_CACHED_INPUT
    + OPENAI_USAGE["completion_tokens"] * O4_MINI_OUTPUT
) / 1e6


@pytest.fixture
def fake() -> Iterator[FakeProviders]:
    with FakeProviders() as server:
        yield server


@pytest.fixture
def cap() -> Iterator[Capture]:
    """Kit's instrumentation on top of the official one (instrumented after it)."""
    with capture() as captured:
        official = OpenAIInstrumentor()
        official.instrument(tracer_provider=captured.telemetry.tracer_provider)
        captured.telemetry.instrument("openai")
        try:
            yield captured
        finally:
            captured.telemetry.uninstrument()
            official.uninstrument()


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_call_seen_by_both_instrumentations_is_counted_and_priced_once(
    cap: Capture, fake: FakeProviders, stream: bool
) -> None:
    """Two spans for one request: one call, one cost, the one kit computed."""
    client = openai.OpenAI(base_url=fake.openai_url, api_key="test", max_retries=0)
    with cap.telemetry.session("s") as session, session.run("hi") as run, run.turn():
        if stream:
            chunks = client.chat.completions.create(
                model=MODEL,
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            for _ in chunks:
                pass
        else:
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
    chats = [s for s in cap.spans() if s.name == f"chat {MODEL}"]
    assert len(chats) == 2  # kit's and the official instrumentation's
    ours = next(s for s in chats if sc.KIT_LLM_OUTCOME in (s.attributes or {}))
    theirs = next(s for s in chats if s is not ours)
    assert theirs.parent is not None
    assert theirs.parent.span_id == ours.context.span_id
    assert len(fake.requests) == 1
    assert run.end_event is not None
    assert run.end_event.llm_call_count == 1
    assert run.end_event.cost_usd == pytest.approx(COST)
    assert run.end_event.cache_read_tokens == OPENAI_USAGE["cached_tokens"]
    labels = {"provider": "openai", "model": MODEL}
    assert cap.metric("kit_llm_calls_total", **labels, outcome="ok") == 1
    assert cap.metric("kit_llm_cost_usd_total", **labels) == pytest.approx(COST)
