"""The aggregator end to end: exact totals per turn, run and session, whatever runs at once.

Every test drives a real ``Telemetry`` (through ``kit_telemetry.testing.capture``: a fresh
``TracerProvider``, an in-memory span exporter and a fresh ``CollectorRegistry``) and checks
the delivered events, the exported spans and the metrics against figures computed here
from the work the test did, never from the code under test.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, Status, StatusCode

import kit_telemetry as kt
from kit_telemetry import semconv as sc
from kit_telemetry.pricing import ModelPrice
from kit_telemetry.testing import Capture, capture
from kit_telemetry.tracing import PAYLOADS

MODEL = "claude-sonnet-4-5"
PROVIDER = "anthropic"
TOKEN_KINDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


# --- plans: what each run does, decided here, independent of the code under test ---------
@dataclass(frozen=True)
class CallPlan:
    usage: dict[str, int]
    finish_reason: str
    cost_usd: float | None  # given by the caller, or None: priced by the table


@dataclass(frozen=True)
class TurnPlan:
    calls: tuple[CallPlan, ...]
    tools: tuple[str, ...]


@dataclass(frozen=True)
class RunPlan:
    index: int
    session_id: str
    agent_name: str
    turns: tuple[TurnPlan, ...]


def _plan(index: int, session_id: str) -> RunPlan:
    """Run ``index``: 1-4 turns of 1-2 calls and 0-2 tools, every figure distinct per run."""
    turns = []
    for t in range(1 + index % 4):
        calls = []
        n_calls = 1 + (index + t) % 2
        for c in range(n_calls):
            output = 20 + 3 * index + t + c
            usage = {
                "input_tokens": 100 * index + 10 * t + c + 1,
                "output_tokens": output,
                "cache_read_tokens": (index % 7) * 50 + t,
                "cache_write_tokens": (index % 3) * 20 + c,
                "reasoning_tokens": min(output, index % 5 + t),
            }
            last = t == index % 4 and c == n_calls - 1
            calls.append(
                CallPlan(
                    usage=usage,
                    finish_reason="end_turn" if last else "tool_use",
                    # Even runs carry the caller's own cost; odd runs are priced by the table.
                    cost_usd=round((index + 1) * 1e-4 + c * 1e-6, 9) if index % 2 == 0 else None,
                )
            )
        tools = tuple(f"tool{(index + t + k) % 3}" for k in range((index + t) % 3))
        turns.append(TurnPlan(calls=tuple(calls), tools=tools))
    return RunPlan(
        index=index, session_id=session_id, agent_name=f"agent-{index % 3}", turns=tuple(turns)
    )


def _rate_cost(price: ModelPrice, usage: dict[str, int]) -> float:
    """The table's rates times each disjoint token kind (reasoning is inside output)."""
    assert price.cache_read_per_mtok is not None and price.cache_write_per_mtok is not None
    return (
        usage["input_tokens"] * price.input_per_mtok
        + usage["output_tokens"] * price.output_per_mtok
        + usage["cache_read_tokens"] * price.cache_read_per_mtok
        + usage["cache_write_tokens"] * price.cache_write_per_mtok
    ) / 1e6


def _expected(calls: list[CallPlan], tools: list[str], price: ModelPrice) -> dict[str, Any]:
    out: dict[str, Any] = {kind: sum(c.usage[kind] for c in calls) for kind in TOKEN_KINDS}
    out["llm_call_count"] = len(calls)
    out["tool_call_count"] = len(tools)
    out["tool_names"] = tuple(tools)
    out["cost_usd"] = sum(
        c.cost_usd if c.cost_usd is not None else _rate_cost(price, c.usage) for c in calls
    )
    out["unpriced_call_count"] = 0
    return out


def _expected_run(plan: RunPlan, price: ModelPrice) -> dict[str, Any]:
    calls = [c for t in plan.turns for c in t.calls]
    tools = [name for t in plan.turns for name in t.tools]
    out = _expected(calls, tools, price)
    out["turn_count"] = len(plan.turns)
    return out


def _assert_totals(event: Any, expected: dict[str, Any], what: str) -> None:
    for key, value in expected.items():
        got = getattr(event, key)
        if key == "cost_usd":
            assert got == pytest.approx(value, rel=1e-9, abs=1e-15), f"{what}: {key}"
        else:
            assert got == value, f"{what}: {key} is {got!r}, expected {value!r}"


@dataclass
class ConcurrentResult:
    plans: list[RunPlan]
    ends: dict[int, kt.AgentEndEvent | None]
    session_usage: dict[str, kt.UsageTotals]  # read after the runs, before the sessions end
    session_ends: dict[str, kt.SessionEndEvent | None]


