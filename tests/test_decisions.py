"""Handlers that decide: block a tool or LLM call, replace a result, transform or consume the
prompt, stop a run; on sync and async agents, with sync and async handlers, with extensions
that disagree, raise, time out or fail closed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

import kit_telemetry as kt
from kit_telemetry.testing import Capture, capture

ERRORS = "kit_extension_handler_errors_total"
Setup = Callable[[kt.ExtensionAPI], None]


@contextmanager
def policy(
    *setups: tuple[str, Setup], fail_closed: tuple[str, ...] = (), **options: Any
) -> Iterator[Capture]:
    """A lenient capture with the given extensions loaded in order."""
    options.setdefault("strict", False)
    options.setdefault("handler_timeout_s", 0.3)
    with capture(**options) as cap:
        for name, setup in setups:
            cap.telemetry.extension_processor.load_setup(
                name, setup, fail_closed=name in fail_closed
            )
        yield cap


def on(event: str, handler: Callable[..., Any]) -> Setup:
    def setup(api: kt.ExtensionAPI) -> None:
        api.on(event, handler)

    return setup


def block_rm(event: kt.ToolCallEvent, ctx: kt.ExtensionContext) -> kt.Block | None:
    if "rm -rf" in str((event.arguments or {}).get("cmd", "")):
        return kt.Block("destructive command")
    return None


async def async_block_rm(event: kt.ToolCallEvent, ctx: kt.ExtensionContext) -> kt.Block | None:
    await asyncio.sleep(0.01)
    return block_rm(event, ctx)


def ran_body(turn: kt.Turn, cmd: str) -> bool:
    with turn.tool_call("bash", call_id="c-1", arguments={"cmd": cmd}) as tool:
        tool.set_result("done")
        return True


# --- tool_call -> Block ----------------------------------------------------------------------
@pytest.mark.parametrize("handler", [block_rm, async_block_rm], ids=["sync", "async"])
def test_a_blocked_tool_call_raises_before_its_body_and_is_recorded_as_failed(
    handler: Callable[..., Any],
) -> None:
    """The reason for intervention: a handler's Block must keep `rm -rf` from running."""
    with policy(("guard", on("tool_call", handler))) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run:
            with run.turn() as turn:
                with pytest.raises(kt.Blocked) as info:
                    ran_body(turn, "rm -rf /")
                assert ran_body(turn, "ls")
        span = next(s for s in cap.spans() if s.name == "execute_tool bash")
        results = cap.events_of(kt.EventType.TOOL_RESULT)
        tool_errors = cap.metric("kit_tool_calls_total", tool="bash", outcome="error")
    blocked = info.value
    assert (blocked.kind, blocked.reason, blocked.extension, blocked.name) == (
        "tool_call",
        "destructive command",
        "guard",
        "bash",
    )
    assert span.attributes is not None
    assert span.attributes["kit.tool.outcome"] == "blocked"
    assert span.attributes["kit.blocked.extension"] == "guard"
    assert span.status.status_code is StatusCode.ERROR
    assert [r.is_error for r in results] == [True, False]
    assert tool_errors == 1
    assert run.end_event is not None and run.end_event.tool_call_count == 2


def test_a_blocked_tool_call_on_an_async_agent_raises_in_async_with() -> None:
    """Async agents enter the same decision point through ``async with``."""

    async def agent(tel: kt.Telemetry) -> list[str]:
        ran = []
        async with tel.session("s") as session, session.run("go") as run, run.turn() as turn:
            for cmd in ("rm -rf /", "ls"):
                try:
                    async with turn.tool_call("bash", arguments={"cmd": cmd}) as tool:
                        ran.append(cmd)
                        tool.set_result("ok")
                except kt.Blocked as exc:
                    ran.append(f"blocked: {exc.reason}")
        return ran

    with policy(("guard", on("tool_call", async_block_rm))) as cap:
        ran = asyncio.run(agent(cap.telemetry))
    assert ran == ["blocked: destructive command", "ls"]


