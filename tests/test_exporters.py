"""Tests for kit_telemetry.exporters: the OTLP/JSON file, console lines, OTLP/HTTP, pipeline."""

from __future__ import annotations

import errno
import io
import json
import math
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, get_value
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from kit_telemetry import semconv
from kit_telemetry.cli import main as cli_main
from kit_telemetry.errors import ConfigError
from kit_telemetry.exporters.console import ConsoleRunExporter, format_run_line
from kit_telemetry.exporters.guarded import GuardedSpanExporter
from kit_telemetry.exporters.otlp import otlp_exporter
from kit_telemetry.exporters.otlp_json import OTLPJsonFileExporter, encode_otlp_json_lines
from kit_telemetry.exporters.otlp_json_reader import (
    SPAN_KIND_CLIENT,
    SPAN_KIND_INTERNAL,
    STATUS_CODE_ERROR,
    STATUS_CODE_UNSET,
    read_otlp_json,
)
from kit_telemetry.exporters.pipeline import (
    ExportSpanProcessor,
    build_export_processors,
    build_span_exporters,
)

OTLP_HTTP_MODULE = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
RUN = {
    field: semconv.total_attribute(semconv.KIT_RUN_PREFIX, field) for field in semconv.TOTAL_FIELDS
}
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


def _provider(service: str = "test-agent") -> TracerProvider:
    return TracerProvider(resource=Resource.create({"service.name": service}))


def _make_agent_spans(provider: TracerProvider) -> None:
    """A run with a turn, a failing CLIENT call with an event, and a tool call, plus a link."""
    tracer = provider.get_tracer("kit_telemetry", "0.1.0")
    with tracer.start_as_current_span(
        "invoke_agent coder",
        attributes={
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_AGENT,
            semconv.GEN_AI_AGENT_NAME: "coder",
            semconv.GEN_AI_CONVERSATION_ID: "s-1",
            RUN["tool_names"]: ("bash", "read_file"),
            RUN["cost_usd"]: 0.0123,
            RUN["llm_call_count"]: 1,
        },
    ) as run:
        run.add_event(semconv.EVENT_USER_INPUT, {"kit.user_input.length": 18})
        with tracer.start_as_current_span("turn 0", attributes={semconv.KIT_TURN_INDEX: 0}):
            with tracer.start_as_current_span(
                "chat claude-sonnet-4-5",
                kind=SpanKind.CLIENT,
                attributes={
                    semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
                    semconv.GEN_AI_REQUEST_MODEL: "claude-sonnet-4-5",
                    semconv.GEN_AI_USAGE_INPUT_TOKENS: 5200,
                    semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("tool_use",),
                    "kit.test.flag": True,
                    "kit.test.ratio": 0.25,
                    "kit.test.big": 2**62,
                    "kit.test.flags": (True, False),
                    "kit.test.counts": (1, 2, 3),
                    "kit.test.ratios": (0.5, 1.5),
                },
                links=[Link(run.get_span_context(), {"kit.test.link": "run"})],
            ) as call:
                call.add_event("kit.test.retry", {"attempt": 2, "delay_s": 0.5})
                call.set_status(Status(StatusCode.ERROR, "rate limited"))
            with tracer.start_as_current_span(
                "execute_tool bash",
                attributes={
                    semconv.GEN_AI_OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
                    semconv.GEN_AI_TOOL_NAME: "bash",
                },
            ):
                pass