def _run_in_threads(cap: Capture, n_runs: int, n_sessions: int) -> ConcurrentResult:
    """``n_runs`` runs, one per thread, all released at once, spread over the sessions."""
    tel = cap.telemetry
    session_ids = [f"thr-{j}" for j in range(n_sessions)]
    plans = [_plan(i, session_ids[i % n_sessions]) for i in range(n_runs)]
    ends: dict[int, kt.AgentEndEvent | None] = {}
    barrier = threading.Barrier(n_runs)
    sessions = {sid: tel.session(sid) for sid in session_ids}
    for session in sessions.values():
        session.start()

    def drive(plan: RunPlan) -> None:
        barrier.wait()
        session = sessions[plan.session_id]
        with session.run(f"prompt {plan.index}", agent_name=plan.agent_name) as run:
            for turn_plan in plan.turns:
                with run.turn() as turn:
                    for call_plan in turn_plan.calls:
                        with turn.llm_call(PROVIDER, MODEL) as call:
                            time.sleep(0)  # let the other runs interleave
                            call.record_usage(
                                **call_plan.usage,
                                finish_reason=call_plan.finish_reason,
                                cost_usd=call_plan.cost_usd,
                            )
                    for name in turn_plan.tools:
                        with turn.tool_call(name) as tool:
                            time.sleep(0)
                            tool.set_result("ok")
        ends[plan.index] = run.end_event

    with ThreadPoolExecutor(max_workers=n_runs) as pool:
        for future in [pool.submit(drive, plan) for plan in plans]:
            future.result()
    usage = {sid: tel.aggregator.session_usage(sid) for sid in session_ids}
    for session in sessions.values():
        session.end()
    return ConcurrentResult(plans, ends, usage, {sid: s.end_event for sid, s in sessions.items()})


async def _run_in_tasks(cap: Capture, n_runs: int, n_sessions: int) -> ConcurrentResult:
    """``n_runs`` runs, one per asyncio task, interleaving at every await."""
    tel = cap.telemetry
    session_ids = [f"aio-{j}" for j in range(n_sessions)]
    plans = [_plan(i, session_ids[i % n_sessions]) for i in range(n_runs)]
    ends: dict[int, kt.AgentEndEvent | None] = {}
    sessions = {sid: tel.session(sid) for sid in session_ids}
    for session in sessions.values():
        session.start()
    gate = asyncio.Event()

    async def drive(plan: RunPlan) -> None:
        await gate.wait()
        session = sessions[plan.session_id]
        async with session.run(f"prompt {plan.index}", agent_name=plan.agent_name) as run:
            for turn_plan in plan.turns:
                async with run.turn() as turn:
                    for call_plan in turn_plan.calls:
                        async with turn.llm_call(PROVIDER, MODEL) as call:
                            await asyncio.sleep(0)
                            call.record_usage(
                                **call_plan.usage,
                                finish_reason=call_plan.finish_reason,
                                cost_usd=call_plan.cost_usd,
                            )
                    for name in turn_plan.tools:
                        async with turn.tool_call(name) as tool:
                            await asyncio.sleep(0)
                            tool.set_result("ok")
        ends[plan.index] = run.end_event

    tasks = [asyncio.create_task(drive(plan)) for plan in plans]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*tasks)
    usage = {sid: tel.aggregator.session_usage(sid) for sid in session_ids}
    for session in sessions.values():
        session.end()
    return ConcurrentResult(plans, ends, usage, {sid: s.end_event for sid, s in sessions.items()})


def _check_runs_and_sessions(cap: Capture, result: ConcurrentResult) -> None:
    price = cap.telemetry.prices.find_price(PROVIDER, MODEL)
    assert price is not None
    delivered = {e.run_id: e for e in cap.events_of(kt.EventType.AGENT_END)}
    assert len(delivered) == len(result.plans)
    for plan in result.plans:
        end = result.ends[plan.index]
        assert end is not None, f"run {plan.index} has no end event"
        _assert_totals(end, _expected_run(plan, price), f"run {plan.index}")
        assert end.stop_reason == "end_turn"
        assert end.agent_name == plan.agent_name
        assert end.session_id == plan.session_id
        assert end.error is None
        assert delivered[end.run_id] == end  # the handler saw exactly the run's own totals
    by_session: dict[str, list[RunPlan]] = defaultdict(list)
    for plan in result.plans:
        by_session[plan.session_id].append(plan)
    assert len(by_session) > 1
    for session_id, session_plans in by_session.items():
        runs = [_expected_run(p, price) for p in session_plans]
        summed = {
            key: sum(r[key] for r in runs)
            for key in (*TOKEN_KINDS, "llm_call_count", "tool_call_count", "turn_count")
        }
        expected = {
            **summed,
            "cost_usd": sum(r["cost_usd"] for r in runs),
            "unpriced_call_count": 0,
        }
        usage = result.session_usage[session_id]
        end = result.session_ends[session_id]
        assert end is not None
        for totals in (usage, end):
            _assert_totals(totals, expected, session_id)
            assert totals.run_count == len(session_plans)
        # Runs of one session interleave, so only the multiset of tool names is fixed.
        assert sorted(end.tool_names) == sorted(n for r in runs for n in r["tool_names"])


def _check_turns(cap: Capture, result: ConcurrentResult) -> None:
    price = cap.telemetry.prices.find_price(PROVIDER, MODEL)
    assert price is not None
    turn_ends: dict[str | None, list[Any]] = defaultdict(list)
    for e in cap.events_of(kt.EventType.TURN_END):
        turn_ends[e.run_id].append(e)
    for plan in result.plans:
        end = result.ends[plan.index]
        assert end is not None
        turns = sorted(turn_ends[end.run_id], key=lambda e: e.turn_index)
        assert [t.turn_index for t in turns] == list(range(len(plan.turns))), plan.index
        for turn_event, turn_plan in zip(turns, plan.turns, strict=True):
            _assert_totals(
                turn_event,
                _expected(list(turn_plan.calls), list(turn_plan.tools), price),
                f"run {plan.index} turn {turn_event.turn_index}",
            )
            assert turn_event.turn_count == 1


