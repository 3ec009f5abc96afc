"""The event model: wire names, frozen dataclasses and the exact JSON round trip."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kit_telemetry as kt
from kit_telemetry.events import EVENT_CLASSES
from kit_telemetry.tokens import TOKEN_KINDS, TokenUsage

# The documented event table: wire name -> class name.
DOCUMENTED_EVENTS = {
    "session_start": "SessionStartEvent",
    "session_end": "SessionEndEvent",
    "agent_start": "AgentStartEvent",
    "agent_end": "AgentEndEvent",
    "turn_start": "TurnStartEvent",
    "turn_end": "TurnEndEvent",
    "tool_call": "ToolCallEvent",
    "tool_result": "ToolResultEvent",
    "user_input": "UserInputEvent",
    "llm_usage": "LLMUsageEvent",
    "budget_alert": "BudgetAlertEvent",
    "llm_request": "LLMRequestEvent",
    "subagent_start": "SubagentStartEvent",
    "subagent_end": "SubagentEndEvent",
    "error": "ErrorEvent",
    "retry": "RetryEvent",
    "model_change": "ModelChangeEvent",
    "custom": "CustomEvent",
}

# Fields the event reference promises on each class (beyond session_id, timestamp_ns, run_id).
DOCUMENTED_FIELDS = {
    "SessionStartEvent": {"session_file"},
    "SessionEndEvent": {"run_count", "llm_call_count", "tool_call_count", "tool_names", "cost_usd"},
    "AgentStartEvent": {"prompt", "agent_name"},
    "AgentEndEvent": {
        "agent_name",
        "stop_reason",
        "response",
        "error",
        "tool_call_count",
        "tool_names",
        "llm_call_count",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "cost_usd",
        "unpriced_call_count",
        "duration_ms",
        "turn_count",
    },
    "LLMRequestEvent": {"provider", "model", "max_tokens", "estimated_input_tokens", "step"},
    "SubagentStartEvent": {"parent_run_id", "tool_call_id", "agent_name"},
    "SubagentEndEvent": {"parent_run_id", "tool_call_id", "agent_name", "llm_call_count"},
    "ErrorEvent": {"agent_name", "error_type", "message"},
    "RetryEvent": {"provider", "model", "attempt", "error"},
    "ModelChangeEvent": {"provider", "previous_model", "model"},
    "CustomEvent": {"name", "payload", "source"},
    "TurnStartEvent": {"turn_index"},
    "TurnEndEvent": {"turn_index", "llm_call_count", "tool_call_count", "input_tokens"},
    "ToolCallEvent": {"tool_name", "call_id", "arguments"},
    "ToolResultEvent": {"tool_name", "call_id", "result", "is_error", "duration_ms"},
    "UserInputEvent": {"text"},
    "LLMUsageEvent": {
        "provider",
        "model",
        "step",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "cost_usd",
        "finish_reason",
        "response_id",
        "duration_ms",
    },
    "BudgetAlertEvent": {"budget", "scope_key", "threshold", "kind", "spent_usd", "limit_usd"},
}

ALL_CLASSES = [getattr(kt, name) for name in DOCUMENTED_EVENTS.values()]

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_float = st.floats(allow_nan=False, allow_infinity=False)

# One strategy per field annotation (the annotations are strings: the module uses
# ``from __future__ import annotations``). A new annotation makes the lookup fail loudly.
_BY_ANNOTATION: dict[str, st.SearchStrategy[Any]] = {
    "str": st.text(max_size=30),
    "str | None": st.none() | st.text(max_size=30),
    "int": st.integers(min_value=-(2**63), max_value=2**63),
    "int | None": st.none() | st.integers(min_value=0, max_value=2**63),
    "float": _float,
    "float | None": st.none() | _float,
    "bool": st.booleans(),
    "tuple[str, ...]": st.lists(st.text(max_size=10), max_size=5).map(tuple),
    "JSONValue": _json,
    "Any": _json,
    "tuple[Any, ...]": st.lists(_json, max_size=3).map(tuple),
}


def _event_strategy(cls: type[kt.Event]) -> st.SearchStrategy[kt.Event]:
    fields = {f.name: _BY_ANNOTATION[str(f.type)] for f in dataclasses.fields(cls)}
    return st.fixed_dictionaries(fields).map(lambda kwargs: cls(**kwargs))


def _minimal(cls: type[kt.Event]) -> dict[str, Any]:
    """The required fields of ``cls`` with plain values, as a wire dict."""
    values = {"str": "x", "int": 1, "str | None": "x", "float": 1.0}
    required = {
        f.name: values[str(f.type)]
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    # Every record on the wire has these (the constructors default them for hand-made events).
    return {"type": cls.type.value, "session_id": "x", "timestamp_ns": 1, **required}


def test_event_type_values_are_the_wire_names_of_events_md() -> None:
    """Handlers, files and other processes match on these strings: they must never drift."""
    assert {t.value for t in kt.EventType} == set(DOCUMENTED_EVENTS)
    for value, class_name in DOCUMENTED_EVENTS.items():
        cls = getattr(kt, class_name)
        assert cls.type is kt.EventType(value)
        assert EVENT_CLASSES[kt.EventType(value)] is cls
        assert kt.EventType(value) == value  # a str enum: compares equal to its wire name
        assert str(kt.EventType(value)) == value


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_every_event_has_the_common_and_documented_fields(cls: type[kt.Event]) -> None:
    """The event reference lists what each event carries; extensions read these names."""
    names = {f.name for f in dataclasses.fields(cls)}
    assert {"session_id", "timestamp_ns", "run_id"} <= names
    missing = DOCUMENTED_FIELDS[cls.__name__] - names
    assert not missing, f"{cls.__name__} lacks {sorted(missing)}"


def test_every_field_annotation_has_a_strategy() -> None:
    """Guards the round-trip property below: a new field type must get a generator."""
    annotations = {str(f.type) for cls in ALL_CLASSES for f in dataclasses.fields(cls)}
    assert annotations <= set(_BY_ANNOTATION), sorted(annotations - set(_BY_ANNOTATION))


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_event_round_trips_exactly_through_json(
    cls: type[kt.Event], data: st.DataObject
) -> None:
    """Events written to a file or sent to another process come back equal, as the same class."""
    event = data.draw(_event_strategy(cls))
    wire = event.to_dict()
    assert wire["type"] == cls.type.value
    text = json.dumps(wire, allow_nan=False)  # JSON-safe: no tuples, enums or NaN left
    decoded = kt.event_from_dict(json.loads(text))
    assert type(decoded) is cls
    assert decoded == event
    assert decoded.to_dict() == wire


def test_tool_names_come_back_as_a_tuple() -> None:
    """``tool_names`` is a tuple on the event but a list on the wire; decoding restores it."""
    event = kt.AgentEndEvent(
        session_id="s", timestamp_ns=1, agent_name="coder", tool_names=("bash", "read", "bash")
    )
    wire = json.loads(json.dumps(event.to_dict()))
    assert wire["tool_names"] == ["bash", "read", "bash"]
    decoded = kt.event_from_dict(wire)
    assert isinstance(decoded, kt.AgentEndEvent)
    assert decoded.tool_names == ("bash", "read", "bash")
    assert hash(decoded) == hash(event)  # frozen events with tuples stay hashable


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_events_are_frozen(cls: type[kt.Event]) -> None:
    """Handlers share one event object; none of them may change what the others see."""
    event = kt.event_from_dict(_minimal(cls))
    for field in dataclasses.fields(cls):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(event, field.name, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.session_id = "other"  # type: ignore[misc]
    assert event.session_id == "x"


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_events_are_plain_slotted_dataclasses(cls: type[kt.Event]) -> None:
    """Events are made by the thousand on the agent's thread: slots, no per-instance dict."""
    event = kt.event_from_dict(_minimal(cls))
    assert type(event) is cls
    assert dataclasses.is_dataclass(event)
    assert not hasattr(event, "__dict__")


