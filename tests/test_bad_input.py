"""Bad input: a UsageError when strict; else logged, counted, nothing lost, and the agent goes on.

And bad configuration: ConfigError at start-up naming the bad value and the allowed ones.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import kit_telemetry as kt
from kit_telemetry import semconv as sc
from kit_telemetry.testing import Capture, capture

MODEL = "claude-sonnet-4-5"
VALID_USAGE: dict[str, Any] = {
    "input_tokens": 100,
    "output_tokens": 50,
    "cache_read_tokens": 400,
    "cache_write_tokens": 20,
    "reasoning_tokens": 5,
    "finish_reason": "tool_use",
    "response_id": "msg_1",
    "cost_usd": 0.25,
}
INTERNAL_ERRORS = "kit_telemetry_internal_errors_total"

BAD_USAGE = [
    pytest.param({"input_tokens": -1}, ["input_tokens", "-1"], id="negative"),
    pytest.param({"cache_read_tokens": -400}, ["cache_read_tokens", "-400"], id="negative-cache"),
    pytest.param({"output_tokens": 12.5}, ["output_tokens", "12.5"], id="float"),
    pytest.param({"input_tokens": 10.0}, ["input_tokens", "10.0"], id="integral-float"),
    pytest.param({"cache_read_tokens": "400"}, ["cache_read_tokens", "'400'"], id="str"),
    pytest.param({"cache_write_tokens": True}, ["cache_write_tokens", "True"], id="bool"),
    pytest.param({"reasoning_tokens": math.nan}, ["reasoning_tokens", "nan"], id="nan"),
    pytest.param({"output_tokens": math.nan}, ["output_tokens", "nan"], id="nan-output"),
    pytest.param({"input_tokens": None}, ["input_tokens", "None"], id="none"),
    pytest.param(
        {"output_tokens": 10, "reasoning_tokens": 11},
        ["reasoning_tokens", "11", "10"],
        id="reasoning-over-output",
    ),
    pytest.param({"input_tokens": 1, "cost_usd": math.nan}, ["cost_usd", "nan"], id="nan-cost"),
    pytest.param({"input_tokens": 1, "cost_usd": -0.01}, ["cost_usd", "-0.01"], id="negative-cost"),
    pytest.param({"input_tokens": 1, "cost_usd": math.inf}, ["cost_usd", "inf"], id="inf-cost"),
    pytest.param({"input_tokens": 1, "cost_usd": "0.1"}, ["cost_usd", "'0.1'"], id="str-cost"),
]


def _api_errors(cap: Capture) -> float:
    return cap.metric(INTERNAL_ERRORS, component="api") or 0.0


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "kit_telemetry" and r.levelno == logging.WARNING
    ]


def _chat_spans(cap: Capture) -> list[Any]:
    return [s for s in cap.spans() if s.name.startswith("chat ")]


def _assert_valid_usage_on(span: Any) -> None:
    attributes = span.attributes
    assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 520  # 100 + 400 + 20
    assert attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 50
    assert attributes[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 400
    assert attributes[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 20
    assert attributes[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 5
    assert attributes[sc.GEN_AI_RESPONSE_ID] == "msg_1"
    assert attributes[sc.KIT_USAGE_COST_USD] == 0.25


@contextmanager
def _lenient(caplog: pytest.LogCaptureFixture) -> Iterator[Capture]:
    with capture(strict=False) as cap, caplog.at_level(logging.WARNING, logger="kit_telemetry"):
        yield cap


# --- record_usage ------------------------------------------------------------------------


@pytest.mark.parametrize(("bad", "fragments"), BAD_USAGE)
def test_bad_usage_raises_usage_error_naming_field_and_value_when_strict(
    bad: dict[str, Any], fragments: list[str]
) -> None:
    """In tests a wrong figure must fail loudly, at the call that made it."""
    with capture() as cap:
        tel = cap.telemetry
        with (
            tel.session("s-1") as session,
            session.run("go", agent_name="coder") as run,
            run.turn() as turn,
            turn.llm_call("anthropic", MODEL) as call,
        ):
            call.record_usage(**VALID_USAGE)
            with pytest.raises(kt.UsageError) as info:
                call.record_usage(**bad)
        message = str(info.value)
        for fragment in fragments:
            assert fragment in message, f"{fragment!r} not in {message!r}"
        # Even when raised, the earlier usage is what the call keeps.
        _assert_valid_usage_on(cap.span(f"chat {MODEL}"))
    assert run.end_event is not None
    assert run.end_event.input_tokens == 100


@pytest.mark.parametrize(("bad", "fragments"), BAD_USAGE)
def test_bad_usage_is_logged_counted_and_keeps_the_first_usage_when_lenient(
    bad: dict[str, Any], fragments: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """In production a bad figure never breaks the agent nor erases the good figures."""
    with _lenient(caplog) as cap:
        tel = cap.telemetry
        with (
            tel.session("s-1") as session,
            session.run("go", agent_name="coder") as run,
            run.turn() as turn,
        ):
            with turn.llm_call("anthropic", MODEL) as call:
                call.record_usage(**VALID_USAGE)
                call.record_usage(**bad)  # must not raise
            with turn.llm_call("anthropic", MODEL) as second:  # the agent goes on
                second.record_usage(input_tokens=1, output_tokens=2, cost_usd=0.5)
        first_span = _chat_spans(cap)[0]
        usage_events = cap.events_of(kt.EventType.LLM_USAGE)
        errors = _api_errors(cap)
    assert errors == 1
    warnings = _warnings(caplog)
    assert len(warnings) == 1
    for fragment in fragments:
        assert fragment in warnings[0]
    _assert_valid_usage_on(first_span)
    first = usage_events[0]
    assert isinstance(first, kt.LLMUsageEvent)
    assert (first.input_tokens, first.output_tokens, first.cache_read_tokens) == (100, 50, 400)
    assert first.cost_usd == 0.25
    end = run.end_event
    assert end is not None
    assert end.error is None
    assert end.llm_call_count == 2
    assert end.input_tokens == 101
    assert end.output_tokens == 52
    assert end.cache_read_tokens == 400
    assert end.cache_write_tokens == 20
    assert end.reasoning_tokens == 5
    assert end.cost_usd == pytest.approx(0.75)


@pytest.mark.parametrize("field", ["finish_reason", "response_id"])
def test_a_finish_reason_or_response_id_that_is_not_text_raises_when_strict(field: str) -> None:
    """They go onto the span as they are; anything but a string is refused, usage unchanged."""
    with capture() as cap:
        tel = cap.telemetry
        with (
            tel.session("s-1") as session,
            session.run("go", agent_name="coder") as run,
            run.turn() as turn,
            turn.llm_call("anthropic", MODEL) as call,
        ):
            call.record_usage(**VALID_USAGE)
            with pytest.raises(kt.UsageError, match=rf"{field}.*\{{'id': 7\}}"):
                call.record_usage(**{**VALID_USAGE, "input_tokens": 1, field: {"id": 7}})
        _assert_valid_usage_on(cap.span(f"chat {MODEL}"))


@pytest.mark.parametrize("field", ["finish_reason", "response_id"])
def test_a_finish_reason_or_response_id_that_is_not_text_is_kept_as_text_when_lenient(
    field: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Lenient: reported and counted, and the call keeps its usage with the value as text."""
    with _lenient(caplog) as cap:
        tel = cap.telemetry
        with (
            tel.session("s-1") as session,
            session.run("go", agent_name="coder") as run,
            run.turn() as turn,
            turn.llm_call("anthropic", MODEL) as call,
        ):
            call.record_usage(**{**VALID_USAGE, field: 42})
        span = cap.span(f"chat {MODEL}")
        [usage] = cap.events_of(kt.EventType.LLM_USAGE)
        errors = _api_errors(cap)
    assert errors == 1
    assert any(field in w and "42" in w for w in _warnings(caplog))
    assert isinstance(usage, kt.LLMUsageEvent)
    assert usage.input_tokens == 100 and getattr(usage, field) == "42"
    expected = ("42",) if field == "finish_reason" else "42"
    key = sc.GEN_AI_RESPONSE_FINISH_REASONS if field == "finish_reason" else sc.GEN_AI_RESPONSE_ID
    assert span.attributes[key] == expected