def test_50_concurrent_runs_in_threads_each_get_exactly_their_own_totals() -> None:
    """Runs in threads of several sessions never mix: every end event is its run's own."""
    with capture() as cap:
        result = _run_in_threads(cap, n_runs=50, n_sessions=5)
        _check_runs_and_sessions(cap, result)


async def test_50_concurrent_runs_in_asyncio_tasks_each_get_exactly_their_own_totals() -> None:
    """Runs in interleaved asyncio tasks of several sessions never mix."""
    with capture() as cap:
        result = await _run_in_tasks(cap, n_runs=50, n_sessions=7)
        _check_runs_and_sessions(cap, result)


def test_turn_end_events_of_concurrent_runs_hold_each_turns_own_totals() -> None:
    """Every turn_end is delivered, with that turn's calls, tools and tokens only."""
    with capture() as cap:
        result = _run_in_threads(cap, n_runs=50, n_sessions=5)
        _check_turns(cap, result)


async def test_turn_end_events_of_concurrent_tasks_hold_each_turns_own_totals() -> None:
    """The same for runs in asyncio tasks."""
    with capture() as cap:
        result = await _run_in_tasks(cap, n_runs=50, n_sessions=7)
        _check_turns(cap, result)


USAGE_PROBE = """
import kit_telemetry as kt

SEEN = []

def setup(api):
    @api.on(kt.EventType.AGENT_END)
    def run_end(event, ctx):
        SEEN.append(("agent_end", ctx.usage))

    @api.on(kt.EventType.SESSION_END)
    def session_end(event, ctx):
        SEEN.append(("session_end", ctx.usage))
"""


def test_ctx_usage_in_handlers_holds_the_session_totals_including_at_session_end(
    tmp_path: Path,
) -> None:
    """A session_end handler reading ctx.usage sees the whole session, not zeros."""
    (tmp_path / "usage_seen.py").write_text(USAGE_PROBE)
    with capture() as cap:
        tel = cap.telemetry
        loaded = tel.load_extension(tmp_path / "usage_seen.py")
        with tel.session("s") as session:
            for n in (1, 2):
                with session.run("go") as run:
                    for _ in range(n):
                        with run.turn() as turn, turn.llm_call(PROVIDER, MODEL) as call:
                            call.record_usage(input_tokens=100, output_tokens=10)
        module = next(
            m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == loaded.path
        )
        seen: list[tuple[str, kt.UsageTotals]] = list(module.SEEN)
    assert session.end_event is not None
    assert session.end_event.llm_call_count == 3
    assert [(kind, u.run_count, u.llm_call_count, u.input_tokens) for kind, u in seen] == [
        ("agent_end", 1, 1, 100),
        ("agent_end", 2, 3, 300),
        ("session_end", 2, 3, 300),
    ]


# --- tool calls -------------------------------------------------------------------------
def test_tool_names_keep_start_order_and_duplicates_even_when_ends_overlap() -> None:
    """tool_names lists calls in the order they started, duplicates kept."""
    with capture() as cap:
        tel = cap.telemetry
        with tel.session("s") as session, session.run("go") as run:
            with run.turn() as turn:
                first = turn.tool_call("grep")
                first.start()
                second = turn.tool_call("read")
                second.start()
                second.end()  # the later call finishes first
                first.end()
                with turn.tool_call("grep"):
                    pass
            with run.turn() as turn, turn.tool_call("read"):
                pass
        results = [e.tool_name for e in cap.events_of(kt.EventType.TOOL_RESULT)]
    assert run.end_event is not None
    assert run.end_event.tool_names == ("grep", "read", "grep", "read")
    assert run.end_event.tool_call_count == 4
    assert results == ["read", "grep", "grep", "read"]  # results arrive in end order


def test_failed_tools_count_whether_flagged_or_raised() -> None:
    """is_error and a raising tool both count as calls, as errors in events and metrics."""
    with capture() as cap:
        tel = cap.telemetry
        with tel.session("s") as session, session.run("go") as run, run.turn() as turn:
            with turn.tool_call("read") as tool:
                tool.set_result("no such file", is_error=True)
            with pytest.raises(OSError), turn.tool_call("write"):
                raise OSError("disk full")
            with turn.tool_call("read") as tool:
                tool.set_result("42 lines")
        results = cap.events_of(kt.EventType.TOOL_RESULT)
        read_error = cap.metric("kit_tool_calls_total", tool="read", outcome="error")
        read_ok = cap.metric("kit_tool_calls_total", tool="read", outcome="ok")
        write_error = cap.metric("kit_tool_calls_total", tool="write", outcome="error")
        write_ok = cap.metric("kit_tool_calls_total", tool="write", outcome="ok")
    assert run.end_event is not None
    assert run.end_event.tool_call_count == 3
    assert run.end_event.tool_names == ("read", "write", "read")
    assert [(e.tool_name, e.is_error) for e in results] == [
        ("read", True),
        ("write", True),
        ("read", False),
    ]
    assert (read_error, read_ok, write_error, write_ok) == (1, 1, 1, None)
    assert run.end_event.stop_reason is None  # no LLM call, no error leaving the run
    assert run.end_event.error is None