def test_unknown_type_names_the_value_and_the_allowed_ones() -> None:
    """A typo in a stored event must say what was wrong and what would have worked."""
    with pytest.raises(kt.EventDecodeError) as info:
        kt.event_from_dict({"type": "llm_usgae", "session_id": "s", "timestamp_ns": 1})
    message = str(info.value)
    assert "'llm_usgae'" in message
    for value in DOCUMENTED_EVENTS:
        assert value in message


@pytest.mark.parametrize("bad_type", [None, 3, ["agent_end"], {"x": 1}, ""])
def test_missing_or_odd_type_is_a_decode_error(bad_type: object) -> None:
    """Whatever sits in ``type``, the caller gets EventDecodeError, never a bare TypeError."""
    data: dict[str, Any] = {"session_id": "s", "timestamp_ns": 1}
    if bad_type is not None:
        data["type"] = bad_type
    with pytest.raises(kt.EventDecodeError, match="unknown event type"):
        kt.event_from_dict(data)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_missing_required_field_is_a_decode_error_naming_it(cls: type[kt.Event]) -> None:
    """A truncated record says which field is missing."""
    full = _minimal(cls)
    kt.event_from_dict(full)  # the complete record decodes
    for name in [k for k in full if k != "type"]:
        partial = {k: v for k, v in full.items() if k != name}
        with pytest.raises(kt.EventDecodeError, match=name):
            kt.event_from_dict(partial)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_unknown_field_is_a_decode_error_naming_it_and_the_known_ones(cls: type[kt.Event]) -> None:
    """Extra fields are refused, not dropped: silently losing data would hide a version skew."""
    data = {**_minimal(cls), "surprise_field": 1}
    with pytest.raises(kt.EventDecodeError) as info:
        kt.event_from_dict(data)
    message = str(info.value)
    assert "surprise_field" in message
    assert "session_id" in message  # the known fields are listed