def test_without_an_opinion_every_call_goes_ahead() -> None:
    """None, and values a decision point does not honour, change nothing."""
    with policy(
        ("quiet", on("tool_call", lambda e, ctx: None)),
        ("confused", on("tool_call", lambda e, ctx: kt.Stop("not honoured here"))),
        ("chatty", on("tool_call", lambda e, ctx: "block please")),
    ) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            assert ran_body(turn, "rm -rf /")


# --- order and disagreement ------------------------------------------------------------------
def test_the_first_block_wins_and_later_handlers_only_observe() -> None:
    """Extensions are asked in load order; a Block ends the chain but not the observation."""
    seen: list[str] = []

    def allow(event: kt.ToolCallEvent, ctx: kt.ExtensionContext) -> None:
        seen.append("allow")

    def first(event: kt.ToolCallEvent, ctx: kt.ExtensionContext) -> kt.Block:
        seen.append("first")
        return kt.Block("first says no")

    def second(event: kt.ToolCallEvent, ctx: kt.ExtensionContext) -> kt.Block:
        seen.append("second")
        return kt.Block("second says no")

    with policy(
        ("allow", on("tool_call", allow)),
        ("first", on("tool_call", first)),
        ("second", on("tool_call", second)),
    ) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            with pytest.raises(kt.Blocked) as info:
                ran_body(turn, "ls")
    assert (info.value.extension, info.value.reason) == ("first", "first says no")
    assert seen == ["allow", "first", "second"]


# --- failures: raise, time out, fail closed --------------------------------------------------
def boom(event: Any, ctx: kt.ExtensionContext) -> None:
    raise RuntimeError("policy service down")


async def hang(event: Any, ctx: kt.ExtensionContext) -> None:
    await asyncio.sleep(30)


@pytest.mark.parametrize("handler", [boom, hang], ids=["raises", "times_out"])
def test_a_failing_handler_is_counted_and_has_no_opinion(handler: Callable[..., Any]) -> None:
    """A broken policy must not break the agent: the call goes ahead, the failure is counted."""
    with policy(("broken", on("tool_call", handler)), ("guard", on("tool_call", block_rm))) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            assert ran_body(turn, "ls")
            with pytest.raises(kt.Blocked) as info:  # the next extension still decides
                ran_body(turn, "rm -rf /")
        errors = cap.metric(ERRORS, extension="broken", event="tool_call")
    assert info.value.extension == "guard"
    assert errors == 2


@pytest.mark.parametrize("handler", [boom, hang], ids=["raises", "times_out"])
def test_a_failing_fail_closed_handler_blocks(handler: Callable[..., Any]) -> None:
    """A fail_closed extension's failure counts as a Block, with the error as the reason."""
    with policy(("strict_policy", on("tool_call", handler)), fail_closed=("strict_policy",)) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            start = time.monotonic()
            with pytest.raises(kt.Blocked) as info:
                ran_body(turn, "ls")
            waited = time.monotonic() - start
        errors = cap.metric(ERRORS, extension="strict_policy", event="tool_call")
    assert info.value.extension == "strict_policy"
    assert info.value.reason.startswith("extension failed: ")
    assert errors == 1
    assert waited < 10  # bounded by handler_timeout_s, not by the handler's 30 s


def test_fail_closed_from_the_module_attribute_and_from_configure(tmp_path: Path) -> None:
    """``FAIL_CLOSED = True`` in the module, or ``fail_closed_extensions``, set the mode."""
    source = "import kit_telemetry as kt\n{flag}\ndef setup(api):\n    api.on('tool_call', lambda e, ctx: 1 / 0)\n"
    flagged = tmp_path / "flagged.py"
    flagged.write_text(source.format(flag="FAIL_CLOSED = True"))
    listed = tmp_path / "listed.py"
    listed.write_text(source.format(flag=""))
    for extensions, closed in (([str(flagged)], []), ([], [str(listed)])):
        with capture(strict=False, extensions=extensions, fail_closed_extensions=closed) as cap:
            with (
                cap.telemetry.session("s") as session,
                session.run("go") as run,
                run.turn() as turn,
            ):
                with pytest.raises(kt.Blocked, match="ZeroDivisionError"):
                    ran_body(turn, "ls")


