"""Sub-agents: a run started inside a tool call is part of its parent's trace and totals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import kit_telemetry as kt
from kit_telemetry.testing import Capture, capture


def call(turn: kt.Turn, model: str, cost: float) -> None:
    with turn.llm_call("openai", model) as llm:
        llm.record_usage(input_tokens=100, output_tokens=10, cost_usd=cost, finish_reason="stop")


def parent_with_child(cap: Capture) -> tuple[kt.Run, kt.Run]:
    with cap.telemetry.session("s") as session, session.run("plan", agent_name="lead") as parent:
        with parent.turn() as turn:
            call(turn, "gpt-4o", 0.01)
            with turn.tool_call("delegate", call_id="call_7") as tool:
                with session.run("research", agent_name="researcher") as child:
                    with child.turn() as child_turn:
                        call(child_turn, "gpt-4o-mini", 0.002)
                        call(child_turn, "gpt-4o-mini", 0.003)
                tool.set_result("findings")
    return parent, child


def test_a_run_inside_a_tool_call_is_a_sub_agent_in_the_parents_trace() -> None:
    """One trace for the whole task: the child's span hangs under the tool call."""
    with capture() as cap:
        parent, child = parent_with_child(cap)
        tool_span = cap.span("execute_tool delegate")
        child_span = cap.span("invoke_agent researcher")
        parent_span = cap.span("invoke_agent lead")
    assert child_span.context.trace_id == parent_span.context.trace_id
    assert child_span.parent is not None
    assert child_span.parent.span_id == tool_span.context.span_id
    assert child.parent_run is parent
    assert child.run_id != parent.run_id and child.run_id.startswith(parent.run_id)


def test_the_parent_totals_include_the_child_and_the_child_keeps_its_own() -> None:
    """What the task cost is on the parent; what the helper cost is on the child."""
    with capture() as cap:
        parent, child = parent_with_child(cap)
        starts = cap.events_of(kt.EventType.SUBAGENT_START)
        ends = cap.events_of(kt.EventType.SUBAGENT_END)
        order = [e.type.value for e in cap.events]
        parent_span = cap.span("invoke_agent lead")
    p, c = parent.end_event, child.end_event
    assert p is not None and c is not None
    assert (c.llm_call_count, c.cost_usd, c.input_tokens) == (2, pytest.approx(0.005), 200)
    assert (p.llm_call_count, p.cost_usd, p.input_tokens) == (3, pytest.approx(0.015), 300)
    assert p.subagent_count == 1 and c.subagent_count == 0
    (start,) = starts
    (end,) = ends
    assert isinstance(start, kt.SubagentStartEvent) and isinstance(end, kt.SubagentEndEvent)
    assert (start.parent_run_id, start.tool_call_id, start.agent_name, start.run_id) == (
        parent.run_id,
        "call_7",
        "researcher",
        child.run_id,
    )
    assert (end.llm_call_count, end.cost_usd) == (2, pytest.approx(0.005))
    assert order.index("subagent_end") == order.index("agent_end") + 1
    assert parent_span.attributes is not None
    assert parent_span.attributes["kit.run.llm_call_count"] == 3


def test_run_budgets_of_the_parent_count_the_childs_calls() -> None:
    """A sub-agent cannot be a way around its parent's run budget."""
    budget = kt.Budget(name="per-run", scope="run", max_llm_calls=2)
    with capture(budgets=[budget]) as cap, cap.telemetry.session("s") as session:
        with session.run("plan") as parent, parent.turn() as turn:
            call(turn, "gpt-4o", 0.01)
            with turn.tool_call("delegate") as tool, session.run("help") as child:
                with child.turn() as child_turn:
                    call(child_turn, "gpt-4o", 0.01)
                    with pytest.raises(kt.BudgetExceeded):
                        call(child_turn, "gpt-4o", 0.01)
                tool.set_result("partial")


def test_sub_agents_on_an_async_agent() -> None:
    """The current tool call follows the task: an awaited sub-agent nests too."""

    async def helper(session: kt.Session) -> None:
        async with session.run("help", agent_name="helper") as child, child.turn() as turn:
            await asyncio.sleep(0)
            call(turn, "gpt-4o-mini", 0.001)

    async def agent(tel: kt.Telemetry) -> kt.Run:
        async with tel.session("s") as session, session.run("go", agent_name="lead") as run:
            async with run.turn() as turn, turn.tool_call("delegate") as tool:
                await helper(session)
                tool.set_result("ok")
        return run

    with capture() as cap:
        run = asyncio.run(agent(cap.telemetry))
        starts = cap.events_of(kt.EventType.SUBAGENT_START)
    assert run.end_event is not None and run.end_event.llm_call_count == 1
    assert len(starts) == 1


def test_nested_invoke_agent_spans_of_other_code_roll_up() -> None:
    """A framework's agent-as-tool shows up as a sub-agent in kit-telemetry's totals."""
    with capture() as cap:
        tracer = cap.telemetry.tracer_provider.get_tracer("some.framework")

        def span(name: str, **attributes: Any) -> Any:
            return tracer.start_as_current_span(name, attributes=attributes)

        with span(
            "invoke_agent lead",
            **{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "lead"},
        ):
            with span(
                "execute_tool ask",
                **{
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "ask",
                    "gen_ai.tool.call.id": "t1",
                },
            ):
                with span(
                    "invoke_agent helper",
                    **{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helper"},
                ):
                    with span(
                        "chat gpt-4o",
                        **{
                            "gen_ai.operation.name": "chat",
                            "gen_ai.request.model": "gpt-4o",
                            "gen_ai.provider.name": "openai",
                            "gen_ai.usage.input_tokens": 50,
                            "gen_ai.usage.output_tokens": 5,
                        },
                    ):
                        pass
        ends = {
            e.agent_name: e
            for e in cap.events_of(kt.EventType.AGENT_END)
            if isinstance(e, kt.AgentEndEvent)
        }
        (start,) = cap.events_of(kt.EventType.SUBAGENT_START)
    assert ends["lead"].llm_call_count == 1 and ends["helper"].llm_call_count == 1
    assert ends["lead"].subagent_count == 1
    assert isinstance(start, kt.SubagentStartEvent) and start.tool_call_id == "t1"
