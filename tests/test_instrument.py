"""``tel.instrument``: the real openai and anthropic SDKs, against fake servers on 127.0.0.1.

Costs are computed here by hand from the providers' published per-million prices, never
read back from kit-telemetry's price table.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from fake_providers import ANTHROPIC_USAGE, OPENAI_USAGE, FakeProviders
from opentelemetry.sdk.trace import ReadableSpan

import kit_telemetry as kt
from kit_telemetry import semconv as sc
from kit_telemetry.testing import Capture, capture

# https://platform.openai.com/docs/pricing (o4-mini, standard tier), USD per million tokens.
O4_MINI_INPUT = 1.10
O4_MINI_CACHED_INPUT = 0.275
O4_MINI_OUTPUT = 4.40
# https://docs.claude.com/en/docs/about-claude/pricing (Claude Sonnet 4.5, prompts up to
# 200K tokens), USD per million tokens; cache writes at the 5-minute rate.
SONNET_45_INPUT = 3.00
SONNET_45_CACHE_READ = 0.30
SONNET_45_CACHE_WRITE_5M = 3.75
SONNET_45_OUTPUT = 15.00

OPENAI_MODEL = "o4-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-5"
MESSAGES = [{"role": "user", "content": "Say hello."}]

# o4-mini: 1200 prompt tokens of which 200 cached; 300 completion tokens of which 100 reasoning.
OPENAI_COST = (
    (OPENAI_USAGE["prompt_tokens"] - OPENAI_USAGE["cached_tokens"]) * O4_MINI_INPUT
    + OPENAI_USAGE["cached_tokens"] * O4_MINI_CACHED_INPUT
    + OPENAI_USAGE["completion_tokens"] * O4_MINI_OUTPUT
) / 1e6
ANTHROPIC_COST = (
    ANTHROPIC_USAGE["input_tokens"] * SONNET_45_INPUT
    + ANTHROPIC_USAGE["cache_read_input_tokens"] * SONNET_45_CACHE_READ
    + ANTHROPIC_USAGE["cache_creation_input_tokens"] * SONNET_45_CACHE_WRITE_5M
    + ANTHROPIC_USAGE["output_tokens"] * SONNET_45_OUTPUT
) / 1e6


@pytest.fixture
def fake() -> Iterator[FakeProviders]:
    with FakeProviders() as server:
        yield server


@pytest.fixture
def cap() -> Iterator[Capture]:
    with capture() as captured:
        captured.telemetry.instrument("openai", "anthropic")
        try:
            yield captured
        finally:
            captured.telemetry.uninstrument()


def _openai(fake: FakeProviders) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_url, api_key="test", max_retries=0)


def _async_openai(fake: FakeProviders) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.openai_url, api_key="test", max_retries=0)


def _anthropic(fake: FakeProviders) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.anthropic_url, api_key="test", max_retries=0)


def _async_anthropic(fake: FakeProviders) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.anthropic_url, api_key="test", max_retries=0)


def _chat_spans(cap: Capture) -> list[ReadableSpan]:
    return [s for s in cap.spans() if s.name.startswith("chat ")]


# --- every kind of call, sync and async ----------------------------------------------------
# Each makes one call through the SDK and drains it; returns the text the agent received.


def _openai_chat(fake: FakeProviders) -> str:
    response = _openai(fake).chat.completions.create(
        model=OPENAI_MODEL, messages=MESSAGES, max_completion_tokens=500
    )
    return response.choices[0].message.content or ""


def _openai_chat_stream(fake: FakeProviders) -> str:
    stream = _openai(fake).chat.completions.create(
        model=OPENAI_MODEL,
        messages=MESSAGES,
        max_completion_tokens=500,
        stream=True,
        stream_options={"include_usage": True},
    )
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def _openai_responses(fake: FakeProviders) -> str:
    return (
        _openai(fake)
        .responses.create(model=OPENAI_MODEL, input="Say hello.", max_output_tokens=500)
        .output_text
    )


def _openai_responses_stream(fake: FakeProviders) -> str:
    stream = _openai(fake).responses.create(
        model=OPENAI_MODEL, input="Say hello.", max_output_tokens=500, stream=True
    )
    return "".join(e.delta for e in stream if e.type == "response.output_text.delta")


def _anthropic_messages(fake: FakeProviders) -> str:
    message = _anthropic(fake).messages.create(
        model=ANTHROPIC_MODEL, max_tokens=500, messages=MESSAGES
    )
    return "".join(block.text for block in message.content if block.type == "text")


def _anthropic_messages_stream(fake: FakeProviders) -> str:
    with _anthropic(fake).messages.create(
        model=ANTHROPIC_MODEL, max_tokens=500, messages=MESSAGES, stream=True
    ) as stream:
        return "".join(
            e.delta.text
            for e in stream
            if e.type == "content_block_delta" and e.delta.type == "text_delta"
        )


def _anthropic_stream_helper(fake: FakeProviders) -> str:
    with _anthropic(fake).messages.stream(
        model=ANTHROPIC_MODEL, max_tokens=500, messages=MESSAGES
    ) as stream:
        return "".join(stream.text_stream)


def _async_anthropic_stream_helper(fake: FakeProviders) -> str:
    async def go() -> str:
        async with _async_anthropic(fake).messages.stream(
            model=ANTHROPIC_MODEL, max_tokens=500, messages=MESSAGES
        ) as stream:
            return "".join([text async for text in stream.text_stream])

    return asyncio.run(go())


def _async_openai_chat(fake: FakeProviders) -> str:
    async def go() -> str:
        response = await _async_openai(fake).chat.completions.create(
            model=OPENAI_MODEL, messages=MESSAGES, max_completion_tokens=500
        )
        return response.choices[0].message.content or ""

    return asyncio.run(go())


def _async_openai_chat_stream(fake: FakeProviders) -> str:
    async def go() -> str:
        stream = await _async_openai(fake).chat.completions.create(
            model=OPENAI_MODEL,
            messages=MESSAGES,
            max_completion_tokens=500,
            stream=True,
            stream_options={"include_usage": True},
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    return asyncio.run(go())


def _async_openai_responses_stream(fake: FakeProviders) -> str:
    async def go() -> str:
        stream = await _async_openai(fake).responses.create(
            model=OPENAI_MODEL, input="Say hello.", max_output_tokens=500, stream=True
        )
        return "".join([e.delta async for e in stream if e.type == "response.output_text.delta"])

    return asyncio.run(go())


def _async_anthropic_messages(fake: FakeProviders) -> str:
    async def go() -> str:
        message = await _async_anthropic(fake).messages.create(
            model=ANTHROPIC_MODEL, max_tokens=500, messages=MESSAGES
        )
        return "".join(block.text for block in message.content if block.type == "text")

    return asyncio.run(go())


def _async_anthropic_messages_stream(fake: FakeProviders) -> str:
    async def go() -> str:
        async with await _async_anthropic(fake).messages.create(
            model=ANTHROPIC_MODEL, max_tokens=500, messages=MESSAGES, stream=True
        ) as stream:
            return "".join(
                [
                    e.delta.text
                    async for e in stream
                    if e.type == "content_block_delta" and e.delta.type == "text_delta"
                ]
            )

    return asyncio.run(go())


Caller = Callable[[FakeProviders], str]
OPENAI_CALLS: list[Caller] = [
    _openai_chat,
    _openai_chat_stream,
    _openai_responses,
    _openai_responses_stream,
    _async_openai_chat,
    _async_openai_chat_stream,
    _async_openai_responses_stream,
]
ANTHROPIC_CALLS: list[Caller] = [
    _anthropic_messages,
    _anthropic_messages_stream,
    _async_anthropic_messages,
    _async_anthropic_messages_stream,
    _anthropic_stream_helper,
    _async_anthropic_stream_helper,
]
CASES = [
    *[pytest.param(c, "openai", OPENAI_MODEL, OPENAI_COST, id=c.__name__) for c in OPENAI_CALLS],
    *[
        pytest.param(c, "anthropic", ANTHROPIC_MODEL, ANTHROPIC_COST, id=c.__name__)
        for c in ANTHROPIC_CALLS
    ],
]


@pytest.mark.parametrize(("call", "provider", "model", "cost"), CASES)
def test_an_sdk_call_becomes_a_priced_llm_call_of_the_current_turn(
    cap: Capture, fake: FakeProviders, call: Caller, provider: str, model: str, cost: float
) -> None:
    """The agent changes nothing but ``tel.instrument``: usage, cost and metrics follow."""
    tel = cap.telemetry
    with tel.session("s") as session, session.run("hi") as run, run.turn() as turn:
        text = call(fake)
    assert text == "Hello from the fake model."
    (span,) = _chat_spans(cap)
    assert span.name == f"chat {model}"
    assert span.parent is not None
    assert span.parent.span_id == cap.span("turn 0").context.span_id
    attributes = span.attributes or {}
    assert attributes[sc.GEN_AI_PROVIDER_NAME] == provider
    assert attributes[sc.GEN_AI_REQUEST_MAX_TOKENS] == 500
    assert attributes[sc.KIT_USAGE_COST_USD] == pytest.approx(cost)
    assert sc.KIT_USAGE_ESTIMATED not in attributes
    assert run.end_event is not None
    assert run.end_event.llm_call_count == 1
    assert run.end_event.cost_usd == pytest.approx(cost)
    assert run.end_event.cost_complete
    if provider == "openai":
        assert run.end_event.input_tokens == 1000  # uncached: 1200 prompt - 200 cached
        assert run.end_event.cache_read_tokens == 200
        assert run.end_event.reasoning_tokens == 100
    else:
        assert run.end_event.cache_read_tokens == 4000
        assert run.end_event.cache_write_tokens == 500
    labels = {"provider": provider, "model": model}
    assert cap.metric("kit_llm_calls_total", **labels, outcome="ok") == 1
    assert cap.metric("kit_llm_cost_usd_total", **labels) == pytest.approx(cost)
    assert turn.index == 0
    assert len(fake.requests) == 1


@pytest.mark.parametrize(("call", "provider", "model", "cost"), CASES)
def test_a_budget_refuses_the_call_before_any_request_reaches_the_provider(
    fake: FakeProviders, call: Caller, provider: str, model: str, cost: float
) -> None:
    """Admission reserves the request's max tokens at the model's price: $0.001 cannot pay."""
    budget = kt.Budget(name="tiny", scope="session", limit_usd=0.001)
    with capture(budgets=[budget]) as cap:
        tel = cap.telemetry
        tel.instrument("openai", "anthropic")
        try:
            with tel.session("s") as session, session.run("hi"):
                with pytest.raises(kt.BudgetExceeded) as info:
                    call(fake)
        finally:
            tel.uninstrument()
    assert info.value.budget == "tiny"
    assert fake.requests == []
    (span,) = _chat_spans(cap)
    assert (span.attributes or {})[sc.KIT_LLM_OUTCOME] == "budget_denied"
    assert cap.metric("kit_llm_calls_total", provider=provider, model=model, outcome="ok") is None


@pytest.mark.parametrize(("call", "provider", "model", "cost"), CASES)
def test_an_extension_blocks_the_call_before_any_request_reaches_the_provider(
    fake: FakeProviders, call: Caller, provider: str, model: str, cost: float
) -> None:
    """An llm_request handler's kt.Block comes out of the SDK call; nothing is sent."""

    def guard(api: kt.ExtensionAPI) -> None:
        @api.on(kt.EventType.LLM_REQUEST)
        def no_big_models(event: kt.LLMRequestEvent, ctx: kt.ExtensionContext) -> kt.Block:
            return kt.Block(f"{event.model} is not allowed here")

    with capture(strict=False) as cap:  # lenient: a refusal is no internal error to swallow
        tel = cap.telemetry
        tel.extension_processor.load_setup("guard", guard)
        tel.instrument("openai", "anthropic")
        try:
            with tel.session("s") as session, session.run("hi"):
                with pytest.raises(kt.Blocked) as info:
                    call(fake)
        finally:
            tel.uninstrument()
    assert (info.value.kind, info.value.extension) == ("llm_call", "guard")
    assert info.value.reason == f"{model} is not allowed here"
    assert fake.requests == []
    assert cap.metric("kit_llm_calls_total", provider=provider, model=model, outcome="ok") is None


