"""Tests for the demo's simulated model and tools."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from kit_telemetry import usage
from kit_telemetry.cli.demo.simulated import (
    DEMO_MODELS,
    DEMO_PROMPTS,
    DemoModel,
    SimulatedModel,
    SimulatedResponse,
)
from kit_telemetry.cli.demo.tools import DEMO_TOOLS, SimulatedTools, tool_message
from kit_telemetry.errors import ConfigError

MODEL_IDS = [m.model for m in DEMO_MODELS]
FINAL_REASON = {
    "messages": "end_turn",
    "chat_completions": "stop",
    "responses": "completed",
    "generate_content": "STOP",
}
TOOL_REASON = {
    "messages": "tool_use",
    "chat_completions": "tool_calls",
    "responses": "completed",
    "generate_content": "STOP",
}
LENGTH_REASON = {
    "messages": "max_tokens",
    "chat_completions": "length",
    "responses": "max_output_tokens",
    "generate_content": "MAX_TOKENS",
}


def model_for(demo: DemoModel, seed: int) -> SimulatedModel:
    return SimulatedModel(seed, demo.provider, demo.model, api=demo.api)


def converse(
    model: SimulatedModel, tools: SimulatedTools, prompt: str, max_tokens: int = 4096
) -> list[SimulatedResponse]:
    """Drive one agent run the way the demo loop does, returning every response."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    responses = []
    for _ in range(20):
        response = model.complete(messages, max_tokens)
        responses.append(response)
        messages.append(response.message())
        if not response.tool_calls:
            return responses
        for call in response.tool_calls:
            try:
                result, is_error = tools.run(call.name, call.arguments)
            except Exception as exc:
                result, is_error = f"{type(exc).__name__}: {exc}", True
            messages.append(tool_message(call, result, is_error))
    raise AssertionError("the simulated model never gave a final answer")


def total_input(kwargs: usage.UsageKwargs) -> int:
    return kwargs["input_tokens"] + kwargs["cache_read_tokens"] + kwargs["cache_write_tokens"]


@pytest.mark.parametrize("demo", DEMO_MODELS, ids=MODEL_IDS)
def test_same_seed_gives_the_same_conversation(demo: DemoModel) -> None:
    """The demo's output, traces and totals must be reproducible from --seed."""

    def run(seed: int) -> list[tuple[Any, ...]]:
        model, tools = model_for(demo, seed), SimulatedTools(seed)
        runs = [converse(model, tools, prompt) for prompt in DEMO_PROMPTS[:2]]
        return [
            (r.text, r.tool_calls, r.finish_reason, r.raw, r.latency_s) for rs in runs for r in rs
        ]

    assert run(11) == run(11)
    assert run(11) != run(12)


@pytest.mark.parametrize("demo", DEMO_MODELS, ids=MODEL_IDS)
def test_raw_payloads_normalise_through_the_usage_helpers(demo: DemoModel) -> None:
    """The demo exercises usage.from_*; its payloads must read back consistently."""
    model, tools = model_for(demo, 3), SimulatedTools(3)
    for prompt in DEMO_PROMPTS:
        for response in converse(model, tools, prompt):
            json.dumps(response.raw)  # provider payloads are JSON
            kwargs = usage.from_provider(demo.provider, response.raw)
            assert kwargs["finish_reason"] == response.finish_reason
            assert kwargs["response_id"]
            assert 0 <= kwargs["reasoning_tokens"] <= kwargs["output_tokens"]
            assert min(kwargs["input_tokens"], kwargs["cache_read_tokens"]) >= 0
            if demo.provider != "anthropic":
                assert kwargs["cache_write_tokens"] == 0
            raw_usage = response.raw.get("usage") or response.raw["usageMetadata"]
            if "total_tokens" in raw_usage or "totalTokenCount" in raw_usage:
                reported = raw_usage.get("total_tokens", raw_usage.get("totalTokenCount"))
                assert total_input(kwargs) + kwargs["output_tokens"] == reported


