"""Tests for kit_telemetry.usage: provider payloads in, disjoint record_usage kwargs out."""

from __future__ import annotations

import enum
import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import kit_telemetry as kt
from kit_telemetry import usage
from kit_telemetry.errors import KitTelemetryError, UsageError
from kit_telemetry.tokens import TOKEN_KINDS, TokenUsage

FIXTURES = Path(__file__).parent / "fixtures" / "usage"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


# fixture name, helper, expected record_usage kwargs
CASES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "openai_chat_basic",
        "openai",
        {
            "input_tokens": 412,
            "output_tokens": 58,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "reasoning_tokens": 0,
            "response_id": "chatcmpl-BMr7yK1Qy2pTtB3nd9GFQ7VUgQm0L",
            "finish_reason": "stop",
        },
    ),
    (
        "openai_chat_cached_reasoning",
        "openai",
        {
            "input_tokens": 5309 - 4992,
            "output_tokens": 1474,
            "cache_read_tokens": 4992,
            "cache_write_tokens": 0,
            "reasoning_tokens": 1408,
            "response_id": "chatcmpl-BNa1fQ8ZmxT0oA4eHc2Lw9rS7kV3d",
            "finish_reason": "tool_calls",
        },
    ),
    (
        "openai_responses_cached_reasoning",
        "openai",
        {
            "input_tokens": 3172 - 2944,
            "output_tokens": 389,
            "cache_read_tokens": 2944,
            "cache_write_tokens": 0,
            "reasoning_tokens": 320,
            "response_id": "resp_68a1c2e0f4d88193a5b6c1e2d3f4a5b60c7d8e9f0a1b2c3d",
            "finish_reason": "completed",
        },
    ),
    (
        "openai_responses_incomplete",
        "openai",
        {
            "input_tokens": 1890,
            "output_tokens": 256,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "reasoning_tokens": 0,
            "response_id": "resp_68a1c51b2e3c8190b7f1e2d3c4b5a6970d1e2f3a4b5c6d7e",
            "finish_reason": "max_output_tokens",
        },
    ),
    (
        "anthropic_tool_use_cached",
        "anthropic",
        {
            "input_tokens": 6,
            "output_tokens": 187,
            "cache_read_tokens": 10244,
            "cache_write_tokens": 1843,
            "reasoning_tokens": 0,
            "response_id": "msg_01Hq7tWc9Zb2RkXyVn4LpE8s",
            "finish_reason": "tool_use",
        },
    ),
    (
        "anthropic_end_turn_uncached",
        "anthropic",
        {
            "input_tokens": 742,
            "output_tokens": 31,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "reasoning_tokens": 0,
            "response_id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
            "finish_reason": "end_turn",
        },
    ),
    (
        "gemini_rest_thinking_cached",
        "gemini",
        {
            "input_tokens": 4233 - 2048,
            "output_tokens": 312 + 857,
            "cache_read_tokens": 2048,
            "cache_write_tokens": 0,
            "reasoning_tokens": 857,
            "response_id": "mJkRaOqBLZ6xnvgPpO7p4Q4",
            "finish_reason": "STOP",
        },
    ),
    (
        "gemini_sdk_dump_max_tokens",
        "gemini",
        {
            # tool-use prompt tokens are input billed beside the prompt count
            "input_tokens": 958 + 120,
            "output_tokens": 17 + 495,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "reasoning_tokens": 495,
            "response_id": "Zq8RaMTbHd2pvdIP3Nq7iAk",
            "finish_reason": "MAX_TOKENS",
        },
    ),
]

HELPERS = {
    "openai": usage.from_openai,
    "anthropic": usage.from_anthropic,
    "gemini": usage.from_gemini,
}
TOKEN_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


def usage_part(name: str, helper: str) -> Any:
    data = load(name)
    if helper == "gemini":
        return data.get("usage_metadata") or data["usageMetadata"]
    return data["usage"]


@pytest.mark.parametrize(("name", "helper", "expected"), CASES, ids=[c[0] for c in CASES])
def test_whole_response_normalises_to_disjoint_counts(
    name: str, helper: str, expected: dict[str, Any]
) -> None:
    """Real response payloads give the exact record_usage kwargs, ids and finish reasons."""
    assert HELPERS[helper](load(name)) == expected