def test_bad_first_usage_leaves_the_call_without_usage_but_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A call whose only usage was bad still counts as a call (unpriced), with zero tokens."""
    with _lenient(caplog) as cap:
        tel = cap.telemetry
        with (
            tel.session("s-1") as session,
            session.run("go") as run,
            run.llm_call("anthropic", MODEL) as call,
        ):
            call.record_usage(input_tokens=-5, output_tokens=3)
        span = cap.span(f"chat {MODEL}")
        assert _api_errors(cap) == 1
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in (span.attributes or {})
    end = run.end_event
    assert end is not None
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (1, 0, 0)
    assert end.unpriced_call_count == 1


# --- names ---------------------------------------------------------------------------------

BAD_LLM_NAMES = [
    pytest.param({"provider": "anthropic", "model": ""}, ["model", "''"], id="empty-model"),
    pytest.param({"provider": "", "model": MODEL}, ["provider", "''"], id="empty-provider"),
    pytest.param({"provider": "anthropic", "model": None}, ["model", "None"], id="none-model"),
    pytest.param({"provider": 7, "model": MODEL}, ["provider", "7"], id="int-provider"),
]


@pytest.mark.parametrize(("name", "shown"), [(5, "5"), (None, "None"), ("", "''")])
def test_an_agent_name_that_is_not_a_non_empty_string_raises_when_strict(
    name: object, shown: str
) -> None:
    with capture() as cap:
        with cap.telemetry.session("s-1") as session, pytest.raises(kt.UsageError) as info:
            session.run("go", agent_name=name)  # type: ignore[arg-type]
    assert "agent_name" in str(info.value) and shown in str(info.value)


@pytest.mark.parametrize(("name", "recorded"), [(5, "5"), (None, "agent"), ("", "agent")])
def test_an_agent_name_that_is_not_a_non_empty_string_is_counted_and_the_run_recorded(
    name: object, recorded: str, caplog: pytest.LogCaptureFixture
) -> None:
    with _lenient(caplog) as cap:
        with (
            cap.telemetry.session("s-1") as session,
            session.run("go", agent_name=name) as run,  # type: ignore[arg-type]
            run.turn() as turn,
            turn.tool_call("bash"),
        ):
            pass
        errors = _api_errors(cap)
        span = cap.span(f"invoke_agent {recorded}")
    assert errors == 1
    assert span.attributes[sc.GEN_AI_AGENT_NAME] == recorded
    assert run.end_event is not None
    assert (run.end_event.agent_name, run.end_event.tool_call_count) == (recorded, 1)


@pytest.mark.parametrize(("names", "fragments"), BAD_LLM_NAMES)
def test_bad_model_or_provider_name_raises_when_strict(
    names: dict[str, Any], fragments: list[str]
) -> None:
    """A call without a model cannot be priced or labelled: strict mode says so at once."""
    with capture() as cap:
        tel = cap.telemetry
        with (
            tel.session("s-1") as session,
            session.run("go") as run,
            run.turn() as turn,
            pytest.raises(kt.UsageError) as info,
        ):
            turn.llm_call(**names)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(("names", "fragments"), BAD_LLM_NAMES)
def test_bad_model_or_provider_name_is_counted_and_the_call_still_recorded(
    names: dict[str, Any], fragments: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The call happened and used tokens: it is still counted, under a placeholder name."""
    with _lenient(caplog) as cap:
        tel = cap.telemetry
        with (
            tel.session("s-1") as session,
            session.run("go") as run,
            run.turn() as turn,
            turn.llm_call(**names) as call,
        ):
            call.record_usage(input_tokens=30, output_tokens=7, cost_usd=0.01)
        chats = _chat_spans(cap)
        errors = _api_errors(cap)
    assert errors == 1
    warnings = _warnings(caplog)
    assert len(warnings) == 1
    for fragment in fragments:
        assert fragment in warnings[0]
    assert len(chats) == 1
    attributes = chats[0].attributes or {}
    assert isinstance(attributes[sc.GEN_AI_REQUEST_MODEL], str)
    assert attributes[sc.GEN_AI_REQUEST_MODEL]
    assert isinstance(attributes[sc.GEN_AI_PROVIDER_NAME], str)
    assert attributes[sc.GEN_AI_PROVIDER_NAME]
    assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 30
    end = run.end_event
    assert end is not None
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (1, 30, 7)


