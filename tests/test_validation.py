"""The validation table: every API parameter has one rule; strict names it, lenient records.

Strict mode raises a ``UsageError`` naming the field, the value and what is allowed; lenient
mode never raises into the agent, drops or replaces the bad value, and still records the call.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import kit_telemetry as kt
from kit_telemetry import semconv as sc
from kit_telemetry.instrumentation import LLMCall, Run, Session, ToolCall, Turn
from kit_telemetry.state import STATE_SUFFIX, SessionState
from kit_telemetry.testing import Capture, capture
from kit_telemetry.validation import FIELDS, INT64_MAX

MODEL = "claude-sonnet-4-5"
INTERNAL_ERRORS = "kit_telemetry_internal_errors_total"

# Each entry point, and the name its parameters have in the table.
ENTRY_POINTS: list[tuple[Callable[..., Any], str]] = [
    (kt.Telemetry.session, "session"),
    (Session.run, "run"),
    (Run.set_response, "set_response"),
    (Run.llm_call, "llm_call"),
    (Turn.llm_call, "llm_call"),
    (LLMCall.record_usage, "record_usage"),
    (Run.tool_call, "tool_call"),
    (Turn.tool_call, "tool_call"),
    (ToolCall.set_result, "set_result"),
    (LLMCall.add_cost, "add_cost"),
    (ToolCall.add_cost, "add_cost"),
    (SessionState.get, "state"),
    (SessionState.set, "state"),
    (SessionState.delete, "state"),
    (kt.ExtensionContext.get_state, "state"),
    (kt.ExtensionContext.set_state, "state"),
    (kt.ExtensionContext.delete_state, "state"),
    (LLMCall.record_retry, "record_retry"),
    (LLMCall.set_messages, "set_messages"),
    (Run.record_messages, "record_messages"),
    (Turn.set_message, "set_message"),
    (Turn.call_tool, "call_tool"),
    (Turn.acall_tool, "call_tool"),
    (Run.turn, "turn"),
    (kt.Telemetry.price, "price"),
    (kt.Telemetry.__init__, "configure"),
]


def test_every_parameter_of_every_entry_point_has_a_rule() -> None:
    """A new parameter without a row would go unchecked: the table must name each one."""
    named = {
        f"{prefix}.{name}"
        for function, prefix in ENTRY_POINTS
        for name, parameter in inspect.signature(function).parameters.items()
        if name != "self" and parameter.kind is not inspect.Parameter.VAR_KEYWORD
    }
    assert named == set(FIELDS)


def test_configuration_rows_are_config_errors_and_the_others_are_not() -> None:
    """configure() options are refused at start-up; the agent's loop has the lenient rule."""
    config = {field for field, rule in FIELDS.items() if rule.config}
    assert config == {field for field in FIELDS if field.startswith("configure.")}
    assert all("ConfigError" in FIELDS[field].instead for field in config)


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("state_durability", "fast", "one of sync, batched"),
        ("extension_errors", 1, "one of raise, log"),
        ("handler_timeout_s", 0, "a finite number of seconds > 0"),
        ("max_content_chars", True, "an int from 1 to"),
        ("max_series", 0, "an int from 1 to"),
    ],
)
def test_a_bad_option_is_a_config_error_strict_or_not(
    strict: bool, option: str, value: object, allowed: str
) -> None:
    """Configuration is read before any agent runs: lenient mode does not soften it."""
    with pytest.raises(kt.ConfigError) as info:
        kt.Telemetry(strict=strict, exporters=(), **{option: value})
    message = str(info.value)
    assert option in message
    assert repr(value) in message
    assert allowed in message


# --- strict: UsageError naming field and value ------------------------------------------

Act = Callable[[kt.Telemetry], None]


def _llm_call(**options: Any) -> Act:
    def act(tel: kt.Telemetry) -> None:
        with tel.session("s") as session, session.run("go") as run:
            with run.llm_call("anthropic", MODEL, **options):
                pass

    return act


def _usage(**usage: Any) -> Act:
    def act(tel: kt.Telemetry) -> None:
        with (
            tel.session("s") as session,
            session.run("go") as run,
            run.llm_call("anthropic", MODEL) as call,
        ):
            call.record_usage(**usage)

    return act