def test_a_run_stopped_by_an_extension_refuses_its_next_sdk_call(fake: FakeProviders) -> None:
    """kt.Stop after the first call's usage: the second create() raises, unsent."""

    def one_call_only(api: kt.ExtensionAPI) -> None:
        @api.on(kt.EventType.LLM_USAGE)
        def stop(event: kt.LLMUsageEvent, ctx: kt.ExtensionContext) -> kt.Stop:
            return kt.Stop("one call is enough")

    with capture(strict=False) as cap:
        tel = cap.telemetry
        tel.extension_processor.load_setup("one_call_only", one_call_only)
        tel.instrument("openai")
        try:
            with tel.session("s") as session, session.run("hi") as run:
                _openai_chat(fake)
                with pytest.raises(kt.Blocked) as info:
                    _openai_chat(fake)
        finally:
            tel.uninstrument()
    assert (info.value.kind, info.value.reason) == ("run", "one call is enough")
    assert len(fake.requests) == 1
    assert run.end_event is not None and run.end_event.stop_reason == "stopped"
    assert run.end_event.llm_call_count == 1


def test_the_input_estimate_from_the_messages_counts_at_admission(fake: FakeProviders) -> None:
    """A long prompt is refused by a token budget even though max_tokens alone would fit."""
    budget = kt.Budget(name="tokens", scope="session", limit_tokens=1000)
    long_prompt = [{"role": "user", "content": "word " * 2000}]  # 10 000 chars: ~2500 tokens
    with capture(budgets=[budget]) as cap:
        tel = cap.telemetry
        tel.instrument("anthropic")
        try:
            with tel.session("s") as session, session.run("hi"):
                client = _anthropic(fake)
                with pytest.raises(kt.BudgetExceeded):
                    client.messages.create(
                        model=ANTHROPIC_MODEL, max_tokens=10, messages=long_prompt
                    )
                assert fake.requests == []
                # The same call with a short prompt fits: the refusal was the estimate's.
                client.messages.create(model=ANTHROPIC_MODEL, max_tokens=10, messages=MESSAGES)
        finally:
            tel.uninstrument()
    assert len(fake.requests) == 1