def _spans_by_name(spans: Sequence[ReadableSpan]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


def _all_spans_json(path: Path) -> list[dict[str, Any]]:
    spans = []
    for line in path.read_text().splitlines():
        for resource_spans in json.loads(line)["resourceSpans"]:
            for scope_spans in resource_spans["scopeSpans"]:
                spans.extend(scope_spans["spans"])
    return spans


def _attribute_values(encoded: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["key"]: item["value"] for item in encoded}


# --- OTLP/JSON file ------------------------------------------------------------------------


@pytest.fixture
def exported(tmp_path: Path) -> Iterator[tuple[Path, dict[str, ReadableSpan]]]:
    """Agent spans exported through a BatchSpanProcessor into a file, and the spans themselves."""
    path = tmp_path / "traces.jsonl"
    memory = InMemorySpanExporter()
    provider = _provider()
    provider.add_span_processor(BatchSpanProcessor(OTLPJsonFileExporter(path)))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _make_agent_spans(provider)
    provider.shutdown()
    yield path, _spans_by_name(memory.get_finished_spans())


def test_otlp_json_file_reads_back_every_span_with_its_tree(
    exported: tuple[Path, dict[str, ReadableSpan]],
) -> None:
    """The report command relies on ids, parents, kinds, times and values surviving the file."""
    path, originals = exported
    result = read_otlp_json(path)
    assert result.errors == []
    assert result.path == str(path)
    read = {span.name: span for span in result.spans}
    assert set(read) == set(originals)
    for name, original in originals.items():
        record = read[name]
        assert original.context is not None
        assert record.trace_id == format(original.context.trace_id, "032x")
        assert record.span_id == format(original.context.span_id, "016x")
        expected_parent = format(original.parent.span_id, "016x") if original.parent else None
        assert record.parent_span_id == expected_parent
        assert record.start_ns == original.start_time
        assert record.end_ns == original.end_time
        assert record.duration_ns == original.end_time - original.start_time
        assert record.attributes == dict(original.attributes or {})
        assert record.resource_attributes["service.name"] == "test-agent"
        assert record.scope_name == "kit_telemetry"
        assert record.scope_version == "0.1.0"
    chat = read["chat claude-sonnet-4-5"]
    assert chat.kind == SPAN_KIND_CLIENT
    assert chat.status_code == STATUS_CODE_ERROR
    assert chat.status_message == "rate limited"
    assert chat.attributes["kit.test.big"] == 2**62
    assert chat.attributes["kit.test.flags"] == (True, False)
    assert [(e.name, e.attributes) for e in chat.events] == [
        ("kit.test.retry", {"attempt": 2, "delay_s": 0.5})
    ]
    assert chat.events[0].time_ns == originals["chat claude-sonnet-4-5"].events[0].timestamp
    run = read["invoke_agent coder"]
    assert [(link.span_id, link.attributes) for link in chat.links] == [
        (run.span_id, {"kit.test.link": "run"})
    ]
    assert run.kind == SPAN_KIND_INTERNAL
    assert run.status_code == STATUS_CODE_UNSET
    assert run.parent_span_id is None
    assert read["turn 0"].parent_span_id == run.span_id
    assert read["execute_tool bash"].parent_span_id == read["turn 0"].span_id
    assert len({span.trace_id for span in result.spans}) == 1


def test_otlp_json_lines_follow_the_otlp_json_encoding(
    exported: tuple[Path, dict[str, ReadableSpan]],
) -> None:
    """The Collector's otlpjsonfile receiver wants hex ids, string 64-bit ints and enum numbers."""
    path, originals = exported
    lines = path.read_text().splitlines()
    request = json.loads(lines[0])
    assert list(request) == ["resourceSpans"]
    resource_spans = request["resourceSpans"][0]
    resource = _attribute_values(resource_spans["resource"]["attributes"])
    assert resource["service.name"] == {"stringValue": "test-agent"}
    scope_spans = resource_spans["scopeSpans"][0]
    assert scope_spans["scope"] == {"name": "kit_telemetry", "version": "0.1.0"}

    spans = {span["name"]: span for span in _all_spans_json(path)}
    chat = spans["chat claude-sonnet-4-5"]
    original = originals["chat claude-sonnet-4-5"]
    assert original.context is not None and original.parent is not None
    assert chat["traceId"] == format(original.context.trace_id, "032x")
    assert HEX32.match(chat["traceId"]) and HEX16.match(chat["spanId"])
    assert chat["parentSpanId"] == format(original.parent.span_id, "016x")
    assert chat["kind"] == 3
    assert chat["startTimeUnixNano"] == str(original.start_time)
    assert chat["endTimeUnixNano"] == str(original.end_time)
    assert chat["status"] == {"message": "rate limited", "code": 2}
    values = _attribute_values(chat["attributes"])
    assert values[semconv.GEN_AI_REQUEST_MODEL] == {"stringValue": "claude-sonnet-4-5"}
    assert values[semconv.GEN_AI_USAGE_INPUT_TOKENS] == {"intValue": "5200"}
    assert values["kit.test.big"] == {"intValue": str(2**62)}
    assert values["kit.test.flag"] == {"boolValue": True}
    assert values["kit.test.ratio"] == {"doubleValue": 0.25}
    assert values["kit.test.counts"] == {
        "arrayValue": {"values": [{"intValue": "1"}, {"intValue": "2"}, {"intValue": "3"}]}
    }
    assert values["kit.test.flags"] == {
        "arrayValue": {"values": [{"boolValue": True}, {"boolValue": False}]}
    }
    assert values[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == {
        "arrayValue": {"values": [{"stringValue": "tool_use"}]}
    }
    assert chat["events"] == [
        {
            "timeUnixNano": str(original.events[0].timestamp),
            "name": "kit.test.retry",
            "attributes": [
                {"key": "attempt", "value": {"intValue": "2"}},
                {"key": "delay_s", "value": {"doubleValue": 0.5}},
            ],
        }
    ]
    run = spans["invoke_agent coder"]
    assert chat["links"][0]["spanId"] == run["spanId"]
    assert chat["links"][0]["attributes"] == [
        {"key": "kit.test.link", "value": {"stringValue": "run"}}
    ]
    assert "parentSpanId" not in run
    assert run["kind"] == 1
    assert run["status"] == {"code": 0}
    assert run["events"][0]["name"] == semconv.EVENT_USER_INPUT


def test_every_span_kind_is_written_as_its_otlp_number(tmp_path: Path) -> None:
    """OTLP numbers kinds from 1; the Python SDK numbers them from 0, an easy off-by-one."""
    provider = _provider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("kinds")
    for kind in SpanKind:
        tracer.start_span(kind.name, kind=kind).end()
    (line,) = encode_otlp_json_lines(memory.get_finished_spans())
    spans = json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert {span["name"]: span["kind"] for span in spans} == {
        "INTERNAL": 1,
        "SERVER": 2,
        "CLIENT": 3,
        "PRODUCER": 4,
        "CONSUMER": 5,
    }


def test_spans_are_grouped_by_resource_and_scope() -> None:
    """One resourceSpans per resource and one scopeSpans per scope, as the Collector writes them."""
    memory = InMemorySpanExporter()
    providers = [_provider("svc-a"), _provider("svc-b")]
    for provider in providers:
        provider.add_span_processor(SimpleSpanProcessor(memory))
    for provider in providers:
        for scope in ("scope-1", "scope-2"):
            tracer = provider.get_tracer(scope)
            tracer.start_span(f"{scope}-x").end()
            tracer.start_span(f"{scope}-y").end()
    (line,) = encode_otlp_json_lines(memory.get_finished_spans())
    grouped = {
        _attribute_values(rs["resource"]["attributes"])["service.name"]["stringValue"]: {
            ss["scope"]["name"]: [span["name"] for span in ss["spans"]] for ss in rs["scopeSpans"]
        }
        for rs in json.loads(line)["resourceSpans"]
    }
    expected_scopes = {
        "scope-1": ["scope-1-x", "scope-1-y"],
        "scope-2": ["scope-2-x", "scope-2-y"],
    }
    assert grouped == {"svc-a": expected_scopes, "svc-b": expected_scopes}


def test_big_batches_are_split_into_lines_under_the_cap(tmp_path: Path) -> None:
    """The Collector's file receiver cuts lines over its max_log_size (1 MiB by default)."""
    provider = _provider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("big")
    for i in range(60):
        tracer.start_span(f"span-{i}", attributes={"payload": "x" * 200}).end()
    spans = memory.get_finished_spans()
    path = tmp_path / "split.jsonl"
    exporter = OTLPJsonFileExporter(path, max_line_bytes=4000)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    raw_lines = path.read_bytes().split(b"\n")
    assert raw_lines[-1] == b""
    assert len(raw_lines) - 1 > 1
    assert all(len(line) <= 4000 for line in raw_lines[:-1])
    assert [span.name for span in read_otlp_json(path).spans] == [f"span-{i}" for i in range(60)]


def test_non_finite_doubles_use_the_proto3_json_strings(tmp_path: Path) -> None:
    """JSON has no NaN; writing a bare NaN would make the whole line unreadable."""
    provider = _provider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    values = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf}
    provider.get_tracer("t").start_span("doubles", attributes=values).end()
    (line,) = encode_otlp_json_lines(memory.get_finished_spans())
    encoded = _attribute_values(
        json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]
    )
    assert encoded == {
        "nan": {"doubleValue": "NaN"},
        "inf": {"doubleValue": "Infinity"},
        "ninf": {"doubleValue": "-Infinity"},
    }
    path = tmp_path / "d.jsonl"
    path.write_text(line + "\n")
    (record,) = read_otlp_json(path).spans
    assert math.isnan(record.attributes["nan"])  # type: ignore[arg-type]
    assert record.attributes["inf"] == math.inf
    assert record.attributes["ninf"] == -math.inf