def _session(*args: Any, **options: Any) -> Act:
    def act(tel: kt.Telemetry) -> None:
        with tel.session(*args, **options) as session, session.run("go") as run:
            with run.llm_call("anthropic", MODEL) as call:
                call.record_usage(input_tokens=10, output_tokens=3)

    return act


def _tool(**options: Any) -> Act:
    def act(tel: kt.Telemetry) -> None:
        with tel.session("s") as session, session.run("go") as run:
            with run.tool_call("bash", **options):
                pass

    return act


def _retry(attempt: Any, error: Any = None) -> Act:
    def act(tel: kt.Telemetry) -> None:
        with (
            tel.session("s") as session,
            session.run("go") as run,
            run.llm_call("anthropic", MODEL) as call,
        ):
            call.record_retry(attempt, error)

    return act


def _messages(messages: Any) -> Act:
    def act(tel: kt.Telemetry) -> None:
        with tel.session("s") as session, session.run("go") as run:
            run.record_messages(messages)

    return act


def _system(instructions: Any) -> Act:
    def act(tel: kt.Telemetry) -> None:
        with (
            tel.session("s") as session,
            session.run("go") as run,
            run.llm_call("anthropic", MODEL) as call,
        ):
            call.set_messages("hi", system_instructions=instructions)

    return act


def _call_tool(name: Any, call_id: Any = None) -> Act:
    def act(tel: kt.Telemetry) -> None:
        with tel.session("s") as session, session.run("go") as run:
            with run.turn() as turn:
                turn.call_tool(name, {}, call_id)

    return act


def _price(provider: Any, usage: Any) -> Act:
    def act(tel: kt.Telemetry) -> None:
        tel.price(provider, MODEL, usage)

    return act


def _state(key: Any, value: Any) -> Act:
    def act(tel: kt.Telemetry) -> None:
        with tel.session("s") as session:
            session.state.set(key, value)

    return act


def _response(response: Any) -> Act:
    def act(tel: kt.Telemetry) -> None:
        with tel.session("s") as session, session.run("go") as run:
            run.set_response(response)

    return act


STRICT_ROWS = [
    pytest.param(_llm_call(max_tokens=-1), "llm_call.max_tokens", "-1", id="max_tokens"),
    pytest.param(
        _llm_call(estimated_input_tokens=math.nan),
        "llm_call.estimated_input_tokens",
        "nan",
        id="estimate",
    ),
    pytest.param(_session("s", user=5), "session.user", "5", id="user"),
    pytest.param(_session("s", attributes="x"), "session.attributes", "'x'", id="attributes"),
    pytest.param(
        _session("s", attributes={"team": 7}), "session.attributes", "7", id="attribute-value"
    ),
    pytest.param(_tool(call_id=7), "tool_call.call_id", "7", id="call_id"),
    pytest.param(_response({"answer": 42}), "set_response.response", "42", id="response"),
    pytest.param(_session("s", session_file=7), "session.session_file", "7", id="session_file"),
    pytest.param(
        _usage(input_tokens=2**70), "record_usage.input_tokens", str(2**70), id="int64-overflow"
    ),
    pytest.param(_session(math.nan), "session.session_id", "nan", id="session_id"),
    pytest.param(_session("s", subscription="yes"), "session.subscription", "'yes'", id="flag"),
    pytest.param(_retry(-1), "record_retry.attempt", "-1", id="retry-attempt"),
    pytest.param(_retry(True), "record_retry.attempt", "True", id="retry-attempt-bool"),
    pytest.param(_retry(1, 404), "record_retry.error", "404", id="retry-error"),
    pytest.param(_messages("hi"), "record_messages.messages", "'hi'", id="record_messages"),
    pytest.param(_system(7), "set_messages.system_instructions", "7", id="system_instructions"),
    pytest.param(_call_tool(7), "call_tool.name", "7", id="call_tool-name"),
    pytest.param(_call_tool("t", 7), "call_tool.call_id", "7", id="call_tool-call_id"),
    pytest.param(_price(7, {}), "price.provider", "7", id="price-provider"),
    pytest.param(_price("anthropic", {"input_tokens": -5}), "price.usage", "-5", id="price-usage"),
    pytest.param(
        _price("anthropic", {"inputs": 5}), "price.usage", "inputs", id="price-usage-kind"
    ),
    pytest.param(_state(1, "v"), "state.key", "1", id="state-key"),
    pytest.param(_state("k", (1, 2)), "state.value", "(1, 2)", id="state-value"),
]


