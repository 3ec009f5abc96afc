"""Provider usage normalisation: OpenAI, Anthropic and Gemini token counts in one shape.

Each ``from_*`` helper takes what a provider's SDK or HTTP API hands back, either the
whole response or just its usage part, and returns the keyword arguments of
``LLMCall.record_usage``::

    response = client.messages.create(...)
    call.record_usage(**kt.usage.from_anthropic(response))

The token kinds that come out are disjoint: ``input_tokens`` counts the input tokens that
were neither read from nor written to a cache, ``cache_read_tokens`` and
``cache_write_tokens`` count the cached ones, and ``reasoning_tokens`` are a part of
``output_tokens`` (see ``kit_telemetry.tokens.TokenUsage``). Providers disagree on all of this, which is why the
helpers exist:

=========================  ==========================================  ==================
provider                   input as reported                           reasoning
=========================  ==========================================  ==================
OpenAI Chat Completions    ``prompt_tokens`` includes cached tokens    inside output
OpenAI Responses           ``input_tokens`` includes cached tokens     inside output
Anthropic Messages         ``input_tokens`` excludes cache reads and   inside output
                           writes                                      (thinking, when
                                                                       reported)
Gemini                     ``prompt_token_count`` includes cached      beside output
                           tokens                                      (thoughts)
=========================  ==========================================  ==================

Objects are read by duck typing (mapping keys, else attributes, else ``model_dump()``), so
SDK objects of the openai, anthropic and google-genai packages, their ``model_dump()``
dicts and raw JSON all work without importing any of those SDKs. Missing or ``None``
counts are 0. Anything else that is not a non-negative integer raises
:class:`~kit_telemetry.errors.UsageError` naming the field.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from typing import TypedDict

from kit_telemetry.errors import UsageError

__all__ = ["UsageKwargs", "from_anthropic", "from_gemini", "from_openai", "from_provider"]


class _TokenCounts(TypedDict):
    # The kinds of ``TokenUsage``, spelled out because a TypedDict cannot be derived from a
    # dataclass; a test keeps the two in step.
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int


class UsageKwargs(_TokenCounts, total=False):
    """Keyword arguments for ``LLMCall.record_usage``.

    The five ``*_tokens`` keys are always present. ``response_id`` and ``finish_reason``
    are present only when a whole response was given and it carried them.
    """

    response_id: str
    finish_reason: str


# Field names that mark an object as a usage record of each shape.
_OPENAI_CHAT_FIELDS = ("prompt_tokens", "completion_tokens")
_OPENAI_FIELDS = (*_OPENAI_CHAT_FIELDS, "input_tokens", "output_tokens")
_ANTHROPIC_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
_GEMINI_FIELDS = (
    "prompt_token_count",
    "promptTokenCount",
    "candidates_token_count",
    "candidatesTokenCount",
    "cached_content_token_count",
    "cachedContentTokenCount",
    "thoughts_token_count",
    "thoughtsTokenCount",
    "total_token_count",
    "totalTokenCount",
)
_MISSING = object()


def from_openai(obj: object) -> UsageKwargs:
    """Normalise an OpenAI Chat Completions or Responses API usage.

    Chat Completions: ``prompt_tokens`` minus ``prompt_tokens_details.cached_tokens`` is
    the uncached input, ``completion_tokens`` the output and
    ``completion_tokens_details.reasoning_tokens`` the reasoning part of it; the finish
    reason is ``choices[0].finish_reason``.

    Responses API: the same with ``input_tokens``, ``output_tokens``,
    ``input_tokens_details.cached_tokens`` and ``output_tokens_details.reasoning_tokens``.
    A Responses object has no per-choice finish reason, so ``finish_reason`` is its
    ``status`` (``"completed"``, ``"failed"``, ...), except that an ``"incomplete"``
    response reports ``incomplete_details.reason`` (``"max_output_tokens"`` or
    ``"content_filter"``) because that is what says why it stopped.

    OpenAI does not report cache writes, so ``cache_write_tokens`` is always 0.

    Args:
        obj: a ``ChatCompletion`` or ``Response`` (SDK object or dict), or its ``usage``.

    Returns:
        The keyword arguments of ``record_usage``.

    Raises:
        UsageError: ``obj`` is neither shape, a count is not a non-negative integer, or
            the cached or reasoning count exceeds the total it is part of.
    """
    response, usage = _split("from_openai", obj, ("usage",), _OPENAI_FIELDS)
    reader = _Reader("from_openai", usage, "usage" if response is not None else "")
    if reader.has_any(("cache_read_input_tokens", "cache_creation_input_tokens")):
        raise UsageError(
            "from_openai: got an Anthropic usage (it has cache_read_input_tokens / "
            "cache_creation_input_tokens); use from_anthropic"
        )
    if reader.has_any(_OPENAI_CHAT_FIELDS):
        input_field, output_field = "prompt_tokens", "completion_tokens"
        input_details, output_details = "prompt_tokens_details", "completion_tokens_details"
    else:
        input_field, output_field = "input_tokens", "output_tokens"
        input_details, output_details = "input_tokens_details", "output_tokens_details"
    total_input = reader.count(input_field)
    cached = reader.count(input_details, "cached_tokens")
    output = reader.count(output_field)
    reasoning = reader.count(output_details, "reasoning_tokens")
    reader.require_within(cached, (input_details, "cached_tokens"), total_input, input_field)
    reader.require_within(reasoning, (output_details, "reasoning_tokens"), output, output_field)
    result = UsageKwargs(
        input_tokens=total_input - cached,
        output_tokens=output,
        cache_read_tokens=cached,
        cache_write_tokens=0,
        reasoning_tokens=reasoning,
    )
    if response is not None:
        top = _Reader("from_openai", response, "")
        if top.has_any(("choices",)):
            finish = top.text("choices", 0, "finish_reason")
        else:
            finish = top.text("status")
            if finish == "incomplete":
                finish = top.text("incomplete_details", "reason") or finish
        _add_response_fields(result, top.text("id"), finish)
    return result


def from_anthropic(obj: object) -> UsageKwargs:
    """Normalise an Anthropic Messages API usage.

    Anthropic already reports disjoint counts: ``input_tokens`` excludes both
    ``cache_read_input_tokens`` and ``cache_creation_input_tokens``. When
    ``cache_creation_input_tokens`` is missing, the per-TTL ``cache_creation`` breakdown
    (``ephemeral_5m_input_tokens`` + ``ephemeral_1h_input_tokens``) is summed instead.
    Extended-thinking tokens are billed as output; ``reasoning_tokens`` is their part
    of it, ``output_tokens_details.thinking_tokens`` (anthropic 2.x), or 0 when the
    response does not report it. The finish reason is ``stop_reason``.

    Args:
        obj: a ``Message`` (SDK object or dict), or its ``usage``.

    Returns:
        The keyword arguments of ``record_usage``.

    Raises:
        UsageError: ``obj`` is not an Anthropic usage or message, a count is not a
            non-negative integer, or the thinking count exceeds the output count.
    """
    response, usage = _split("from_anthropic", obj, ("usage",), _ANTHROPIC_FIELDS)
    reader = _Reader("from_anthropic", usage, "usage" if response is not None else "")
    # Only input_tokens_details tells the two apart: anthropic 2.x's Usage has an
    # output_tokens_details of its own (thinking tokens), None on most responses.
    if reader.has_any(("input_tokens_details",)):
        raise UsageError(
            "from_anthropic: got an OpenAI Responses usage (it has input_tokens_details); "
            "use from_openai"
        )
    if reader.present("cache_creation_input_tokens"):
        cache_write = reader.count("cache_creation_input_tokens")
    else:
        cache_write = reader.count("cache_creation", "ephemeral_5m_input_tokens") + reader.count(
            "cache_creation", "ephemeral_1h_input_tokens"
        )
    output = reader.count("output_tokens")
    thinking = reader.count("output_tokens_details", "thinking_tokens")
    reader.require_within(
        thinking, ("output_tokens_details", "thinking_tokens"), output, "output_tokens"
    )
    result = UsageKwargs(
        input_tokens=reader.count("input_tokens"),
        output_tokens=output,
        cache_read_tokens=reader.count("cache_read_input_tokens"),
        cache_write_tokens=cache_write,
        reasoning_tokens=thinking,
    )
    if response is not None:
        top = _Reader("from_anthropic", response, "")
        _add_response_fields(result, top.text("id"), top.text("stop_reason"))
    return result


def from_gemini(obj: object) -> UsageKwargs:
    """Normalise a Gemini usage (google-genai ``usage_metadata`` or REST ``usageMetadata``).

    ``prompt_token_count`` includes ``cached_content_token_count``, so the uncached input
    is their difference, plus ``tool_use_prompt_token_count`` (tool-use prompt tokens are
    billed as input but counted apart from the prompt). Gemini counts thinking tokens
    (``thoughts_token_count``) beside ``candidates_token_count`` and bills them as
    output; since reasoning tokens are part of the output here, ``output_tokens`` is
    candidates plus thoughts and ``reasoning_tokens`` is thoughts. Gemini does not report
    cache writes, so ``cache_write_tokens`` is 0. snake_case and camelCase keys are both
    read. The finish reason is ``candidates[0].finish_reason`` (an enum's value, e.g.
    ``"STOP"``), the id ``response_id``.

    Args:
        obj: a ``GenerateContentResponse`` (SDK object or dict), or its usage metadata.

    Returns:
        The keyword arguments of ``record_usage``.

    Raises:
        UsageError: ``obj`` is not a Gemini response or usage metadata, a count is not a
            non-negative integer, or the cached count exceeds the prompt count.
    """
    response, usage = _split(
        "from_gemini", obj, ("usage_metadata", "usageMetadata"), _GEMINI_FIELDS
    )
    label = "usage_metadata" if response is not None else ""
    reader = _Reader("from_gemini", usage, label)
    prompt = reader.count_either("prompt_token_count", "promptTokenCount")
    cached = reader.count_either("cached_content_token_count", "cachedContentTokenCount")
    tool_prompt = reader.count_either("tool_use_prompt_token_count", "toolUsePromptTokenCount")
    candidates = reader.count_either("candidates_token_count", "candidatesTokenCount")
    thoughts = reader.count_either("thoughts_token_count", "thoughtsTokenCount")
    reader.require_within(cached, ("cached_content_token_count",), prompt, "prompt_token_count")
    result = UsageKwargs(
        input_tokens=prompt - cached + tool_prompt,
        output_tokens=candidates + thoughts,
        cache_read_tokens=cached,
        cache_write_tokens=0,
        reasoning_tokens=thoughts,
    )
    if response is not None:
        top = _Reader("from_gemini", response, "")
        _add_response_fields(
            result,
            top.text("response_id") or top.text("responseId"),
            top.text("candidates", 0, "finish_reason") or top.text("candidates", 0, "finishReason"),
        )
    return result


_BY_PROVIDER: dict[str, Callable[[object], UsageKwargs]] = {
    "openai": from_openai,
    "azure.ai.openai": from_openai,
    "anthropic": from_anthropic,
    "google": from_gemini,
    "gemini": from_gemini,
    "gcp.gemini": from_gemini,
    "gcp.vertex_ai": from_gemini,
    "gcp.gen_ai": from_gemini,
}


def from_provider(provider: str, obj: object) -> UsageKwargs:
    """Normalise ``obj`` with the helper for ``provider``.

    Args:
        provider: a provider name as used in ``llm_call(provider=...)``: ``"openai"``,
            ``"azure.ai.openai"``, ``"anthropic"``, ``"google"``, ``"gemini"`` or one of
            the GenAI convention's ``"gcp.*"`` names.
        obj: the response or usage object, as for the ``from_*`` helpers.

    Returns:
        The keyword arguments of ``record_usage``.

    Raises:
        UsageError: the provider is not one of those, or ``obj`` is bad input.
    """
    helper = _BY_PROVIDER.get(provider)
    if helper is None:
        allowed = ", ".join(sorted(_BY_PROVIDER))
        raise UsageError(f"from_provider: provider {provider!r} is not one of {allowed}")
    return helper(obj)


# --- reading duck-typed objects ---------------------------------------------------------


def _lookup(obj: object, key: str | int) -> object:
    """``obj[key]`` or ``obj.key``, or ``_MISSING``; indexes only real sequences."""
    if isinstance(key, int):
        if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)) and len(obj) > key:
            return obj[key]
        return _MISSING
    if isinstance(obj, Mapping):
        return obj.get(key, _MISSING)
    return getattr(obj, key, _MISSING)


def _has_any(obj: object, names: Sequence[str]) -> bool:
    return any(_lookup(obj, name) is not _MISSING for name in names)


def _dumped(obj: object) -> object:
    """Plain data for objects that only expose it through a dump method."""
    for method in ("model_dump", "to_dict"):
        dump = getattr(obj, method, None)
        if callable(dump):
            data = dump()
            if isinstance(data, Mapping):
                return data
    return obj


def _split(
    helper: str, obj: object, usage_keys: Sequence[str], usage_fields: Sequence[str]
) -> tuple[object | None, object]:
    """Tell a whole response from a bare usage; returns ``(response or None, usage)``."""
    if obj is None or isinstance(obj, (str, bytes, int, float, Sequence)):
        raise UsageError(
            f"{helper}: expected a response or usage object or dict, got {type(obj).__name__}"
        )
    if not isinstance(obj, Mapping) and not _has_any(obj, (*usage_keys, *usage_fields)):
        obj = _dumped(obj)
    for key in usage_keys:
        usage = _lookup(obj, key)
        if usage is _MISSING:
            continue
        if usage is None:
            raise UsageError(
                f"{helper}: the response carries no usage ({key} is None); "
                "record the call without usage instead"
            )
        if not isinstance(usage, Mapping) and not _has_any(usage, usage_fields):
            usage = _dumped(usage)
        return obj, usage
    if _has_any(obj, usage_fields):
        return None, obj
    raise UsageError(
        f"{helper}: expected a response with {' or '.join(usage_keys)} or a usage with "
        f"{', '.join(usage_fields)}; got {_describe(obj)}"
    )


def _describe(obj: object) -> str:
    if isinstance(obj, Mapping):
        keys = ", ".join(sorted(str(key) for key in obj)[:8])
        return f"a mapping with keys [{keys}]"
    return f"an instance of {type(obj).__name__}"


class _Reader:
    """Reads counts and strings from one duck-typed object, naming fields in errors."""

    __slots__ = ("_helper", "_obj", "_prefix")

    def __init__(self, helper: str, obj: object, prefix: str) -> None:
        self._helper = helper
        self._obj = obj
        self._prefix = prefix

    def _name(self, path: Sequence[str | int]) -> str:
        parts = [self._prefix] if self._prefix else []
        for key in path:
            if isinstance(key, int):
                parts[-1] = f"{parts[-1]}[{key}]" if parts else f"[{key}]"
            else:
                parts.append(key)
        return ".".join(parts)

    def _get(self, path: Sequence[str | int]) -> object:
        value: object = self._obj
        for key in path:
            if value is None or value is _MISSING:
                return None
            value = _lookup(value, key)
        return None if value is _MISSING else value

    def present(self, name: str) -> bool:
        return self._get((name,)) is not None

    def has_any(self, names: Sequence[str]) -> bool:
        return _has_any(self._obj, names)

    def count(self, *path: str) -> int:
        value = self._get(path)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(
                f"{self._helper}: {self._name(path)} is {value!r} ({type(value).__name__}); "
                "allowed: a non-negative integer, or None/missing for 0"
            )
        if value < 0:
            raise UsageError(
                f"{self._helper}: {self._name(path)} is {value}; "
                "allowed: a non-negative integer, or None/missing for 0"
            )
        return value

    def count_either(self, snake: str, camel: str) -> int:
        return self.count(snake) if self.present(snake) else self.count(camel)

    def require_within(
        self, part: int, part_path: Sequence[str], whole: int, whole_name: str
    ) -> None:
        if part > whole:
            raise UsageError(
                f"{self._helper}: {self._name(part_path)} is {part}, more than "
                f"{self._name((whole_name,))} {whole} which includes it"
            )

    def text(self, *path: str | int) -> str | None:
        value = self._get(path)
        if isinstance(value, enum.Enum):
            # SDK enums (google-genai FinishReason) stringify as "FinishReason.STOP".
            value = value.value if isinstance(value.value, str) else value.name
        if value is None or isinstance(value, str):
            return value
        raise UsageError(
            f"{self._helper}: {self._name(path)} is {value!r} ({type(value).__name__}); "
            "allowed: a string or None"
        )


def _add_response_fields(
    result: UsageKwargs, response_id: str | None, finish_reason: str | None
) -> None:
    if response_id:
        result["response_id"] = response_id
    if finish_reason:
        result["finish_reason"] = finish_reason