BAD_TOOL_NAMES = [
    pytest.param(42, "42", id="int"),
    pytest.param(None, "None", id="none"),
    pytest.param(b"bash", "b'bash'", id="bytes"),
    pytest.param("", "''", id="empty"),
]


@pytest.mark.parametrize(("name", "shown"), BAD_TOOL_NAMES)
def test_tool_name_that_is_not_a_string_raises_when_strict(name: object, shown: str) -> None:
    """Tool names become metric labels and span names; strict mode refuses anything else."""
    with capture() as cap:
        tel = cap.telemetry
        with (
            tel.session("s-1") as session,
            session.run("go") as run,
            run.turn() as turn,
            pytest.raises(kt.UsageError) as info,
        ):
            turn.tool_call(name)  # type: ignore[arg-type]
    assert "name" in str(info.value)
    assert shown in str(info.value)


@pytest.mark.parametrize(("name", "shown"), BAD_TOOL_NAMES)
def test_tool_name_that_is_not_a_string_is_counted_and_the_tool_still_recorded(
    name: object, shown: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The tool ran: it counts, with a string name, and the next tool is unaffected."""
    with _lenient(caplog) as cap:
        tel = cap.telemetry
        with tel.session("s-1") as session, session.run("go") as run, run.turn() as turn:
            with turn.tool_call(name) as tool:  # type: ignore[arg-type]
                tool.set_result("ok")
            with turn.tool_call("bash") as tool:
                tool.set_result("ok")
        tool_spans = [s for s in cap.spans() if s.name.startswith("execute_tool ")]
        errors = _api_errors(cap)
    assert errors == 1
    assert any(shown in w for w in _warnings(caplog))
    assert len(tool_spans) == 2
    assert all(isinstance((s.attributes or {})[sc.GEN_AI_TOOL_NAME], str) for s in tool_spans)
    end = run.end_event
    assert end is not None
    assert end.tool_call_count == 2
    assert len(end.tool_names) == 2
    assert all(isinstance(n, str) and n for n in end.tool_names)
    assert end.tool_names[1] == "bash"


# --- ending twice --------------------------------------------------------------------------


def _run_then_end_again(cap: Capture, which: str) -> tuple[kt.Session, kt.Run]:
    """One run with one LLM call and one tool; then ``which`` handle is ended once more."""
    tel = cap.telemetry
    session = tel.session("s-1")
    with session:
        with session.run("go", agent_name="coder") as run:
            with run.turn() as turn:
                with turn.llm_call("anthropic", MODEL) as call:
                    call.record_usage(**VALID_USAGE)
                with turn.tool_call("bash", call_id="t1") as tool:
                    tool.set_result("3 passed")
                handles: dict[str, Callable[[], None]] = {
                    "llm_call": call.end,
                    "tool_call": tool.end,
                }
                if which in handles:
                    handles[which]()
            if which == "turn":
                turn.end()
        if which == "run":
            run.end()
    if which == "session":
        session.end()
    return session, run


ENDED_TWICE = [
    pytest.param("llm_call", "LLMCall", id="llm_call"),
    pytest.param("tool_call", "ToolCall", id="tool_call"),
    pytest.param("turn", "Turn", id="turn"),
    pytest.param("run", "Run", id="run"),
    pytest.param("session", "'s-1'", id="session"),
]


@pytest.mark.parametrize(("which", "named"), ENDED_TWICE)
def test_second_end_raises_when_strict(which: str, named: str) -> None:
    """Ending a handle twice is a bug in the agent's instrumentation; tests should see it."""
    with capture() as cap, pytest.raises(kt.UsageError) as info:
        _run_then_end_again(cap, which)
    assert "ended twice" in str(info.value)
    assert named in str(info.value)


@pytest.mark.parametrize(("which", "named"), ENDED_TWICE)
def test_second_end_is_counted_and_changes_no_total_when_lenient(
    which: str, named: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A second end must neither double-count the call nor re-emit its span or end event."""
    with _lenient(caplog) as cap:
        session, run = _run_then_end_again(cap, which)
        names = [s.name for s in cap.spans()]
        errors = _api_errors(cap)
        ends = cap.events_of(kt.EventType.AGENT_END)
        session_ends = cap.events_of(kt.EventType.SESSION_END)
    assert errors == 1
    warnings = _warnings(caplog)
    assert len(warnings) == 1
    assert "ended twice" in warnings[0]
    assert named in warnings[0]
    assert sorted(names) == sorted(
        [
            "kit.session.start",
            f"chat {MODEL}",
            "execute_tool bash",
            "turn 0",
            "invoke_agent coder",
            "kit.session.end",
        ]
    )
    assert len(ends) == 1
    assert len(session_ends) == 1
    end = run.end_event
    assert end is ends[0]
    assert (end.llm_call_count, end.tool_call_count, end.turn_count) == (1, 1, 1)
    assert (end.input_tokens, end.output_tokens, end.cache_read_tokens) == (100, 50, 400)
    assert end.cost_usd == 0.25
    assert end.stop_reason == "tool_use"
    assert end.error is None
    assert session.end_event is not None
    assert session.end_event.run_count == 1
    assert session.end_event.llm_call_count == 1


# --- after the end -------------------------------------------------------------------------


def test_record_usage_after_the_call_ended_raises_when_strict() -> None:
    """Usage that arrives too late cannot reach the span: strict mode says so."""
    with capture() as cap:
        tel = cap.telemetry
        with tel.session("s-1") as session, session.run("go") as run, run.turn() as turn:
            with turn.llm_call("anthropic", MODEL) as call:
                call.record_usage(**VALID_USAGE)
            with pytest.raises(kt.UsageError, match="after the call ended") as info:
                call.record_usage(input_tokens=999, output_tokens=1)
    assert MODEL in str(info.value)


def test_record_usage_after_the_call_ended_is_ignored_and_counted_when_lenient(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Late usage must not rewrite what was exported nor the totals."""
    with _lenient(caplog) as cap:
        tel = cap.telemetry
        with tel.session("s-1") as session, session.run("go") as run, run.turn() as turn:
            with turn.llm_call("anthropic", MODEL) as call:
                call.record_usage(**VALID_USAGE)
            call.record_usage(input_tokens=999, output_tokens=1)
            with turn.llm_call("anthropic", MODEL) as second:  # the agent goes on
                second.record_usage(input_tokens=1, output_tokens=1, cost_usd=0.0)
        first_span = _chat_spans(cap)[0]
        errors = _api_errors(cap)
    assert errors == 1
    assert any("after the call ended" in w for w in _warnings(caplog))
    _assert_valid_usage_on(first_span)
    assert call.usage is not None
    assert call.usage["input_tokens"] == 100
    end = run.end_event
    assert end is not None
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (2, 101, 51)


def test_set_result_after_the_tool_ended_raises_when_strict() -> None:
    """A result after the end cannot reach the span or the tool_result event."""
    with capture() as cap:
        tel = cap.telemetry
        with tel.session("s-1") as session, session.run("go") as run, run.turn() as turn:
            with turn.tool_call("bash") as tool:
                tool.set_result("3 passed")
            with pytest.raises(kt.UsageError, match="set_result") as info:
                tool.set_result("boom", is_error=True)
    assert "'bash'" in str(info.value)


def test_set_result_after_the_tool_ended_is_ignored_and_counted_when_lenient(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The delivered result and error flag stay the ones the tool ended with."""
    with _lenient(caplog) as cap:
        tel = cap.telemetry
        with tel.session("s-1") as session, session.run("go") as run, run.turn() as turn:
            with turn.tool_call("bash", call_id="t1") as tool:
                tool.set_result("3 passed")
            tool.set_result("boom", is_error=True)
            with turn.tool_call("read") as other:  # the agent goes on
                other.set_result("file")
        results = cap.events_of(kt.EventType.TOOL_RESULT)
        tool_span = cap.span("execute_tool bash")
        errors = _api_errors(cap)
    assert errors == 1
    assert any("set_result" in w and "bash" in w for w in _warnings(caplog))
    assert (tool.result, tool.is_error) == ("3 passed", False)
    first = results[0]
    assert isinstance(first, kt.ToolResultEvent)
    assert (first.tool_name, first.result, first.is_error) == ("bash", "3 passed", False)
    assert sc.KIT_TOOL_IS_ERROR not in (tool_span.attributes or {})
    end = run.end_event
    assert end is not None
    assert end.tool_names == ("bash", "read")


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize("make", [kt.configure, kt.Telemetry], ids=["configure", "Telemetry"])
def test_unknown_configure_argument_is_a_config_error_listing_the_allowed_ones(
    make: Callable[..., kt.Telemetry],
) -> None:
    """A misspelt option must not be silently ignored: it names itself and the right ones."""
    with pytest.raises(kt.ConfigError) as info:
        make(servce_name="agent", prometheus=CollectorRegistry())
    message = str(info.value)
    assert "servce_name" in message
    for allowed in ("service_name", "exporters", "prometheus", "budgets", "strict"):
        assert allowed in message


@pytest.mark.parametrize(
    "spec",
    ["consol", "jaeger", "otlp-json", "otlp-json:", "OTLP", 42],
    ids=["typo", "unknown", "no-colon", "no-path", "case", "int"],
)
def test_unknown_exporter_is_a_config_error_naming_it_and_the_allowed_ones(spec: object) -> None:
    """Exporter names are checked at start-up, not when the first span is exported."""
    with pytest.raises(kt.ConfigError) as info:
        kt.configure(exporters=(spec,), prometheus=CollectorRegistry())
    message = str(info.value)
    assert repr(spec) in message
    if spec != "otlp-json:":
        for allowed in ("console", "otlp-json:PATH", "otlp", "none"):
            assert allowed in message
    else:
        assert "path" in message


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("state_durability", "fast", ["sync", "batched"]),
        ("state_durability", "SYNC", ["sync", "batched"]),
        ("extension_errors", "ignore", ["raise", "log"]),
        ("extension_errors", None, ["raise", "log"]),
    ],
)
def test_bad_choice_options_are_config_errors_naming_value_and_choices(
    option: str, value: object, allowed: list[str]
) -> None:
    """Each enumerated option names the bad value and what would have been accepted."""
    with pytest.raises(kt.ConfigError) as info:
        kt.configure(**{option: value}, prometheus=CollectorRegistry())
    message = str(info.value)
    assert option in message
    assert repr(value) in message
    for choice in allowed:
        assert choice in message


@pytest.mark.parametrize("value", ["5", 0, -1.0, math.nan, math.inf, True, None])
def test_handler_timeout_must_be_a_positive_number_of_seconds(value: object) -> None:
    """A timeout the async runner could not honour is refused at start-up, naming it."""
    with pytest.raises(kt.ConfigError) as info:
        kt.configure(handler_timeout_s=value, prometheus=CollectorRegistry())
    assert f"handler_timeout_s {value!r} is not a finite number of seconds > 0" in str(info.value)


def test_config_error_is_a_value_error_and_a_package_error() -> None:
    """Callers may catch configuration mistakes as ValueError, like the stdlib."""
    assert issubclass(kt.ConfigError, ValueError)
    assert issubclass(kt.ConfigError, kt.KitTelemetryError)
    assert issubclass(kt.UsageError, ValueError)
    assert issubclass(kt.UsageError, kt.KitTelemetryError)