@pytest.mark.parametrize(("name", "helper", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bare_usage_gives_counts_without_response_fields(
    name: str, helper: str, expected: dict[str, Any]
) -> None:
    """Passing only the usage part yields the same counts and no id or finish reason."""
    result = HELPERS[helper](usage_part(name, helper))
    assert result == {key: expected[key] for key in TOKEN_KEYS}
    assert "response_id" not in result
    assert "finish_reason" not in result


@pytest.mark.parametrize(("name", "helper", "expected"), CASES, ids=[c[0] for c in CASES])
def test_from_provider_dispatches_to_the_matching_helper(
    name: str, helper: str, expected: dict[str, Any]
) -> None:
    """The demo and generic integrations pick a helper by provider name."""
    provider = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}[helper]
    assert usage.from_provider(provider, load(name)) == expected


def test_from_provider_rejects_unknown_provider_listing_allowed_ones() -> None:
    """A typo in a provider name names the value and what would be accepted."""
    with pytest.raises(UsageError, match=r"'opneai' is not one of .*anthropic.*openai"):
        usage.from_provider("opneai", load("openai_chat_basic"))


# --- SDK-object stand-ins -----------------------------------------------------------------


class Record:
    """Attribute-access object like the SDKs' response classes (no mapping protocol)."""

    def __init__(self, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(self, key, value)


def to_records(data: Any) -> Any:
    """Turn a JSON payload into nested attribute objects, as an SDK would."""
    if isinstance(data, dict):
        return Record(**{key: to_records(value) for key, value in data.items()})
    if isinstance(data, list):
        return [to_records(item) for item in data]
    return data


@pytest.mark.parametrize(("name", "helper", "expected"), CASES, ids=[c[0] for c in CASES])
def test_attribute_objects_read_like_dicts(
    name: str, helper: str, expected: dict[str, Any]
) -> None:
    """SDK responses are objects with attributes, not dicts; both must give the same result."""
    assert HELPERS[helper](to_records(load(name))) == expected


class PromptTokensDetails(BaseModel):
    cached_tokens: int | None = None
    audio_tokens: int | None = None


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int | None = None
    audio_tokens: int | None = None


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class Choice(BaseModel):
    index: int
    finish_reason: str


class ChatCompletion(BaseModel):
    id: str
    choices: list[Choice]
    usage: CompletionUsage | None = None


def test_pydantic_models_like_the_openai_sdk_are_read() -> None:
    """The openai SDK returns pydantic models; details objects may be None."""
    completion = ChatCompletion(
        id="chatcmpl-x1",
        choices=[Choice(index=0, finish_reason="length")],
        usage=CompletionUsage(
            prompt_tokens=2000,
            completion_tokens=900,
            total_tokens=2900,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=1536),
            completion_tokens_details=None,
        ),
    )
    assert usage.from_openai(completion) == {
        "input_tokens": 464,
        "output_tokens": 900,
        "cache_read_tokens": 1536,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "response_id": "chatcmpl-x1",
        "finish_reason": "length",
    }
    assert completion.usage is not None
    assert usage.from_openai(completion.usage)["cache_read_tokens"] == 1536


class FinishReason(str, enum.Enum):
    """Mirrors google-genai's FinishReason, whose str() is 'FinishReason.STOP'."""

    STOP = "STOP"
    MAX_TOKENS = "MAX_TOKENS"


def test_gemini_enum_finish_reason_gives_its_value() -> None:
    """google-genai returns an enum; the provider's own value is 'STOP', not the enum repr."""
    response = Record(
        response_id="abc",
        candidates=[Record(finish_reason=FinishReason.STOP)],
        usage_metadata=Record(
            prompt_token_count=100,
            candidates_token_count=20,
            cached_content_token_count=None,
            thoughts_token_count=None,
        ),
    )
    result = usage.from_gemini(response)
    assert result["finish_reason"] == "STOP"
    assert result["input_tokens"] == 100
    assert result["output_tokens"] == 20
    assert result["reasoning_tokens"] == 0


class DumpOnly:
    """An object exposing its data only through model_dump()."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def model_dump(self) -> dict[str, Any]:
        return self._data


def test_objects_exposing_only_model_dump_are_read() -> None:
    """Wrappers that hide fields behind model_dump() still normalise."""
    expected = dict(CASES[4][2])
    assert usage.from_anthropic(DumpOnly(load("anthropic_tool_use_cached"))) == expected
    bare = DumpOnly(load("anthropic_tool_use_cached")["usage"])
    assert usage.from_anthropic(bare)["cache_write_tokens"] == 1843


def test_anthropic_cache_creation_breakdown_is_summed_when_total_missing() -> None:
    """Some payloads only give the per-TTL cache-write split; both TTLs are cache writes."""
    result = usage.from_anthropic(
        {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_creation": {"ephemeral_5m_input_tokens": 300, "ephemeral_1h_input_tokens": 700},
        }
    )
    assert result["cache_write_tokens"] == 1000
    assert result["input_tokens"] == 10


def test_missing_and_none_fields_count_as_zero() -> None:
    """Partial usage (streaming deltas, older API versions) is not an error."""
    assert usage.from_openai({"prompt_tokens": 7, "completion_tokens": None}) == {
        "input_tokens": 7,
        "output_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
    }
    assert usage.from_gemini({"promptTokenCount": 9})["input_tokens"] == 9


def test_response_without_id_or_finish_reason_omits_them() -> None:
    """Absent response fields are left out rather than recorded as empty strings."""
    result = usage.from_openai({"choices": [], "usage": {"prompt_tokens": 1}})
    assert "response_id" not in result
    assert "finish_reason" not in result


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("helper", "payload", "message"),
    [
        ("openai", {"prompt_tokens": -3, "completion_tokens": 1}, r"prompt_tokens is -3"),
        (
            "openai",
            {"usage": {"prompt_tokens": 10, "completion_tokens": "12"}},
            r"usage\.completion_tokens is '12' \(str\); allowed: a non-negative integer",
        ),
        ("openai", {"prompt_tokens": 10.5}, r"prompt_tokens is 10\.5 \(float\)"),
        ("anthropic", {"input_tokens": True}, r"input_tokens is True \(bool\)"),
        (
            "anthropic",
            {"usage": {"input_tokens": 1, "cache_read_input_tokens": -1}},
            r"usage\.cache_read_input_tokens is -1",
        ),
        (
            "gemini",
            {"usageMetadata": {"candidatesTokenCount": [3]}},
            r"usage_metadata\.candidatesTokenCount is \[3\]",
        ),
        (
            "openai",
            {"prompt_tokens": 100, "prompt_tokens_details": {"cached_tokens": 200}},
            r"prompt_tokens_details\.cached_tokens is 200, more than prompt_tokens 100",
        ),
        (
            "openai",
            {"output_tokens": 10, "output_tokens_details": {"reasoning_tokens": 11}},
            r"reasoning_tokens is 11, more than output_tokens 10",
        ),
        (
            "gemini",
            {"prompt_token_count": 5, "cached_content_token_count": 6},
            r"cached_content_token_count is 6, more than prompt_token_count 5",
        ),
        ("openai", {"usage": None, "id": "chatcmpl-1"}, r"carries no usage \(usage is None\)"),
        ("gemini", {"usage_metadata": None}, r"carries no usage"),
        (
            "openai",
            {"id": "x", "object": "list"},
            r"expected a response with usage .*got a mapping with keys \[id, object\]",
        ),
        ("anthropic", "input_tokens=3", r"got str"),
        ("gemini", None, r"got NoneType"),
        ("openai", [{"prompt_tokens": 1}], r"got list"),
        ("anthropic", object(), r"got an instance of object"),
        (
            "openai",
            {"input_tokens": 3, "cache_read_input_tokens": 100},
            r"got an Anthropic usage.*use from_anthropic",
        ),
        (
            "anthropic",
            {"input_tokens": 30, "input_tokens_details": {"cached_tokens": 20}},
            r"got an OpenAI Responses usage.*use from_openai",
        ),
        (
            "anthropic",
            {"usage": {"input_tokens": 1}, "id": 17},
            r"from_anthropic: id is 17 \(int\); allowed: a string or None",
        ),
    ],
)
def test_bad_input_raises_usage_error_naming_the_field(
    helper: str, payload: Any, message: str
) -> None:
    """Errors say which helper, which field, the value and what is allowed."""
    with pytest.raises(UsageError, match=message) as info:
        HELPERS[helper](payload)
    assert isinstance(info.value, KitTelemetryError)
    assert isinstance(info.value, ValueError)


# --- properties -----------------------------------------------------------------------------

counts = st.integers(min_value=0, max_value=10_000_000)


@settings(max_examples=60, deadline=None)
@given(prompt=counts, cached=counts, completion=counts, reasoning=counts, api=st.booleans())
def test_openai_total_input_is_preserved_and_split(
    prompt: int, cached: int, completion: int, reasoning: int, api: bool
) -> None:
    """Uncached plus cached input always equals the reported prompt total."""
    cached = min(cached, prompt)
    reasoning = min(reasoning, completion)
    if api:
        payload: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }
    else:
        payload = {
            "input_tokens": prompt,
            "output_tokens": completion,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens_details": {"reasoning_tokens": reasoning},
        }
    result = usage.from_openai(payload)
    assert result["input_tokens"] + result["cache_read_tokens"] == prompt
    assert result["cache_read_tokens"] == cached
    assert result["output_tokens"] == completion
    assert result["reasoning_tokens"] == reasoning <= result["output_tokens"]


@settings(max_examples=60, deadline=None)
@given(prompt=counts, cached=counts, candidates=counts, thoughts=counts, tool=counts)
def test_gemini_counts_add_up_to_the_total(
    prompt: int, cached: int, candidates: int, thoughts: int, tool: int
) -> None:
    """The disjoint kinds sum to Gemini's totalTokenCount; reasoning stays inside output."""
    cached = min(cached, prompt)
    result = usage.from_gemini(
        {
            "promptTokenCount": prompt,
            "cachedContentTokenCount": cached,
            "candidatesTokenCount": candidates,
            "thoughtsTokenCount": thoughts,
            "toolUsePromptTokenCount": tool,
            "totalTokenCount": prompt + candidates + thoughts + tool,
        }
    )
    tokens = TokenUsage(**{kind: result[kind] for kind in TOKEN_KINDS})
    assert tokens.total == prompt + candidates + thoughts + tool
    assert result["reasoning_tokens"] == thoughts <= result["output_tokens"]


def test_usage_kwargs_keys_are_the_token_kinds_and_record_usage_parameters() -> None:
    """The helpers' output is ``record_usage(**kwargs)``: its token keys must stay the kinds
    of TokenUsage and every key must stay a parameter of ``record_usage``."""
    assert usage.UsageKwargs.__required_keys__ == frozenset(TOKEN_KINDS)
    keys = usage.UsageKwargs.__required_keys__ | usage.UsageKwargs.__optional_keys__
    assert keys <= set(inspect.signature(kt.LLMCall.record_usage).parameters)


# --- the anthropic SDK's own objects ----------------------------------------------------------


def anthropic_message(**usage_fields: Any) -> Any:
    """A real ``anthropic.types.Message``, as ``client.messages.create`` returns it."""
    from anthropic.types import Message, Usage

    return Message(
        id="msg_01XFDUDYJgAACzvnptvVoYEL",
        type="message",
        role="assistant",
        model="claude-sonnet-4-5",
        content=[{"type": "text", "text": "Done."}],
        stop_reason="end_turn",
        stop_sequence=None,
        usage=Usage(**usage_fields),
    )


def test_from_anthropic_reads_the_current_sdk_message() -> None:
    """anthropic 2.x's Usage has output_tokens_details (None here): it is still Anthropic's."""
    message = anthropic_message(
        input_tokens=210,
        output_tokens=480,
        cache_read_input_tokens=12_000,
        cache_creation_input_tokens=3_500,
    )
    assert message.usage.output_tokens_details is None  # the field that used to be rejected
    assert usage.from_anthropic(message) == {
        "input_tokens": 210,
        "output_tokens": 480,
        "cache_read_tokens": 12_000,
        "cache_write_tokens": 3_500,
        "reasoning_tokens": 0,
        "response_id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "finish_reason": "end_turn",
    }
    assert usage.from_anthropic(message.usage)["cache_write_tokens"] == 3_500


def test_from_anthropic_reads_thinking_tokens_as_part_of_the_output() -> None:
    """output_tokens_details.thinking_tokens is the reasoning share of output_tokens."""
    message = anthropic_message(
        input_tokens=50, output_tokens=900, output_tokens_details={"thinking_tokens": 700}
    )
    result = usage.from_anthropic(message)
    assert (result["output_tokens"], result["reasoning_tokens"]) == (900, 700)
    with pytest.raises(UsageError, match=r"thinking_tokens is 901, more than .*output_tokens 900"):
        usage.from_anthropic(
            {
                "input_tokens": 1,
                "output_tokens": 900,
                "output_tokens_details": {"thinking_tokens": 901},
            }
        )


def test_readme_record_usage_line_works_with_the_current_anthropic_sdk() -> None:
    """``call.record_usage(**kt.usage.from_anthropic(response))`` prices the call exactly."""
    from kit_telemetry.testing import capture

    message = anthropic_message(
        input_tokens=1_000,
        output_tokens=2_000,
        cache_read_input_tokens=100_000,
        cache_creation_input_tokens=20_000,
    )
    price = kt.ModelPrice(
        input_per_mtok=3.0,
        output_per_mtok=15.0,
        cache_read_per_mtok=0.30,
        cache_write_per_mtok=3.75,
    )
    with capture(prices={"claude-sonnet-4-5": price}) as cap:
        with cap.telemetry.session("s-anth") as session, session.run("go") as run:
            with run.llm_call(provider="anthropic", model="claude-sonnet-4-5") as call:
                call.record_usage(**kt.usage.from_anthropic(message))
    expected = (1_000 * 3.0 + 2_000 * 15.0 + 100_000 * 0.30 + 20_000 * 3.75) / 1e6
    end = run.end_event
    assert end is not None
    assert (end.input_tokens, end.cache_write_tokens, end.stop_reason) == (
        1_000,
        20_000,
        "end_turn",
    )
    assert end.cost_usd == pytest.approx(expected)
