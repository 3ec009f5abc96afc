"""GenAI message content: the JSON shapes of ``gen_ai.input.messages``,
``gen_ai.output.messages`` and ``gen_ai.system_instructions``.

The shapes are those of the GenAI semantic conventions (``gen-ai-input-messages.json``
and its siblings): a message is ``{"role", "parts": [...]}`` (output messages add
``finish_reason``), a text part is ``{"type": "text", "content": ...}``. Every part goes
through a ``Redact`` function first (a text part's content, any other part as its JSON
text), which may rewrite it or drop it (None); a message left without parts is dropped,
and an attribute left without messages is not set.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Redact = Callable[[str], str | None]
"""Rewrites one text part (truncation, redaction), or drops it with None."""

ContentHook = Callable[[str, str], str | None]
"""``capture_content=hook``: called with a piece of content and the attribute it is bound
for (``gen_ai.input.messages``, ``gen_ai.tool.call.arguments``...); returns the text to
record, or None to leave it out."""

_ROLES = frozenset({"system", "user", "assistant", "tool"})


def input_messages(prompt: object, redact: Redact) -> str | None:
    """``gen_ai.input.messages`` of a prompt: a string, or a list of chat messages.

    Messages in the conventions' shape (``parts``) keep their parts; messages with a
    ``content`` string, or a list of ``{"type": "text", "text": ...}`` blocks (OpenAI,
    Anthropic), become text parts; anything else is recorded as its JSON text.
    """
    if isinstance(prompt, str):
        messages: list[dict[str, Any]] = [_message("user", [_text(prompt)])]
    elif isinstance(prompt, Sequence) and not isinstance(prompt, (bytes, bytearray)):
        messages = [_chat_message(item) for item in prompt]
    else:
        messages = [_message("user", [_text(_json(prompt))])]
    return _dump(_redacted(messages, redact))


def output_messages(response: object, finish_reason: str, redact: Redact) -> str | None:
    """``gen_ai.output.messages`` of an answer: a string is one assistant message; chat
    messages are converted as ``input_messages`` converts them (role ``assistant`` when
    they have none). Each gets ``finish_reason`` unless it has its own."""
    if isinstance(response, Sequence) and not isinstance(response, (str, bytes, bytearray)):
        messages = [_chat_message(item, default_role="assistant") for item in response]
    else:
        text = response if isinstance(response, str) else _json(response)
        messages = [_message("assistant", [_text(text)])]
    for message, given in zip(messages, _given(response), strict=True):
        reason = given.get("finish_reason") if isinstance(given, Mapping) else None
        message["finish_reason"] = reason if isinstance(reason, str) else finish_reason
    return _dump(_redacted(messages, redact))


def _given(response: object) -> list[object]:
    if isinstance(response, Sequence) and not isinstance(response, (str, bytes, bytearray)):
        return list(response)
    return [response]


def system_instructions(instructions: str, redact: Redact) -> str | None:
    """``gen_ai.system_instructions``: a list of parts (no role: they are the system's)."""
    parts = _redacted_parts([_text(instructions)], redact)
    return _dump(parts) if parts else None


def _message(role: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"role": role, "parts": parts}


def _text(content: str) -> dict[str, Any]:
    return {"type": "text", "content": content}


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _chat_message(item: object, default_role: str = "user") -> dict[str, Any]:
    if not isinstance(item, Mapping):
        return _message(default_role, [_text(item if isinstance(item, str) else _json(item))])
    role = item.get("role")
    role = role if isinstance(role, str) and role in _ROLES else default_role
    parts = item.get("parts")
    if isinstance(parts, list) and all(isinstance(part, Mapping) for part in parts):
        return _message(role, [dict(part) for part in parts])
    content = item.get("content")
    if isinstance(content, str):
        return _message(role, [_text(content)])
    if isinstance(content, list):
        return _message(role, [_block(block) for block in content])
    return _message(role, [_text(_json(content))])


def _block(block: object) -> dict[str, Any]:
    if isinstance(block, Mapping) and block.get("type") == "text":
        text = block.get("text", block.get("content"))
        if isinstance(text, str):
            return _text(text)
    return _text(block if isinstance(block, str) else _json(block))


def _redacted_parts(parts: list[dict[str, Any]], redact: Redact) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    for part in parts:
        content = part.get("content")
        if part.get("type") == "text" and isinstance(content, str):
            cleaned = redact(content)
            if cleaned is not None:
                kept.append({**part, "content": cleaned})
            continue
        # Other parts (tool calls, blobs) are seen as their JSON text: kept as they are
        # when it comes back unchanged, else replaced by the text that came back.
        text = _json(part)
        cleaned = redact(text)
        if cleaned is not None:
            kept.append(part if cleaned == text else _text(cleaned))
    return kept


def _redacted(messages: list[dict[str, Any]], redact: Redact) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    for message in messages:
        parts = _redacted_parts(message["parts"], redact)
        if parts:
            kept.append({**message, "parts": parts})
    return kept


def _dump(value: list[dict[str, Any]]) -> str | None:
    return _json(value) if value else None
