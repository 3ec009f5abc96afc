"""OTLP/JSON lines: the span file the OpenTelemetry Collector reads, encoded and appended.

Each line of the file is one ``ExportTraceServiceRequest`` in the OTLP/JSON encoding
(https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding), the format of the
Collector's ``otlpjsonfile`` receiver and ``file`` exporter::

    {"resourceSpans":[{"resource":{"attributes":[...]},
                       "scopeSpans":[{"scope":{"name":"...","version":"..."},"spans":[...]}]}]}

The encoder is written by hand because protobuf's generic JSON mapping renders trace and span
ids as base64, which OTLP/JSON forbids (they must be lowercase hex). The rules followed:
lowerCamelCase keys; enums as integers (``kind``: 1 INTERNAL .. 5 CONSUMER; status ``code``:
0 UNSET, 1 OK, 2 ERROR); 64-bit integers (``startTimeUnixNano``, ``intValue`` ...) as decimal
strings; attribute values as ``AnyValue`` objects; fields at their default value left out.

``otlp_json_reader.read_otlp_json`` reads such a file back.
"""

from __future__ import annotations

import base64
import errno
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext

from kit_telemetry._flock import exclusive
from kit_telemetry._fork import after_fork_in_child

__all__ = [
    "OTLPJsonFileExporter",
    "Writer",
    "encode_otlp_json_lines",
]

_logger = logging.getLogger("kit_telemetry")

# The Collector's otlpjsonfile receiver reads lines with fileconsumer, whose max_log_size
# defaults to 1 MiB; a longer line would be cut, so big batches are split across lines.
DEFAULT_MAX_LINE_BYTES = 1024 * 1024

_Json = dict[str, object]


def _any_value(value: object) -> _Json:
    # bool before int: bool is a subclass of int and must stay a boolValue.
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        if math.isfinite(value):
            return {"doubleValue": value}
        # JSON has no NaN or Infinity; proto3 JSON spells them as these strings.
        return {
            "doubleValue": "NaN"
            if math.isnan(value)
            else ("Infinity" if value > 0 else "-Infinity")
        }
    if isinstance(value, (bytes, bytearray)):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": _key_values(value)}}
    if isinstance(value, Sequence):
        return {"arrayValue": {"values": [_any_value(item) for item in value]}}
    if value is None:
        return {}
    return {"stringValue": str(value)}


def _key_values(attributes: Mapping[str, object] | None) -> list[_Json]:
    if not attributes:
        return []
    return [{"key": str(key), "value": _any_value(value)} for key, value in attributes.items()]


def _with_attributes(target: _Json, attributes: Mapping[str, object] | None, dropped: int) -> _Json:
    encoded = _key_values(attributes)
    if encoded:
        target["attributes"] = encoded
    if dropped:
        target["droppedAttributesCount"] = dropped
    return target


def _span_flags(context: SpanContext, parent: SpanContext | None) -> int:
    # OTLP Span.flags: the W3C trace flags in bits 0-7, bit 8 "parent remoteness is known",
    # bit 9 "parent is remote" (what opentelemetry-exporter-otlp sends too).
    flags = int(context.trace_flags) | 0x100
    if parent is not None and parent.is_remote:
        flags |= 0x200
    return flags


def _encode_span(span: ReadableSpan) -> _Json:
    context = span.context
    if context is None:
        raise ValueError(f"span {span.name!r} has no span context")
    out: _Json = {
        "traceId": format(context.trace_id, "032x"),
        "spanId": format(context.span_id, "016x"),
    }
    trace_state = context.trace_state.to_header() if context.trace_state else ""
    if trace_state:
        out["traceState"] = trace_state
    if span.parent is not None:
        out["parentSpanId"] = format(span.parent.span_id, "016x")
    out["flags"] = _span_flags(context, span.parent)
    out["name"] = span.name
    out["kind"] = span.kind.value + 1
    out["startTimeUnixNano"] = str(span.start_time or 0)
    out["endTimeUnixNano"] = str(span.end_time or 0)
    _with_attributes(out, span.attributes, span.dropped_attributes)
    if span.events:
        out["events"] = [
            _with_attributes(
                {"timeUnixNano": str(event.timestamp), "name": event.name},
                event.attributes,
                getattr(event, "dropped_attributes", 0),
            )
            for event in span.events
        ]
    if span.dropped_events:
        out["droppedEventsCount"] = span.dropped_events
    if span.links:
        out["links"] = [
            _encode_link(link.context, link.attributes, link.dropped_attributes)
            for link in span.links
        ]
    if span.dropped_links:
        out["droppedLinksCount"] = span.dropped_links
    status: _Json = {}
    if span.status.description:
        status["message"] = span.status.description
    status["code"] = span.status.status_code.value
    out["status"] = status
    return out