def test_exporter_appends_to_an_existing_file_and_stops_after_shutdown(tmp_path: Path) -> None:
    """Several runs of the demo share one traces file; a closed exporter must not write."""
    path = tmp_path / "t.jsonl"
    path.write_text("")
    provider = _provider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("t").start_span("one").end()
    spans = memory.get_finished_spans()
    for _ in range(2):
        exporter = OTLPJsonFileExporter(path)
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        exporter.shutdown()
        assert exporter.export(spans) is SpanExportResult.FAILURE
    assert [span.name for span in read_otlp_json(path).spans] == ["one", "one"]
    assert exporter.path == str(path)


def test_threads_sharing_an_exporter_write_whole_lines(tmp_path: Path) -> None:
    """The write lock must keep concurrent batches from interleaving inside a line."""
    provider = _provider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    for i in range(3):
        tracer.start_span(f"s{i}", attributes={"pad": "y" * 5000}).end()
    spans = memory.get_finished_spans()
    path = tmp_path / "threads.jsonl"
    exporter = OTLPJsonFileExporter(path)
    start = threading.Barrier(8)

    def writer() -> None:
        start.wait()
        for _ in range(50):
            exporter.export(spans)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    exporter.shutdown()
    result = read_otlp_json(path)
    assert result.errors == []
    assert len(result.spans) == 8 * 50 * 3
    assert len(path.read_text().splitlines()) == 8 * 50


def test_processes_appending_to_one_file_never_interleave(tmp_path: Path) -> None:
    """Agent processes may share one otlp-json file (O_APPEND, one write per line)."""
    path = tmp_path / "shared.jsonl"
    script = textwrap.dedent(
        """
        import sys
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from kit_telemetry.exporters.otlp_json import OTLPJsonFileExporter

        memory = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        provider.get_tracer("p").start_span(sys.argv[2], attributes={"pad": "z" * 100_000}).end()
        spans = memory.get_finished_spans()
        exporter = OTLPJsonFileExporter(sys.argv[1])
        for _ in range(40):
            exporter.export(spans)
        exporter.shutdown()
        """
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(path), f"proc-{i}"]) for i in range(4)
    ]
    for process in processes:
        assert process.wait(timeout=120) == 0
    result = read_otlp_json(path)
    assert result.errors == []
    names = [span.name for span in result.spans]
    assert sorted(set(names)) == [f"proc-{i}" for i in range(4)]
    assert all(names.count(f"proc-{i}") == 40 for i in range(4))


