"""The demo's simulated model: offline, deterministic, answering in a provider's API shape.

:class:`SimulatedModel` plays a coding agent's model: it asks for a few tool calls, then
answers. Each :class:`SimulatedResponse` carries ``raw``, a dict shaped like the
provider's real API response (Anthropic Messages, OpenAI Chat Completions or Responses,
Gemini ``generateContent`` REST JSON; built in ``payloads``), so the demo feeds it through
``kit_telemetry.usage.from_*`` exactly as a real agent would. Token counts are realistic:
the input grows with the conversation, Anthropic reads its prompt cache on later turns,
OpenAI and Gemini hit their implicit caches, and reasoning models spend reasoning tokens.
The tools it calls are simulated in ``tools``.

Everything is drawn from ``random.Random`` seeded by the caller, so the same seed and the
same sequence of calls give the same responses and ids.

Conversation messages are plain dicts: ``{"role": "user" | "assistant" | "tool",
"content": str}``, assistant messages may add ``"tool_calls"``, and tool messages
``"tool_call_id"``, ``"name"`` and ``"is_error"``. :meth:`SimulatedResponse.message` and
:func:`kit_telemetry.cli.demo.tools.tool_message` build them.
"""

from __future__ import annotations

import json
import random
import re
import threading
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kit_telemetry.errors import ConfigError

from .payloads import ALNUM, PAYLOAD_BUILDERS, Draft, random_token
from .tools import COMMANDS, DEMO_TOOLS, PATHS, PATTERNS, SimulatedToolCall

__all__ = [
    "DEMO_MODELS",
    "DEMO_PROMPTS",
    "DemoModel",
    "SimulatedModel",
    "SimulatedResponse",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoModel:
    """A model the demo can simulate, and which provider API shape it answers in."""

    provider: str
    model: str
    api: str


# Which API shapes each provider answers in; the first is the default.
_APIS: dict[str, tuple[str, ...]] = {
    "anthropic": ("messages",),
    "openai": ("chat_completions", "responses"),
    "google": ("generate_content",),
}

DEMO_MODELS: tuple[DemoModel, ...] = (
    DemoModel(provider="anthropic", model="claude-sonnet-4-5", api="messages"),
    DemoModel(provider="anthropic", model="claude-haiku-4-5", api="messages"),
    DemoModel(provider="openai", model="gpt-4o", api="chat_completions"),
    DemoModel(provider="openai", model="gpt-4o-mini", api="chat_completions"),
    DemoModel(provider="openai", model="o4-mini", api="responses"),
    DemoModel(provider="google", model="gemini-2.5-flash", api="generate_content"),
    # Last, so that a demo of six runs or fewer never meets it: a self-hosted model behind
    # an OpenAI-compatible server has no price, and the demo shows how that is reported.
    DemoModel(provider="openai", model="qwen2.5-coder-32b", api="chat_completions"),
)

DEMO_PROMPTS: tuple[str, ...] = (
    "Fix the failing test in tests/test_parser.py",
    "Add a --verbose flag to the CLI in src/app/cli.py",
    "Find out why the date parsing in src/app/dates.py rejects ISO week dates and fix it",
    "Rename Config.load to Config.from_file across the codebase",
    "Add type hints to src/app/config.py and make mypy pass",
    "The nightly job is slow: profile the test suite and speed up the slowest test",
)

_BASE_PROMPT_TOKENS = 2_750  # a coding agent's system prompt plus five tool schemas
_TOKENIZER_FACTOR = {"anthropic": 1.12, "openai": 1.0, "google": 0.96}


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatedResponse:
    """One simulated completion.

    Attributes:
        provider: ``"anthropic"``, ``"openai"`` or ``"google"``.
        model: the model name as requested.
        text: the visible text (may be empty on tool-call turns).
        tool_calls: the tool calls asked for; empty on the final answer.
        finish_reason: the provider's own value, as ``usage.from_*`` reports it.
        raw: the response as the provider's API would return it, as JSON-ready dicts.
        latency_s: a simulated latency (0.001 to 0.02 s) the caller may sleep for.
    """

    provider: str
    model: str
    text: str
    tool_calls: tuple[SimulatedToolCall, ...]
    finish_reason: str
    raw: dict[str, Any] = field(repr=False)
    latency_s: float

    def message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": call.call_id, "name": call.name, "arguments": call.arguments}
                for call in self.tool_calls
            ]
        return message