def _encode_link(
    context: SpanContext, attributes: Mapping[str, object] | None, dropped: int
) -> _Json:
    out: _Json = {
        "traceId": format(context.trace_id, "032x"),
        "spanId": format(context.span_id, "016x"),
    }
    trace_state = context.trace_state.to_header() if context.trace_state else ""
    if trace_state:
        out["traceState"] = trace_state
    _with_attributes(out, attributes, dropped)
    out["flags"] = int(context.trace_flags) | 0x100 | (0x200 if context.is_remote else 0)
    return out


def _dumps(value: object) -> str:
    # ASCII output makes len() equal the byte count, which the line-size cap relies on.
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _resource_fragment(span: ReadableSpan) -> str:
    resource = span.resource
    fragment = '"resource":' + _dumps(_with_attributes({}, resource.attributes, 0))
    if resource.schema_url:
        fragment += ',"schemaUrl":' + _dumps(resource.schema_url)
    return fragment


def _scope_fragment(span: ReadableSpan) -> str:
    scope = span.instrumentation_scope
    encoded: _Json = {}
    schema_url = ""
    if scope is not None:
        encoded["name"] = scope.name
        if scope.version:
            encoded["version"] = scope.version
        _with_attributes(encoded, scope.attributes, 0)
        schema_url = scope.schema_url or ""
    fragment = '"scope":' + _dumps(encoded)
    if schema_url:
        fragment += ',"schemaUrl":' + _dumps(schema_url)
    return fragment


_EMPTY_LINE_BYTES = len('{"resourceSpans":[]}')


def _render_line(groups: dict[str, dict[str, list[str]]]) -> str:
    resource_spans = []
    for resource, scopes in groups.items():
        scope_spans = ",".join(
            "{" + scope + ',"spans":[' + ",".join(spans) + "]}" for scope, spans in scopes.items()
        )
        resource_spans.append("{" + resource + ',"scopeSpans":[' + scope_spans + "]}")
    return '{"resourceSpans":[' + ",".join(resource_spans) + "]}"


