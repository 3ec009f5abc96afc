"""Compatibility with the Python agent's extension types: positional constructors,
``Event(type, data)``, ``event.data``, recorded messages, ``ExtensionContext(agent, cwd,
tools)``, ``ctx.agent``, ``ctx.tools`` and ``LoadedExtension.tools``."""

from __future__ import annotations

import importlib
import logging
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from extensions_fixtures import python_agent_style

import kit_telemetry as kt
from kit_telemetry.testing import capture

FIXTURE = str(Path(__file__).parent / "extensions_fixtures" / "python_agent_style.py")


def test_the_positional_constructors_of_the_python_agent_work() -> None:
    """Extensions' own tests build events by hand, positionally."""
    before = time.time_ns()
    start = kt.AgentStartEvent("fix it")
    end = kt.AgentEndEvent([{"role": "user", "content": "fix it"}])
    turn_start, turn_end = kt.TurnStartEvent(0), kt.TurnEndEvent(1, {"role": "assistant"})
    assert (kt.SessionStartEvent().session_id, kt.SessionEndEvent().run_count) == ("", 0)
    assert (start.prompt, start.agent_name, start.session_id) == ("fix it", "agent", "")
    assert start.timestamp_ns >= before
    assert end.messages == ({"role": "user", "content": "fix it"},)
    assert (turn_start.turn_index, turn_end.turn_index, turn_end.message) == (
        0,
        1,
        {"role": "assistant"},
    )


def test_event_data_is_a_read_only_mapping_of_every_field() -> None:
    """``event.data["prompt"]`` reads like the Python agent's ``Event(type, data)``."""
    event = kt.AgentStartEvent("fix it", session_id="s", run_id="r")
    assert event.data["prompt"] == "fix it"
    assert set(event.data) == {"session_id", "timestamp_ns", "run_id", "prompt", "agent_name"}
    with pytest.raises(TypeError):
        event.data["prompt"] = "other"  # type: ignore[index]


def test_wire_records_still_need_their_session_and_timestamp() -> None:
    """The defaults serve hand-made events; a truncated record is still refused."""
    with pytest.raises(kt.EventDecodeError, match="session_id"):
        kt.event_from_dict({"type": "agent_start", "timestamp_ns": 1, "prompt": "x"})
    end = kt.AgentEndEvent([{"role": "user"}], session_id="s", timestamp_ns=5)
    assert kt.event_from_dict(end.to_dict()) == end


def test_an_extension_written_for_those_types_runs_unchanged() -> None:
    """Only its import line changed: it reads data, messages, message, tools and cwd."""
    with capture(capture_content=True) as cap:
        notes: list[str] = []
        cap.telemetry.extension_processor.notifier = lambda ext, msg, kind: notes.append(msg)
        loaded = cap.telemetry.load_extension(FIXTURE)
        with cap.telemetry.session("s") as session, session.run("fix it") as run:
            with run.turn() as turn:
                turn.set_message({"role": "assistant", "content": "done"})
            run.record_messages(
                [{"role": "user", "content": "fix it"}, {"role": "assistant", "content": "done"}]
            )
        run_span = next(s for s in cap.spans() if s.name.startswith("invoke_agent"))
        turn_span = next(s for s in cap.spans() if s.name.startswith("turn"))
    assert [t.name for t in loaded.tools] == ["echo"]
    assert notes == [
        "prompt=fix it agent=agent",
        "turn 0 message={'role': 'assistant', 'content': 'done'}",
        "roles=['user', 'assistant'] tools=['echo'] cwd=True prompts=['fix it']",
    ]
    assert run.end_event is not None and len(run.end_event.messages) == 2
    assert run_span.attributes is not None and turn_span.attributes is not None
    assert '"role": "user"' in str(run_span.attributes["kit.run.messages"])
    assert '"content": "done"' in str(turn_span.attributes["kit.turn.message"])


def test_messages_stay_off_spans_without_content_capture() -> None:
    """Like prompts, messages reach handlers in-process and spans only under capture."""
    with capture() as cap:
        with cap.telemetry.session("s") as session, session.run("x") as run:
            with run.turn() as turn:
                turn.set_message("secret")
            run.record_messages(["secret"])
        attributes = [dict(s.attributes or {}) for s in cap.spans()]
        (turn_end,) = cap.events_of(kt.EventType.TURN_END)
    assert not any("kit.run.messages" in a or "kit.turn.message" in a for a in attributes)
    assert run.end_event is not None and run.end_event.messages == ("secret",)
    assert isinstance(turn_end, kt.TurnEndEvent) and turn_end.message == "secret"


def test_event_of_a_type_and_data_is_the_event_of_that_type() -> None:
    """``Event(type, data)`` gives the specific event, so handlers typed for it work too."""
    before = time.time_ns()
    start = kt.Event(kt.EventType.AGENT_START, {"prompt": "fix it"})
    call = kt.Event("tool_call", {"tool_name": "ls", "arguments": {"path": "."}}, session_id="s")
    end = kt.Event(type=kt.EventType.TURN_END, data={"turn_index": 2, "tool_names": ["ls"]})
    assert isinstance(start, kt.AgentStartEvent) and isinstance(start, kt.Event)
    assert (start.type, start.data["prompt"], start.prompt) == (
        kt.EventType.AGENT_START,
        "fix it",
        "fix it",
    )
    assert (start.session_id, start.run_id) == ("", None) and start.timestamp_ns >= before
    assert isinstance(call, kt.ToolCallEvent)
    assert (call.session_id, call.tool_name, call.arguments) == ("s", "ls", {"path": "."})
    assert isinstance(end, kt.TurnEndEvent) and end.tool_names == ("ls",)
    assert kt.Event("session_start", {"timestamp_ns": 7}) == kt.SessionStartEvent(timestamp_ns=7)


