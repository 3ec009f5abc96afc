"""Exporters as users get them: through ``kt.configure(exporters=...)``, end to end."""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

import kit_telemetry as kt
from kit_telemetry import semconv as sc
from kit_telemetry.exporters.otlp_json_reader import SpanRecord, read_otlp_json

SESSION = "s-42"
MODEL = "claude-sonnet-4-5"
SECRET_PROMPT = "prompt-7f3a secret"
SECRET_ARGUMENT = "argument-91c2"
SECRET_RESULT = "result-c0de"
INTERNAL_ERRORS = "kit_telemetry_internal_errors_total"
RUN_TOTALS = (
    "llm_call_count",
    "tool_call_count",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "unpriced_call_count",
    "turn_count",
)


def _agent(tel: kt.Telemetry, session_id: str = SESSION) -> list[kt.AgentEndEvent]:
    """Two runs: a 'coder' run of two turns (3 LLM calls, 2 tools, one failing) and a short one."""
    ends: list[kt.AgentEndEvent] = []
    with tel.session(session_id) as session:
        with session.run(SECRET_PROMPT, agent_name="coder") as run:
            with run.turn() as turn:
                with turn.llm_call("anthropic", MODEL, max_tokens=1024) as call:
                    call.record_usage(
                        input_tokens=1200,
                        output_tokens=310,
                        cache_read_tokens=4000,
                        cache_write_tokens=100,
                        reasoning_tokens=10,
                        finish_reason="tool_use",
                        response_id="msg_01",
                        cost_usd=0.0100,
                    )
                with turn.tool_call("bash", call_id="t1", arguments={"cmd": SECRET_ARGUMENT}) as t:
                    t.set_result(SECRET_RESULT)
                with turn.tool_call("read", call_id="t2") as t:
                    t.set_result("no such file", is_error=True)
            with run.turn() as turn:
                with turn.llm_call("anthropic", MODEL) as call:
                    call.record_usage(input_tokens=50, output_tokens=20, cost_usd=0.0020)
                with turn.llm_call("anthropic", MODEL) as call:
                    call.record_usage(
                        input_tokens=5, output_tokens=7, finish_reason="end_turn", cost_usd=0.0003
                    )
            run.set_response("done")
        assert run.end_event is not None
        ends.append(run.end_event)
        helper = session.run("and again", agent_name="helper")
        with helper as run, run.llm_call("openai", "gpt-4o") as call:
            call.record_usage(
                input_tokens=30, output_tokens=3, finish_reason="stop", cost_usd=0.001
            )
        assert run.end_event is not None
        ends.append(run.end_event)
    return ends


def _by_name(spans: Sequence[SpanRecord], name: str) -> list[SpanRecord]:
    return [s for s in spans if s.name == name]


# --- otlp-json -------------------------------------------------------------------------------


