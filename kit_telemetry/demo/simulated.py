"""A simulated LLM and tool set for the demo: offline, deterministic, provider-shaped.

:class:`SimulatedModel` plays a coding agent's model: it asks for a few tool calls, then
answers. Each :class:`SimulatedResponse` carries ``raw``, a dict shaped like the
provider's real API response (Anthropic Messages, OpenAI Chat Completions or Responses,
Gemini ``generateContent`` REST JSON), so the demo feeds it through
``kit_telemetry.usage.from_*`` exactly as a real agent would. Token counts are realistic:
the input grows with the conversation, Anthropic reads its prompt cache on later turns,
OpenAI and Gemini hit their implicit caches, and reasoning models spend reasoning tokens.
:class:`SimulatedTools` runs the tools the model asks for, and sometimes fails, by result
(``is_error=True``) or by raising.

Everything is drawn from ``random.Random`` seeded by the caller, so the same seed and the
same sequence of calls give the same responses, ids and results.

Conversation messages are plain dicts: ``{"role": "user" | "assistant" | "tool",
"content": str}``, assistant messages may add ``"tool_calls"``, and tool messages
``"tool_call_id"``, ``"name"`` and ``"is_error"``. :meth:`SimulatedResponse.message` and
:func:`tool_message` build them.
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

__all__ = [
    "DEMO_MODELS",
    "DEMO_PROMPTS",
    "DEMO_TOOLS",
    "DemoModel",
    "SimulatedModel",
    "SimulatedResponse",
    "SimulatedToolCall",
    "SimulatedTools",
    "tool_message",
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
)

DEMO_PROMPTS: tuple[str, ...] = (
    "Fix the failing test in tests/test_parser.py",
    "Add a --verbose flag to the CLI in src/app/cli.py",
    "Find out why the date parsing in src/app/dates.py rejects ISO week dates and fix it",
    "Rename Config.load to Config.from_file across the codebase",
    "Add type hints to src/app/config.py and make mypy pass",
    "The nightly job is slow: profile the test suite and speed up the slowest test",
)

DEMO_TOOLS: tuple[str, ...] = ("bash", "read_file", "edit_file", "grep", "run_tests")

# Snapshot names the APIs report for an alias, as the real ones do.
_SNAPSHOTS = {
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "o4-mini": "o4-mini-2025-04-16",
}
_PATHS = (
    "src/app/parser.py",
    "src/app/config.py",
    "src/app/cli.py",
    "src/app/dates.py",
    "tests/test_parser.py",
    "tests/test_dates.py",
)
_PATTERNS = ("def parse_", "Config.load", "TODO", "import datetime", "argparse", "@pytest.mark")
_COMMANDS = ("git status --short", "ls src/app tests", "git diff --stat", "python -m mypy src")
_CODE_LINES = (
    "from __future__ import annotations",
    "import datetime as dt",
    "def parse_date(value: str) -> dt.date:",
    '    """Parse an ISO 8601 date, week dates included."""',
    "    value = value.strip()",
    "    if not value:",
    '        raise ValueError("empty date")',
    "    return dt.date.fromisoformat(value)",
    "class Config:",
    "    @classmethod",
    "    def load(cls, path: str) -> Config:",
    "        with open(path, encoding='utf-8') as handle:",
    "            return cls(**json.load(handle))",
    "    for item in items:",
    "        total += item.weight * factor",
    "    return total",
    "",
)
_BASE_PROMPT_TOKENS = 2_750  # a coding agent's system prompt plus five tool schemas
_TOKENIZER_FACTOR = {"anthropic": 1.12, "openai": 1.0, "google": 0.96}
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_HEX = "0123456789abcdef"
_EPOCH_S = 1_760_000_000  # fixed so that `created` timestamps are deterministic too


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatedToolCall:
    """One tool call the model asked for."""

    name: str
    call_id: str
    arguments: dict[str, Any]


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


def tool_message(call: SimulatedToolCall, result: str, is_error: bool) -> dict[str, Any]:
    """The tool message that reports ``call``'s result back to the model."""
    return {
        "role": "tool",
        "tool_call_id": call.call_id,
        "name": call.name,
        "content": result,
        "is_error": is_error,
    }


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
        draft = _Draft(
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
        build = {
            "messages": _anthropic_raw,
            "chat_completions": _chat_raw,
            "responses": _responses_raw,
            "generate_content": _gemini_raw,
        }[self.api]
        raw, finish_reason = build(rng, draft)
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
            arguments = {"pattern": rng.choice(_PATTERNS), "path": "src"}
        elif name == "bash":
            arguments = {"command": rng.choice(_COMMANDS)}
        elif name == "read_file":
            arguments = {"path": focus if rng.random() < 0.7 else rng.choice(_PATHS)}
        elif name == "edit_file":
            arguments = {
                "path": focus,
                "old_string": "return dt.date.fromisoformat(value)",
                "new_string": "return _parse_iso(value)",
            }
        else:
            arguments = {"path": "tests"} if rng.random() < 0.5 else {}
        if self.provider == "anthropic":
            call_id = "toolu_01" + _token(rng, _ALNUM, 22)
        else:
            call_id = "call_" + _token(rng, _ALNUM, 24)
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
    return _PATHS[zlib.crc32(prompt.encode()) % len(_PATHS)]


def _token(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choices(alphabet, k=length))


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


# --- provider-shaped payloads ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Draft:
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


def _anthropic_raw(rng: random.Random, d: _Draft) -> tuple[dict[str, Any], str]:
    stop = "max_tokens" if d.truncated else ("tool_use" if d.calls else "end_turn")
    content: list[dict[str, Any]] = [{"type": "text", "text": d.text}] if d.text else []
    content += [
        {"type": "tool_use", "id": c.call_id, "name": c.name, "input": c.arguments} for c in d.calls
    ]
    raw = {
        "id": "msg_01" + _token(rng, _ALNUM, 22),
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


def _chat_raw(rng: random.Random, d: _Draft) -> tuple[dict[str, Any], str]:
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
        "id": "chatcmpl-" + _token(rng, _ALNUM, 29),
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
        "system_fingerprint": "fp_" + _token(rng, _HEX, 10),
    }
    return raw, finish


def _responses_raw(rng: random.Random, d: _Draft) -> tuple[dict[str, Any], str]:
    items: list[dict[str, Any]] = []
    if d.reasoning:
        items.append({"id": "rs_" + _token(rng, _HEX, 48), "type": "reasoning", "summary": []})
    for c in d.calls:
        items.append(
            {
                "id": "fc_" + _token(rng, _HEX, 48),
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
                "id": "msg_" + _token(rng, _HEX, 48),
                "type": "message",
                "status": "incomplete" if d.truncated else "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "annotations": [], "text": d.text}],
            }
        )
    raw = {
        "id": "resp_" + _token(rng, _HEX, 50),
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


def _gemini_raw(rng: random.Random, d: _Draft) -> tuple[dict[str, Any], str]:
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
        "responseId": _token(rng, _ALNUM + "-_", 23),
    }
    return raw, finish


# --- tools -----------------------------------------------------------------------------


class SimulatedTools:
    """Runs the demo's tools against an imaginary repository.

    A call fails with probability ``error_rate`` by returning ``is_error=True`` (a missing
    file, a failing test, a non-zero exit), and with probability ``raise_rate`` by raising
    (``TimeoutError``, ``PermissionError`` or ``RuntimeError``), as real tools do.
    Unknown tools and missing arguments are reported as errors, not raised.

    Args:
        seed: seeds the random draws; the same seed and calls give the same results.
        error_rate: chance of an error result, 0 to 1.
        raise_rate: chance of an exception, 0 to 1.

    Raises:
        ConfigError: a rate outside 0 to 1, or the two summing to more than 1.
    """

    def __init__(self, seed: int, *, error_rate: float = 0.12, raise_rate: float = 0.03) -> None:
        for name, rate in (("error_rate", error_rate), ("raise_rate", raise_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ConfigError(f"simulated tools: {name} {rate!r} is not between 0 and 1")
        if error_rate + raise_rate > 1.0:
            raise ConfigError(
                f"simulated tools: error_rate {error_rate} + raise_rate {raise_rate} exceeds 1"
            )
        self._rng = random.Random(f"{seed}/tools")
        self._lock = threading.Lock()
        self._error_rate = error_rate
        self._raise_rate = raise_rate

    def run(self, name: str, arguments: Mapping[str, Any]) -> tuple[str, bool]:
        """Run tool ``name``; returns ``(result, is_error)``.

        Raises:
            TimeoutError: ``bash`` or ``run_tests`` hung (simulated).
            PermissionError: ``read_file`` or ``edit_file`` was denied (simulated).
            RuntimeError: ``grep`` crashed (simulated).
        """
        if name not in DEMO_TOOLS:
            return f"unknown tool {name!r}; available: {', '.join(DEMO_TOOLS)}", True
        required = {"bash": "command", "read_file": "path", "edit_file": "path", "grep": "pattern"}
        key = required.get(name)
        if key is not None and not isinstance(arguments.get(key), str):
            return f"{name}: missing required string argument {key!r}", True
        with self._lock:
            draw = self._rng.random()
            if draw < self._raise_rate:
                raise _crash(name, arguments)
            failed = draw < self._raise_rate + self._error_rate
            return _TOOL_RUNNERS[name](self._rng, arguments, failed), failed


def _crash(name: str, arguments: Mapping[str, Any]) -> Exception:
    if name in ("bash", "run_tests"):
        what = arguments.get("command") or "pytest"
        return TimeoutError(f"{name}: {what!r} timed out after 120 s")
    if name in ("read_file", "edit_file"):
        return PermissionError(13, "Permission denied", arguments.get("path"))
    return RuntimeError(f"grep: regex {arguments.get('pattern')!r} exceeded the backtrack limit")


def _run_bash(rng: random.Random, arguments: Mapping[str, Any], failed: bool) -> str:
    command = str(arguments["command"])
    if failed:
        errors = {
            "git status --short": "fatal: not a git repository (or any parent up to mount point /)",
            "ls src/app tests": "ls: cannot access 'tests': No such file or directory",
            "git diff --stat": "fatal: bad revision 'HEAD'",
        }
        stderr = errors.get(
            command,
            f"src/app/config.py:{rng.randint(5, 90)}: error: Function is missing a return type "
            "annotation  [no-untyped-def]\nFound 1 error in 1 file",
        )
        return f"$ {command}\n{stderr}\nexit status {rng.choice((1, 2))}"
    outputs = {
        "git status --short": " M src/app/parser.py\n?? notes.txt",
        "ls src/app tests": "src/app:\n__init__.py cli.py config.py dates.py parser.py\n\n"
        "tests:\nconftest.py test_cli.py test_dates.py test_parser.py",
        "git diff --stat": " src/app/parser.py | 4 +++-\n"
        " 1 file changed, 3 insertions(+), 1 deletion(-)",
    }
    return outputs.get(command, f"Success: no issues found in {rng.randint(5, 40)} source files")


def _run_read_file(rng: random.Random, arguments: Mapping[str, Any], failed: bool) -> str:
    path = str(arguments["path"])
    if failed:
        return f"read_file: {path}: No such file or directory"
    lines = [rng.choice(_CODE_LINES) for _ in range(rng.randint(30, 160))]
    return "\n".join(f"{number:4d}  {line}" for number, line in enumerate(lines, start=1))


def _run_edit_file(rng: random.Random, arguments: Mapping[str, Any], failed: bool) -> str:
    path = str(arguments["path"])
    if failed:
        return f"edit_file: old_string not found in {path}; read the file again and retry"
    added, removed = rng.randint(1, 12), rng.randint(0, 6)
    return f"Edited {path}: replaced 1 occurrence (+{added} -{removed} lines)"


def _run_grep(rng: random.Random, arguments: Mapping[str, Any], failed: bool) -> str:
    pattern = str(arguments["pattern"])
    if failed:
        return f"grep: {arguments.get('path', '.')}: No such file or directory"
    hits = [
        f"{rng.choice(_PATHS)}:{rng.randint(1, 400)}:    {pattern}{rng.choice(('(', ' =', ':'))}"
        for _ in range(rng.randint(0, 12))
    ]
    return "\n".join(hits) if hits else f"no matches for {pattern!r}"


def _run_tests(rng: random.Random, arguments: Mapping[str, Any], failed: bool) -> str:
    target = str(arguments.get("path", "tests"))
    total = rng.randint(12, 240)
    seconds = rng.uniform(0.4, 9.0)
    if failed:
        failures = rng.randint(1, 3)
        names = "\n".join(
            f"FAILED tests/test_{rng.choice(('parser', 'dates', 'cli'))}.py::test_case_{i} - "
            "AssertionError"
            for i in range(failures)
        )
        return (
            f"collected {total} items from {target}\n\n{names}\n"
            f"===== {failures} failed, {total - failures} passed in {seconds:.2f}s ====="
        )
    return f"collected {total} items from {target}\n\n===== {total} passed in {seconds:.2f}s ====="


_TOOL_RUNNERS = {
    "bash": _run_bash,
    "read_file": _run_read_file,
    "edit_file": _run_edit_file,
    "grep": _run_grep,
    "run_tests": _run_tests,
}