# --- tool_result -> Replace / Stop -----------------------------------------------------------
def redact(event: kt.ToolResultEvent, ctx: kt.ExtensionContext) -> kt.Replace:
    return kt.Replace(content=str(event.result).replace("sk-123", "[redacted]"))


async def flag_errors(event: kt.ToolResultEvent, ctx: kt.ExtensionContext) -> kt.Replace | None:
    if "Traceback" in str(event.result):
        return kt.Replace(is_error=True, content=f"{event.result} (seen by {ctx.extension})")
    return None


def test_replacements_apply_in_turn_and_reach_the_agent_the_span_and_the_event() -> None:
    """Each handler sees the result so far; the agent passes on the final one."""
    later: list[kt.ToolResultEvent] = []
    with policy(
        ("redact", on("tool_result", redact)),
        ("errors", on("tool_result", flag_errors)),
        ("audit", on("tool_result", lambda e, ctx: later.append(e))),
        capture_content=True,
    ) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            with turn.tool_call("bash", call_id="c-1") as tool:
                tool.set_result("Traceback: key sk-123")
                final = (tool.result, tool.is_error)
        span = cap.span("execute_tool bash")
        (first,) = cap.events_of(kt.EventType.TOOL_RESULT)  # loaded before them all
        tool_errors = cap.metric("kit_tool_calls_total", tool="bash", outcome="error")
    assert final == ("Traceback: key [redacted] (seen by errors)", True)
    assert (first.result, first.is_error) == ("Traceback: key sk-123", False)
    assert [(e.result, e.is_error) for e in later] == [final]
    assert tool_errors == 1
    assert span.attributes is not None
    assert span.attributes["gen_ai.tool.call.result"] == final[0]
    assert span.attributes["kit.tool.is_error"] is True


def test_replaced_content_stays_off_spans_without_content_capture() -> None:
    """Redacted or not, tool results reach spans only under content capture."""
    with policy(("redact", on("tool_result", redact))) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            with turn.tool_call("bash") as tool:
                tool.set_result("sk-123")
        span = cap.span("execute_tool bash")
    assert tool.result == "[redacted]"
    assert span.attributes is not None and "gen_ai.tool.call.result" not in span.attributes


def test_tool_result_handlers_are_asked_once_per_result() -> None:
    """Asked at set_result; the span's end does not ask again."""
    calls: list[str] = []
    with policy(("count", on("tool_result", lambda e, ctx: calls.append(e.result)))) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            with turn.tool_call("bash") as tool:
                tool.set_result("ok")
            with pytest.raises(ValueError), turn.tool_call("bash"):
                raise ValueError("tool crashed")  # no set_result: delivered at the end
    assert calls == ["ok", None]


# --- user_input -> Transform / Handled -------------------------------------------------------
def test_transforms_apply_in_turn_and_handled_ends_the_chain() -> None:
    """run.prompt is the transformed prompt; run.handled tells the agent not to call the model."""

    def expand(event: kt.UserInputEvent, ctx: kt.ExtensionContext) -> kt.Transform | None:
        text = event.text or ""
        return (
            kt.Transform(text.replace("/fix", "Fix the failing test")) if "/fix" in text else None
        )

    async def shout(event: kt.UserInputEvent, ctx: kt.ExtensionContext) -> kt.Transform:
        return kt.Transform((event.text or "") + "!")

    def local(event: kt.UserInputEvent, ctx: kt.ExtensionContext) -> kt.Handled | None:
        return kt.Handled("answered locally") if event.text == "/help!" else None

    with policy(
        ("expand", on("user_input", expand)),
        ("shout", on("user_input", shout)),
        ("local", on("user_input", local)),
        capture_content=True,
    ) as cap:
        with cap.telemetry.session("s") as session:
            with session.run("/fix now") as run:
                transformed = (run.prompt, run.handled)
            with session.run("/help") as run:
                handled = (run.handled, run.handled_reason)
        span = next(s for s in cap.spans() if s.name.startswith("invoke_agent"))
    assert transformed == ("Fix the failing test now!", False)
    assert handled == (True, "answered locally")
    # The span shows the prompt the model is given, in the GenAI message shape.
    assert json.loads(str((span.attributes or {})["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": "Fix the failing test now!"}]}
    ]


