"""``TokenUsage``: the token counts of an LLM call (or a sum of calls), by disjoint kind."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Final

MAX_TOKENS: Final = 2**63 - 1
"""The largest count of tokens: OTLP carries integers as int64."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenUsage:
    """Tokens by kind. The input kinds are disjoint; reasoning tokens are part of output.

    Attributes:
        input_tokens: input tokens neither read from nor written to a cache.
        output_tokens: output tokens, reasoning included.
        cache_read_tokens: input tokens read from a cache.
        cache_write_tokens: input tokens written to a cache.
        reasoning_tokens: the part of ``output_tokens`` spent reasoning.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_input(self) -> int:
        """Every input token, cached or not (what providers bill as the prompt)."""
        return min(self.input_tokens + self.cache_read_tokens + self.cache_write_tokens, MAX_TOKENS)

    @property
    def total(self) -> int:
        """Every billable token: the input kinds plus output."""
        return min(self.total_input + self.output_tokens, MAX_TOKENS)

    def as_fields(self) -> dict[str, int]:
        """The counts by name: keyword arguments of the events and of ``record_usage``."""
        return {name: getattr(self, name) for name in TOKEN_KINDS}

    @classmethod
    def of(cls, source: Any) -> TokenUsage:
        """The token counts of anything that carries them as attributes (an event)."""
        return cls(**{name: getattr(source, name) for name in TOKEN_KINDS})

    def __add__(self, other: TokenUsage) -> TokenUsage:
        """The sum, each kind held at ``MAX_TOKENS`` (a sum OTLP could not carry stays there)."""
        return TokenUsage(
            input_tokens=min(self.input_tokens + other.input_tokens, MAX_TOKENS),
            output_tokens=min(self.output_tokens + other.output_tokens, MAX_TOKENS),
            cache_read_tokens=min(self.cache_read_tokens + other.cache_read_tokens, MAX_TOKENS),
            cache_write_tokens=min(self.cache_write_tokens + other.cache_write_tokens, MAX_TOKENS),
            reasoning_tokens=min(self.reasoning_tokens + other.reasoning_tokens, MAX_TOKENS),
        )


TOKEN_KINDS: tuple[str, ...] = tuple(field.name for field in fields(TokenUsage))
"""The names of the token kinds, as on events and ``record_usage``."""
