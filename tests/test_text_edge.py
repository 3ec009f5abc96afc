"""Text is cleaned at the edge: ids, names and reasons reach spans, files and exporters as
valid UTF-8 of bounded length, one bad value never costs another span, and strict mode names
the field and the value."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

import kit_telemetry as kt
from kit_telemetry import semconv as sc
from kit_telemetry.exporters.otlp_json_reader import read_otlp_json
from kit_telemetry.state import SessionState, sidecar_path
from kit_telemetry.testing import capture
from kit_telemetry.text import MAX_TEXT_CHARS, REPLACEMENT_CHAR, clean_text

CONTEXT_COMMAND = str(Path(__file__).parent / "extensions_fixtures" / "context_command.py")
INTERNAL_ERRORS = "kit_telemetry_internal_errors_total"
MODEL = "claude-sonnet-4-5"

# The field as the error names it, and the span attribute that shows the value.
FIELDS = {
    "session_id": ("session.session_id", sc.GEN_AI_CONVERSATION_ID),
    "user": ("session.user", sc.KIT_SESSION_USER),
    "session_file": ("session.session_file", sc.KIT_SESSION_FILE),
    "agent_name": ("run.agent_name", sc.GEN_AI_AGENT_NAME),
    "provider": ("llm_call.provider", sc.GEN_AI_PROVIDER_NAME),
    "model": ("llm_call.model", sc.GEN_AI_REQUEST_MODEL),
    "tool_name": ("tool_call.name", sc.GEN_AI_TOOL_NAME),
    "call_id": ("tool_call.call_id", sc.GEN_AI_TOOL_CALL_ID),
    "finish_reason": ("record_usage.finish_reason", sc.GEN_AI_RESPONSE_FINISH_REASONS),
    "response_id": ("record_usage.response_id", sc.GEN_AI_RESPONSE_ID),
}
SESSION_FIELDS = {"session_id", "user", "session_file"}
BAD_VALUES = {"surrogate": "bad\ud800text", "nul": "bad\x00text"}


def _agent(tel: kt.Telemetry, tmp_path: Path, field: str = "", bad: str = "") -> None:
    """A session of two runs (10 spans) with ``bad`` as the value of ``field``."""

    def value(name: str, good: str) -> str:
        return bad if name == field else good

    session_file = tmp_path / f"{value('session_file', 'session')}.jsonl"
    with tel.session(
        value("session_id", "s-1"), user=value("user", "ann"), session_file=session_file
    ) as session:
        for index in range(2):
            with (
                session.run("go", agent_name=value("agent_name", "coder")) as run,
                run.turn() as turn,
            ):
                with turn.llm_call(value("provider", "anthropic"), value("model", MODEL)) as call:
                    call.record_usage(
                        input_tokens=10,
                        output_tokens=5,
                        finish_reason=value("finish_reason", "tool_use"),
                        response_id=value("response_id", f"msg_{index}"),
                    )
                with turn.tool_call(value("tool_name", "bash"), call_id=value("call_id", "c-1")):
                    pass


def _texts(span: ReadableSpan) -> Iterator[str]:
    yield span.name
    for item in (span.attributes or {}).values():
        if isinstance(item, str):
            yield item
        elif isinstance(item, tuple):
            yield from (v for v in item if isinstance(v, str))


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
@pytest.mark.parametrize("field", sorted(FIELDS))
def test_bad_text_is_cleaned_counted_and_every_span_exported_when_lenient(
    field: str, kind: str, tmp_path: Path
) -> None:
    """One bad value becomes valid text on its span; no other span is lost, in memory or on disk."""
    path = tmp_path / "traces.jsonl"
    memory = InMemorySpanExporter()
    registry = CollectorRegistry()
    tel = kt.Telemetry(exporters=(f"otlp-json:{path}", memory), prometheus=registry)
    try:
        _agent(tel, tmp_path, field, BAD_VALUES[kind])
        tel.force_flush()
        spans = memory.get_finished_spans()
        written = read_otlp_json(path)
        errors = registry.get_sample_value(INTERNAL_ERRORS, {"component": "api"})
    finally:
        tel.shutdown()
    assert len(spans) == 10
    for span in spans:
        for text in _texts(span):
            text.encode("utf-8")  # strict: raises on a lone surrogate
            assert "\x00" not in text
    attribute = FIELDS[field][1]
    shown = [
        v if isinstance(v, str) else v[0]
        for s in spans
        if isinstance(v := (s.attributes or {}).get(attribute), (str, tuple))
    ]
    assert shown and all("bad\ufffdtext" in v for v in shown)
    # Each value given is reported: the session's once, a run's or a call's once per run.
    assert errors == (1 if field in SESSION_FIELDS else 2)
    assert written.errors == []
    assert {s.span_id for s in written.spans} == {format(s.context.span_id, "016x") for s in spans}


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
@pytest.mark.parametrize("field", sorted(FIELDS))
def test_bad_text_raises_usage_error_naming_field_and_value_when_strict(
    field: str, kind: str, tmp_path: Path
) -> None:
    """In tests a bad id fails at the call that gave it, and the message itself is valid text."""
    bad = BAD_VALUES[kind]
    with capture() as cap, pytest.raises(kt.UsageError) as info:
        _agent(cap.telemetry, tmp_path, field, bad)
    message = str(info.value)
    assert FIELDS[field][0] in message
    assert ascii(bad)[1:-1] in message  # inside a path, for the session file
    message.encode("utf-8")


class _Collector(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: keeps each request it is sent."""

    requests: list[ExportTraceServiceRequest]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)  # refuses a string that is not UTF-8
        self.requests.append(request)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    requests: list[ExportTraceServiceRequest] = []
    handler = type("Handler", (_Collector,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_otlp_http_receives_every_span_of_a_batch_with_one_bad_model_name(
    tmp_path: Path,
) -> None:
    """A lone surrogate in one model name used to make the exporter drop the whole batch."""
    memory = InMemorySpanExporter()
    with _collector() as (endpoint, requests):
        otlp = OTLPSpanExporter(endpoint=endpoint, compression=Compression.NoCompression)
        tel = kt.Telemetry(exporters=(otlp, memory), prometheus=CollectorRegistry())
        try:
            _agent(tel, tmp_path, "model", "claude-\udcff")
            tel.force_flush()
        finally:
            tel.shutdown()
    received = {
        span.span_id.hex(): span
        for request in requests
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }
    expected = {format(s.context.span_id, "016x") for s in memory.get_finished_spans()}
    assert len(expected) == 10
    assert set(received) == expected
    chats = [s for s in received.values() if s.name.startswith("chat ")]
    assert [s.name for s in chats] == ["chat claude-\ufffd", "chat claude-\ufffd"]


def test_set_state_works_for_a_session_id_with_a_nul_and_a_lone_surrogate(
    tmp_path: Path,
) -> None:
    """The id names the sidecar file: a bad one must not raise into the extension."""
    state_dir = tmp_path / "state"
    with capture(state_dir=state_dir, strict=False) as cap:
        cap.telemetry.load_extension(CONTEXT_COMMAND)
        with cap.telemetry.session("a\x00b\ud800c") as session:
            ctx = cap.telemetry.run_command("ctx", session=session)
            assert isinstance(ctx, kt.ExtensionContext)
            ctx.set_state("k", [1, 2])
            assert ctx.get_state("k") == [1, 2]
    [sidecar] = state_dir.iterdir()
    assert json.loads(sidecar.read_text(encoding="utf-8")) == {"k": [1, 2]}


@pytest.mark.parametrize("session_id", ["a\x00b", "a\ud800", "\udfff", "a\ud800\x00"])
def test_sidecar_path_names_a_file_for_any_session_id(tmp_path: Path, session_id: str) -> None:
    """An extension may ask for the state of an id it was given: any id gets its own file."""
    path = sidecar_path(session_file=None, session_id=session_id, state_dir=tmp_path)
    assert path is not None and path.parent == tmp_path
    store = SessionState(path)
    store.set("k", session_id.encode("utf-8", "replace").decode())
    store.close()
    assert path.exists()
    others = [o for o in ("a", "ab", "a\ud801", "a\ufffd") if o != session_id]
    assert all(
        sidecar_path(session_file=None, session_id=o, state_dir=tmp_path) != path for o in others
    )


def test_long_names_are_bounded_with_a_marker_and_stay_distinct() -> None:
    """A long id is cut to the bound, yet two ids that share a long start stay two ids."""
    first, second = "m" * 1000 + "1", "m" * 1000 + "2"
    with capture(strict=False) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            for model in (first, second):
                with turn.llm_call("anthropic", model):
                    pass
        found = [(s.attributes or {}).get(sc.GEN_AI_REQUEST_MODEL) for s in cap.spans()]
        models = [m for m in found if isinstance(m, str)]
    assert len(models) == 2 and models[0] != models[1]
    for shown in models:
        assert len(shown) == MAX_TEXT_CHARS
        assert shown.startswith("m" * 200) and "…#" in shown


def test_a_long_name_raises_naming_its_length_when_strict() -> None:
    """Strict mode says which field was too long and by how much."""
    with (
        capture() as cap,
        cap.telemetry.session("s") as session,
        session.run("go") as run,
        run.turn() as turn,
        pytest.raises(kt.UsageError) as info,
    ):
        turn.llm_call("anthropic", "m" * 300)
    assert "llm_call.model" in str(info.value) and "300 characters" in str(info.value)


def test_clean_text_keeps_clean_text_and_joins_surrogate_pairs() -> None:
    """Valid text is not touched; a pair spelled as two surrogates is the character it means."""
    text = "ünïcødé 😀 tool_use"
    assert clean_text(text) is text
    assert clean_text("a\ud83d\ude00b") == "a😀b"
    assert clean_text("a\ud800b\x00") == f"a{REPLACEMENT_CHAR}b{REPLACEMENT_CHAR}"


@given(
    st.text(alphabet=st.characters(exclude_categories=())), st.integers(min_value=20, max_value=300)
)
def test_clean_text_is_valid_bounded_and_idempotent(value: str, max_chars: int) -> None:
    """Whatever a user gives, the result encodes as UTF-8, has no NUL, fits, and is stable."""
    cleaned = clean_text(value, max_chars=max_chars)
    cleaned.encode("utf-8")
    assert "\x00" not in cleaned
    assert len(cleaned) <= max_chars
    assert clean_text(cleaned, max_chars=max_chars) == cleaned