@pytest.mark.parametrize("demo", DEMO_MODELS, ids=MODEL_IDS)
def test_runs_call_tools_for_a_few_turns_then_answer(demo: DemoModel) -> None:
    """Each run looks like an agent: tool turns, then one final answer."""
    model, tools = model_for(demo, 5), SimulatedTools(5)
    lengths = []
    for prompt in DEMO_PROMPTS:
        responses = converse(model, tools, prompt)
        lengths.append(len(responses))
        *tool_turns, final = responses
        assert 1 <= len(tool_turns) <= 6
        for response in tool_turns:
            assert response.tool_calls
            assert response.finish_reason == TOOL_REASON[demo.api]
            assert {call.name for call in response.tool_calls} <= set(DEMO_TOOLS)
        assert final.finish_reason == FINAL_REASON[demo.api]
        assert final.text
        ids = [call.call_id for r in tool_turns for call in r.tool_calls]
        assert len(set(ids)) == len(ids)
    assert len(set(lengths)) > 1, "every run had the same number of turns"


@pytest.mark.parametrize("demo", DEMO_MODELS, ids=MODEL_IDS)
def test_input_grows_with_the_conversation(demo: DemoModel) -> None:
    """Later turns resend the history, so the total input must rise turn by turn."""
    responses = converse(model_for(demo, 8), SimulatedTools(8), DEMO_PROMPTS[0])
    totals = [total_input(usage.from_provider(demo.provider, r.raw)) for r in responses]
    assert totals == sorted(totals)
    assert len(set(totals)) == len(totals)
    assert totals[0] > 2_000  # the system prompt and tool schemas


def test_anthropic_writes_the_cache_first_then_reads_it() -> None:
    """Agents with prompt caching read most of their input from the cache after turn 0."""
    model = SimulatedModel(1, "anthropic", "claude-sonnet-4-5")
    first_run = converse(model, SimulatedTools(1, error_rate=0, raise_rate=0), DEMO_PROMPTS[0])
    counts = [usage.from_anthropic(r.raw) for r in first_run]
    assert counts[0]["cache_read_tokens"] == 0
    assert counts[0]["cache_write_tokens"] > 2_000
    later_reads = [c["cache_read_tokens"] for c in counts[1:]]
    assert sum(1 for read in later_reads if read > 0) >= len(later_reads) - 1
    # a second run on the same model starts warm: the system prompt is already cached
    second_run = converse(model, SimulatedTools(2), DEMO_PROMPTS[1])
    assert usage.from_anthropic(second_run[0].raw)["cache_read_tokens"] > 2_000


def test_reasoning_tokens_only_from_reasoning_models() -> None:
    """o4-mini spends reasoning tokens on some calls; gpt-4o never does."""
    reasoning: dict[str, list[int]] = {"o4-mini": [], "gpt-4o": []}
    for name, api in (("o4-mini", "responses"), ("gpt-4o", "chat_completions")):
        model = SimulatedModel(4, "openai", name, api=api)
        for prompt in DEMO_PROMPTS:
            for response in converse(model, SimulatedTools(4), prompt):
                reasoning[name].append(usage.from_openai(response.raw)["reasoning_tokens"])
    assert any(r > 0 for r in reasoning["o4-mini"])
    assert set(reasoning["gpt-4o"]) == {0}


@pytest.mark.parametrize("demo", DEMO_MODELS, ids=MODEL_IDS)
def test_output_over_max_tokens_is_cut_off_with_the_length_reason(demo: DemoModel) -> None:
    """A too-small max_tokens ends the call the way the real provider reports it."""
    response = model_for(demo, 2).complete([{"role": "user", "content": "hi"}], max_tokens=5)
    assert response.tool_calls == ()
    assert response.finish_reason == LENGTH_REASON[demo.api]
    assert usage.from_provider(demo.provider, response.raw)["output_tokens"] == 5


def test_latency_is_small_and_positive() -> None:
    """The demo may sleep for latency_s; it must stay within the advertised bounds."""
    responses = converse(SimulatedModel(9, "google", "gemini-2.5-flash"), SimulatedTools(9), "x")
    assert all(0.001 <= r.latency_s <= 0.02 for r in responses)


def test_bad_model_configuration_names_what_is_allowed() -> None:
    """Unknown providers or APIs fail at construction, naming the accepted values."""
    with pytest.raises(ConfigError, match=r"provider 'mistral' is not one of anthropic, openai"):
        SimulatedModel(0, "mistral", "mistral-large")
    with pytest.raises(ConfigError, match=r"api 'responses' is not one of messages"):
        SimulatedModel(0, "anthropic", "claude-sonnet-4-5", api="responses")
    with pytest.raises(ValueError, match=r"max_tokens must be a positive integer, got 0"):
        SimulatedModel(0, "openai", "gpt-4o").complete([], max_tokens=0)


