"""Compatibility with the Python agent's extension types: positional constructors,
``event.data``, recorded messages, ``ctx.tools`` and ``LoadedExtension.tools``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

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
        "prompt=fix it",
        "turn 0 message={'role': 'assistant', 'content': 'done'}",
        "roles=['user', 'assistant'] tools=['echo'] cwd=True",
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