class _DiskFillsMidway:
    """An ``os.write`` that behaves like a disk filling up: a short write, then ENOSPC.

    Calls before ``fail_on`` (counted from 1) write normally; that call writes half of what
    it is given and the next call raises ENOSPC; calls after that write normally again.
    """

    def __init__(self, fail_on: int) -> None:
        self.calls = 0
        self.fail_on = fail_on

    def __call__(self, fd: int, data: memoryview) -> int:
        self.calls += 1
        if self.calls == self.fail_on:
            return os.write(fd, data[: max(1, len(data) // 2)])
        if self.calls == self.fail_on + 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)


def _agent_spans() -> Sequence[ReadableSpan]:
    provider = _provider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _make_agent_spans(provider)
    return memory.get_finished_spans()


def _report_exit_code(path: Path) -> tuple[int, str]:
    err = io.StringIO()
    code = cli_main(["report", str(path)], out=io.StringIO(), err=err)
    return code, err.getvalue()


def test_a_write_cut_short_by_a_full_disk_is_rolled_back_and_reported(tmp_path: Path) -> None:
    """Half a batch must not stay in the file, or the next batch is glued to it and lost."""
    spans = _agent_spans()
    path = tmp_path / "full.jsonl"
    writer = _DiskFillsMidway(fail_on=2)
    exporter = OTLPJsonFileExporter(path, write=writer)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    before = path.read_bytes()
    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert writer.calls == 3  # the short write happened, then the error
    assert path.read_bytes() == before
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert all("resourceSpans" in json.loads(line) for line in lines)
    result = read_otlp_json(path)
    assert result.errors == []
    assert len(result.spans) == 2 * len(spans)
    assert _report_exit_code(path) == (0, "")


def test_a_write_that_makes_no_progress_fails_instead_of_spinning(tmp_path: Path) -> None:
    """A writer returning 0 would loop forever; it is a failed batch, with nothing left."""
    path = tmp_path / "zero.jsonl"
    exporter = OTLPJsonFileExporter(path, write=lambda fd, data: 0)
    assert exporter.export(_agent_spans()) is SpanExportResult.FAILURE
    assert path.read_bytes() == b""


def test_a_file_ending_in_a_cut_line_gets_the_next_batch_on_a_line_of_its_own(
    tmp_path: Path,
) -> None:
    """A cut line left by a crash or an older writer costs that line only, not our batch."""
    spans = _agent_spans()
    path = tmp_path / "cut.jsonl"
    (line,) = encode_otlp_json_lines(spans)
    path.write_text(line + "\n" + line[: len(line) // 3])
    exporter = OTLPJsonFileExporter(path)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    result = read_otlp_json(path)
    assert len(result.spans) == 3 * len(spans)
    assert len(result.errors) == 1 and result.errors[0].startswith("line 2: not valid JSON")
    assert path.read_text().count("\n") == 4  # no blank line before the second batch


def test_a_real_full_disk_never_leaves_a_broken_line(small_disk: Path) -> None:
    """On a small tmpfs: fill it with spans, free it, write again; every line still parses."""
    filler = small_disk / "filler"
    filler.write_bytes(b"x" * 32 * 1024)
    path = small_disk / "traces.jsonl"
    spans = _agent_spans()
    exporter = OTLPJsonFileExporter(path)
    results = [exporter.export(spans) for _ in range(200)]
    assert SpanExportResult.FAILURE in results  # the disk did fill up
    written = results.count(SpanExportResult.SUCCESS)
    filler.unlink()
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert all("resourceSpans" in json.loads(line) for line in lines[:-1])
    result = read_otlp_json(path)
    assert result.errors == []
    assert len(result.spans) == (written + 1) * len(spans)


# --- reader --------------------------------------------------------------------------------


def _one_span_line(trace_id: str, span_id: str, name: str) -> str:
    span = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": 1,
        "startTimeUnixNano": "1000",
        "endTimeUnixNano": "3000",
    }
    return json.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [span]}]}]})


def test_reader_keeps_what_it_can_read_around_garbage_and_a_truncated_last_line(
    tmp_path: Path,
) -> None:
    """A crashed writer or a stray line must not hide the rest of the file from the report."""
    good_a = _one_span_line("a" * 32, "1" * 16, "a")
    good_b = _one_span_line("b" * 32, "2" * 16, "b")
    cut = _one_span_line("c" * 32, "3" * 16, "c")
    path = tmp_path / "damaged.jsonl"
    path.write_text(f"{good_a}\nthis is not json\n\n{good_b}\n[1, 2]\n{cut[: len(cut) // 2]}")
    result = read_otlp_json(path)
    assert [span.name for span in result.spans] == ["a", "b"]
    assert result.spans[0].duration_ns == 2000
    assert len(result.errors) == 3
    assert result.errors[0].startswith("line 2: not valid JSON")
    assert result.errors[1].startswith("line 5: not a trace request")
    assert result.errors[2].startswith("line 6: truncated")


def test_reader_recovers_a_batch_glued_to_a_cut_one(tmp_path: Path) -> None:
    """A writer that ran out of disk glues its next batch to the cut one: keep the batch."""
    good_a = _one_span_line("a" * 32, "1" * 16, "a")
    cut = _one_span_line("c" * 32, "3" * 16, "c")
    glued = _one_span_line("b" * 32, "2" * 16, "b")
    cut_part = cut[: len(cut) // 2]
    path = tmp_path / "glued.jsonl"
    path.write_text(f"{good_a}\n{cut_part}{glued}\n{cut_part}{cut_part}\n")
    result = read_otlp_json(path)
    assert [span.name for span in result.spans] == ["a", "b"]
    assert result.errors[0] == (
        f"line 2: the first {len(cut_part)} bytes are a cut record (skipped); "
        "the complete one glued after it was read"
    )
    assert result.errors[1].startswith("line 3: not valid JSON")
    assert len(result.errors) == 2


def test_reader_skips_a_malformed_span_but_keeps_its_neighbours(tmp_path: Path) -> None:
    """One bad field costs one span, and the error says exactly where it was."""
    spans = [
        {"traceId": "a" * 32, "spanId": "1" * 16, "name": "ok-1"},
        {"traceId": "not-an-id", "spanId": "2" * 16, "name": "bad"},
        {"traceId": "a" * 32, "spanId": "3" * 16, "name": "ok-2", "startTimeUnixNano": "12"},
    ]
    line = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
    path = tmp_path / "bad-span.jsonl"
    path.write_text(line + "\n")
    result = read_otlp_json(path)
    assert [span.name for span in result.spans] == ["ok-1", "ok-2"]
    assert result.spans[1].start_ns == 12
    assert result.errors == [
        "line 1: resourceSpans[0].scopeSpans[0].spans[1].traceId: "
        "'not-an-id' is not a 16-byte id in hex"
    ]


def test_reader_accepts_base64_ids_enum_names_and_numeric_ints(tmp_path: Path) -> None:
    """Files from protobuf's generic JSON mapping use base64 ids and enum names; read them too."""
    import base64

    trace = bytes(range(16))
    span = {
        "traceId": base64.b64encode(trace).decode(),
        "spanId": base64.b64encode(bytes(range(8))).decode(),
        "parentSpanId": "",
        "name": "foreign",
        "kind": "SPAN_KIND_SERVER",
        "startTimeUnixNano": 5,
        "endTimeUnixNano": "9",
        "status": {"code": "STATUS_CODE_ERROR"},
        "attributes": [{"key": "n", "value": {"intValue": 7}}, {"key": "empty", "value": {}}],
    }
    path = tmp_path / "foreign.jsonl"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}) + "\n")
    result = read_otlp_json(path)
    assert result.errors == []
    (record,) = result.spans
    assert record.trace_id == trace.hex()
    assert record.span_id == "0001020304050607"
    assert record.parent_span_id is None
    assert (record.kind, record.status_code, record.start_ns, record.end_ns) == (2, 2, 5, 9)
    assert record.attributes == {"n": 7, "empty": None}


