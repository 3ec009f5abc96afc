"""The demo's simulated tools: the calls the model asks for, run against an imaginary repository.

:class:`SimulatedTools` runs the tools in :data:`DEMO_TOOLS` and sometimes fails, by
result (``is_error=True``) or by raising; :func:`tool_message` reports a result back to
the model. The repository's paths, grep patterns and shell commands live here too, since
the model's tool arguments must be ones the tools know how to answer.

Everything is drawn from ``random.Random`` seeded by the caller, so the same seed and the
same sequence of calls give the same results.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kit_telemetry.errors import ConfigError

__all__ = ["DEMO_TOOLS", "SimulatedToolCall", "SimulatedTools", "tool_message"]

DEMO_TOOLS: tuple[str, ...] = ("bash", "read_file", "edit_file", "grep", "run_tests")

# The imaginary repository the tools work on, and the arguments the model picks from.
PATHS = (
    "src/app/parser.py",
    "src/app/config.py",
    "src/app/cli.py",
    "src/app/dates.py",
    "tests/test_parser.py",
    "tests/test_dates.py",
)
PATTERNS = ("def parse_", "Config.load", "TODO", "import datetime", "argparse", "@pytest.mark")
COMMANDS = ("git status --short", "ls src/app tests", "git diff --stat", "python -m mypy src")
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


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatedToolCall:
    """One tool call the model asked for."""

    name: str
    call_id: str
    arguments: dict[str, Any]


def tool_message(call: SimulatedToolCall, result: str, is_error: bool) -> dict[str, Any]:
    """The tool message that reports ``call``'s result back to the model."""
    return {
        "role": "tool",
        "tool_call_id": call.call_id,
        "name": call.name,
        "content": result,
        "is_error": is_error,
    }


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
        f"{rng.choice(PATHS)}:{rng.randint(1, 400)}:    {pattern}{rng.choice(('(', ' =', ':'))}"
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
