"""How the handlers' return values at a decision point fold into one ``Verdict``.

The extension runtime calls the handlers; this module says which decisions each event
honours, how a ``Replace`` or ``Transform`` changes the event the next handler sees, and
what a failing ``fail_closed`` extension decides.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..decisions import UNCHANGED, Block, Decision, Handled, Replace, Stop, Transform, Verdict
from ..events import Event, EventType, ToolResultEvent, UserInputEvent

# The decisions each event honours; the first of a final kind ends the chain.
HONOURED: dict[EventType, tuple[type[Decision], ...]] = {
    EventType.USER_INPUT: (Transform, Handled),
    EventType.LLM_REQUEST: (Block,),
    EventType.TOOL_CALL: (Block,),
    EventType.TOOL_RESULT: (Replace, Stop),
    EventType.LLM_USAGE: (Stop,),
}
DECISION_EVENTS = frozenset(HONOURED)
FINAL = (Block, Stop, Handled)

# What the failure of a fail_closed extension's handler decides, per event.
_ON_FAILURE: dict[EventType, type[Block | Stop | Handled]] = {
    EventType.USER_INPUT: Handled,
    EventType.LLM_REQUEST: Block,
    EventType.TOOL_CALL: Block,
    EventType.TOOL_RESULT: Stop,
    EventType.LLM_USAGE: Stop,
}


class Chain:
    """The decisions of one event's handlers, taken in turn.

    Attributes:
        event: the event as the next handler sees it (changed by ``Replace``/``Transform``).
        verdict: the decision so far, or None.
        final: a ``Block``, ``Stop`` or ``Handled`` was taken: later handlers only observe.
    """

    __slots__ = ("_change", "_honoured", "event", "final", "verdict")

    def __init__(self, event: Event) -> None:
        self.event = event
        self.verdict: Verdict | None = None
        self.final = False
        self._change: Replace | Transform | None = None
        self._honoured = HONOURED.get(event.type, ())

    def take(self, extension: str, result: Any) -> None:
        """Fold one handler's return value in; values the event does not honour are ignored."""
        if self.final or not isinstance(result, self._honoured):
            return
        if isinstance(result, FINAL):
            self.verdict = Verdict(result, extension, self._change)
            self.final = True
        elif isinstance(result, Replace):
            event = self.event
            assert isinstance(event, ToolResultEvent)
            content = event.result if result.content is UNCHANGED else result.content
            is_error = event.is_error if result.is_error is UNCHANGED else bool(result.is_error)
            self.event = dataclasses.replace(event, result=content, is_error=is_error)
            self._change = Replace(content=content, is_error=is_error)
            self.verdict = Verdict(self._change, extension, self._change)
        elif isinstance(result, Transform):
            event = self.event
            assert isinstance(event, UserInputEvent)
            self.event = dataclasses.replace(event, text=result.text)
            self._change = result
            self.verdict = Verdict(result, extension, result)

    def fail(self, extension: str, exc: BaseException) -> None:
        """A ``fail_closed`` extension's handler raised or timed out: it decides the safe way."""
        decision = _ON_FAILURE[self.event.type]
        self.take(extension, decision(f"extension failed: {type(exc).__name__}: {exc}"))
