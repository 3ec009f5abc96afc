"""Async handlers that misbehave (block their loop, swallow cancellation) do not starve the
others; they are abandoned after ``handler_timeout_s`` and counted; shutdown stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import kit_telemetry as kt
from kit_telemetry.testing import capture

ERRORS = "kit_extension_handler_errors_total"


def run_once(tel: kt.Telemetry, session_id: str = "s") -> None:
    with tel.session(session_id) as session, session.run("go") as run, run.turn() as turn:
        with turn.tool_call("ls") as tool:
            tool.set_result("ok")


def healthy(notes: list[str]) -> Any:
    def setup(api: kt.ExtensionAPI) -> None:
        @api.on(kt.EventType.AGENT_END)
        async def done(event: kt.AgentEndEvent, ctx: kt.ExtensionContext) -> None:
            await asyncio.sleep(0)
            notes.append(f"healthy saw {event.type.value}")

    return setup


def test_a_handler_blocking_its_loop_is_abandoned_and_the_others_keep_running() -> None:
    """time.sleep in an async handler stalls only its own extension's loop."""
    notes: list[str] = []
    release = threading.Event()

    def stuck(api: kt.ExtensionAPI) -> None:
        @api.on(kt.EventType.AGENT_START)
        async def block(event: kt.AgentStartEvent, ctx: kt.ExtensionContext) -> None:
            release.wait(20)  # blocks the loop: no await

        @api.on(kt.EventType.AGENT_END)
        async def after(event: kt.AgentEndEvent, ctx: kt.ExtensionContext) -> None:
            notes.append(f"stuck extension saw agent_end of {ctx.session_id}")

    with capture(strict=False, handler_timeout_s=0.2) as cap:
        processor = cap.telemetry.extension_processor
        processor.load_setup("stuck", stuck)
        processor.load_setup("healthy", healthy(notes))
        run_once(cap.telemetry)
        # The abandoned loop's handlers are not waited for: the flush completes.
        flushed = cap.telemetry.force_flush(5000)
        errors = cap.metric(ERRORS, extension="stuck", event="agent_start")
        seen_while_stuck = list(notes)
        release.set()
        run_once(cap.telemetry, "s-2")  # the stuck extension goes on, on a fresh loop
        flushed_again = cap.telemetry.force_flush(5000)
    assert seen_while_stuck == ["healthy saw agent_end"]
    assert errors == 1
    assert flushed is True and flushed_again is True
    assert "stuck extension saw agent_end of s-2" in notes


def test_a_handler_swallowing_cancellation_is_abandoned_and_its_next_handler_runs() -> None:
    """A coroutine that ignores cancel() must not hold the session's queue forever."""
    notes: list[str] = []
    stop = threading.Event()

    def swallow(api: kt.ExtensionAPI) -> None:
        @api.on(kt.EventType.AGENT_START)
        async def stubborn(event: kt.AgentStartEvent, ctx: kt.ExtensionContext) -> None:
            while not stop.is_set():
                with contextlib.suppress(asyncio.CancelledError):  # the misbehaviour under test
                    await asyncio.sleep(0.05)

        @api.on(kt.EventType.AGENT_END)
        async def after(event: kt.AgentEndEvent, ctx: kt.ExtensionContext) -> None:
            notes.append("next handler ran")

    with capture(strict=False, handler_timeout_s=0.2) as cap:
        cap.telemetry.extension_processor.load_setup("swallow", swallow)
        run_once(cap.telemetry)
        flushed = cap.telemetry.force_flush(5000)
        errors = cap.metric(ERRORS, extension="swallow", event="agent_start")
        stop.set()
    assert flushed is True
    assert notes == ["next handler ran"]
    assert errors == 1


def test_a_decision_from_a_loop_blocking_handler_times_out_and_others_still_decide() -> None:
    """The agent waits at most handler_timeout_s; another extension's async Block still counts."""
    release = threading.Event()

    def stuck(api: kt.ExtensionAPI) -> None:
        @api.on(kt.EventType.TOOL_CALL)
        async def block_loop(event: kt.ToolCallEvent, ctx: kt.ExtensionContext) -> None:
            release.wait(20)

    def guard(api: kt.ExtensionAPI) -> None:
        @api.on(kt.EventType.TOOL_CALL)
        async def no_rm(event: kt.ToolCallEvent, ctx: kt.ExtensionContext) -> kt.Block | None:
            return kt.Block("no rm") if event.tool_name == "rm" else None

    with capture(strict=False, handler_timeout_s=0.2) as cap:
        cap.telemetry.extension_processor.load_setup("stuck", stuck)
        cap.telemetry.extension_processor.load_setup("guard", guard)
        outcome = ""
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            try:
                with turn.tool_call("rm"):
                    outcome = "ran"
            except kt.Blocked as exc:
                outcome = f"blocked by {exc.extension}"
        errors = cap.metric(ERRORS, extension="stuck", event="tool_call")
        release.set()
    assert outcome == "blocked by guard"
    assert errors == 1


def test_shutdown_returns_while_a_handler_still_blocks_its_loop() -> None:
    """An agent's exit is never held hostage by an extension."""
    release = threading.Event()

    def stuck(api: kt.ExtensionAPI) -> None:
        @api.on(kt.EventType.AGENT_END)
        async def block(event: kt.AgentEndEvent, ctx: kt.ExtensionContext) -> None:
            release.wait(60)

    with capture(strict=False, handler_timeout_s=0.2) as cap:
        cap.telemetry.extension_processor.load_setup("stuck", stuck)
        run_once(cap.telemetry)
        closer = threading.Thread(target=cap.telemetry.shutdown)
        closer.start()
        closer.join(30)
        finished = not closer.is_alive()
    release.set()
    assert finished