def test_event_of_a_dict_written_by_to_dict_is_equal_to_it() -> None:
    """``to_dict()`` output names its own type; ``Event(d["type"], d)`` rebuilds the event."""
    end = kt.AgentEndEvent([{"role": "user"}], session_id="s", timestamp_ns=5, tool_names=("ls",))
    record = end.to_dict()
    assert kt.Event(record["type"], record) == end


@pytest.mark.parametrize(
    ("type_", "data", "message"),
    [
        ("agent_begin", {}, "type 'agent_begin' is not one of session_start, "),
        ("agent_start", {"promt": "x"}, r"agent_start has no field\(s\) \['promt'\]; its fields"),
        ("tool_call", {}, r"tool_call needs the field\(s\) \['tool_name'\]"),
        ("agent_start", {"type": "agent_end"}, "data says type 'agent_end', not 'agent_start'"),
    ],
)
def test_event_of_bad_input_names_the_type_or_field(
    type_: str, data: dict[str, object], message: str
) -> None:
    """A wrong type or field is refused at once, naming it and what is allowed."""
    with pytest.raises(kt.UsageError, match=message):
        kt.Event(type_, data)


def test_event_data_that_is_no_mapping_is_a_type_error() -> None:
    """The fields come as a mapping, as in the Python agent."""
    with pytest.raises(TypeError, match="data must be a mapping"):
        kt.Event(kt.EventType.AGENT_START, ["fix it"])  # type: ignore[arg-type]


def test_the_extensions_own_tests_run_with_event_and_context_built_by_hand(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its tests call its handlers with ``Event(type, data)`` and ``ExtensionContext(agent, cwd, tools)``."""
    agent = SimpleNamespace(agent_name="coder")  # what the Python agent passed: its agent
    ctx = kt.ExtensionContext(agent, "/work/project", [python_agent_style.ECHO])
    with caplog.at_level(logging.INFO, logger="kit_telemetry"):
        python_agent_style.on_start(kt.Event(kt.EventType.AGENT_START, {"prompt": "fix it"}), ctx)
        python_agent_style.on_end(
            kt.Event(kt.EventType.AGENT_END, {"messages": [{"role": "user", "content": "x"}]}), ctx
        )
    assert (ctx.agent, ctx.cwd, [t.name for t in ctx.tools]) == (
        agent,
        "/work/project",
        ["echo"],
    )
    assert ctx.get_state("prompts") == ["fix it"]
    assert [r.getMessage() for r in caplog.records] == [
        "[extension] prompt=fix it agent=coder",
        "[extension] roles=['user'] tools=['echo'] cwd=True prompts=['fix it']",
    ]


def test_a_context_built_by_hand_keeps_state_in_memory_and_reaches_no_one(
    tmp_path: Path,
) -> None:
    """Such a context serves a handler fully without telemetry: state, usage, emit, tools."""
    ctx = kt.ExtensionContext(None, tmp_path)
    ctx.set_state("k", {"n": 1})
    ctx.emit("ping", {"n": 1})
    assert (ctx.agent, ctx.span, ctx.session_id, ctx.tools) == (None, None, "", [])
    assert ctx.cwd == str(tmp_path)
    assert ctx.list_state() == {"k": {"n": 1}} and ctx.delete_state("k")
    assert ctx.usage == kt.UsageTotals()
    assert list(tmp_path.iterdir()) == []
    assert kt.ExtensionContext().cwd == "."


def test_a_context_built_by_hand_refuses_tools_that_are_not_tool_definitions() -> None:
    """A wrong item is named when the context is built, not when a handler reads it."""
    with pytest.raises(TypeError, match="tools must be ToolDefinitions, got 'echo'"):
        kt.ExtensionContext(None, ".", ["echo"])  # type: ignore[list-item]


AGENT_RECORDER = """
import kit_telemetry as kt

SEEN = []

def setup(api):
    for kind in ("session_start", "agent_start", "agent_end", "session_end"):
        api.on(kind, lambda event, ctx: SEEN.append((event.type.value, ctx.agent)))
"""


def test_the_agent_of_a_handlers_context_is_the_current_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the SDK, ``ctx.agent`` is the ``Run`` handle whose events the handler sees."""
    (tmp_path / "kit_i15b_agent_recorder.py").write_text(AGENT_RECORDER)
    monkeypatch.syspath_prepend(str(tmp_path))
    with capture() as cap:
        cap.telemetry.load_extension("kit_i15b_agent_recorder")
        with cap.telemetry.session("s") as session, session.run("x", agent_name="coder") as run:
            with run.turn() as turn, turn.tool_call("delegate"), session.run("help") as child:
                pass
    module = importlib.import_module("kit_i15b_agent_recorder")
    monkeypatch.delitem(sys.modules, "kit_i15b_agent_recorder")
    assert [
        ("session_start", None),
        ("agent_start", run),
        ("agent_start", child),  # a sub-agent's own run, not its parent
        ("agent_end", child),
        ("agent_end", run),
        ("session_end", None),
    ] == module.SEEN