_attribute_values_strategy = st.one_of(
    st.text(max_size=20),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=5), max_size=4).map(tuple),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=4).map(tuple),
    st.lists(st.floats(allow_nan=False), max_size=4).map(tuple),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    attributes=st.dictionaries(
        st.text(min_size=1, max_size=10), _attribute_values_strategy, max_size=8
    )
)
def test_any_attribute_value_round_trips_through_the_file(
    tmp_path: Path, attributes: dict[str, Any]
) -> None:
    """Whatever the SDK accepts as an attribute comes back from the file unchanged."""
    provider = _provider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("h").start_span("h", attributes=attributes).end()
    (span,) = memory.get_finished_spans()
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join(encode_otlp_json_lines([span])) + "\n")
    (record,) = read_otlp_json(path).spans
    assert record.attributes == dict(span.attributes or {})


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_a_file_cut_anywhere_yields_its_complete_lines_and_at_most_one_error(
    tmp_path: Path, cut: int
) -> None:
    """A writer killed mid-line loses at most that line; everything before it is still read."""
    lines = [_one_span_line(f"{i:032x}", f"{i + 1:016x}", f"s{i}") for i in range(30)]
    data = ("\n".join(lines) + "\n").encode()
    cut = min(cut, len(data))
    path = tmp_path / "cut.jsonl"
    path.write_bytes(data[:cut])
    result = read_otlp_json(path)
    complete = data[:cut].count(b"\n")
    names = [span.name for span in result.spans]
    partial = data[:cut].rsplit(b"\n", 1)[-1]
    if partial and partial == lines[complete].encode():
        # Cut right before the newline: the last line is whole, just unterminated.
        assert names == [f"s{i}" for i in range(complete + 1)]
        assert result.errors == []
    else:
        assert names == [f"s{i}" for i in range(complete)]
        assert len(result.errors) == (1 if partial.strip() else 0)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(junk=st.binary(max_size=300))
def test_reader_never_raises_on_arbitrary_bytes(tmp_path: Path, junk: bytes) -> None:
    """The report command must survive any file it is pointed at."""
    path = tmp_path / "junk.jsonl"
    path.write_bytes(junk)
    result = read_otlp_json(path)
    assert all(error.startswith("line ") for error in result.errors)


# --- console -------------------------------------------------------------------------------


def _run_attributes(**overrides: object) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_AGENT,
        semconv.GEN_AI_AGENT_NAME: "coder",
        semconv.GEN_AI_CONVERSATION_ID: "s-1",
        RUN["turn_count"]: 3,
        RUN["llm_call_count"]: 3,
        RUN["tool_call_count"]: 5,
        RUN["tool_names"]: ("bash", "bash", "read", "edit", "bash"),
        RUN["input_tokens"]: 1200,
        RUN["cache_read_tokens"]: 4000,
        RUN["cache_write_tokens"]: 0,
        RUN["output_tokens"]: 310,
        RUN["reasoning_tokens"]: 0,
        RUN["cost_usd"]: 0.0123,
        RUN["unpriced_call_count"]: 0,
        RUN["duration_ms"]: 1840.0,
        semconv.KIT_RUN_STOP_REASON: "end_turn",
    }
    attributes.update({RUN.get(key, key): value for key, value in overrides.items()})
    return attributes


def test_console_writes_one_line_per_finished_run(tmp_path: Path) -> None:
    """The demo's summary: one line per run from the run span's totals, failed tools counted."""
    stream = io.StringIO()
    provider = _provider()
    provider.add_span_processor(BatchSpanProcessor(ConsoleRunExporter(stream)))
    tracer = provider.get_tracer("t")
    chat = {semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT}
    run = tracer.start_as_current_span("invoke_agent coder", attributes=_run_attributes())
    with run, tracer.start_as_current_span("turn 0"):
        for index, failed in enumerate([True, False, True]):
            attributes: dict[str, Any] = {
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
                semconv.KIT_TOOL_IS_ERROR: failed,
            }
            with tracer.start_as_current_span(f"execute_tool t{index}", attributes=attributes):
                pass
        with tracer.start_as_current_span("chat m", attributes=chat):
            pass
    provider.shutdown()
    assert stream.getvalue() == (
        "run coder (session s-1): 3 turns, 3 LLM calls, 5 tools (2 failed), "
        "tokens in 1,200 / cache 4,000 read / 0 write / out 310, $0.0123, 1.84 s, stop=end_turn\n"
    )


