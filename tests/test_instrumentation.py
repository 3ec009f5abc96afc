"""The instrumentation API: spans, attributes, nesting, context and exceptions."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry.trace import SpanKind, StatusCode

import kit_telemetry as kt
from kit_telemetry import semconv as sc
from kit_telemetry.testing import capture


def _one_run(tel: kt.Telemetry, session_id: str = "s-1") -> kt.AgentEndEvent | None:
    with tel.session(session_id, session_file=None) as session:
        with session.run("fix the failing test", agent_name="coder") as run:
            with run.turn() as turn:
                with turn.llm_call(
                    provider="anthropic", model="claude-sonnet-4-5", max_tokens=1024
                ) as call:
                    call.record_usage(
                        input_tokens=1200,
                        output_tokens=310,
                        cache_read_tokens=4000,
                        cache_write_tokens=100,
                        reasoning_tokens=10,
                        finish_reason="tool_use",
                        response_id="msg_01",
                    )
                with turn.tool_call(
                    "bash", call_id="toolu_01", arguments={"cmd": "pytest"}
                ) as tool:
                    tool.set_result("3 passed")
            with (
                run.turn() as turn,
                turn.llm_call(provider="anthropic", model="claude-sonnet-4-5") as call,
            ):
                call.record_usage(input_tokens=50, output_tokens=20, finish_reason="end_turn")
            run.set_response("done")
    return run.end_event


def test_run_is_a_trace_root_with_turn_llm_and_tool_children() -> None:
    """The span tree is what GenAI backends expect: run -> turns -> chat / execute_tool."""
    with capture() as cap:
        _one_run(cap.telemetry)
        run = cap.span("invoke_agent coder")
        turn0, turn1 = cap.span("turn 0"), cap.span("turn 1")
        tool = cap.span("execute_tool bash")
        chats = [s for s in cap.spans() if s.name == "chat claude-sonnet-4-5"]
    assert run.parent is None
    assert turn0.parent is not None and turn0.parent.span_id == run.context.span_id
    assert turn1.parent is not None and turn1.parent.span_id == run.context.span_id
    assert tool.parent is not None and tool.parent.span_id == turn0.context.span_id
    assert {c.parent.span_id for c in chats if c.parent} == {
        turn0.context.span_id,
        turn1.context.span_id,
    }
    assert {s.context.trace_id for s in (run, turn0, turn1, tool, *chats)} == {run.context.trace_id}
    assert chats[0].kind is SpanKind.CLIENT
    assert run.kind is SpanKind.INTERNAL and tool.kind is SpanKind.INTERNAL


def test_llm_span_has_genai_request_and_usage_attributes() -> None:
    """Usage attributes follow the conventions: input_tokens is the total input, cache included."""
    with capture() as cap:
        _one_run(cap.telemetry)
        chat = next(
            s
            for s in cap.spans()
            if s.name.startswith("chat") and s.attributes.get(sc.GEN_AI_RESPONSE_ID)
        )
    a = chat.attributes
    assert a[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert a[sc.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert a[sc.GEN_AI_REQUEST_MODEL] == "claude-sonnet-4-5"
    assert a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 1024
    assert a[sc.GEN_AI_RESPONSE_ID] == "msg_01"
    assert tuple(a[sc.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_use",)
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 1200 + 4000 + 100
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 310
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 4000
    assert a[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 100
    assert a[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 10
    assert a[sc.GEN_AI_CONVERSATION_ID] == "s-1"


def test_every_span_carries_the_conversation_id() -> None:
    """gen_ai.conversation.id ties every span of a session together."""
    with capture() as cap:
        _one_run(cap.telemetry, "conv-9")
        spans = cap.spans()
    assert {s.name for s in spans} >= {"kit.session.start", "kit.session.end", "invoke_agent coder"}
    assert all(s.attributes.get(sc.GEN_AI_CONVERSATION_ID) == "conv-9" for s in spans)


def test_tool_span_attributes_and_no_content_by_default() -> None:
    """Tool name and call id are on the span; arguments and results only with capture_content."""
    with capture() as cap:
        _one_run(cap.telemetry)
        tool = cap.span("execute_tool bash")
        run = cap.span("invoke_agent coder")
    assert tool.attributes[sc.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert tool.attributes[sc.GEN_AI_TOOL_NAME] == "bash"
    assert tool.attributes[sc.GEN_AI_TOOL_CALL_ID] == "toolu_01"
    assert sc.GEN_AI_TOOL_CALL_ARGUMENTS not in tool.attributes
    assert sc.GEN_AI_TOOL_CALL_RESULT not in tool.attributes
    (user_input,) = [e for e in run.events if e.name == sc.EVENT_USER_INPUT]
    assert sc.EVENT_USER_INPUT_TEXT not in (user_input.attributes or {})


def test_capture_content_puts_content_on_spans_truncated() -> None:
    """With capture_content the prompt, arguments and result are exported, cut past the limit."""
    with capture(capture_content=True, max_content_chars=10) as cap:
        tel = cap.telemetry
        with tel.session("s") as session, session.run("a prompt longer than ten") as run:
            with run.tool_call("grep", arguments={"pattern": "x"}) as tool:
                tool.set_result("short")
        tool_span = cap.span("execute_tool grep")
        run_span = cap.span("invoke_agent agent")
    assert tool_span.attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS].startswith('{"pattern"')
    assert "truncated" in tool_span.attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS]
    assert tool_span.attributes[sc.GEN_AI_TOOL_CALL_RESULT] == "short"
    (message,) = json.loads(run_span.attributes[sc.GEN_AI_INPUT_MESSAGES])
    assert message["role"] == "user"
    assert message["parts"][0]["content"].startswith("a prompt l")
    assert "truncated" in message["parts"][0]["content"]
    (event,) = [e for e in run_span.events if e.name == sc.EVENT_USER_INPUT]
    assert sc.EVENT_USER_INPUT_TEXT not in (event.attributes or {})  # legacy_names only


def test_a_prompt_given_as_messages_is_recorded_as_json_text() -> None:
    """Agents often hold the prompt as a message list: events and spans get valid text."""
    messages = [{"role": "user", "content": "fix the test"}]
    with capture(capture_content=True) as cap:
        with cap.telemetry.session("s") as session, session.run(messages) as run:
            pass
        run_span = cap.span("invoke_agent agent")
    text = json.dumps(messages)
    assert run.prompt == text
    start = next(e for e in cap.events if isinstance(e, kt.AgentStartEvent))
    user_input = next(e for e in cap.events if isinstance(e, kt.UserInputEvent))
    assert start.prompt == text and user_input.text == text
    assert kt.event_from_dict(json.loads(json.dumps(start.to_dict()))) == start
    assert json.loads(run_span.attributes[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "fix the test"}]}
    ]


def test_end_event_totals() -> None:
    """run.end_event is the enriched AgentEndEvent with exact totals."""
    with capture() as cap:
        end = _one_run(cap.telemetry)
    assert end is not None
    assert end.agent_name == "coder"
    assert end.llm_call_count == 2 and end.turn_count == 2
    assert end.tool_call_count == 1 and end.tool_names == ("bash",)
    assert end.input_tokens == 1250 and end.output_tokens == 330
    assert end.cache_read_tokens == 4000 and end.cache_write_tokens == 100
    assert end.reasoning_tokens == 10
    assert end.stop_reason == "end_turn"
    assert end.response == "done"
    assert end.error is None
    assert end.cost_usd > 0 and end.unpriced_call_count == 0


def test_exception_marks_span_and_is_reraised_unchanged() -> None:
    """An error in the agent is recorded on the spans and reaches the caller as it was."""

    class Boom(Exception):
        pass

    original = Boom("disk on fire")
    with capture() as cap:
        tel = cap.telemetry
        with pytest.raises(Boom) as info, tel.session("s") as session:
            with session.run("go") as run, run.tool_call("bash"):
                raise original
        tool = cap.span("execute_tool bash")
        run_span = cap.span("invoke_agent agent")
    assert info.value is original
    assert tool.status.status_code is StatusCode.ERROR
    assert (
        tool.attributes[sc.ERROR_TYPE]
        == "test_exception_marks_span_and_is_reraised_unchanged.<locals>.Boom"
    )
    assert any(e.name == "exception" for e in tool.events)
    assert run_span.status.status_code is StatusCode.ERROR
    assert run.end_event is not None
    assert run.end_event.stop_reason == "error"
    assert run.end_event.error is not None and run.end_event.error.endswith("Boom: disk on fire")
    assert run.end_event.tool_call_count == 1


def test_implicit_turns_for_run_level_calls() -> None:
    """run.llm_call opens a turn that the next run-level call (or the run's end) closes."""
    with capture() as cap:
        tel = cap.telemetry
        with tel.session("s") as session, session.run("go") as run:
            with run.llm_call("openai", "gpt-4o") as call:
                call.record_usage(input_tokens=10, output_tokens=5, finish_reason="tool_calls")
            with run.tool_call("bash"):
                pass
            with run.llm_call("openai", "gpt-4o") as call:
                call.record_usage(input_tokens=20, output_tokens=5, finish_reason="stop")
        turns = sorted((s for s in cap.spans() if s.name.startswith("turn ")), key=lambda s: s.name)
        tool = cap.span("execute_tool bash")
    assert [t.name for t in turns] == ["turn 0", "turn 1"]
    assert tool.parent is not None and tool.parent.span_id == turns[0].context.span_id
    assert run.end_event is not None and run.end_event.turn_count == 2
    assert run.end_event.stop_reason == "stop"


async def test_context_follows_asyncio_tasks_20_concurrent_runs() -> None:
    """20 runs in concurrent tasks: every span lands under its own run, totals do not mix."""
    with capture() as cap:
        tel = cap.telemetry

        async def one(i: int) -> kt.AgentEndEvent | None:
            async with (
                tel.session(f"s-{i}") as session,
                session.run(f"p{i}", agent_name=f"a{i}") as run,
            ):
                assert kt.current_run() is run
                for _ in range(i % 3 + 1):
                    async with run.turn() as turn:
                        assert kt.current_turn() is turn
                        async with turn.llm_call("openai", "gpt-4o") as call:
                            await asyncio.sleep(0.001)
                            call.record_usage(input_tokens=i, output_tokens=1)
                        async with turn.tool_call(f"tool{i}"):
                            await asyncio.sleep(0)
            return run.end_event

        ends = await asyncio.gather(*(one(i) for i in range(20)))
        spans = cap.spans()
    runs = {
        s.attributes[sc.GEN_AI_AGENT_NAME]: s for s in spans if s.name.startswith("invoke_agent")
    }
    by_id = {s.context.span_id: s for s in spans}
    for s in spans:
        if s.name.startswith("execute_tool"):
            i = int(s.attributes[sc.GEN_AI_TOOL_NAME][4:])
            turn = by_id[s.parent.span_id]
            assert turn.parent.span_id == runs[f"a{i}"].context.span_id
    for i, end in enumerate(ends):
        assert end is not None
        assert end.llm_call_count == i % 3 + 1
        assert end.input_tokens == i * (i % 3 + 1)
        assert end.tool_names == (f"tool{i}",) * (i % 3 + 1)


def test_wrap_and_attach_carry_context_into_threads() -> None:
    """tel.wrap and kt.attach make the run current in worker threads."""
    seen: list[object] = []
    with capture() as cap:
        tel = cap.telemetry
        with tel.session("s") as session, session.run("go") as run:

            def work() -> None:
                seen.append(kt.current_run())

            with ThreadPoolExecutor(2) as pool:
                pool.submit(tel.wrap(work)).result()
                pool.submit(tel.wrap(work)).result()

            def attached() -> None:
                with kt.attach(run):
                    seen.append(kt.current_run())

            thread = threading.Thread(target=attached)
            thread.start()
            thread.join()
            seen.append(kt.current_run())
    assert seen == [run, run, run, run]


def test_parallel_tool_calls_from_threads_are_all_counted() -> None:
    """Tool calls made from many threads of one turn all count, none lost."""
    with capture() as cap:
        tel = cap.telemetry
        with tel.session("s") as session, session.run("go") as run, run.turn() as turn:

            def call(i: int) -> None:
                with turn.tool_call(f"t{i % 4}"):
                    pass

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(call, range(200)))
    assert run.end_event is not None
    assert run.end_event.tool_call_count == 200
    assert sorted(set(run.end_event.tool_names)) == ["t0", "t1", "t2", "t3"]
