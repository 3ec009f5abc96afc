"""A policy extension: it intervenes, where ``usage_budget.py`` only watches.

Load it with ``kt.configure(extensions=["examples/extensions/policy.py"])``. It:

- blocks dangerous shell commands: a ``tool_call`` of a shell tool whose command matches
  ``DANGEROUS`` (``rm -rf /``, ``mkfs``, ``dd of=/dev/...``, a fork bomb, ``curl ... | sh``)
  raises ``kt.Blocked`` in the agent before the command runs;
- redacts secrets from tool results (API keys, tokens, private keys, passwords): the agent
  passes the redacted text on to the model (``tool.result`` after ``set_result``);
- stops a run whose cost per answer runs away: when the LLM calls since the run's last
  answer (a call that finished with ``stop``/``end_turn``) cost more than
  ``KIT_POLICY_MAX_USD_PER_ANSWER`` (default $0.50), the run's next call raises
  ``kt.Blocked(kind="run")`` and its end event says ``stop_reason="stopped"``.

It is fail-closed (``FAIL_CLOSED = True``): if one of its handlers fails, the call is
blocked rather than let through. Decisions apply to calls made through kit-telemetry's API
and provider instrumentation; spans of other code are observed only.
"""

from __future__ import annotations

import math
import os
import re
import threading

import kit_telemetry as kt

FAIL_CLOSED = True
MAX_PER_ANSWER_ENV = "KIT_POLICY_MAX_USD_PER_ANSWER"
DEFAULT_MAX_USD_PER_ANSWER = 0.50

SHELL_TOOLS = frozenset({"bash", "shell", "sh", "run_command", "terminal"})
DANGEROUS = [
    (
        re.compile(r"\brm\s+(-[a-zA-Z]*[rf][a-zA-Z]*\s+)+(/|~|\$HOME|\*)(\s|$)"),
        "recursive delete of / or ~",
    ),
    (re.compile(r"\bmkfs(\.\w+)?\b"), "formats a file system"),
    (re.compile(r"\bdd\b.*\bof=/dev/"), "writes to a raw device"),
    (re.compile(r":\(\)\s*\{\s*:\|:&\s*\};:"), "fork bomb"),
    (
        re.compile(r"\b(curl|wget)\b[^|]*\|\s*(sudo\s+)?(ba|z)?sh\b"),
        "pipes a download into a shell",
    ),
    (re.compile(r"\bchmod\s+-R\s+777\s+/(\s|$)"), "opens the whole file system"),
]
SECRETS = [
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        "[redacted private key]",
    ),
    (re.compile(r"\bsk-(ant-)?[A-Za-z0-9_-]{16,}"), "[redacted api key]"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "[redacted aws key]"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), "[redacted github token]"),
    (re.compile(r"(?i)\b(password|passwd|secret|token)(\s*[=:]\s*)\S+"), r"\1\2[redacted]"),
]
ANSWER_REASONS = frozenset({"stop", "end_turn"})


def max_usd_per_answer() -> float:
    """``KIT_POLICY_MAX_USD_PER_ANSWER`` (USD), or the default.

    Raises:
        ValueError: the variable is set but is not a positive amount (the extension then
            fails to load, at start-up, rather than enforce the wrong limit).
    """
    raw = os.environ.get(MAX_PER_ANSWER_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_USD_PER_ANSWER
    try:
        value = float(raw.removeprefix("$"))
    except ValueError:
        raise ValueError(
            f"{MAX_PER_ANSWER_ENV}={raw!r} is not an amount in USD, e.g. 0.50"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{MAX_PER_ANSWER_ENV}={raw!r} must be a positive amount in USD")
    return value


def command_of(arguments: object) -> str:
    """The shell command in a tool call's arguments (``{"command": ...}``, ``{"cmd": ...}``)."""
    if isinstance(arguments, str):
        return arguments
    if isinstance(arguments, dict):
        for key in ("command", "cmd", "script"):
            value = arguments.get(key)
            if isinstance(value, str):
                return value
    return ""


def danger(command: str) -> str | None:
    """Why ``command`` is dangerous, or None."""
    for pattern, why in DANGEROUS:
        if pattern.search(command):
            return why
    return None


def redact(text: str) -> str:
    """``text`` with every secret pattern replaced."""
    for pattern, replacement in SECRETS:
        text = pattern.sub(replacement, text)
    return text


def setup(api: kt.ExtensionAPI) -> None:
    """Register the three policies."""
    limit_usd = max_usd_per_answer()
    lock = threading.Lock()
    since_answer: dict[str, float] = {}  # run id -> USD spent since its last answer

    @api.on(kt.EventType.TOOL_CALL)
    def block_dangerous(event: kt.ToolCallEvent, ctx: kt.ExtensionContext) -> kt.Block | None:
        if event.tool_name not in SHELL_TOOLS:
            return None
        why = danger(command_of(event.arguments))
        return kt.Block(f"dangerous command ({why})") if why else None

    @api.on(kt.EventType.TOOL_RESULT)
    def redact_secrets(event: kt.ToolResultEvent, ctx: kt.ExtensionContext) -> kt.Replace | None:
        if not isinstance(event.result, str):
            return None
        clean = redact(event.result)
        return kt.Replace(content=clean) if clean != event.result else None

    @api.on(kt.EventType.LLM_USAGE)
    def cost_per_answer(event: kt.LLMUsageEvent, ctx: kt.ExtensionContext) -> kt.Stop | None:
        key = event.run_id or event.session_id
        with lock:
            spent = since_answer.get(key, 0.0) + (event.cost_usd or 0.0)
            answered = event.finish_reason in ANSWER_REASONS
            since_answer[key] = 0.0 if answered else spent
        if spent > limit_usd:
            return kt.Stop(
                f"cost per answer ran away: ${spent:.2f} since the last answer "
                f"(limit ${limit_usd:.2f}, {MAX_PER_ANSWER_ENV})"
            )
        return None

    @api.on(kt.EventType.AGENT_END)
    def forget(event: kt.AgentEndEvent, ctx: kt.ExtensionContext) -> None:
        with lock:
            since_answer.pop(event.run_id or event.session_id, None)