def test_console_ignores_spans_that_are_not_runs() -> None:
    """Only run spans make lines; a turn or a chat span writes nothing."""
    stream = io.StringIO()
    provider = _provider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleRunExporter(stream)))
    tracer = provider.get_tracer("t")
    chat = {semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT}
    with (
        tracer.start_as_current_span("turn 0"),
        tracer.start_as_current_span("chat m", attributes=chat),
    ):
        pass
    provider.shutdown()
    assert stream.getvalue() == ""


def test_console_line_for_an_unpriced_failed_run_with_one_of_everything() -> None:
    """Unknown models say 'unpriced' (never a silent $0) and singular counts read naturally."""
    attributes = _run_attributes(
        turn_count=1,
        llm_call_count=1,
        tool_call_count=1,
        cost_usd=0.0,
        unpriced_call_count=1,
        reasoning_tokens=42,
        input_tokens=1_234_567,
    )
    attributes[semconv.KIT_RUN_STOP_REASON] = "error"
    attributes[semconv.ERROR_TYPE] = "TimeoutError"
    del attributes[semconv.GEN_AI_CONVERSATION_ID]
    assert format_run_line(attributes) == (
        "run coder: 1 turn, 1 LLM call, 1 tool, tokens in 1,234,567 / cache 4,000 read / 0 write"
        " / out 310 (42 reasoning), unpriced, 1.84 s, stop=error (TimeoutError)"
    )


def test_console_line_falls_back_to_the_span_for_name_duration_and_error() -> None:
    """Foreign invoke_agent spans may lack kit totals; the line still says what is known."""
    attributes = {semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_AGENT, RUN["cost_usd"]: 1.5}
    attributes[RUN["llm_call_count"]] = 3
    attributes[RUN["unpriced_call_count"]] = 1
    line = format_run_line(
        attributes, span_name="invoke_agent planner", duration_s=0.5, is_error=True
    )
    assert line == (
        "run planner: 0 turns, 3 LLM calls, 0 tools, tokens in 0 / cache 0 read / 0 write / out 0,"
        " ≥$1.5000 (+1 unpriced call), 0.50 s, stop=error"
    )


def test_console_defaults_to_the_current_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """With no stream given, lines go to sys.stderr as it is when they are written."""
    provider = _provider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleRunExporter()))
    provider.get_tracer("t").start_span("invoke_agent coder", attributes=_run_attributes()).end()
    provider.shutdown()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("run coder (session s-1): 3 turns")


def test_console_reports_failure_on_a_closed_stream() -> None:
    """A closed stream is an exporter failure to count, not an exception in the agent."""
    stream = io.StringIO()
    stream.close()
    exporter = ConsoleRunExporter(stream)
    provider = _provider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("t").start_span("invoke_agent x", attributes=_run_attributes()).end()
    assert exporter.export(memory.get_finished_spans()) is SpanExportResult.FAILURE


# --- specs ---------------------------------------------------------------------------------


def test_build_span_exporters_accepts_every_documented_form(tmp_path: Path) -> None:
    """configure(exporters=...) takes these strings and SpanExporter objects, in order."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    mine = InMemorySpanExporter()
    stream = io.StringIO()
    exporters = build_span_exporters(
        ["console", f"otlp-json:{tmp_path / 't.jsonl'}", "otlp", mine], console_stream=stream
    )
    assert [type(e) for e in exporters] == [
        ConsoleRunExporter,
        OTLPJsonFileExporter,
        OTLPSpanExporter,
        InMemorySpanExporter,
    ]
    assert exporters[3] is mine
    file_exporter = exporters[1]
    assert isinstance(file_exporter, OTLPJsonFileExporter)
    assert file_exporter.path == str(tmp_path / "t.jsonl")
    assert build_span_exporters(["none"]) == []
    assert build_span_exporters(()) == []
    (single,) = build_span_exporters("console")
    assert isinstance(single, ConsoleRunExporter)
    for exporter in exporters:
        exporter.shutdown()


def test_otlp_json_path_expands_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'otlp-json:~/traces.jsonl' is what people type in a config file."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (exporter,) = build_span_exporters(["otlp-json:~/traces.jsonl"])
    assert isinstance(exporter, OTLPJsonFileExporter)
    assert exporter.path == str(tmp_path / "traces.jsonl")
    exporter.shutdown()


ALLOWED = "console, otlp-json:PATH, otlp, none (or a SpanExporter object)"


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["consol"], f"exporters: 'consol' is not one of {ALLOWED}"),
        (["OTLP"], f"exporters: 'OTLP' is not one of {ALLOWED}"),
        (["otlp-json"], f"exporters: 'otlp-json' is not one of {ALLOWED}"),
        ([42], f"exporters: 42 (int) is not one of {ALLOWED}"),
        (["otlp-json:"], "exporters: 'otlp-json:' needs a file path after 'otlp-json:'"),
        (["otlp-json:  "], "exporters: 'otlp-json:  ' needs a file path after 'otlp-json:'"),
        ([InMemorySpanExporter], "exporters: InMemorySpanExporter is a class; pass an instance"),
        (["console", "console"], "exporters: 'console' is listed twice"),
        (["none", "console"], "exporters: 'none' cannot be combined with other exporters"),
    ],
)
def test_bad_exporter_specs_raise_config_error_naming_the_value(
    specs: list[Any], message: str
) -> None:
    """Bad configuration fails at start-up and says what would have been accepted."""
    with pytest.raises(ConfigError) as caught:
        build_span_exporters(specs)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)


def test_a_bad_spec_opens_no_file_for_the_good_ones(tmp_path: Path) -> None:
    """Every spec is checked before anything is built, so a typo leaves nothing behind."""
    good = tmp_path / "good.jsonl"
    with pytest.raises(ConfigError):
        build_span_exporters([f"otlp-json:{good}", "bogus"])
    assert not good.exists()


def test_an_unopenable_trace_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing folder is found at configure time, with the path and the OS reason."""
    target = tmp_path / "no-such-dir" / "t.jsonl"
    with pytest.raises(ConfigError, match=r"cannot open .*no-such-dir.* No such file"):
        build_span_exporters([f"otlp-json:{target}"])