# --- stop reasons and partial totals ------------------------------------------------------
def test_stop_reason_is_the_last_calls_finish_reason() -> None:
    """Without an error or a budget stop, the run stops for the last call's reason."""
    with capture() as cap:
        tel = cap.telemetry
        with tel.session("s") as session, session.run("go") as run:
            for reason in ("tool_use", "tool_use", "max_tokens"):
                with run.turn() as turn, turn.llm_call(PROVIDER, MODEL) as call:
                    call.record_usage(input_tokens=10, output_tokens=5, finish_reason=reason)
        runs = cap.metric("kit_agent_runs_total", agent="agent", stop_reason="max_tokens")
    assert run.end_event is not None
    assert run.end_event.stop_reason == "max_tokens"
    assert runs == 1


def test_a_run_that_raises_delivers_partial_totals_with_stop_reason_error() -> None:
    """The end event of a failed run still holds everything done before the failure."""
    with capture() as cap:
        tel = cap.telemetry
        with (
            pytest.raises(ValueError, match="bad plan"),
            tel.session("s") as session,
            session.run("go", agent_name="coder") as run,
        ):
            with run.turn() as turn:
                with turn.llm_call(PROVIDER, MODEL) as call:
                    call.record_usage(input_tokens=300, output_tokens=40, finish_reason="tool_use")
                with turn.tool_call("bash") as tool:
                    tool.set_result("ok")
            with run.turn() as turn:
                with turn.llm_call(PROVIDER, MODEL) as call:
                    call.record_usage(input_tokens=500, output_tokens=60, finish_reason="tool_use")
                raise ValueError("bad plan")
        delivered = cap.events_of(kt.EventType.AGENT_END)
        runs = cap.metric("kit_agent_runs_total", agent="coder", stop_reason="error")
    end = run.end_event
    assert end is not None
    assert end.stop_reason == "error"
    assert end.error == "ValueError: bad plan"
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (2, 800, 100)
    assert (end.tool_names, end.turn_count) == (("bash",), 2)
    assert delivered == [end]
    assert runs == 1
    assert session.end_event is not None and session.end_event.llm_call_count == 2


