"""The lifecycle events users asked for: error, retry, model_change and custom events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import kit_telemetry as kt
from kit_telemetry.testing import capture


def names(cap: Any) -> list[str]:
    return [e.type.value for e in cap.events]


def test_a_failed_run_delivers_error_just_before_agent_end() -> None:
    """Error handlers see the failure first, with its type and message."""
    with capture() as cap:
        with pytest.raises(ValueError), cap.telemetry.session("s") as session:
            with session.run("go", agent_name="coder"):
                raise ValueError("disk full")
        order = names(cap)
        (error,) = cap.events_of(kt.EventType.ERROR)
    assert order[order.index("error") + 1] == "agent_end"
    assert isinstance(error, kt.ErrorEvent)
    assert (error.agent_name, error.error_type, error.message) == (
        "coder",
        "ValueError",
        "ValueError: disk full",
    )


def test_runs_that_succeed_or_are_cancelled_deliver_no_error() -> None:
    """A cancelled run is not a failure."""

    async def cancelled(tel: kt.Telemetry) -> None:
        async with tel.session("s") as session, session.run("go"):
            raise asyncio.CancelledError

    with capture() as cap:
        with cap.telemetry.session("s") as session, session.run("go"):
            pass
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(cancelled(cap.telemetry))
        errors = cap.events_of(kt.EventType.ERROR)
    assert errors == []


def test_record_retry_delivers_retry_and_marks_the_span() -> None:
    """Retries are visible to extensions and on the call's span."""
    with capture() as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            with turn.llm_call("openai", "gpt-4o") as call:
                call.record_retry(1, TimeoutError("read timed out"))
                call.record_retry(2, "429 rate limited")
                call.record_usage(input_tokens=1, output_tokens=1)
        retries = cap.events_of(kt.EventType.RETRY)
        span = cap.span("chat gpt-4o")
    assert [(r.attempt, r.error, r.model, r.run_id) for r in retries] == [
        (1, "TimeoutError: read timed out", "gpt-4o", run.run_id),
        (2, "429 rate limited", "gpt-4o", run.run_id),
    ]
    assert [(e.name, e.attributes) for e in span.events] == [
        ("kit.retry", {"kit.retry.attempt": 1, "kit.retry.error": "TimeoutError: read timed out"}),
        ("kit.retry", {"kit.retry.attempt": 2, "kit.retry.error": "429 rate limited"}),
    ]


def test_a_bad_retry_attempt_is_bad_input() -> None:
    """Strict raises a UsageError naming the field; lenient ignores and counts."""
    with capture() as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            with (
                turn.llm_call("openai", "gpt-4o") as call,
                pytest.raises(kt.UsageError, match="attempt"),
            ):
                call.record_retry(-1)
    with capture(strict=False) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            with turn.llm_call("openai", "gpt-4o") as call:
                call.record_retry("2")  # type: ignore[arg-type]
        assert cap.events_of(kt.EventType.RETRY) == []
        assert cap.metric("kit_telemetry_internal_errors_total", component="api") == 1


def test_model_change_is_derived_from_a_sessions_calls() -> None:
    """A fallback to another model is an event, before that call's llm_usage, per session."""
    with capture() as cap:
        for session_id, models in (("a", ["gpt-4o", "gpt-4o", "gpt-4o-mini"]), ("b", ["gpt-4o"])):
            with cap.telemetry.session(session_id) as session, session.run("go") as run:
                for model in models:
                    with run.turn() as turn, turn.llm_call("openai", model) as call:
                        call.record_usage(input_tokens=1, output_tokens=1)
        changes = cap.events_of(kt.EventType.MODEL_CHANGE)
        order = names(cap)
    assert [(c.session_id, c.previous_model, c.model) for c in changes] == [
        ("a", "gpt-4o", "gpt-4o-mini")
    ]
    assert order[order.index("model_change") + 1] == "llm_usage"


def test_custom_events_pass_between_extensions() -> None:
    """One extension's finding reaches another, by name, with the sender's name."""
    got: list[tuple[str, Any, str, str]] = []

    def detector(api: kt.ExtensionAPI) -> None:
        @api.on(kt.EventType.TOOL_RESULT)
        def found(event: kt.ToolResultEvent, ctx: kt.ExtensionContext) -> None:
            if "password" in str(event.result):
                ctx.emit("secret_found", {"tool": event.tool_name})

    def alerter(api: kt.ExtensionAPI) -> None:
        def alert(event: kt.CustomEvent, ctx: kt.ExtensionContext) -> None:
            got.append((event.name, event.payload, event.source, ctx.session_id))

        api.on_custom("secret_found", alert)
        api.on_custom("something_else", lambda e, ctx: got.append(("wrong", None, "", "")))

    with capture() as cap:
        cap.telemetry.extension_processor.load_setup("detector", detector)
        cap.telemetry.extension_processor.load_setup("alerter", alerter)
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            with turn.tool_call("cat") as tool:
                tool.set_result("password=hunter2")
        recorded = cap.events_of(kt.EventType.CUSTOM)
    assert got == [("secret_found", {"tool": "cat"}, "detector", "s")]
    assert [e.name for e in recorded] == ["secret_found"]  # on("custom") sees every one


def test_a_custom_event_loop_is_cut_and_counted() -> None:
    """Two extensions echoing each other must not overflow the agent's stack."""

    def ping(api: kt.ExtensionAPI) -> None:
        api.on_custom("ping", lambda e, ctx: ctx.emit("ping", e.payload))

    with capture(strict=False) as cap:
        cap.telemetry.extension_processor.load_setup("ping", ping)
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            with turn.tool_call("t") as tool:
                tool.set_result("x")
        cap.telemetry.extension_processor.emit_custom("ping", "s", "ping", 1, None)
        depth = len(cap.events_of(kt.EventType.CUSTOM))
        errors = cap.metric("kit_extension_handler_errors_total", extension="ping", event="custom")
    assert depth == 8
    assert errors == 1