# --- llm_request -> Block --------------------------------------------------------------------
def test_a_blocked_llm_call_raises_before_the_model_and_releases_its_reservation() -> None:
    """After budget admission, before the model: the reservation must not leak."""
    requests: list[kt.LLMRequestEvent] = []

    def cap_tokens(event: kt.LLMRequestEvent, ctx: kt.ExtensionContext) -> kt.Block | None:
        requests.append(event)
        if (event.max_tokens or 0) > 1000:
            return kt.Block("max_tokens over 1000")
        return None

    budget = kt.Budget(name="daily", limit_usd=10.0)
    with policy(("limits", on("llm_request", cap_tokens)), budgets=[budget]) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            with pytest.raises(kt.Blocked) as info:
                with turn.llm_call("openai", "gpt-4o", max_tokens=4000):
                    pytest.fail("the model was called")
            with turn.llm_call(
                "openai", "gpt-4o", max_tokens=500, estimated_input_tokens=20
            ) as call:
                call.record_usage(input_tokens=20, output_tokens=5)
        status = cap.telemetry.budget_status()
    assert (info.value.kind, info.value.name, info.value.extension) == (
        "llm_call",
        "gpt-4o",
        "limits",
    )
    assert [(r.provider, r.model, r.max_tokens, r.step) for r in requests] == [
        ("openai", "gpt-4o", 4000, 0),
        ("openai", "gpt-4o", 500, 1),
    ]
    assert requests[1].estimated_input_tokens == 20 and requests[1].run_id == run.run_id
    assert all(s.reserved == 0 for s in status)
    assert run.end_event is not None and run.end_event.llm_call_count == 1


# --- llm_usage / tool_result -> Stop ---------------------------------------------------------
def stop_after_two(event: kt.LLMUsageEvent, ctx: kt.ExtensionContext) -> kt.Stop | None:
    return kt.Stop("two calls are enough") if event.step >= 1 else None


async def async_stop_after_two(event: kt.LLMUsageEvent, ctx: kt.ExtensionContext) -> kt.Stop | None:
    return stop_after_two(event, ctx)


def one_call(turn: kt.Turn) -> None:
    with turn.llm_call("openai", "gpt-4o") as call:
        call.record_usage(input_tokens=10, output_tokens=5, finish_reason="tool_calls")


@pytest.mark.parametrize("handler", [stop_after_two, async_stop_after_two], ids=["sync", "async"])
def test_a_stopped_run_refuses_its_next_llm_and_tool_calls(handler: Callable[..., Any]) -> None:
    """Stop ends the run's spending; its end event says why."""
    with policy(("brake", on("llm_usage", handler))) as cap:
        with cap.telemetry.session("s") as session:
            with session.run("go") as run, run.turn() as turn:
                one_call(turn)
                one_call(turn)
                with pytest.raises(kt.Blocked) as llm_refused:
                    one_call(turn)
                with pytest.raises(kt.Blocked) as tool_refused:
                    ran_body(turn, "ls")
            with session.run("again") as other, other.turn() as turn:
                one_call(turn)  # another run of the session is not stopped
                one_call(turn)
    assert (llm_refused.value.kind, llm_refused.value.reason) == ("run", "two calls are enough")
    assert (tool_refused.value.kind, tool_refused.value.extension) == ("run", "brake")
    end = run.end_event
    assert end is not None
    assert (end.stop_reason, end.error, end.llm_call_count) == (
        "stopped",
        "two calls are enough",
        2,
    )
    assert other.end_event is not None and other.end_event.stop_reason == "stopped"