@pytest.mark.parametrize(("act", "field", "shown"), STRICT_ROWS)
def test_bad_input_raises_usage_error_naming_field_value_and_allowed_when_strict(
    act: Act, field: str, shown: str
) -> None:
    """In tests a wrong value fails at the call that made it, saying what would be right."""
    with capture() as cap, pytest.raises(kt.UsageError) as info:
        act(cap.telemetry)
    message = str(info.value)
    assert field in message
    assert shown in message
    assert FIELDS[field].allowed in message


def test_a_count_at_the_int64_limit_is_accepted() -> None:
    """The bound is what OTLP carries, not less: 2**63-1 tokens is still a count."""
    with capture() as cap:
        _usage(input_tokens=INT64_MAX)(cap.telemetry)
        span = cap.span(f"chat {MODEL}")
    assert span.attributes is not None
    assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == INT64_MAX


# --- lenient: no exception, the call still recorded ---------------------------------------


@contextmanager
def _lenient(caplog: pytest.LogCaptureFixture) -> Iterator[Capture]:
    with capture(strict=False) as cap, caplog.at_level(logging.WARNING, logger="kit_telemetry"):
        yield cap


LENIENT_ROWS = [
    pytest.param(_session(math.nan), "nan", id="session-nan"),
    pytest.param(_session("s", session_file=7), "s", id="session_file-int"),
    pytest.param(_session("s", attributes="x"), "s", id="attributes-str"),
    pytest.param(_session("s", user=["a"]), "s", id="user-list"),
    pytest.param(_session(""), None, id="session-empty"),
]