def _message_tokens(message: Mapping[str, Any]) -> int:
    # About four characters per token, plus the chat template's per-message overhead.
    return 4 + len(json.dumps(message, default=str, sort_keys=True)) // 4


class SimulatedModel:
    """A deterministic stand-in for a provider's chat model.

    Args:
        seed: seeds the random draws; with the same sequence of calls, the same responses.
        provider: ``"anthropic"``, ``"openai"`` or ``"google"``.
        model: any model name; ``o*``/``gpt-5*`` and ``gemini-2.5*`` names reason.
        api: the response shape; by default the provider's main API (``"messages"``,
            ``"chat_completions"``, ``"generate_content"``); OpenAI also takes
            ``"responses"``.

    Raises:
        ConfigError: an unknown provider, or an API that provider does not have.
    """

    def __init__(self, seed: int, provider: str, model: str, *, api: str | None = None) -> None:
        if provider not in _APIS:
            raise ConfigError(
                f"simulated model: provider {provider!r} is not one of {', '.join(_APIS)}"
            )
        apis = _APIS[provider]
        if api is not None and api not in apis:
            raise ConfigError(
                f"simulated model: api {api!r} is not one of {', '.join(apis)} "
                f"for provider {provider!r}"
            )
        self.provider = provider
        self.model = model
        self.api = api or apis[0]
        # Mixing provider and model in keeps several models under one seed uncorrelated.
        self._rng = random.Random(f"{seed}/{provider}/{model}")
        self._lock = threading.Lock()
        self._calls = 0
        self._reasons = model.startswith(("o1", "o3", "o4", "gpt-5", "gemini-2.5"))

    def complete(self, messages: Sequence[Mapping[str, Any]], max_tokens: int) -> SimulatedResponse:
        """Answer the conversation so far with tool calls or a final answer.

        Args:
            messages: the conversation (see the module docstring for the shape).
            max_tokens: the output limit; a longer answer is cut off with the provider's
                length finish reason and no tool calls.

        Returns:
            The simulated response.

        Raises:
            ValueError: ``max_tokens`` is not a positive integer.
        """
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        with self._lock:
            warm = self._calls > 0
            self._calls += 1
            return self._complete(list(messages), max_tokens, warm, self._calls)

    def _complete(
        self, messages: list[Mapping[str, Any]], max_tokens: int, warm: bool, call_no: int
    ) -> SimulatedResponse:
        rng = self._rng
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        prompt = next((str(m.get("content", "")) for m in messages if m.get("role") == "user"), "")
        focus = _focus_path(prompt)
        last_failed = bool(messages) and bool(messages[-1].get("is_error"))

        finish = (
            turn >= 6 or (turn >= 2 and rng.random() < 0.45) or (turn == 1 and rng.random() < 0.1)
        )
        calls: list[SimulatedToolCall] = []
        if finish:
            text = _final_text(rng, prompt, focus)
        else:
            calls.append(self._tool_call(rng, turn, focus, last_failed))
            if rng.random() < 0.2:
                calls.append(self._tool_call(rng, turn + 1, focus, False))
            text = _tool_text(calls[0], last_failed)
            if self.api in ("chat_completions", "responses") or (
                self.provider == "google" and rng.random() < 0.5
            ):
                text = ""  # these usually call tools without a word of text

        visible = rng.randint(8, 40) + len(text) // 4
        if finish:
            visible += rng.randint(80, 600)  # the summary's bullet points, not spelled out
        visible += sum(12 + len(json.dumps(call.arguments)) // 4 for call in calls)
        reasoning = 0
        if self._reasons and rng.random() < 0.85:
            reasoning = rng.randint(64, 1_800)
        output = visible + reasoning
        truncated = output > max_tokens
        if truncated:
            output, reasoning = max_tokens, min(reasoning, max_tokens)
            text = text[: max(0, (max_tokens - reasoning) * 4)]
            calls = []

        counts = self._input_counts(rng, messages, warm)
        latency_s = min(0.02, 0.001 + output * 0.000_01 + rng.uniform(0.0, 0.004))
        draft = Draft(
            model=self.model,
            text=text,
            calls=tuple(calls),
            truncated=truncated,
            uncached=counts[0],
            read=counts[1],
            write=counts[2],
            output=output,
            reasoning=reasoning,
            call_no=call_no,
        )
        raw, finish_reason = PAYLOAD_BUILDERS[self.api](rng, draft)
        return SimulatedResponse(
            provider=self.provider,
            model=self.model,
            text=text,
            tool_calls=tuple(calls),
            finish_reason=finish_reason,
            raw=raw,
            latency_s=round(latency_s, 6),
        )

    def _tool_call(
        self, rng: random.Random, turn: int, focus: str, retry: bool
    ) -> SimulatedToolCall:
        # A plausible workflow: look around, read, edit, test; then anything goes.
        if retry:
            name = rng.choice(("read_file", "bash", "grep"))
        elif turn < 4:
            name = (rng.choice(("grep", "bash")), "read_file", "edit_file", "run_tests")[turn]
        else:
            name = rng.choice(DEMO_TOOLS)
        arguments: dict[str, Any]
        if name == "grep":
            arguments = {"pattern": rng.choice(PATTERNS), "path": "src"}
        elif name == "bash":
            arguments = {"command": rng.choice(COMMANDS)}
        elif name == "read_file":
            arguments = {"path": focus if rng.random() < 0.7 else rng.choice(PATHS)}
        elif name == "edit_file":
            arguments = {
                "path": focus,
                "old_string": "return dt.date.fromisoformat(value)",
                "new_string": "return _parse_iso(value)",
            }
        else:
            arguments = {"path": "tests"} if rng.random() < 0.5 else {}
        if self.provider == "anthropic":
            call_id = "toolu_01" + random_token(rng, ALNUM, 22)
        else:
            call_id = "call_" + random_token(rng, ALNUM, 24)
        return SimulatedToolCall(name=name, call_id=call_id, arguments=arguments)

    def _input_counts(
        self, rng: random.Random, messages: list[Mapping[str, Any]], warm: bool
    ) -> tuple[int, int, int]:
        """``(uncached input, cache read, cache write)`` for this request."""
        factor = _TOKENIZER_FACTOR[self.provider]
        # prefix[j]: tokens of the system prompt plus messages[:j]
        prefix = [int(_BASE_PROMPT_TOKENS * factor)]
        for message in messages:
            prefix.append(prefix[-1] + int(_message_tokens(message) * factor))
        total = prefix[-1]
        assistants = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
        if self.provider == "anthropic":
            # The agent puts a cache breakpoint after the latest assistant message (after
            # the tools on the first call): this call writes up to there and reads what
            # the previous call wrote.
            written = prefix[assistants[-1] + 1] if assistants else prefix[0]
            if len(assistants) >= 2:
                read = prefix[assistants[-2] + 1]
            else:
                read = prefix[0] if (assistants or warm) else 0
            if rng.random() < 0.05:
                read = 0  # the 5-minute cache expired
            return total - written, read, written - read
        # OpenAI and Gemini cache implicitly: the previous request's prompt, when long enough.
        previous = prefix[assistants[-1]] if assistants else (prefix[0] if warm else 0)
        if previous < 1_024 or rng.random() < (0.1 if self.provider == "openai" else 0.3):
            return total, 0, 0
        cached = previous // 128 * 128 if self.provider == "openai" else previous
        return total - cached, cached, 0


def _focus_path(prompt: str) -> str:
    named = re.findall(r"[\w./-]+\.py", prompt)
    if named:
        return str(named[0])
    # crc32, unlike hash(), is stable across processes.
    return PATHS[zlib.crc32(prompt.encode()) % len(PATHS)]


def _tool_text(call: SimulatedToolCall, after_failure: bool) -> str:
    lead = "That did not work; let me try another way. " if after_failure else ""
    target = call.arguments.get("pattern") or call.arguments.get("path") or ""
    verbs = {
        "grep": f"Let me search for `{target}` to see where it is used.",
        "bash": f"Let me check the repository state with `{call.arguments.get('command')}`.",
        "read_file": f"Let me read `{target}`.",
        "edit_file": f"I'll fix the problem in `{target}`.",
        "run_tests": "Now let me run the tests to confirm.",
    }
    return lead + verbs.get(call.name, "Let me look.")


def _final_text(rng: random.Random, prompt: str, focus: str) -> str:
    passed = rng.randint(12, 240)
    templates = (
        f"Done. The cause was in `{focus}`; I changed it and the suite passes ({passed} passed).",
        f"I made the change in `{focus}` and added a regression test. {passed} tests pass, "
        "and mypy is clean.",
        f"Finished: {prompt[:1].lower() + prompt[1:]}. Edited `{focus}`; all {passed} tests "
        "pass. One follow-up: the fixture data could use a leap-year case.",
    )
    return rng.choice(templates)
