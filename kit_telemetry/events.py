"""The event model: ``EventType`` and one frozen dataclass per event.

Events are what extension handlers receive. They are built from spans by the aggregator
(``aggregation/processor.py``) and serialise to JSON-safe dicts and back exactly
(``Event.to_dict()`` / ``event_from_dict()``). ``Event(type, data)`` builds the event of
``type`` by hand, as the Python agent's generic event type is built.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import EventDecodeError, UsageError
from .tokens import TokenUsage

JSONValue = Any  # str | int | float | bool | None | list[JSONValue] | dict[str, JSONValue]


class EventType(str, enum.Enum):
    """The kinds of event; the values are the wire names."""

    SESSION_START = "session_start"
    SESSION_END = "session_end"
    AGENT_START = "agent_start"
    AGENT_END = "agent_end"
    TURN_START = "turn_start"
    TURN_END = "turn_end"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    USER_INPUT = "user_input"
    LLM_USAGE = "llm_usage"
    BUDGET_ALERT = "budget_alert"
    LLM_REQUEST = "llm_request"
    SUBAGENT_START = "subagent_start"
    SUBAGENT_END = "subagent_end"
    ERROR = "error"
    RETRY = "retry"
    MODEL_CHANGE = "model_change"
    CUSTOM = "custom"

    def __str__(self) -> str:
        return self.value


class _EventMeta(type):
    """Routes ``Event(type, data)`` to the event class of ``type``.

    The Python agent's extensions build a generic ``Event(type, data)``; here every type has
    its own class, so that call returns an instance of it (``Event(EventType.AGENT_START,
    {"prompt": "x"})`` is an ``AgentStartEvent``). ``Event.__new__`` cannot do this: Python
    would then run the subclass's ``__init__`` with ``(type, data)``. Calls of the specific
    classes pass straight through.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is Event and (args or "type" in kwargs):
            return _event_of(*args, **kwargs)
        return super().__call__(*args, **kwargs)


class _SpecificEventMeta(_EventMeta):
    """The metaclass of the event classes: they are called as any class is.

    Without it each event the SDK builds would pass through ``_EventMeta.__call__``, a
    Python call that makes building one 40 % dearer (``benchmarks/bench_events.py``).
    """

    __call__ = type.__call__