# --- tools ------------------------------------------------------------------------------------


def outcomes(seed: int, calls: int = 40) -> list[str]:
    tools = SimulatedTools(seed)
    seen = []
    for i in range(calls):
        name = DEMO_TOOLS[i % len(DEMO_TOOLS)]
        try:
            _, is_error = tools.run(
                name, {"command": "ls src/app tests", "path": "a.py", "pattern": "x"}
            )
        except (TimeoutError, PermissionError, RuntimeError) as exc:
            seen.append(type(exc).__name__)
        else:
            seen.append("error" if is_error else "ok")
    return seen


def test_tools_sometimes_fail_by_result_and_sometimes_raise() -> None:
    """The demo must show failed tool calls of both kinds, but mostly successes."""
    per_seed = [outcomes(seed) for seed in range(10)]
    everything = [outcome for seen in per_seed for outcome in seen]
    assert everything.count("ok") > len(everything) * 3 // 4
    assert any("error" in seen for seen in per_seed)
    raised = {"TimeoutError", "PermissionError", "RuntimeError"}
    assert any(raised & set(seen) for seen in per_seed)
    assert any(not raised & set(seen) for seen in per_seed)


def test_tools_are_deterministic_per_seed() -> None:
    """Tool outcomes and results are reproducible from the seed."""
    assert outcomes(21) == outcomes(21)
    first = SimulatedTools(21).run("read_file", {"path": "src/app/parser.py"})
    assert first == SimulatedTools(21).run("read_file", {"path": "src/app/parser.py"})


def test_tools_never_fail_when_rates_are_zero() -> None:
    """Rates are honoured: with both at zero every known tool succeeds."""
    tools = SimulatedTools(0, error_rate=0.0, raise_rate=0.0)
    args = {"command": "git status --short", "path": "src/app/cli.py", "pattern": "TODO"}
    results = [tools.run(name, args) for name in DEMO_TOOLS * 20]
    assert all(not is_error for _, is_error in results)
    assert any("passed in" in result for result, _ in results)


def test_raised_tool_errors_name_the_tool() -> None:
    """An exception from a tool says which tool and what it was doing."""
    tools = SimulatedTools(0, error_rate=0.0, raise_rate=1.0)
    with pytest.raises(TimeoutError, match=r"run_tests: 'pytest' timed out"):
        tools.run("run_tests", {})
    with pytest.raises(PermissionError) as info:
        tools.run("edit_file", {"path": "src/app/cli.py"})
    assert info.value.filename == "src/app/cli.py"


def test_unknown_tools_and_missing_arguments_are_error_results() -> None:
    """The model's mistakes come back as tool errors, as agent frameworks report them."""
    tools = SimulatedTools(0, error_rate=0.0, raise_rate=1.0)
    result, is_error = tools.run("browse", {})
    assert is_error and "unknown tool 'browse'" in result and "run_tests" in result
    result, is_error = tools.run("read_file", {"file": "x.py"})
    assert is_error and "missing required string argument 'path'" in result


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"error_rate": 1.5}, r"error_rate 1.5 is not between 0 and 1"),
        ({"raise_rate": -0.1}, r"raise_rate -0.1 is not between 0 and 1"),
        ({"error_rate": 0.7, "raise_rate": 0.4}, r"exceeds 1"),
    ],
)
def test_bad_tool_rates_are_rejected(kwargs: dict[str, float], message: str) -> None:
    """Rates outside [0, 1] are configuration errors."""
    with pytest.raises(ConfigError, match=message):
        SimulatedTools(0, **kwargs)


def test_model_calls_from_many_threads_are_each_counted_once() -> None:
    """The model's lock serialises calls: every call gets its own sequence number."""
    model = SimulatedModel(0, "openai", "gpt-4o-mini")
    created: list[int] = []
    guard = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            raw = model.complete([{"role": "user", "content": "hi"}], 1024).raw
            with guard:
                created.append(raw["created"])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(created) == 200
    assert len(set(created)) == 200