@pytest.mark.parametrize("value", [None, [], "agent_end", 42, ("type", "agent_end")])
def test_non_dict_input_is_a_decode_error_naming_its_type(value: object) -> None:
    """Feeding a line that is not a JSON object gives a clear error."""
    with pytest.raises(kt.EventDecodeError, match=type(value).__name__):
        kt.event_from_dict(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("tool_names", [None, 5, "bash"])
def test_tool_names_that_are_not_a_list_are_a_decode_error(tool_names: object) -> None:
    """A malformed ``tool_names`` is bad input like any other: EventDecodeError, not TypeError,
    and never a string silently split into one-letter tool names."""
    data = {
        "type": "agent_end",
        "session_id": "s",
        "timestamp_ns": 1,
        "agent_name": "coder",
        "tool_names": tool_names,
    }
    with pytest.raises(kt.EventDecodeError, match="tool_names"):
        kt.event_from_dict(data)


def test_decode_error_is_a_value_error_and_a_package_error() -> None:
    """Callers may catch it as either, like the rest of the exception tree."""
    assert issubclass(kt.EventDecodeError, ValueError)
    assert issubclass(kt.EventDecodeError, kt.KitTelemetryError)


@settings(max_examples=100, deadline=None)
@given(
    input_tokens=st.integers(min_value=0, max_value=10**9),
    output_tokens=st.integers(min_value=0, max_value=10**9),
    cache_read_tokens=st.integers(min_value=0, max_value=10**9),
    cache_write_tokens=st.integers(min_value=0, max_value=10**9),
    data=st.data(),
)
def test_usage_totals_total_tokens_counts_disjoint_kinds_once(
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    data: st.DataObject,
) -> None:
    """Total = input + cache read + cache write + output; reasoning is already in output."""
    reasoning_tokens = data.draw(st.integers(min_value=0, max_value=output_tokens))
    totals = kt.UsageTotals(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
        reasoning_tokens=reasoning_tokens,
    )
    assert totals.total_tokens == (
        input_tokens + cache_read_tokens + cache_write_tokens + output_tokens
    )


def test_usage_totals_default_to_zero_and_are_frozen() -> None:
    """``ctx.usage`` is handed to every handler: it starts empty and cannot be altered."""
    totals = kt.UsageTotals()
    assert totals.total_tokens == 0
    assert totals.cost_usd == 0.0
    assert (
        kt.UsageTotals(input_tokens=1200, cache_read_tokens=4000, output_tokens=310).total_tokens
        == 5510
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        totals.input_tokens = 5  # type: ignore[misc]


_TOKEN_CARRIERS = [kt.LLMUsageEvent, kt.AgentEndEvent, kt.TurnEndEvent, kt.SessionEndEvent]


@pytest.mark.parametrize("cls", _TOKEN_CARRIERS, ids=lambda c: c.__name__)
def test_tokens_property_gathers_each_flat_token_field_under_its_own_kind(
    cls: type[kt.Event],
) -> None:
    """``event.tokens`` is the flat fields as one ``TokenUsage``; no kind may land in another."""
    counts = {kind: 10**i for i, kind in enumerate(TOKEN_KINDS, start=1)}
    event = kt.event_from_dict({**_minimal(cls), **counts})
    tokens = event.tokens  # type: ignore[attr-defined]
    assert tokens == TokenUsage(**counts)
    assert tokens.total == sum(v for k, v in counts.items() if k != "reasoning_tokens")


@pytest.mark.parametrize("cls", _TOKEN_CARRIERS, ids=lambda c: c.__name__)
def test_tokens_property_is_not_on_the_wire(cls: type[kt.Event]) -> None:
    """The wire format stays flat: ``tokens`` is derived, never written or accepted."""
    event = kt.event_from_dict({**_minimal(cls), "input_tokens": 7})
    wire = event.to_dict()
    assert "tokens" not in wire
    assert wire["input_tokens"] == 7
    with pytest.raises(kt.EventDecodeError, match="tokens"):
        kt.event_from_dict({**wire, "tokens": {"input_tokens": 7}})


def test_tokens_of_several_calls_add_up_kind_by_kind() -> None:
    """Summing ``.tokens`` is how a handler totals calls without naming each kind."""
    calls = [
        kt.LLMUsageEvent(
            session_id="s",
            timestamp_ns=i,
            provider="openai",
            model="gpt",
            input_tokens=100 * i,
            output_tokens=10 * i,
            cache_read_tokens=1000 * i,
            cache_write_tokens=i,
            reasoning_tokens=2 * i,
        )
        for i in (1, 2, 3)
    ]
    total = sum((call.tokens for call in calls), TokenUsage())
    assert total == TokenUsage(
        input_tokens=600,
        output_tokens=60,
        cache_read_tokens=6000,
        cache_write_tokens=6,
        reasoning_tokens=12,
    )
    assert total.total_input == 6606


def test_usage_totals_tokens_match_their_fields_and_total() -> None:
    """``ctx.usage.tokens`` and ``ctx.usage.total_tokens`` must tell the same story."""
    totals = kt.UsageTotals(
        llm_call_count=3,
        input_tokens=1200,
        output_tokens=310,
        cache_read_tokens=4000,
        cache_write_tokens=50,
        reasoning_tokens=100,
    )
    assert totals.tokens == TokenUsage(
        input_tokens=1200,
        output_tokens=310,
        cache_read_tokens=4000,
        cache_write_tokens=50,
        reasoning_tokens=100,
    )
    assert totals.total_tokens == totals.tokens.total == 5560