@dataclass(frozen=True, slots=True, kw_only=True)
class Event(metaclass=_EventMeta):
    """Fields every event has. ``type`` is fixed per class.

    ``Event(type, data)`` (the Python agent's form) returns the event of ``type``, an
    ``EventType`` or its value, with the fields in the mapping ``data`` (and any given as
    keywords); like the positional constructors, ``session_id`` defaults to ``""`` and
    ``timestamp_ns`` to now. It raises ``UsageError`` naming the type or fields when
    ``type`` is unknown, or ``data`` lacks a required field or has one the event has not.
    """

    type: ClassVar[EventType]
    # Defaults for events built by hand (``kt.AgentStartEvent("fix it")``, as the Python
    # agent's extensions do); the aggregator always sets both, and the wire requires both.
    session_id: str = ""
    timestamp_ns: int = field(default_factory=time.time_ns)
    run_id: str | None = None

    if TYPE_CHECKING:
        # What ``Event(...)`` accepts (``_EventMeta``); each subclass has its own fields.
        def __init__(
            self, type: EventType | str, data: Mapping[str, Any] | None = None, **fields: Any
        ) -> None: ...

    @property
    def data(self) -> Mapping[str, Any]:
        """Every field of the event, as a read-only mapping (``event.data["prompt"]``)."""
        return MappingProxyType({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    def to_dict(self) -> dict[str, JSONValue]:
        """A JSON-safe dict that ``event_from_dict`` turns back into an equal event."""
        out: dict[str, JSONValue] = {"type": self.type.value}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class _TotalsEvent(Event, metaclass=_SpecificEventMeta):
    """An end event carrying totals (turn, run or session)."""

    llm_call_count: int = 0
    tool_call_count: int = 0
    tool_names: tuple[str, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_call_count: int = 0
    # ``cost_usd`` stays a float users can sum; this says whether it is the whole cost or a
    # lower bound (some call had no price), so an unpriced run never reads as a free one.
    cost_complete: bool = True
    turn_count: int = 0
    duration_ms: float = 0.0

    @property
    def tokens(self) -> TokenUsage:
        """The token fields as one value, e.g. to add the totals of several events."""
        return TokenUsage.of(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStartEvent(Event, metaclass=_SpecificEventMeta):
    """A session opened."""

    type: ClassVar[EventType] = EventType.SESSION_START
    session_file: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEndEvent(_TotalsEvent):
    """A session closed; carries the totals of all its runs."""

    type: ClassVar[EventType] = EventType.SESSION_END
    run_count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStartEvent(Event, metaclass=_SpecificEventMeta):
    """An agent run began."""

    type: ClassVar[EventType] = EventType.AGENT_START
    prompt: str | None = field(default=None, kw_only=False)
    agent_name: str = "agent"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentEndEvent(_TotalsEvent):
    """The enriched end of an agent run (also on error, cancel or budget stop)."""

    type: ClassVar[EventType] = EventType.AGENT_END
    # What the agent recorded with ``run.record_messages(...)`` (``()`` when nothing).
    messages: tuple[Any, ...] = field(default=(), kw_only=False)
    agent_name: str = "agent"
    stop_reason: str | None = None
    response: str | None = None
    error: str | None = None
    subagent_count: int = 0  # sub-agent runs started in its tool calls (totals include them)

    def __post_init__(self) -> None:
        if not isinstance(self.messages, tuple):  # a list given by hand: frozen like the rest
            object.__setattr__(self, "messages", tuple(self.messages))


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnStartEvent(Event, metaclass=_SpecificEventMeta):
    """One iteration of the agent loop began."""

    type: ClassVar[EventType] = EventType.TURN_START
    turn_index: int = field(kw_only=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnEndEvent(_TotalsEvent):
    """One iteration of the agent loop ended; carries that turn's totals."""

    type: ClassVar[EventType] = EventType.TURN_END
    turn_index: int = field(kw_only=False)
    # What the agent recorded with ``turn.set_message(...)`` (None when nothing).
    message: Any = field(default=None, kw_only=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallEvent(Event, metaclass=_SpecificEventMeta):
    """A tool started."""

    type: ClassVar[EventType] = EventType.TOOL_CALL
    tool_name: str
    call_id: str | None = None
    arguments: JSONValue = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResultEvent(Event, metaclass=_SpecificEventMeta):
    """A tool finished (``is_error`` when it failed or raised)."""

    type: ClassVar[EventType] = EventType.TOOL_RESULT
    tool_name: str
    call_id: str | None = None
    result: JSONValue = None
    is_error: bool = False
    duration_ms: float = 0.0
    cost_usd: float | None = None  # the tool's own cost (``tool.add_cost``), if any


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInputEvent(Event, metaclass=_SpecificEventMeta):
    """The prompt of a run arrived (``text`` is None when the span came without it)."""

    type: ClassVar[EventType] = EventType.USER_INPUT
    text: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMUsageEvent(Event, metaclass=_SpecificEventMeta):
    """An LLM call finished. Token kinds are disjoint; reasoning tokens are part of output."""

    type: ClassVar[EventType] = EventType.LLM_USAGE
    provider: str
    model: str
    step: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None
    finish_reason: str | None = None
    response_id: str | None = None
    duration_ms: float = 0.0

    @property
    def tokens(self) -> TokenUsage:
        """The call's token fields as one value (``tokens.total_input`` is the whole prompt)."""
        return TokenUsage.of(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetAlertEvent(Event, metaclass=_SpecificEventMeta):
    """A budget crossed a warning threshold or was exhausted.

    ``spent_usd``/``limit_usd`` are set for USD budgets; ``spent``/``limit`` with ``unit``
    hold the figures for every budget (USD, tokens or calls). An ``exceeded`` alert for a
    refused call also has ``requested`` (and ``reserved``, held by calls in flight): the
    call was refused because ``spent + reserved + requested > limit``; both are None when
    settled usage reached the limit.
    """

    type: ClassVar[EventType] = EventType.BUDGET_ALERT
    budget: str
    scope_key: str
    kind: str  # "warning" | "exceeded"
    threshold: float | None = None
    unit: str = "usd"
    spent: float = 0.0
    limit: float = 0.0
    spent_usd: float | None = None
    limit_usd: float | None = None
    window_end: float | None = None
    reserved: float | None = None
    requested: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMRequestEvent(Event, metaclass=_SpecificEventMeta):
    """An LLM call is about to be made (after budget admission); handlers may ``Block`` it.

    ``step`` is the call's index in its run (0 for the first); ``max_tokens`` and
    ``estimated_input_tokens`` are None when the agent did not give them.
    """

    type: ClassVar[EventType] = EventType.LLM_REQUEST
    provider: str
    model: str
    max_tokens: int | None = None
    estimated_input_tokens: int | None = None
    step: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SubagentStartEvent(Event, metaclass=_SpecificEventMeta):
    """A run started while a tool call of another run was current: a sub-agent.

    ``run_id`` is the child's; ``parent_run_id`` and ``tool_call_id`` say where it runs.
    """

    type: ClassVar[EventType] = EventType.SUBAGENT_START
    parent_run_id: str
    tool_call_id: str | None = None
    agent_name: str = "agent"


@dataclass(frozen=True, slots=True, kw_only=True)
class SubagentEndEvent(_TotalsEvent):
    """A sub-agent run ended; carries the child's own totals."""

    type: ClassVar[EventType] = EventType.SUBAGENT_END
    parent_run_id: str
    tool_call_id: str | None = None
    agent_name: str = "agent"
    stop_reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEvent(Event, metaclass=_SpecificEventMeta):
    """A run failed; delivered just before its ``agent_end``.

    ``error_type`` is the exception's type name, ``message`` its text.
    """

    type: ClassVar[EventType] = EventType.ERROR
    agent_name: str = "agent"
    error_type: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryEvent(Event, metaclass=_SpecificEventMeta):
    """An LLM call is being retried (``call.record_retry(attempt, error)``)."""

    type: ClassVar[EventType] = EventType.RETRY
    provider: str
    model: str
    attempt: int
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelChangeEvent(Event, metaclass=_SpecificEventMeta):
    """The model of a session's LLM calls changed (derived from two calls in a row)."""

    type: ClassVar[EventType] = EventType.MODEL_CHANGE
    provider: str
    previous_model: str
    model: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomEvent(Event, metaclass=_SpecificEventMeta):
    """An event one extension sent the others: ``ctx.emit(name, payload)``.

    ``source`` is the sending extension's name; ``api.on_custom(name, handler)`` receives
    the events of one ``name``, ``api.on("custom", handler)`` all of them.
    """

    type: ClassVar[EventType] = EventType.CUSTOM
    name: str
    payload: JSONValue = None
    source: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageTotals:
    """Totals so far (a session's, for ``ExtensionContext.usage``)."""

    run_count: int = 0
    turn_count: int = 0
    llm_call_count: int = 0
    tool_call_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_call_count: int = 0
    cost_complete: bool = True  # False: ``cost_usd`` is a lower bound (unpriced calls)

    @property
    def tokens(self) -> TokenUsage:
        """The token fields as one value."""
        return TokenUsage.of(self)

    @property
    def total_tokens(self) -> int:
        """Every billable token: the disjoint input kinds plus output."""
        return self.tokens.total


EVENT_CLASSES: dict[EventType, type[Event]] = {
    cls.type: cls
    for cls in (
        SessionStartEvent,
        SessionEndEvent,
        AgentStartEvent,
        AgentEndEvent,
        TurnStartEvent,
        TurnEndEvent,
        ToolCallEvent,
        ToolResultEvent,
        UserInputEvent,
        LLMUsageEvent,
        BudgetAlertEvent,
        LLMRequestEvent,
        SubagentStartEvent,
        SubagentEndEvent,
        ErrorEvent,
        RetryEvent,
        ModelChangeEvent,
        CustomEvent,
    )
}


def _event_of(type: EventType | str, data: Mapping[str, Any] | None = None, **more: Any) -> Event:
    """The event of ``type`` built from ``data`` and ``more`` (``Event(type, data)``)."""
    try:
        kind = EventType(type)
    except ValueError:
        allowed = ", ".join(t.value for t in EventType)
        raise UsageError(f"Event: type {type!r} is not one of {allowed}") from None
    if data is None:
        data = {}
    elif not isinstance(data, Mapping):
        raise TypeError(f"Event: data must be a mapping of field names, got {data!r}")
    cls = EVENT_CLASSES[kind]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    given: dict[str, Any] = {**data, **more}
    # ``to_dict()`` output names its type; it must be this one.
    if given.pop("type", kind) != kind:
        raise UsageError(f"Event: data says type {data['type']!r}, not {kind.value!r}")
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise UsageError(
            f"Event: {kind.value} has no field(s) {unknown}; its fields: {sorted(fields)}"
        )
    missing = sorted(
        name
        for name, f in fields.items()
        if name not in given
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    )
    if missing:
        raise UsageError(f"Event: {kind.value} needs the field(s) {missing}")
    if isinstance(given.get("tool_names"), list):
        given["tool_names"] = tuple(given["tool_names"])
    return cls(**given)


def event_from_dict(data: dict[str, JSONValue]) -> Event:
    """Rebuild an event from ``Event.to_dict()`` output.

    Raises:
        EventDecodeError: the dict has no known ``type``, or lacks or adds fields.
    """
    if not isinstance(data, dict):
        raise EventDecodeError(f"an event must be a dict, got {type(data).__name__}")
    raw_type = data.get("type")
    try:
        cls = EVENT_CLASSES[EventType(raw_type)]
    except ValueError:
        allowed = ", ".join(t.value for t in EventType)
        raise EventDecodeError(
            f"unknown event type {raw_type!r}; expected one of: {allowed}"
        ) from None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields) - {"type"}
    if unknown:
        raise EventDecodeError(
            f"{raw_type} event has unknown fields {sorted(unknown)}; known: {sorted(fields)}"
        )
    tool_names = data.get("tool_names", ())
    if "tool_names" in fields and not (
        isinstance(tool_names, (list, tuple)) and all(isinstance(n, str) for n in tool_names)
    ):
        raise EventDecodeError(
            f"{raw_type} event: tool_names must be a list of strings, got {tool_names!r}"
        )
    absent = [name for name in ("session_id", "timestamp_ns") if name not in data]
    if absent:  # defaults serve events built by hand; a record without them is truncated
        raise EventDecodeError(f"{raw_type} event lacks the required field(s) {absent}")
    kwargs: dict[str, Any] = {k: v for k, v in data.items() if k != "type"}
    if "cost_complete" in fields and "cost_complete" not in kwargs:
        # Dicts written before the flag existed still say whether a call went unpriced.
        kwargs["cost_complete"] = not kwargs.get("unpriced_call_count")
    if "tool_names" in kwargs:
        kwargs["tool_names"] = tuple(kwargs["tool_names"])
    if isinstance(kwargs.get("messages"), list):
        kwargs["messages"] = tuple(kwargs["messages"])
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise EventDecodeError(f"cannot build a {raw_type} event: {exc}") from None