@pytest.mark.parametrize(("act", "session_id"), LENIENT_ROWS)
def test_a_bad_session_parameter_never_raises_and_the_call_is_recorded(
    act: Act, session_id: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """Production agents must go on; the call and its tokens still count."""
    with _lenient(caplog) as cap:
        act(cap.telemetry)
        calls = cap.metric("kit_llm_calls_total", provider="anthropic", model=MODEL, outcome="ok")
        errors = cap.metric(INTERNAL_ERRORS, component="api")
        [end] = cap.events_of(kt.EventType.AGENT_END)
    assert calls == 1
    assert errors == 1
    assert isinstance(end, kt.AgentEndEvent)
    assert (end.llm_call_count, end.input_tokens, end.output_tokens) == (1, 10, 3)
    if session_id is not None:
        assert end.session_id == session_id
    else:
        assert end.session_id  # a random one
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        pytest.param({"max_tokens": -1}, "-1", id="max_tokens-negative"),
        pytest.param({"max_tokens": "100"}, "'100'", id="max_tokens-str"),
        pytest.param({"max_tokens": 2**64}, str(2**64), id="max_tokens-huge"),
        pytest.param({"estimated_input_tokens": math.inf}, "inf", id="estimate-inf"),
    ],
)
def test_a_bad_llm_call_count_is_dropped_and_the_call_recorded(
    options: dict[str, Any], shown: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The bad count is treated as not given; the call, its usage and its span are kept."""
    with _lenient(caplog) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run:
            with run.llm_call("anthropic", MODEL, **options) as call:
                call.record_usage(input_tokens=10, output_tokens=3)
        span = cap.span(f"chat {MODEL}")
        errors = cap.metric(INTERNAL_ERRORS, component="api")
    assert errors == 1
    assert any(shown in r.getMessage() for r in caplog.records)
    assert span.attributes is not None
    assert sc.GEN_AI_REQUEST_MAX_TOKENS not in span.attributes
    assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 10
    assert run.end_event is not None
    assert run.end_event.llm_call_count == 1


def test_bad_attribute_entries_are_dropped_and_good_ones_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One bad entry must not cost the session the entries budgets match on."""
    with _lenient(caplog) as cap:
        session = cap.telemetry.session("s", attributes={"team": "a", "n": 1, 2: "x"})  # type: ignore[dict-item]
        assert session.attributes == {"team": "a"}
        assert cap.metric(INTERNAL_ERRORS, component="api") == 1


def test_a_response_that_is_not_text_is_kept_as_its_json_when_lenient(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The answer still reaches agent_end, as text."""
    with _lenient(caplog) as cap:
        _response({"answer": 42})(cap.telemetry)
        [end] = cap.events_of(kt.EventType.AGENT_END)
    assert isinstance(end, kt.AgentEndEvent)
    assert end.response == '{"answer": 42}'


@pytest.mark.parametrize(
    "act",
    [
        pytest.param(_retry(-1), id="retry-attempt"),
        pytest.param(_messages("hi"), id="record_messages"),
        pytest.param(_system(7), id="system_instructions"),
        pytest.param(_call_tool(7), id="call_tool-name"),
        pytest.param(_state("", "v"), id="state-key"),
        pytest.param(_state("k", {"a": math.nan}), id="state-value"),
    ],
)
def test_a_bad_handle_parameter_is_counted_once_and_never_raises_when_lenient(
    act: Act, caplog: pytest.LogCaptureFixture
) -> None:
    """The later handle methods follow the same rule as the first ones."""
    with _lenient(caplog) as cap:
        act(cap.telemetry)
        errors = cap.metric(INTERNAL_ERRORS, component="api")
    assert errors == 1
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_a_retry_with_an_error_that_is_no_text_is_recorded_as_its_str_when_lenient(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The retry still counts; its error is shown as the agent's value reads."""
    with _lenient(caplog) as cap:
        _retry(2, 404)(cap.telemetry)
        span = cap.span(f"chat {MODEL}")
    [event] = [e for e in span.events if e.name == sc.EVENT_RETRY]
    assert event.attributes is not None
    assert event.attributes[sc.KIT_RETRY_ATTEMPT] == 2
    assert event.attributes[sc.KIT_RETRY_ERROR] == "404"


def test_price_of_bad_usage_is_none_when_lenient(caplog: pytest.LogCaptureFixture) -> None:
    """A price query never raises into the agent; an unreadable usage has no price."""
    with _lenient(caplog) as cap:
        assert cap.telemetry.price("anthropic", MODEL, {"input_tokens": "ten"}) is None
        priced = cap.telemetry.price("anthropic", MODEL, {"input_tokens": 1000})
        assert cap.metric(INTERNAL_ERRORS, component="api") == 1
    assert priced is not None
    assert priced > 0


# --- a session name that is no valid text, then set_state ---------------------------------


@pytest.mark.parametrize("session_id", ["a\x00b", "a\udc80b"], ids=["nul", "lone-surrogate"])
def test_state_of_a_session_with_an_invalid_name_is_saved_under_a_valid_one(
    session_id: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The extension's set_state does not fail: the id is cleaned before it names a file."""
    seen: list[BaseException] = []

    def setup(api: kt.ExtensionAPI) -> None:
        def on_end(event: kt.Event, ctx: kt.ExtensionContext) -> None:
            try:
                ctx.set_state("runs", 1)
            except BaseException as exc:  # what would reach the extension
                seen.append(exc)
                raise

        api.on(kt.EventType.AGENT_END, on_end)

    with capture(strict=False, state_dir=tmp_path) as cap:
        cap.telemetry.extension_processor.load_setup("counter", setup)
        with _lenient(caplog), cap.telemetry.session(session_id) as session:
            with session.run("go"):
                pass
        handler_errors = cap.metric(
            "kit_extension_handler_errors_total", extension="counter", event="agent_end"
        )
    assert seen == []
    assert not handler_errors
    [sidecar] = [p for p in tmp_path.iterdir() if p.name.endswith(STATE_SUFFIX)]
    sidecar.name.encode("utf-8")  # a valid name: no lone surrogate
    assert "\x00" not in sidecar.name
    assert SessionState(sidecar).get("runs") == 1
