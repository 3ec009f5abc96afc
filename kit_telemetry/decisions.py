"""Decisions: what an extension's handler may return to change what the agent does.

A handler returns one of these (or ``None``: no opinion). Which ones an event honours:

=============  =======================  ===========================================
event          decisions                effect on the agent
=============  =======================  ===========================================
user_input     ``Transform``, ``Handled``  ``run.prompt`` / ``run.handled``
llm_request    ``Block``                the LLM call raises ``Blocked("llm_call")``
tool_call      ``Block``                the tool call raises ``Blocked("tool_call")``
tool_result    ``Replace``, ``Stop``    ``tool.result`` / ``tool.is_error``; run stopped
llm_usage      ``Stop``                 the run's next call raises ``Blocked("run")``
=============  =======================  ===========================================

Any other return value is ignored. ``Verdict`` is what the extension runtime hands back
to the handle that asked: the final decision and the extension that took it.

Decisions apply where kit-telemetry owns the call: its own handles (``run``, ``llm_call``,
``tool_call``, ``call_tool``) and its provider instrumentation, which asks
``Runtime.llm_request`` before each model call. Spans made by other code are observed
only: their events reach the handlers, and what the handlers return changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, NamedTuple


class _Unchanged:
    """The marker of a ``Replace`` field that keeps the value it replaces."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = _Unchanged()


@dataclass(frozen=True, slots=True)
class Block:
    """Do not run this tool call or LLM call; the agent gets ``Blocked`` with ``reason``."""

    reason: str = ""

    def __post_init__(self) -> None:
        _check_text("Block", "reason", self.reason)


@dataclass(frozen=True, slots=True)
class Replace:
    """The agent passes this tool result on instead (a field left out keeps its value)."""

    content: Any = UNCHANGED
    is_error: bool | _Unchanged = UNCHANGED


@dataclass(frozen=True, slots=True)
class Transform:
    """The run's prompt becomes ``text``."""

    text: str

    def __post_init__(self) -> None:
        _check_text("Transform", "text", self.text)


@dataclass(frozen=True, slots=True)
class Handled:
    """The input was consumed by an extension: the agent should not call the model."""

    reason: str = ""

    def __post_init__(self) -> None:
        _check_text("Handled", "reason", self.reason)


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop this run: its next LLM or tool call raises ``Blocked(kind="run")``."""

    reason: str = ""

    def __post_init__(self) -> None:
        _check_text("Stop", "reason", self.reason)


def _check_text(kind: str, field: str, value: object) -> None:
    # A handler that builds a bad decision fails like one that raises: counted, no opinion.
    if not isinstance(value, str):
        raise TypeError(f"{kind}.{field} must be a string, got {value!r}")


Decision = Block | Replace | Transform | Handled | Stop
"""Every decision a handler may return."""


class Verdict(NamedTuple):
    """The extensions' answer at one decision point, handed back to the handle that asked.

    Attributes:
        decision: the final decision: the first ``Block``/``Stop``/``Handled``, else the
            ``Replace``/``Transform`` that the handlers built up in turn.
        extension: the name of the extension that took it (the last one, for a chain).
        change: the ``Replace``/``Transform`` built up before (or without) a final
            decision: a result replaced and then a run stopped are both honoured.
    """

    decision: Decision
    extension: str
    change: Replace | Transform | None = None