def test_otlp_json_file_holds_every_span_with_genai_attributes(tmp_path: Path) -> None:
    """The file a Collector or ``kit-telemetry report`` reads has the whole trace, GenAI-shaped."""
    path = tmp_path / "traces.jsonl"
    tel = kt.configure(
        service_name="exporter-test",
        exporters=(f"otlp-json:{path}",),
        prometheus=CollectorRegistry(),
    )
    try:
        coder, helper = _agent(tel)
        assert tel.force_flush() is True
        read = read_otlp_json(path)
    finally:
        tel.shutdown()
    assert read.errors == []
    spans = read.spans
    assert sorted(s.name for s in spans) == sorted(
        [
            "kit.session.start",
            "invoke_agent coder",
            "turn 0",
            "turn 1",
            f"chat {MODEL}",
            f"chat {MODEL}",
            f"chat {MODEL}",
            "execute_tool bash",
            "execute_tool read",
            "invoke_agent helper",
            "turn 0",
            "chat gpt-4o",
            "kit.session.end",
        ]
    )
    for span in spans:
        assert span.attributes.get(sc.GEN_AI_CONVERSATION_ID) == SESSION, span.name
        assert span.resource_attributes.get("service.name") == "exporter-test"

    chats = _by_name(spans, f"chat {MODEL}")
    first = next(c for c in chats if c.attributes.get(sc.GEN_AI_RESPONSE_ID) == "msg_01")
    assert first.attributes[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert first.attributes[sc.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert first.attributes[sc.GEN_AI_REQUEST_MODEL] == MODEL
    assert first.attributes[sc.GEN_AI_REQUEST_MAX_TOKENS] == 1024
    assert first.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 1200 + 4000 + 100  # cache included
    assert first.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 310
    assert first.attributes[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 4000
    assert first.attributes[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 100
    assert first.attributes[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 10
    assert first.attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)
    assert first.kind == 3  # SPAN_KIND_CLIENT
    assert sorted(c.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] for c in chats) == [5, 50, 5300]

    [bash] = _by_name(spans, "execute_tool bash")
    assert bash.attributes[sc.GEN_AI_TOOL_NAME] == "bash"
    assert bash.attributes[sc.GEN_AI_TOOL_CALL_ID] == "t1"

    for end, name in ((coder, "invoke_agent coder"), (helper, "invoke_agent helper")):
        [run_span] = _by_name(spans, name)
        assert run_span.parent_span_id is None
        assert run_span.attributes[sc.GEN_AI_AGENT_NAME] == end.agent_name
        for field in RUN_TOTALS:
            assert run_span.attributes[sc.KIT_RUN_PREFIX + field] == pytest.approx(
                getattr(end, field)
            ), field
        assert run_span.attributes[sc.KIT_RUN_PREFIX + "tool_names"] == end.tool_names
    assert coder.tool_names == ("bash", "read")
    assert (coder.llm_call_count, coder.turn_count, coder.input_tokens) == (3, 2, 1255)


def test_otlp_json_run_span_carries_the_stop_reason(tmp_path: Path) -> None:
    """``kit.run.stop_reason`` on the exported run span is the end event's stop reason, so a
    trace file alone says how each run ended (the console line and reports read it there)."""
    path = tmp_path / "traces.jsonl"
    tel = kt.configure(exporters=(f"otlp-json:{path}",), prometheus=CollectorRegistry())
    try:
        coder, helper = _agent(tel)
        tel.force_flush()
        spans = read_otlp_json(path).spans
    finally:
        tel.shutdown()
    assert (coder.stop_reason, helper.stop_reason) == ("end_turn", "stop")
    [coder_span] = _by_name(spans, "invoke_agent coder")
    [helper_span] = _by_name(spans, "invoke_agent helper")
    assert coder_span.attributes.get(sc.KIT_RUN_STOP_REASON) == "end_turn"
    assert helper_span.attributes.get(sc.KIT_RUN_STOP_REASON) == "stop"


@pytest.mark.parametrize("capture_content", [False, True])
def test_content_reaches_the_file_only_with_capture_content(
    tmp_path: Path, capture_content: bool
) -> None:
    """Prompts, tool arguments and results leave the process only when the user opted in."""
    path = tmp_path / "traces.jsonl"
    tel = kt.configure(
        exporters=(f"otlp-json:{path}",),
        prometheus=CollectorRegistry(),
        capture_content=capture_content,
    )
    try:
        _agent(tel)
        tel.force_flush()
    finally:
        tel.shutdown()
    text = path.read_text(encoding="utf-8")
    assert "invoke_agent coder" in text
    for secret in (SECRET_PROMPT, SECRET_ARGUMENT, SECRET_RESULT):
        assert (secret in text) is capture_content, secret


# --- console ---------------------------------------------------------------------------------


def test_console_prints_one_line_per_run_with_its_numbers() -> None:
    """The console exporter is the demo's and the developer's view: one line per finished run."""
    stream = io.StringIO()
    tel = kt.configure(
        exporters=("console",), console_stream=stream, prometheus=CollectorRegistry()
    )
    try:
        _agent(tel)
        assert tel.force_flush() is True
    finally:
        tel.shutdown()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    coder, helper = lines
    assert coder.startswith(f"run coder (session {SESSION}): ")
    for fragment in (
        "2 turns",
        "3 LLM calls",
        "2 tools (1 failed)",
        "tokens in 1,255",
        "cache 4,000 read",
        "100 write",
        "out 337",
        "(10 reasoning)",
        "$0.0123",
    ):
        assert fragment in coder, (fragment, coder)
    assert helper.startswith(f"run helper (session {SESSION}): ")
    for fragment in ("1 turn,", "1 LLM call,", "0 tools", "tokens in 30", "out 3", "$0.0010"):
        assert fragment in helper, (fragment, helper)
    assert " s" in coder  # a duration


def test_console_line_shows_how_the_run_stopped() -> None:
    """The console line ends with the run's stop reason (``stop=end_turn``), as documented."""
    stream = io.StringIO()
    tel = kt.configure(
        exporters=("console",), console_stream=stream, prometheus=CollectorRegistry()
    )
    try:
        _agent(tel)
        tel.force_flush()
    finally:
        tel.shutdown()
    coder, helper = stream.getvalue().splitlines()
    assert coder.endswith("stop=end_turn"), coder
    assert helper.endswith("stop=stop"), helper


def test_console_line_of_a_failed_run_says_error() -> None:
    """A run that raised is shown as such, with the exception type."""
    stream = io.StringIO()
    tel = kt.configure(
        exporters=("console",), console_stream=stream, prometheus=CollectorRegistry()
    )
    try:
        with (
            pytest.raises(KeyError),
            tel.session(SESSION) as session,
            session.run("go", agent_name="coder"),
        ):
            raise KeyError("missing")
        tel.force_flush()
    finally:
        tel.shutdown()
    [line] = stream.getvalue().splitlines()
    assert line.startswith("run coder")
    assert "stop=error (KeyError)" in line


def test_console_is_the_default_when_we_own_the_provider_and_none_silences_it() -> None:
    """No exporters option means console; ``("none",)`` means nothing is exported."""
    default_stream, none_stream = io.StringIO(), io.StringIO()
    default = kt.configure(console_stream=default_stream, prometheus=CollectorRegistry())
    silent = kt.configure(
        exporters=("none",), console_stream=none_stream, prometheus=CollectorRegistry()
    )
    try:
        _agent(default, "s-default")
        ends = _agent(silent, "s-none")
        assert default.force_flush() is True
        assert silent.force_flush() is True
    finally:
        default.shutdown()
        silent.shutdown()
    assert len(default_stream.getvalue().splitlines()) == 2
    assert none_stream.getvalue() == ""
    # Exporting nothing changes no accounting.
    assert [e.llm_call_count for e in ends] == [3, 1]


def test_none_cannot_be_combined_with_another_exporter(tmp_path: Path) -> None:
    """``none`` with something else is contradictory: refused at start-up."""
    with pytest.raises(kt.ConfigError, match="none"):
        kt.configure(exporters=("none", "console"), prometheus=CollectorRegistry())


def test_a_single_exporter_given_without_a_tuple_is_one_exporter(tmp_path: Path) -> None:
    """``exporters="console"`` (or one exporter object) means that one exporter, as
    ``build_span_exporters`` documents, never the letters 'c', 'o', 'n', ..."""
    stream = io.StringIO()
    memory = InMemorySpanExporter()
    console = kt.configure(
        exporters="console", console_stream=stream, prometheus=CollectorRegistry()
    )
    single = kt.configure(exporters=memory, prometheus=CollectorRegistry())
    try:
        _agent(console)
        _agent(single)
        console.force_flush()
        single.force_flush()
    finally:
        console.shutdown()
        single.shutdown()
    assert len(stream.getvalue().splitlines()) == 2
    assert len(memory.get_finished_spans()) == 13


# --- failing exporters -----------------------------------------------------------------------


class _RaisingExporter(SpanExporter):
    """An exporter whose backend is down: every export raises."""

    def __init__(self) -> None:
        self.calls = 0
        self.threads: set[str] = set()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        raise ConnectionError("collector unreachable")

    def shutdown(self) -> None:
        pass


class _FailingExporter(SpanExporter):
    """An exporter that reports FAILURE without raising."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass


@pytest.mark.parametrize("strict", [False, True])
def test_a_raising_exporter_never_reaches_the_agent_and_is_counted(strict: bool) -> None:
    """Even with strict=True an export failure is off the agent's path: counted, not raised."""
    registry = CollectorRegistry()
    broken = _RaisingExporter()
    healthy = InMemorySpanExporter()
    tel = kt.configure(exporters=(broken, healthy), prometheus=registry, strict=strict)
    try:
        ends = _agent(tel)  # must not raise
        flushed = tel.force_flush()
        errors = registry.get_sample_value(INTERNAL_ERRORS, {"component": "exporter"})
        api_errors = registry.get_sample_value(INTERNAL_ERRORS, {"component": "api"})
    finally:
        tel.shutdown()
    assert flushed is False  # the flush reports that not everything went out
    assert broken.calls >= 1
    assert threading.main_thread().name not in broken.threads  # export ran off the agent thread
    assert errors is not None
    assert errors >= 1
    assert api_errors in (None, 0.0)
    assert [(e.llm_call_count, e.tool_call_count) for e in ends] == [(3, 2), (1, 0)]
    assert ends[0].error is None
    # The healthy exporter beside it received every span.
    assert len(healthy.get_finished_spans()) == 13


def test_an_exporter_returning_failure_is_counted() -> None:
    """A FAILURE result is a failed export too, even without an exception."""
    registry = CollectorRegistry()
    tel = kt.configure(exporters=(_FailingExporter(),), prometheus=registry)
    try:
        _agent(tel)
        tel.force_flush()
        errors = registry.get_sample_value(INTERNAL_ERRORS, {"component": "exporter"})
    finally:
        tel.shutdown()
    assert errors is not None
    assert errors >= 1