def test_a_chat_stream_without_usage_is_an_unpriced_call_with_a_flagged_estimate(
    cap: Capture, fake: FakeProviders
) -> None:
    """Without stream_options.include_usage OpenAI sends no usage: never counted as $0."""
    tel = cap.telemetry
    with tel.session("s") as session, session.run("hi") as run:
        stream = _openai(fake).chat.completions.create(
            model=OPENAI_MODEL, messages=MESSAGES, stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello from the fake model."
    attributes = _chat_spans(cap)[0].attributes or {}
    assert attributes[sc.KIT_USAGE_ESTIMATED] is True
    assert attributes[sc.KIT_USAGE_ESTIMATED_INPUT_TOKENS] == 3  # "Say hello." + "user"
    assert attributes[sc.KIT_USAGE_ESTIMATED_OUTPUT_TOKENS] == 7  # 26 chars
    assert sc.KIT_USAGE_COST_USD not in attributes
    assert run.end_event is not None
    assert run.end_event.llm_call_count == 1
    assert run.end_event.unpriced_call_count == 1
    assert not run.end_event.cost_complete
    labels = {"provider": "openai", "model": OPENAI_MODEL}
    assert cap.metric("kit_llm_unpriced_calls_total", **labels) == 1
    assert not cap.metric("kit_llm_cost_usd_total", **labels)


@pytest.mark.parametrize("mode", ["missing", "malformed"])
@pytest.mark.parametrize(
    "call",
    [
        _openai_chat,
        _openai_chat_stream,
        _openai_responses,
        _anthropic_messages,
        _anthropic_messages_stream,
    ],
)
def test_a_response_with_missing_or_malformed_usage_is_reported_not_raised(
    fake: FakeProviders, call: Caller, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The agent gets its answer; the call counts as unpriced and the problem is counted."""
    fake.usage = mode  # type: ignore[assignment]
    with capture(strict=False) as cap:
        tel = cap.telemetry
        tel.instrument("openai", "anthropic")
        try:
            with (
                caplog.at_level(logging.WARNING, logger="kit_telemetry"),
                tel.session("s") as session,
                session.run("hi") as run,
            ):
                text = call(fake)
        finally:
            tel.uninstrument()
    assert text == "Hello from the fake model."
    assert run.end_event is not None
    assert run.end_event.llm_call_count == 1
    assert run.end_event.unpriced_call_count == 1
    assert run.end_event.cost_usd == 0.0
    assert not run.end_event.cost_complete
    (span,) = _chat_spans(cap)
    assert (span.attributes or {})[sc.KIT_USAGE_ESTIMATED] is True
    reported = cap.metric("kit_telemetry_internal_errors_total", component="instrument")
    # Every one of these asked for usage (the chat stream with include_usage).
    assert reported == 1


def test_a_bad_usage_raises_only_when_strict_and_only_after_the_call_was_recorded(
    fake: FakeProviders,
) -> None:
    """``strict=True`` (tests) surfaces the provider's bad usage; the span is still complete."""
    fake.usage = "malformed"
    with capture() as cap:
        tel = cap.telemetry
        tel.instrument("openai")
        try:
            with tel.session("s") as session, session.run("hi"):
                with pytest.raises(kt.UsageError, match="prompt_tokens"):
                    _openai_chat(fake)
        finally:
            tel.uninstrument()
    (span,) = _chat_spans(cap)
    assert span.end_time is not None
    assert (span.attributes or {})[sc.KIT_USAGE_ESTIMATED] is True


def test_a_call_outside_any_run_gets_an_implicit_run(cap: Capture, fake: FakeProviders) -> None:
    """Instrumenting is enough: calls made outside a run are still counted and budgeted."""
    _openai_chat(fake)
    _anthropic_messages(fake)
    runs = [s for s in cap.spans() if s.name == "invoke_agent implicit"]
    assert len(runs) == 2
    for chat, run in zip(_chat_spans(cap), runs, strict=True):
        assert chat.context.trace_id == run.context.trace_id
    ends = cap.events_of(kt.EventType.AGENT_END)
    assert [e.cost_usd for e in ends] == [pytest.approx(OPENAI_COST), pytest.approx(ANTHROPIC_COST)]  # type: ignore[attr-defined]
    assert len({e.session_id for e in ends}) == 1


def test_a_call_in_a_run_without_a_turn_opens_an_implicit_turn(
    cap: Capture, fake: FakeProviders
) -> None:
    """Like ``run.llm_call``: each call is a turn of the run."""
    with cap.telemetry.session("s") as session, session.run("hi") as run:
        _openai_chat(fake)
        _openai_chat(fake)
    assert run.end_event is not None
    assert run.end_event.llm_call_count == 2
    assert run.end_event.turn_count == 2


def test_a_failed_request_ends_the_call_as_an_error_and_releases_its_reservation(
    fake: FakeProviders,
) -> None:
    """The SDK's error reaches the agent unchanged; nothing stays reserved."""
    budget = kt.Budget(name="daily", scope="session", limit_usd=10.0)
    with capture(budgets=[budget]) as cap:
        tel = cap.telemetry
        tel.instrument("openai")
        try:
            client = openai.OpenAI(base_url=f"{fake.base_url}/nowhere", api_key="t", max_retries=0)
            with tel.session("s") as session, session.run("hi"):
                with pytest.raises(openai.NotFoundError):
                    client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES)
        finally:
            tel.uninstrument()
        (status,) = tel.budget_status()
    (span,) = _chat_spans(cap)
    assert (span.attributes or {})[sc.KIT_LLM_OUTCOME] == "error"
    assert status.reserved == 0
    assert status.spent == 0


def test_instrument_is_idempotent_and_uninstrument_restores_the_sdk(
    fake: FakeProviders,
) -> None:
    """Twice instrumented is one span per call; after uninstrument the SDK is untouched."""
    originals = (
        openai.resources.chat.completions.Completions.create,
        openai.resources.responses.Responses.create,
        anthropic.resources.messages.Messages.create,
    )
    with capture() as cap:
        tel = cap.telemetry
        tel.instrument("openai")
        tel.instrument("openai", "anthropic")
        assert openai.resources.chat.completions.Completions.create is not originals[0]
        _openai_chat(fake)
        assert len(_chat_spans(cap)) == 1
        tel.uninstrument()
        tel.uninstrument()
        assert (
            openai.resources.chat.completions.Completions.create,
            openai.resources.responses.Responses.create,
            anthropic.resources.messages.Messages.create,
        ) == originals
        _openai_chat(fake)
        assert len(_chat_spans(cap)) == 1
        tel.instrument("openai")
        _openai_chat(fake)
        tel.shutdown()  # shutting down uninstruments too
        assert openai.resources.chat.completions.Completions.create is originals[0]
    assert len(_chat_spans(cap)) == 2
    assert len(fake.requests) == 3


def test_instrument_names_the_allowed_providers() -> None:
    """A typo fails at configuration, naming what is allowed."""
    with capture() as cap, pytest.raises(kt.ConfigError, match="'opneai' is not one of"):
        cap.telemetry.instrument("opneai")


def test_a_stream_closed_early_ends_its_call_once(cap: Capture, fake: FakeProviders) -> None:
    """Closing a stream before its end still ends the call: no span is left open."""
    with cap.telemetry.session("s") as session, session.run("hi") as run:
        stream = _anthropic(fake).messages.create(
            model=ANTHROPIC_MODEL, max_tokens=500, messages=MESSAGES, stream=True
        )
        first: Any = next(iter(stream))
        stream.close()
        stream.close()
    assert first.type == "message_start"
    (span,) = _chat_spans(cap)
    assert span.end_time is not None
    assert run.end_event is not None
    # message_start carried the input side of the usage: that much is priced.
    assert run.end_event.input_tokens == ANTHROPIC_USAGE["input_tokens"]


def test_a_stream_dropped_unread_ends_its_call_when_collected(
    cap: Capture, fake: FakeProviders
) -> None:
    """A stream the agent forgets holds no open span nor reservation once collected."""
    with cap.telemetry.session("s") as session, session.run("hi") as run:
        stream = _anthropic(fake).messages.create(
            model=ANTHROPIC_MODEL, max_tokens=500, messages=MESSAGES, stream=True
        )
        next(iter(stream))
        assert _chat_spans(cap) == []  # still open while the agent holds the stream
        del stream
        gc.collect()
        (span,) = _chat_spans(cap)
    assert span.end_time is not None
    assert run.end_event is not None and run.end_event.llm_call_count == 1
    assert run.end_event.input_tokens == ANTHROPIC_USAGE["input_tokens"]


def test_an_sdk_call_inside_the_agents_own_llm_call_block_is_not_counted_twice(
    cap: Capture, fake: FakeProviders
) -> None:
    """An agent that already wraps its SDK calls in ``turn.llm_call`` keeps its one span."""
    with cap.telemetry.session("s") as session, session.run("hi") as run, run.turn() as turn:
        with turn.llm_call("openai", OPENAI_MODEL) as call:
            response = _openai(fake).chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES)
            call.record_usage(**kt.usage.from_openai(response))
    assert len(_chat_spans(cap)) == 1
    assert run.end_event is not None
    assert run.end_event.llm_call_count == 1
    assert run.end_event.cost_usd == pytest.approx(OPENAI_COST)


