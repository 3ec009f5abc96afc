"""Token estimates from request text, for admission before a provider has counted anything.

Budgets are admitted before the request is sent, so the input is estimated from the
request itself: the characters of its text (messages, system prompt, instructions, tool
definitions) divided by four, the usual rule of thumb for English text and code with the
tokenizers of current models. Binary payloads (images, files, audio) are skipped: their
base64 text says nothing about their token cost and would refuse calls for no reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

CHARS_PER_TOKEN = 4

# Keys whose values are not text the model reads as tokens.
_SKIPPED_KEYS = frozenset(
    {
        "role",
        "type",
        "id",
        "cache_control",
        "image_url",
        "input_image",
        "source",
        "data",
        "file_data",
        "input_audio",
        "image",
    }
)


def estimate_tokens(*parts: object) -> int:
    """The estimated tokens of the text in ``parts`` (strings, mappings, sequences)."""
    chars = sum(text_chars(part) for part in parts)
    return -(-chars // CHARS_PER_TOKEN)  # rounded up: a short message is still a token


def tokens_of_chars(chars: int) -> int:
    """The estimated tokens of ``chars`` characters of text."""
    return -(-chars // CHARS_PER_TOKEN)


def text_chars(value: object, depth: int = 0) -> int:
    """The characters of text in ``value``, walked through mappings and sequences.

    SDK objects (pydantic models) are read through ``model_dump()``. Deeper than 20 levels
    nothing is counted: request bodies are never that deep, a cycle could be.
    """
    if depth > 20:
        return 0
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        return sum(
            text_chars(item, depth + 1)
            for key, item in value.items()
            if not (isinstance(key, str) and key in _SKIPPED_KEYS)
        )
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return sum(text_chars(item, depth + 1) for item in value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return text_chars(dump(), depth + 1)
    return 0