# --- OTLP/HTTP -----------------------------------------------------------------------------


class _CollectorHandler(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(  # type: ignore[attr-defined]
            (self.path, self.headers["Content-Type"], body)
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[ThreadingHTTPServer]:
    """An OTLP/HTTP endpoint on 127.0.0.1 that records what it is sent."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CollectorHandler)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_otlp_exporter_sends_spans_where_the_environment_says(
    collector: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'otlp' follows OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, like every OpenTelemetry SDK."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    host, port = collector.server_address[:2]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://{host!s}:{port}/v1/traces")
    provider = _provider()
    for processor in build_export_processors(build_span_exporters(["otlp"])):
        provider.add_span_processor(processor)
    _make_agent_spans(provider)
    assert provider.force_flush(10_000)
    provider.shutdown()
    received = collector.received  # type: ignore[attr-defined]
    assert received
    path, content_type, _ = received[0]
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    names: set[str] = set()
    for _, _, body in received:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                names.update(span.name for span in scope_spans.spans)
    assert names == {"invoke_agent coder", "turn 0", "chat claude-sonnet-4-5", "execute_tool bash"}


def test_otlp_exporter_keyword_arguments_override_the_environment(
    collector: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """otlp_exporter(**kwargs) passes its arguments to OTLPSpanExporter."""
    host, port = collector.server_address[:2]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/never")
    exporter = otlp_exporter(endpoint=f"http://{host!s}:{port}/custom", timeout=5)
    memory = InMemorySpanExporter()
    provider = _provider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("t").start_span("x").end()
    assert exporter.export(memory.get_finished_spans()) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert [path for path, _, _ in collector.received] == ["/custom"]  # type: ignore[attr-defined]


def test_otlp_without_its_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """exporters=("otlp",) without the extra is a configuration error with the fix in it."""
    monkeypatch.setitem(sys.modules, OTLP_HTTP_MODULE, None)
    with pytest.raises(ConfigError, match=re.escape("pip install 'kit-telemetry[otlp]'")):
        otlp_exporter()
    with pytest.raises(ConfigError, match=r"exporter 'otlp' needs the package"):
        build_span_exporters(["console", "otlp"])


# --- guarded export ------------------------------------------------------------------------


class _RaisingExporter(SpanExporter):
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        raise RuntimeError("collector exploded")


class _FailingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.FAILURE


class _HangingExporter(SpanExporter):
    """Blocks in export (and in shutdown) until released, like a dead network peer."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait()
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.wait()


class _Errors:
    """An on_error sink, like the host's internal-errors counter."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[tuple[str, BaseException | None]] = []

    def __call__(self, component: str, exc: BaseException | None) -> None:
        with self.lock:
            self.items.append((component, exc))

    def snapshot(self) -> list[tuple[str, BaseException | None]]:
        with self.lock:
            return list(self.items)


def _make_spans_in_thread(provider: TracerProvider, count: int, timeout_s: float) -> bool:
    """Create spans on another thread; True if that finished within timeout_s."""
    tracer = provider.get_tracer("agent")

    def work() -> None:
        for i in range(count):
            with tracer.start_as_current_span(f"step {i}"):
                pass

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return not thread.is_alive()


def test_a_raising_exporter_is_reported_and_never_reaches_the_agent() -> None:
    """An exception in export is counted as an exporter error; span code never sees it."""
    errors = _Errors()
    inner = _RaisingExporter()
    provider = _provider()
    (processor,) = build_export_processors([inner], on_error=errors, schedule_delay_s=0.01)
    provider.add_span_processor(processor)
    _make_agent_spans(provider)
    assert processor.force_flush(5_000) is False
    provider.shutdown()
    items = errors.snapshot()
    assert inner.calls >= 1
    assert len(items) == inner.calls
    assert all(component == "exporter" for component, _ in items)
    assert all(
        isinstance(exc, RuntimeError) and str(exc) == "collector exploded" for _, exc in items
    )
    assert isinstance(processor, ExportSpanProcessor)
    assert processor.guard.failure_count == inner.calls
    assert processor.exporter is inner


def test_an_exporter_returning_failure_is_counted_without_an_exception() -> None:
    """A FAILURE result is an exporter error too, reported with exc=None."""
    errors = _Errors()
    guard = GuardedSpanExporter(_FailingExporter(), on_error=errors)
    memory = InMemorySpanExporter()
    provider = _provider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("t").start_span("x").end()
    assert guard.export(memory.get_finished_spans()) is SpanExportResult.FAILURE
    assert errors.snapshot() == [("exporter", None)]
    assert guard.failure_count == 1


def test_an_on_error_callback_that_raises_is_contained() -> None:
    """A broken metrics hook must not turn an exporter error into an agent error."""

    def broken(component: str, exc: BaseException | None) -> None:
        raise ValueError("hook broke")

    guard = GuardedSpanExporter(_RaisingExporter(), on_error=broken)
    assert guard.export([]) is SpanExportResult.FAILURE
    assert guard.failure_count == 1


def test_a_hanging_exporter_blocks_neither_spans_nor_flush_nor_shutdown() -> None:
    """A dead collector must cost the agent nothing: spans flow, flush and shutdown return."""
    errors = _Errors()
    inner = _HangingExporter()
    provider = _provider()
    (processor,) = build_export_processors(
        [inner],
        on_error=errors,
        export_timeout_s=0.2,
        shutdown_timeout_s=0.5,
        schedule_delay_s=0.01,
        max_queue_size=64,
        max_export_batch_size=8,
    )
    provider.add_span_processor(processor)
    try:
        assert _make_spans_in_thread(provider, 10, timeout_s=10)
        assert inner.entered.wait(10), "the exporter was never called"
        # The exporter is stuck now; far more spans than the queue holds still go through.
        assert _make_spans_in_thread(provider, 2_000, timeout_s=10)

        started = time.monotonic()
        assert processor.force_flush(timeout_millis=300) is False
        assert time.monotonic() - started < 3

        deadline = time.monotonic() + 10
        while not errors.snapshot() and time.monotonic() < deadline:
            time.sleep(0.01)
        first_component, first_error = errors.snapshot()[0]
        assert first_component == "exporter"
        assert isinstance(first_error, TimeoutError)
        assert "did not return in time" in str(first_error)

        started = time.monotonic()
        provider.shutdown()
        assert time.monotonic() - started < 5
        assert any(
            isinstance(exc, TimeoutError) and "shutdown() did not return" in str(exc)
            for _, exc in errors.snapshot()
        )
        assert all(component == "exporter" for component, _ in errors.snapshot())
        processor.shutdown()  # idempotent, and still bounded
    finally:
        inner.release.set()


def test_a_hung_exporter_gets_no_new_batches_until_it_returns() -> None:
    """One stuck export costs one thread; later batches are refused at once, then resume."""
    errors = _Errors()
    inner = _HangingExporter()
    guard = GuardedSpanExporter(inner, on_error=errors, export_timeout_s=0.1)
    memory = InMemorySpanExporter()
    provider = _provider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("t").start_span("x").end()
    spans = memory.get_finished_spans()
    try:
        assert guard.export(spans) is SpanExportResult.FAILURE
        started = time.monotonic()
        assert guard.export(spans) is SpanExportResult.FAILURE
        assert time.monotonic() - started < 0.1
        assert [type(exc) for _, exc in errors.snapshot()] == [TimeoutError, TimeoutError]
        assert "still running" in str(errors.snapshot()[1][1])
    finally:
        inner.release.set()
    deadline = time.monotonic() + 5
    while guard.export(spans) is not SpanExportResult.SUCCESS:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert inner.exported >= 2
    guard.shutdown()
    assert guard.export(spans) is SpanExportResult.FAILURE


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_inherit_a_stuck_export() -> None:
    """A worker forked while the parent's export hung (gunicorn --preload) still exports."""
    parent = os.getpid()
    release = threading.Event()

    class HangsInParent(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            if os.getpid() == parent:
                release.wait()
            return SpanExportResult.SUCCESS

    guard = GuardedSpanExporter(HangsInParent(), export_timeout_s=0.2)
    try:
        assert guard.export([]) is SpanExportResult.FAILURE
        pid = os.fork()
        if pid == 0:
            os._exit(0 if guard.export([]) is SpanExportResult.SUCCESS else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        release.set()


def test_export_runs_with_instrumentation_suppressed() -> None:
    """The batch processor's suppress flag must reach the export thread, or an instrumented
    HTTP client inside the exporter would trace its own requests forever."""
    seen: list[object] = []

    class Probe(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            seen.append(get_value(_SUPPRESS_INSTRUMENTATION_KEY))
            seen.append(threading.current_thread().name)
            return SpanExportResult.SUCCESS

    provider = _provider()
    (processor,) = build_export_processors([Probe()])
    provider.add_span_processor(processor)
    provider.get_tracer("t").start_span("x").end()
    assert processor.force_flush(5_000)
    provider.shutdown()
    assert seen[0] is True
    assert str(seen[1]).startswith("kit-telemetry-export-Probe")


def test_healthy_pipeline_delivers_every_span_to_the_file(tmp_path: Path) -> None:
    """The demo's wiring: otlp-json through the guarded batch processor, flushed at shutdown."""
    path = tmp_path / "demo.jsonl"
    errors = _Errors()
    provider = _provider()
    for processor in build_export_processors(
        build_span_exporters([f"otlp-json:{path}"]), on_error=errors
    ):
        provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for i in range(1_000):
        tracer.start_span(f"s{i}").end()
    provider.shutdown()
    result = read_otlp_json(path)
    assert result.errors == []
    assert [span.name for span in result.spans] == [f"s{i}" for i in range(1_000)]
    assert errors.snapshot() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"export_timeout_s": 0}, "export_timeout_s: 0 is not a positive number of seconds"),
        ({"shutdown_timeout_s": -1.0}, "shutdown_timeout_s: -1.0 is not a positive number"),
        ({"schedule_delay_s": math.nan}, "schedule_delay_s: nan is not a positive number"),
        ({"max_queue_size": 0}, "max_queue_size: 0 is not a positive integer"),
        ({"max_export_batch_size": 1.5}, "max_export_batch_size: 1.5 is not a positive integer"),
    ],
)
def test_bad_processor_settings_raise_config_error(kwargs: dict[str, Any], message: str) -> None:
    """Export settings are configuration: checked up front, naming the field and value."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_export_processors([InMemorySpanExporter()], **kwargs)


def test_library_modules_never_print() -> None:
    """Library code writes only to injected streams and logging, never print()."""
    package = Path(__file__).resolve().parent.parent / "kit_telemetry"
    modules = sorted(package.rglob("*.py"))
    assert len(modules) > 40  # the whole package, not a hand-kept list
    for module in modules:
        assert re.search(r"\bprint\(", module.read_text()) is None, module