async def test_cancelling_the_task_of_a_run_stops_it_as_cancelled_with_partial_totals() -> None:
    """asyncio cancellation inside an LLM call ends the call and the run as cancelled."""
    with capture() as cap:
        tel = cap.telemetry
        in_second_call = asyncio.Event()
        holder: dict[str, kt.Run] = {}

        async def agent() -> None:
            async with tel.session("s") as session, session.run("go", agent_name="slow") as run:
                holder["run"] = run
                async with run.turn() as turn:
                    async with turn.llm_call(PROVIDER, MODEL) as call:
                        call.record_usage(
                            input_tokens=1000, output_tokens=100, finish_reason="tool_use"
                        )
                    async with turn.tool_call("search") as tool:
                        tool.set_result("3 hits")
                async with run.turn() as turn, turn.llm_call(PROVIDER, MODEL):
                    in_second_call.set()
                    await asyncio.sleep(30)  # the model "thinks"; the task is cancelled here

        task = asyncio.create_task(agent())
        await asyncio.wait_for(in_second_call.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        cancelled_calls = cap.metric(
            "kit_llm_calls_total", provider=PROVIDER, model=MODEL, outcome="cancelled"
        )
        ok_calls = cap.metric("kit_llm_calls_total", provider=PROVIDER, model=MODEL, outcome="ok")
        runs = cap.metric("kit_agent_runs_total", agent="slow", stop_reason="cancelled")
        run_span = cap.span("invoke_agent slow")
    end = holder["run"].end_event
    assert end is not None
    assert end.stop_reason == "cancelled"
    assert end.error is not None and end.error.startswith("CancelledError")
    # The cancelled call was admitted and reached the model: it counts, without usage.
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (2, 1000, 100)
    assert end.unpriced_call_count == 1
    assert end.tool_names == ("search",)
    assert (cancelled_calls, ok_calls, runs) == (1, 1, 1)
    assert run_span.attributes[sc.KIT_RUN_STOP_REASON] == "cancelled"


# --- counting each call once --------------------------------------------------------------
def _chat_attributes(model: str, session_id: str, provider: str = "openai") -> dict[str, Any]:
    return {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: provider,
        sc.GEN_AI_REQUEST_MODEL: model,
        sc.GEN_AI_CONVERSATION_ID: session_id,
    }


def _usage_attributes(total_input: int, output: int, cache_read: int = 0) -> dict[str, Any]:
    return {
        sc.GEN_AI_USAGE_INPUT_TOKENS: total_input,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: output,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: cache_read,
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
    }


def test_usage_on_our_own_chat_span_is_counted_once() -> None:
    """Our chat span carries usage twice (payload and attributes) but counts once."""
    with capture() as cap:
        tel = cap.telemetry
        with (
            tel.session("s") as session,
            session.run("go") as run,
            run.turn() as turn,
            turn.llm_call(PROVIDER, MODEL) as call,
        ):
            call.record_usage(input_tokens=700, cache_read_tokens=300, output_tokens=50)
        chat = cap.span(f"chat {MODEL}")
        tokens = cap.metric(
            "kit_llm_tokens_total", provider=PROVIDER, model=MODEL, token_type="input"
        )
        calls = cap.metric("kit_llm_calls_total", provider=PROVIDER, model=MODEL, outcome="ok")
        usage_events = cap.events_of(kt.EventType.LLM_USAGE)
    assert chat.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 1000
    assert run.end_event is not None
    assert (run.end_event.llm_call_count, run.end_event.input_tokens) == (1, 700)
    assert run.end_event.cache_read_tokens == 300
    assert (tokens, calls, len(usage_events)) == (700, 1, 1)


def test_foreign_wrapper_chat_span_repeating_its_childs_usage_is_not_counted_twice() -> None:
    """A framework's chat span around the client library's chat span: one call, once."""
    with capture() as cap:
        tel = cap.telemetry
        tracer = tel.tracer_provider.get_tracer("some.agent.framework")
        with tel.session("s") as session, session.run("go") as run, run.turn():
            attributes = _chat_attributes("gpt-4o", "s")
            with tracer.start_as_current_span(
                "chat gpt-4o", kind=SpanKind.CLIENT, attributes=attributes
            ) as outer:
                with tracer.start_as_current_span(
                    "chat gpt-4o", kind=SpanKind.CLIENT, attributes=attributes
                ) as inner:
                    inner.set_attributes(_usage_attributes(1200, 80, cache_read=1000))
                outer.set_attributes(_usage_attributes(1200, 80, cache_read=1000))
        calls = cap.metric("kit_llm_calls_total", provider="openai", model="gpt-4o", outcome="ok")
        input_tokens = cap.metric(
            "kit_llm_tokens_total", provider="openai", model="gpt-4o", token_type="input"
        )
        usage_events = cap.events_of(kt.EventType.LLM_USAGE)
    price = cap.telemetry.prices.find_price("openai", "gpt-4o")
    assert price is not None and price.cache_read_per_mtok is not None
    end = run.end_event
    assert end is not None
    assert end.llm_call_count == 1
    assert (end.input_tokens, end.cache_read_tokens, end.output_tokens) == (200, 1000, 80)
    assert end.turn_count == 1  # inside our turn: no extra turn for foreign calls
    expected_cost = (
        200 * price.input_per_mtok + 1000 * price.cache_read_per_mtok + 80 * price.output_per_mtok
    ) / 1e6
    assert end.cost_usd == pytest.approx(expected_cost, rel=1e-12)
    assert (calls, input_tokens, len(usage_events)) == (1, 200, 1)


def test_foreign_wrapper_keeps_its_usage_when_the_inner_chat_span_has_none() -> None:
    """An inner chat span without usage (a streamed call) must not swallow the wrapper's."""
    with capture() as cap:
        tel = cap.telemetry
        tracer = tel.tracer_provider.get_tracer("some.agent.framework")
        with tel.session("s") as session, session.run("go") as run, run.turn():
            attributes = _chat_attributes("gpt-4o", "s")
            with tracer.start_as_current_span(
                "chat gpt-4o", kind=SpanKind.CLIENT, attributes=attributes
            ) as outer:
                with tracer.start_as_current_span(
                    "chat gpt-4o", kind=SpanKind.CLIENT, attributes=attributes
                ):
                    pass  # the client library saw a stream and no usage
                outer.set_attributes(_usage_attributes(900, 60))
    end = run.end_event
    assert end is not None
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (1, 900, 60)
    assert end.unpriced_call_count == 0


def test_foreign_agent_spans_are_aggregated_one_turn_per_llm_call() -> None:
    """A run made only of another instrumentation's spans gets totals, events and kit.run.*."""
    with capture() as cap:
        tel = cap.telemetry
        tracer = tel.tracer_provider.get_tracer("some.agent.framework")
        with tracer.start_as_current_span(
            "invoke_agent planner",
            attributes={
                sc.GEN_AI_OPERATION_NAME: "invoke_agent",
                sc.GEN_AI_AGENT_NAME: "planner",
                sc.GEN_AI_CONVERSATION_ID: "foreign-session",
            },
        ):
            for total_input, output in ((100, 10), (250, 20)):
                with tracer.start_as_current_span(
                    "chat gpt-4o",
                    kind=SpanKind.CLIENT,
                    attributes=_chat_attributes("gpt-4o", "foreign-session"),
                ) as chat:
                    chat.set_attributes(_usage_attributes(total_input, output))
                with tracer.start_as_current_span(
                    "execute_tool lookup",
                    attributes={
                        sc.GEN_AI_OPERATION_NAME: "execute_tool",
                        sc.GEN_AI_TOOL_NAME: "lookup",
                        sc.GEN_AI_CONVERSATION_ID: "foreign-session",
                    },
                ) as tool:
                    if output == 20:
                        tool.set_status(Status(StatusCode.ERROR, "timeout"))
        ends = cap.events_of(kt.EventType.AGENT_END)
        span = cap.span("invoke_agent planner")
        errors = cap.metric("kit_tool_calls_total", tool="lookup", outcome="error")
    assert len(ends) == 1
    end = ends[0]
    assert end.agent_name == "planner" and end.session_id == "foreign-session"
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (2, 350, 30)
    assert end.turn_count == 2
    assert end.tool_names == ("lookup", "lookup")
    assert end.stop_reason == "stop"
    assert errors == 1
    # Another library's span is its own: the totals go to the event and the metrics only.
    assert span.attributes is not None
    assert not [key for key in span.attributes if key.startswith(sc.KIT_RUN_PREFIX)]


def test_llm_call_without_usage_counts_with_zero_tokens_as_unpriced() -> None:
    """A call that reported no usage still counts, and is left out of the cost."""
    with capture() as cap:
        tel = cap.telemetry
        with tel.session("s") as session, session.run("go") as run, run.turn() as turn:
            with turn.llm_call(PROVIDER, MODEL) as call:
                call.record_usage(input_tokens=1000, output_tokens=100)
            with turn.llm_call(PROVIDER, MODEL):
                pass
        unpriced = cap.metric("kit_llm_unpriced_calls_total", provider=PROVIDER, model=MODEL)
    price = cap.telemetry.prices.find_price(PROVIDER, MODEL)
    assert price is not None
    end = run.end_event
    assert end is not None
    assert (end.llm_call_count, end.unpriced_call_count) == (2, 1)
    assert (end.input_tokens, end.output_tokens) == (1000, 100)
    assert end.cost_usd == pytest.approx(
        (1000 * price.input_per_mtok + 100 * price.output_per_mtok) / 1e6, rel=1e-12
    )
    assert unpriced == 1


def test_run_span_kit_run_attributes_equal_the_end_event() -> None:
    """The exported run span carries the same totals the handlers got."""
    with capture() as cap:
        tel = cap.telemetry
        with tel.session("s") as session, session.run("go", agent_name="coder") as run:
            with run.turn() as turn:
                with turn.llm_call(PROVIDER, MODEL) as call:
                    call.record_usage(
                        input_tokens=10,
                        output_tokens=20,
                        cache_read_tokens=30,
                        cache_write_tokens=40,
                        reasoning_tokens=5,
                        finish_reason="tool_use",
                    )
                for name in ("a", "b", "a"):
                    with turn.tool_call(name):
                        pass
            with run.llm_call("acme", "unknown-model-x") as call:
                call.record_usage(input_tokens=1, output_tokens=2, finish_reason="end_turn")
        span = cap.span("invoke_agent coder")
        session_span = cap.span(sc.SPAN_SESSION_END)
    end = run.end_event
    assert end is not None
    for field in sc.TOTAL_FIELDS:
        assert span.attributes[sc.KIT_RUN_PREFIX + field] == getattr(end, field), field
    assert span.attributes[sc.KIT_RUN_ID] == end.run_id == run.run_id
    assert span.attributes[sc.KIT_RUN_PREFIX + "tool_names"] == ("a", "b", "a")
    assert (end.turn_count, end.unpriced_call_count) == (2, 1)
    session_end = session.end_event
    assert session_end is not None
    for field in sc.TOTAL_FIELDS:
        if field != "duration_ms":
            value = session_span.attributes[sc.KIT_SESSION_PREFIX + field]
            assert value == getattr(session_end, field), field
    assert session_span.attributes[sc.KIT_SESSION_RUN_COUNT] == 1


# --- pricing ------------------------------------------------------------------------------
def test_cached_and_reasoning_tokens_are_priced_at_the_tables_rates() -> None:
    """Each disjoint kind at its own rate; reasoning tokens are billed inside output."""
    usage = {
        "input_tokens": 1200,
        "output_tokens": 800,
        "cache_read_tokens": 40_000,
        "cache_write_tokens": 5_000,
        "reasoning_tokens": 300,
    }
    with capture() as cap:
        tel = cap.telemetry
        price = tel.prices.find_price(PROVIDER, MODEL)
        assert price is not None
        assert price.cache_read_per_mtok is not None and price.cache_write_per_mtok is not None
        # The rates differ, so a kind billed at the wrong rate would show.
        assert (
            len({price.input_per_mtok, price.cache_read_per_mtok, price.cache_write_per_mtok}) == 3
        )
        with (
            tel.session("s") as session,
            session.run("go") as run,
            run.turn() as turn,
            turn.llm_call(PROVIDER, MODEL) as call,
        ):
            call.record_usage(**usage, finish_reason="end_turn")
        event = cap.events_of(kt.EventType.LLM_USAGE)[0]
        metric_cost = cap.metric("kit_llm_cost_usd_total", provider=PROVIDER, model=MODEL)
        reasoning = cap.metric("kit_llm_reasoning_tokens_total", provider=PROVIDER, model=MODEL)
    expected = (
        1200 * price.input_per_mtok
        + 800 * price.output_per_mtok
        + 40_000 * price.cache_read_per_mtok
        + 5_000 * price.cache_write_per_mtok
    ) / 1e6
    assert event.cost_usd == pytest.approx(expected, rel=1e-12)
    assert call.cost_usd == pytest.approx(expected, rel=1e-12)
    assert run.end_event is not None and run.end_event.cost_usd == pytest.approx(expected)
    assert metric_cost == pytest.approx(expected, rel=1e-12)
    assert reasoning == 300
    assert event.reasoning_tokens == 300 and event.output_tokens == 800


def test_openai_fixture_with_cached_and_reasoning_tokens_is_priced_from_the_table() -> None:
    """A real o4-mini response: cached tokens at the cache rate, reasoning inside output."""
    fixture = Path(__file__).parent / "fixtures" / "usage" / "openai_chat_cached_reasoning.json"
    body = json.loads(fixture.read_text())
    with capture() as cap:
        tel = cap.telemetry
        price = tel.prices.find_price("openai", "o4-mini")
        assert price is not None and price.cache_read_per_mtok is not None
        with (
            tel.session("s") as session,
            session.run("go") as run,
            run.turn() as turn,
            turn.llm_call("openai", "o4-mini") as call,
        ):
            call.record_usage(**kt.usage.from_openai(body))
    end = run.end_event
    assert end is not None
    # prompt_tokens 5309 includes 4992 cached ones; completion 1474 includes 1408 reasoning.
    assert (end.input_tokens, end.cache_read_tokens, end.cache_write_tokens) == (317, 4992, 0)
    assert (end.output_tokens, end.reasoning_tokens) == (1474, 1408)
    expected = (
        317 * price.input_per_mtok + 4992 * price.cache_read_per_mtok + 1474 * price.output_per_mtok
    ) / 1e6
    assert end.cost_usd == pytest.approx(expected, rel=1e-12)
    assert end.stop_reason == "tool_calls"


def test_cache_writes_without_a_cache_write_rate_are_billed_as_input() -> None:
    """A model whose table has no cache-write rate bills those tokens at the input rate."""
    with capture() as cap:
        tel = cap.telemetry
        price = tel.prices.find_price("openai", "gpt-4o")
        assert price is not None and price.cache_write_per_mtok is None
        assert price.cache_read_per_mtok is not None
        with (
            tel.session("s") as session,
            session.run("go") as run,
            run.turn() as turn,
            turn.llm_call("openai", "gpt-4o") as call,
        ):
            call.record_usage(
                input_tokens=100,
                cache_read_tokens=200,
                cache_write_tokens=300,
                output_tokens=10,
            )
    expected = (
        (100 + 300) * price.input_per_mtok
        + 200 * price.cache_read_per_mtok
        + 10 * price.output_per_mtok
    ) / 1e6
    assert run.end_event is not None
    assert run.end_event.cost_usd == pytest.approx(expected, rel=1e-12)


def test_unknown_model_has_no_cost_and_is_counted_as_unpriced() -> None:
    """Never a silent 0: cost None on the event, unpriced in totals and in the metric."""
    with capture() as cap:
        tel = cap.telemetry
        with tel.session("s") as session, session.run("go") as run, run.turn() as turn:
            with turn.llm_call("acme", "acme-ultra-9000") as call:
                call.record_usage(input_tokens=500, output_tokens=50)
            with turn.llm_call(PROVIDER, MODEL) as call:
                call.record_usage(input_tokens=500, output_tokens=50)
        events = cap.events_of(kt.EventType.LLM_USAGE)
        unpriced = cap.metric(
            "kit_llm_unpriced_calls_total", provider="acme", model="acme-ultra-9000"
        )
        cost = cap.metric("kit_llm_cost_usd_total", provider="acme", model="acme-ultra-9000")
        tokens = cap.metric(
            "kit_llm_tokens_total", provider="acme", model="acme-ultra-9000", token_type="input"
        )
    price = cap.telemetry.prices.find_price(PROVIDER, MODEL)
    assert price is not None
    assert events[0].cost_usd is None
    assert isinstance(events[1].cost_usd, float)
    end = run.end_event
    assert end is not None
    assert (end.llm_call_count, end.unpriced_call_count, end.input_tokens) == (2, 1, 1000)
    assert end.cost_usd == pytest.approx(
        (500 * price.input_per_mtok + 50 * price.output_per_mtok) / 1e6, rel=1e-12
    )
    assert unpriced == 1
    assert not cost  # absent or zero, never a made-up figure
    assert tokens == 500


def test_caller_given_cost_wins_over_the_table() -> None:
    """cost_usd passed to record_usage is what is counted, for a known model too."""
    with capture() as cap:
        tel = cap.telemetry
        with tel.session("s") as session, session.run("go") as run, run.turn() as turn:
            with turn.llm_call(PROVIDER, MODEL) as call:
                call.record_usage(input_tokens=1_000_000, output_tokens=0, cost_usd=0.125)
            with turn.llm_call("acme", "acme-ultra-9000") as call:
                call.record_usage(input_tokens=10, output_tokens=1, cost_usd=0.5)
        metric = cap.metric("kit_llm_cost_usd_total", provider=PROVIDER, model=MODEL)
        unpriced = cap.metric(
            "kit_llm_unpriced_calls_total", provider="acme", model="acme-ultra-9000"
        )
    end = run.end_event
    assert end is not None
    assert end.cost_usd == pytest.approx(0.625)
    assert end.unpriced_call_count == 0
    assert metric == pytest.approx(0.125)
    assert not unpriced


def test_subscription_session_costs_zero_with_tokens_counted() -> None:
    """Subscription billing: cost 0.0 (not None), every token still counted, foreign spans too."""
    with capture() as cap:
        tel = cap.telemetry
        tracer = tel.tracer_provider.get_tracer("some.agent.framework")
        with tel.session("sub", subscription=True) as session, session.run("go") as run:
            with run.turn() as turn, turn.llm_call(PROVIDER, MODEL) as call:
                call.record_usage(input_tokens=2000, cache_read_tokens=3000, output_tokens=400)
            with tracer.start_as_current_span(
                "chat claude",
                kind=SpanKind.CLIENT,
                attributes=_chat_attributes(MODEL, "sub", PROVIDER),
            ) as chat:
                chat.set_attributes(_usage_attributes(1000, 100))
        events = cap.events_of(kt.EventType.LLM_USAGE)
        tokens = cap.metric(
            "kit_llm_tokens_total", provider=PROVIDER, model=MODEL, token_type="input"
        )
        cost = cap.metric("kit_llm_cost_usd_total", provider=PROVIDER, model=MODEL)
    assert [e.cost_usd for e in events] == [0.0, 0.0]
    end = run.end_event
    assert end is not None
    assert (end.llm_call_count, end.input_tokens, end.cache_read_tokens) == (2, 3000, 3000)
    assert (end.cost_usd, end.unpriced_call_count) == (0.0, 0)
    assert tokens == 3000
    assert cost == 0.0


# --- bounded memory -------------------------------------------------------------------------
def test_finished_runs_and_sessions_are_forgotten() -> None:
    """After many sessions end, nothing of them is kept: no live spans, no payloads."""
    with capture() as cap:
        tel = cap.telemetry
        tracer = tel.tracer_provider.get_tracer("some.agent.framework")
        baseline = tel.aggregator.open_span_count()
        # PAYLOADS is per process; compare with what earlier tests may have left behind.
        payloads_before = len(PAYLOADS)
        for s in range(150):
            with tel.session(f"mem-{s}") as session:
                for r in range(2):
                    try:
                        with session.run("go") as run:
                            with run.turn() as turn:
                                with turn.llm_call(PROVIDER, MODEL) as call:
                                    call.record_usage(input_tokens=10, output_tokens=1)
                                with turn.tool_call("t") as tool:
                                    tool.set_result("x")
                            with tracer.start_as_current_span(
                                "chat gpt-4o",
                                kind=SpanKind.CLIENT,
                                attributes=_chat_attributes("gpt-4o", f"mem-{s}"),
                            ) as chat:
                                chat.set_attributes(_usage_attributes(10, 1))
                            with run.llm_call(PROVIDER, MODEL):
                                pass
                            if r == 1:
                                raise RuntimeError("boom")
                    except RuntimeError:
                        pass
            assert session.end_event is not None and session.end_event.run_count == 2
        live = tel.aggregator.open_span_count()
        payloads = len(PAYLOADS)
        runs = cap.metric("kit_agent_runs_total", agent="agent", stop_reason="error")
    assert baseline == 0
    assert live == 0
    assert payloads == payloads_before
    assert runs == 150


def test_sessions_known_only_from_foreign_spans_are_capped() -> None:
    """Foreign sessions never end; the aggregator keeps only the most recent ones."""
    from kit_telemetry.aggregation import MAX_OPEN_SESSIONS

    with capture() as cap:
        tel = cap.telemetry
        tracer = tel.tracer_provider.get_tracer("some.agent.framework")
        for s in range(MAX_OPEN_SESSIONS + 50):
            tracer.start_span(
                "invoke_agent x",
                attributes={
                    sc.GEN_AI_OPERATION_NAME: "invoke_agent",
                    sc.GEN_AI_CONVERSATION_ID: f"foreign-{s}",
                },
            ).end()
        live = tel.aggregator.open_span_count()
        newest = tel.aggregator.session_usage(f"foreign-{MAX_OPEN_SESSIONS + 49}")
        oldest = tel.aggregator.session_usage("foreign-0")
    assert live == MAX_OPEN_SESSIONS
    assert newest.run_count == 1
    assert oldest.run_count == 0


RAISING_HANDLER = """
import kit_telemetry as kt

def setup(api):
    @api.on(kt.EventType.LLM_USAGE)
    def explode(event, ctx):
        raise RuntimeError("handler failed")
"""


def test_a_handler_error_raised_in_strict_mode_leaves_no_payload_behind(tmp_path: Path) -> None:
    """strict=True re-raises out of span.end(); the span's payload must still be released."""
    (tmp_path / "raising_handler.py").write_text(RAISING_HANDLER)
    before = len(PAYLOADS)
    with capture() as cap:  # strict
        tel = cap.telemetry
        tel.load_extension(tmp_path / "raising_handler.py")
        with (
            pytest.raises(RuntimeError, match="handler failed"),
            tel.session("s") as session,
            session.run("go") as run,
            run.turn() as turn,
            turn.llm_call(PROVIDER, MODEL) as call,
        ):
            call.record_usage(input_tokens=10, output_tokens=1)
        live = tel.aggregator.open_span_count()
    assert run.end_event is not None and run.end_event.llm_call_count == 1
    assert live == 0
    assert len(PAYLOADS) == before