def test_concurrent_calls_of_concurrent_runs_add_up_exactly(
    cap: Capture, fake: FakeProviders
) -> None:
    """Threads share the patched SDK; each call joins its own thread's run."""
    tel = cap.telemetry
    threads, calls = 6, 5

    def agent(index: int) -> kt.AgentEndEvent | None:
        client = _openai(fake)
        with tel.session(f"s-{index}") as session, session.run("hi") as run:
            for _ in range(calls):
                client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES)
        return run.end_event

    def instrument_again() -> None:
        tel.instrument("openai", "anthropic")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda _: instrument_again(), range(threads)))
        ends = list(pool.map(agent, range(threads)))
    assert [e.llm_call_count if e else None for e in ends] == [calls] * threads
    total = sum(e.cost_usd for e in ends if e is not None)
    assert total == pytest.approx(threads * calls * OPENAI_COST)
    assert cap.metric(
        "kit_llm_calls_total", provider="openai", model=OPENAI_MODEL, outcome="ok"
    ) == (threads * calls)
    assert len(fake.requests) == threads * calls


def test_instrumenting_a_provider_whose_sdk_is_missing_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The SDKs are optional: a missing one is a configuration error naming the extra."""
    original = anthropic.resources.messages.Messages.create
    monkeypatch.setitem(sys.modules, "anthropic.resources.messages", None)
    with capture() as cap:
        with pytest.raises(kt.ConfigError, match=r"kit-telemetry\[anthropic\]"):
            cap.telemetry.instrument("anthropic")
    assert anthropic.resources.messages.Messages.create is original


def test_the_sdks_are_imported_only_when_instrumented(tmp_path: Path) -> None:
    """An agent that never calls ``instrument`` never pays for importing a provider SDK."""
    code = (
        "import sys, kit_telemetry as kt\n"
        "tel = kt.Telemetry(exporters=())\n"
        "print(sorted(m for m in ('openai', 'anthropic') if m in sys.modules))\n"
        "tel.instrument('openai')\n"
        "print(sorted(m for m in ('openai', 'anthropic') if m in sys.modules))\n"
        "tel.shutdown()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.split("\n")[:2] == ["[]", "['openai']"]
