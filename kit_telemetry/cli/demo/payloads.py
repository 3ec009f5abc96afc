"""Provider-shaped payloads for the simulated model: its decision as each API would return it.

A :class:`Draft` holds what the model decided (text, tool calls, token counts); the
builders in :data:`PAYLOAD_BUILDERS`, one per API shape (Anthropic Messages, OpenAI Chat
Completions and Responses, Gemini ``generateContent`` REST JSON), dress it as that API's
JSON response and return it with the provider's own finish reason. Ids are drawn from the
caller's ``random.Random``, so the same draws give the same payloads.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .tools import SimulatedToolCall

__all__ = ["ALNUM", "PAYLOAD_BUILDERS", "Draft", "random_token"]

# Snapshot names the APIs report for an alias, as the real ones do.
_SNAPSHOTS = {
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "o4-mini": "o4-mini-2025-04-16",
}
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_HEX = "0123456789abcdef"
_EPOCH_S = 1_760_000_000  # fixed so that `created` timestamps are deterministic too


def random_token(rng: random.Random, alphabet: str, length: int) -> str:
    """``length`` characters drawn from ``alphabet``, as in provider ids."""
    return "".join(rng.choices(alphabet, k=length))


@dataclass(frozen=True, slots=True, kw_only=True)
class Draft:
    """What the model decided, before it is dressed in a provider's response shape."""

    model: str
    text: str
    calls: tuple[SimulatedToolCall, ...]
    truncated: bool
    uncached: int
    read: int
    write: int
    output: int
    reasoning: int
    call_no: int


def _anthropic_raw(rng: random.Random, d: Draft) -> tuple[dict[str, Any], str]:
    stop = "max_tokens" if d.truncated else ("tool_use" if d.calls else "end_turn")
    content: list[dict[str, Any]] = [{"type": "text", "text": d.text}] if d.text else []
    content += [
        {"type": "tool_use", "id": c.call_id, "name": c.name, "input": c.arguments} for c in d.calls
    ]
    raw = {
        "id": "msg_01" + random_token(rng, ALNUM, 22),
        "type": "message",
        "role": "assistant",
        "model": _SNAPSHOTS.get(d.model, d.model),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": d.uncached,
            "cache_creation_input_tokens": d.write,
            "cache_read_input_tokens": d.read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": d.write,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": d.output,
            "service_tier": "standard",
        },
    }
    return raw, stop


def _chat_raw(rng: random.Random, d: Draft) -> tuple[dict[str, Any], str]:
    finish = "length" if d.truncated else ("tool_calls" if d.calls else "stop")
    message: dict[str, Any] = {
        "role": "assistant",
        "content": d.text or None,
        "refusal": None,
        "annotations": [],
    }
    if d.calls:
        message["tool_calls"] = [
            {
                "id": c.call_id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in d.calls
        ]
    raw = {
        "id": "chatcmpl-" + random_token(rng, ALNUM, 29),
        "object": "chat.completion",
        "created": _EPOCH_S + d.call_no * 7,
        "model": _SNAPSHOTS.get(d.model, d.model),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": d.uncached + d.read,
            "completion_tokens": d.output,
            "total_tokens": d.uncached + d.read + d.output,
            "prompt_tokens_details": {"cached_tokens": d.read, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": d.reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_" + random_token(rng, _HEX, 10),
    }
    return raw, finish


def _responses_raw(rng: random.Random, d: Draft) -> tuple[dict[str, Any], str]:
    items: list[dict[str, Any]] = []
    if d.reasoning:
        items.append(
            {"id": "rs_" + random_token(rng, _HEX, 48), "type": "reasoning", "summary": []}
        )
    for c in d.calls:
        items.append(
            {
                "id": "fc_" + random_token(rng, _HEX, 48),
                "type": "function_call",
                "status": "completed",
                "arguments": json.dumps(c.arguments),
                "call_id": c.call_id,
                "name": c.name,
            }
        )
    if d.text or not d.calls:
        items.append(
            {
                "id": "msg_" + random_token(rng, _HEX, 48),
                "type": "message",
                "status": "incomplete" if d.truncated else "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "annotations": [], "text": d.text}],
            }
        )
    raw = {
        "id": "resp_" + random_token(rng, _HEX, 50),
        "object": "response",
        "created_at": _EPOCH_S + d.call_no * 7,
        "status": "incomplete" if d.truncated else "completed",
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if d.truncated else None,
        "model": _SNAPSHOTS.get(d.model, d.model),
        "output": items,
        "parallel_tool_calls": True,
        "usage": {
            "input_tokens": d.uncached + d.read,
            "input_tokens_details": {"cached_tokens": d.read},
            "output_tokens": d.output,
            "output_tokens_details": {"reasoning_tokens": d.reasoning},
            "total_tokens": d.uncached + d.read + d.output,
        },
    }
    return raw, "max_output_tokens" if d.truncated else "completed"


def _gemini_raw(rng: random.Random, d: Draft) -> tuple[dict[str, Any], str]:
    finish = "MAX_TOKENS" if d.truncated else "STOP"  # Gemini says STOP after function calls too
    parts: list[dict[str, Any]] = [{"text": d.text}] if d.text else []
    parts += [{"functionCall": {"name": c.name, "args": c.arguments}} for c in d.calls]
    prompt = d.uncached + d.read
    metadata: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": d.output - d.reasoning,
        "totalTokenCount": prompt + d.output,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    # The REST API leaves zero counts out; the usage helper must cope.
    if d.read:
        metadata["cachedContentTokenCount"] = d.read
        metadata["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": d.read}]
    if d.reasoning:
        metadata["thoughtsTokenCount"] = d.reasoning
    raw = {
        "candidates": [
            {"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0}
        ],
        "usageMetadata": metadata,
        "modelVersion": d.model,
        "responseId": random_token(rng, ALNUM + "-_", 23),
    }
    return raw, finish


PayloadBuilder = Callable[[random.Random, Draft], tuple[dict[str, Any], str]]

PAYLOAD_BUILDERS: dict[str, PayloadBuilder] = {
    "messages": _anthropic_raw,
    "chat_completions": _chat_raw,
    "responses": _responses_raw,
    "generate_content": _gemini_raw,
}