def encode_otlp_json_lines(
    spans: Iterable[ReadableSpan], *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> list[str]:
    """Encode finished spans as OTLP/JSON ``ExportTraceServiceRequest`` lines.

    Spans are grouped by resource and instrumentation scope. Usually all spans fit on one
    line; when they would exceed ``max_line_bytes`` they are spread over several lines (a
    single span bigger than that still gets a line of its own).

    Args:
        spans: finished spans, in the order they should appear.
        max_line_bytes: soft cap on the length of one line, newline excluded.

    Returns:
        The lines, without trailing newlines; pure ASCII.
    """
    lines: list[str] = []
    groups: dict[str, dict[str, list[str]]] = {}
    size = _EMPTY_LINE_BYTES
    # Resources and scopes are shared by many spans; encode each object once per call.
    resource_cache: dict[int, str] = {}
    scope_cache: dict[int, str] = {}
    for span in spans:
        resource = resource_cache.get(id(span.resource))
        if resource is None:
            resource = resource_cache[id(span.resource)] = _resource_fragment(span)
        scope = scope_cache.get(id(span.instrumentation_scope))
        if scope is None:
            scope = scope_cache[id(span.instrumentation_scope)] = _scope_fragment(span)
        encoded = _dumps(_encode_span(span))
        # Upper bound of what this span adds: itself, a comma, and new group headers.
        extra = len(encoded) + 1
        scopes = groups.get(resource)
        if scopes is None:
            extra += len(resource) + len(scope) + 48
        elif scope not in scopes:
            extra += len(scope) + 24
        if groups and size + extra > max_line_bytes:
            lines.append(_render_line(groups))
            groups, size = {}, _EMPTY_LINE_BYTES
            extra = len(encoded) + len(resource) + len(scope) + 49
        groups.setdefault(resource, {}).setdefault(scope, []).append(encoded)
        size += extra
    if groups:
        lines.append(_render_line(groups))
    return lines


Writer = Callable[[int, memoryview], int]
"""Writes bytes to a file descriptor and returns how many it wrote: ``os.write``'s shape."""


class OTLPJsonFileExporter(SpanExporter):
    """Appends finished spans to a file as OTLP/JSON lines, one whole batch or nothing.

    The file is opened once, with ``O_APPEND``, when the exporter is made (so a bad path fails
    at configuration time). Each ``export`` call writes all of its lines with a single
    ``os.write`` where it can, under a lock, so lines from threads of this process, and from
    other processes appending to the same file, never interleave. The data goes straight to
    the operating system (there is no user-space buffer to flush).

    A batch is a whole record: when a write fails or stops short (a full disk, a quota), the
    file is truncated back to where the batch began and ``export`` returns FAILURE, so the
    file never holds half a line for the next batch to be glued to. Other kit-telemetry
    processes appending to the same file wait on an advisory lock (``flock``, where the
    platform has it) for that check-write-rollback step, so a rollback never cuts their
    lines. If the rollback itself fails, or the file already ended in a cut line when it was
    opened, the next batch starts with a newline, which keeps the damage to one line that
    readers skip.

    Args:
        path: the file to append to; created if missing (mode 0o644 before umask).
        max_line_bytes: soft cap on one line's length; see ``encode_otlp_json_lines``.
        write: the function that writes to the file descriptor, ``os.write`` by default;
            tests pass one that stops midway, as a full disk does.

    Raises:
        OSError: the file cannot be opened for appending.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        write: Writer = os.write,
    ) -> None:
        self._path = os.fspath(path)
        self._max_line_bytes = max_line_bytes
        self._write = write
        self._lock = threading.Lock()
        self._fd: int | None = _open_append(self._path)
        # True when the file may end in a cut line: the next batch must begin a fresh one.
        self._needs_newline = not _ends_cleanly(self._path)
        after_fork_in_child(self, OTLPJsonFileExporter._after_fork)

    def _after_fork(self) -> None:
        # The child may have inherited the lock held by a thread that does not exist there.
        self._lock = threading.Lock()
        # flock belongs to the open file description, which a forked child shares with its
        # parent; a description of its own makes the lock exclude the parent too.
        if self._fd is not None:
            try:
                fd = _open_append(self._path)
            except OSError:
                return  # keep the shared one: appends stay whole, only rollbacks may race
            os.close(self._fd)
            self._fd = fd

    @property
    def path(self) -> str:
        """The file the spans are appended to."""
        return self._path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Append ``spans`` as OTLP/JSON lines.

        Returns:
            SUCCESS when every line is in the file; FAILURE after ``shutdown`` or when the
            write failed, in which case none of the batch is left in the file.
        """
        if not spans:
            return SpanExportResult.SUCCESS
        data = "".join(
            line + "\n"
            for line in encode_otlp_json_lines(spans, max_line_bytes=self._max_line_bytes)
        )
        payload = data.encode("ascii")
        with self._lock:
            if self._fd is None:
                _logger.warning(
                    "OTLP/JSON exporter for %s is shut down; %d spans dropped",
                    self._path,
                    len(spans),
                )
                return SpanExportResult.FAILURE
            with exclusive(self._fd):
                if self._needs_newline:
                    payload = b"\n" + payload
                try:
                    self._append_whole(self._fd, payload)
                except OSError:
                    _logger.warning(
                        "cannot append %d spans to %s; the batch was not written",
                        len(spans),
                        self._path,
                        exc_info=True,
                    )
                    return SpanExportResult.FAILURE
                self._needs_newline = False
        return SpanExportResult.SUCCESS

    def _append_whole(self, fd: int, payload: bytes) -> None:
        """Append all of ``payload`` or, on failure, leave the file as it was and raise."""
        start = os.fstat(fd).st_size
        view = memoryview(payload)
        try:
            while view:
                written = self._write(fd, view)
                if written <= 0:
                    raise OSError(errno.EIO, f"write returned {written} with bytes pending")
                view = view[written:]
        except BaseException:
            # BaseException: an interrupt midway must not leave half a line either.
            if len(view) < len(payload):
                self._roll_back(fd, start)
            raise

    def _roll_back(self, fd: int, start: int) -> None:
        try:
            os.ftruncate(fd, start)
        except OSError:
            self._needs_newline = True
            _logger.error(
                "could not remove a partly written batch from %s; the next batch starts on "
                "a new line and readers will skip the cut one",
                self._path,
                exc_info=True,
            )

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered in the process, so there is nothing to flush."""
        return True

    def shutdown(self) -> None:
        """Close the file. Idempotent; later exports return FAILURE."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _open_append(path: str) -> int:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags, 0o644)


def _ends_cleanly(path: str) -> bool:
    """Whether ``path`` is empty or ends with a newline (True when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            if handle.seek(0, os.SEEK_END) == 0:
                return True
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"
    except OSError:
        return True  # a write-only file: nothing to check, and nothing we could fix