def test_a_stop_from_tool_result_that_leaves_the_run_says_stopped() -> None:
    """An agent that lets Blocked propagate ends the run with stop_reason "stopped"."""

    def stop_on_secret(event: kt.ToolResultEvent, ctx: kt.ExtensionContext) -> kt.Stop | None:
        return kt.Stop("secret leaked") if "BEGIN PRIVATE KEY" in str(event.result) else None

    with policy(("dlp", on("tool_result", stop_on_secret))) as cap:
        with pytest.raises(kt.Blocked), cap.telemetry.session("s") as session:
            with session.run("go") as run, run.turn() as turn:
                with turn.tool_call("cat") as tool:
                    tool.set_result("-----BEGIN PRIVATE KEY-----")
                one_call(turn)
        runs = cap.metric("kit_agent_runs_total", agent="agent", stop_reason="stopped")
    assert run.end_event is not None and run.end_event.stop_reason == "stopped"
    assert "secret leaked" in (run.end_event.error or "")
    assert runs == 1


def test_stop_on_an_async_agent() -> None:
    """The stop holds across awaits: the async agent's next call is refused."""

    async def agent(tel: kt.Telemetry) -> str:
        async with tel.session("s") as session, session.run("go") as run, run.turn() as turn:
            for _ in range(5):
                try:
                    async with turn.llm_call("openai", "gpt-4o") as call:
                        await asyncio.sleep(0)
                        call.record_usage(input_tokens=10, output_tokens=5)
                except kt.Blocked as exc:
                    return exc.kind
        return "never stopped"

    with policy(("brake", on("llm_usage", async_stop_after_two))) as cap:
        assert asyncio.run(agent(cap.telemetry)) == "run"


# --- every decision on an async agent, and every event failing closed ----------------------------
def test_every_decision_reaches_an_async_agent_from_async_handlers() -> None:
    """Transform, Handled, Block (llm_request) and Replace, decided by ``async def`` handlers."""

    async def transform(event: kt.UserInputEvent, ctx: kt.ExtensionContext) -> Any:
        if event.text == "/quit":
            return kt.Handled("quit")
        return kt.Transform(f"{event.text} (be brief)")

    async def block_big(event: kt.LLMRequestEvent, ctx: kt.ExtensionContext) -> Any:
        return kt.Block("too many tokens") if (event.max_tokens or 0) > 100 else None

    async def redact_async(event: kt.ToolResultEvent, ctx: kt.ExtensionContext) -> Any:
        return redact(event, ctx)

    def setup(api: kt.ExtensionAPI) -> None:
        api.on("user_input", transform)
        api.on("llm_request", block_big)
        api.on("tool_result", redact_async)

    async def agent(tel: kt.Telemetry) -> list[Any]:
        seen: list[Any] = []
        async with tel.session("s") as session:
            async with session.run("/quit") as run:
                seen.append(run.handled)
            async with session.run("fix it") as run, run.turn() as turn:
                seen.append(run.prompt)
                try:
                    async with turn.llm_call("openai", "gpt-4o", max_tokens=1000):
                        seen.append("model called")
                except kt.Blocked as exc:
                    seen.append(exc.kind)
                async with turn.tool_call("env") as tool:
                    tool.set_result("KEY=sk-123")
                    seen.append(tool.result)
        return seen

    with policy(("async_policy", setup)) as cap:
        seen = asyncio.run(agent(cap.telemetry))
    assert seen == [True, "fix it (be brief)", "llm_call", "KEY=[redacted]"]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ("user_input", "handled"),
        ("llm_request", "llm_call"),
        ("tool_call", "tool_call"),
        ("tool_result", "run"),
        ("llm_usage", "run"),
    ],
)
def test_a_fail_closed_failure_takes_the_safe_decision_of_each_event(
    event: str, expected: str
) -> None:
    """Handled for input, Block for calls, Stop after results and usage."""
    with policy(("strict_policy", on(event, boom)), fail_closed=("strict_policy",)) as cap:
        outcome = "went ahead"
        with cap.telemetry.session("s") as session, session.run("go") as run:
            if run.handled:
                outcome = "handled"
            else:
                try:
                    with run.turn() as turn:
                        one_call(turn)
                        ran_body(turn, "ls")
                        one_call(turn)
                except kt.Blocked as exc:
                    outcome = exc.kind
                    assert "extension failed: RuntimeError: policy service down" in exc.reason
    assert outcome == expected
