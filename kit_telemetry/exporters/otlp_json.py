"""OTLP/JSON lines: the span file the OpenTelemetry Collector reads, and a reader for it.

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

``read_otlp_json`` turns such a file back into plain frozen ``SpanRecord`` s; it keeps going
past lines it cannot read and says which ones in ``OTLPJsonFile.errors``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext

__all__ = [
    "AttributeValue",
    "OTLPJsonFile",
    "OTLPJsonFileExporter",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_CONSUMER",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_SERVER",
    "STATUS_CODE_ERROR",
    "STATUS_CODE_OK",
    "STATUS_CODE_UNSET",
    "SpanEventRecord",
    "SpanLinkRecord",
    "SpanRecord",
    "encode_otlp_json_lines",
    "read_otlp_json",
]

_logger = logging.getLogger(__name__)

# OTLP enum values (opentelemetry-proto trace.proto); the Python SDK's SpanKind is one lower.
SPAN_KIND_INTERNAL = 1
SPAN_KIND_SERVER = 2
SPAN_KIND_CLIENT = 3
SPAN_KIND_PRODUCER = 4
SPAN_KIND_CONSUMER = 5
STATUS_CODE_UNSET = 0
STATUS_CODE_OK = 1
STATUS_CODE_ERROR = 2

# The Collector's otlpjsonfile receiver reads lines with fileconsumer, whose max_log_size
# defaults to 1 MiB; a longer line would be cut, so big batches are split across lines.
DEFAULT_MAX_LINE_BYTES = 1024 * 1024

# proto3 JSON also allows enum names; foreign writers sometimes use them.
_KIND_NAMES = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": SPAN_KIND_INTERNAL,
    "SPAN_KIND_SERVER": SPAN_KIND_SERVER,
    "SPAN_KIND_CLIENT": SPAN_KIND_CLIENT,
    "SPAN_KIND_PRODUCER": SPAN_KIND_PRODUCER,
    "SPAN_KIND_CONSUMER": SPAN_KIND_CONSUMER,
}
_STATUS_NAMES = {
    "STATUS_CODE_UNSET": STATUS_CODE_UNSET,
    "STATUS_CODE_OK": STATUS_CODE_OK,
    "STATUS_CODE_ERROR": STATUS_CODE_ERROR,
}
_SPECIAL_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

AttributeValue: TypeAlias = (
    str
    | bool
    | int
    | float
    | bytes
    | tuple["AttributeValue", ...]
    | dict[str, "AttributeValue"]
    | None
)
"""A decoded ``AnyValue``: arrays become tuples, key-value lists become dicts, empty is None."""

_Json = dict[str, object]


# --- encoding ------------------------------------------------------------------------------


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


class OTLPJsonFileExporter(SpanExporter):
    """Appends finished spans to a file as OTLP/JSON lines.

    The file is opened once, with ``O_APPEND``, when the exporter is made (so a bad path fails
    at configuration time). Each ``export`` call writes all of its lines with a single
    ``os.write``, under a lock, so lines from threads of this process, and from other
    processes appending to the same file, never interleave. The data goes straight to the
    operating system (there is no user-space buffer to flush).

    Args:
        path: the file to append to; created if missing (mode 0o644 before umask).
        max_line_bytes: soft cap on one line's length; see ``encode_otlp_json_lines``.

    Raises:
        OSError: the file cannot be opened for appending.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    ) -> None:
        self._path = os.fspath(path)
        self._max_line_bytes = max_line_bytes
        self._lock = threading.Lock()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        self._fd: int | None = os.open(self._path, flags, 0o644)
        if hasattr(os, "register_at_fork"):
            # A forked child shares the O_APPEND descriptor (fine) but may inherit the lock
            # held by a thread that does not exist there.
            ref = weakref.ref(self)

            def after_in_child() -> None:
                exporter = ref()
                if exporter is not None:
                    exporter._lock = threading.Lock()

            os.register_at_fork(after_in_child=after_in_child)

    @property
    def path(self) -> str:
        """The file the spans are appended to."""
        return self._path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Append ``spans`` as OTLP/JSON lines; FAILURE after ``shutdown`` or on an I/O error."""
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
            try:
                _write_all(self._fd, payload)
            except OSError:
                _logger.warning("cannot append spans to %s", self._path, exc_info=True)
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered in the process, so there is nothing to flush."""
        return True

    def shutdown(self) -> None:
        """Close the file. Idempotent; later exports return FAILURE."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _write_all(fd: int, payload: bytes) -> None:
    # A regular-file write is normally complete in one call; loop only for the rare short
    # write (disk nearly full, signal), accepting that such a line may then interleave.
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SpanEventRecord:
    """A span event as read back from OTLP/JSON."""

    name: str
    time_ns: int
    attributes: dict[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpanLinkRecord:
    """A link to another span as read back from OTLP/JSON."""

    trace_id: str
    span_id: str
    attributes: dict[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpanRecord:
    """One span as read back from OTLP/JSON, with plain Python values.

    Attributes:
        trace_id: 32 lowercase hex digits.
        span_id: 16 lowercase hex digits.
        parent_span_id: 16 lowercase hex digits, or None for a root span.
        name: the span name, e.g. ``"invoke_agent coder"``.
        kind: the OTLP kind (``SPAN_KIND_INTERNAL`` .. ``SPAN_KIND_CONSUMER``; 0 unspecified).
        start_ns: start time, Unix nanoseconds.
        end_ns: end time, Unix nanoseconds.
        attributes: attribute values decoded (``intValue`` to int, arrays to tuples, ...).
        events: the span events, in order.
        links: the span links, in order.
        status_code: ``STATUS_CODE_UNSET``, ``STATUS_CODE_OK`` or ``STATUS_CODE_ERROR``.
        status_message: the status description ("" when none).
        resource_attributes: the attributes of the span's resource (``service.name`` ...).
        scope_name: the instrumentation scope's name ("" when none).
        scope_version: the instrumentation scope's version ("" when none).
    """

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    events: tuple[SpanEventRecord, ...] = ()
    links: tuple[SpanLinkRecord, ...] = ()
    status_code: int = STATUS_CODE_UNSET
    status_message: str = ""
    resource_attributes: dict[str, AttributeValue] = field(default_factory=dict)
    scope_name: str = ""
    scope_version: str = ""

    @property
    def duration_ns(self) -> int:
        """``end_ns - start_ns``."""
        return self.end_ns - self.start_ns


@dataclass(frozen=True, slots=True, kw_only=True)
class OTLPJsonFile:
    """What ``read_otlp_json`` found in a file.

    Attributes:
        path: the file that was read.
        spans: every span that could be decoded, in file order.
        errors: one message per line (or span) that could not be read, each starting with
            ``"line N: "``; empty when the whole file was readable.
    """

    path: str
    spans: list[SpanRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class _DecodeError(ValueError):
    pass


def _object(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise _DecodeError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _list(value: object, where: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _DecodeError(f"{where}: expected an array, got {type(value).__name__}")
    return value


def _int(value: object, where: str) -> int:
    # 64-bit integers are strings in OTLP/JSON, but plain numbers are accepted too.
    if isinstance(value, bool):
        raise _DecodeError(f"{where}: expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise _DecodeError(f"{where}: expected an integer, got {value!r}")


def _enum(value: object, names: Mapping[str, int], where: str) -> int:
    if isinstance(value, str) and value in names:
        return names[value]
    return _int(value, where)


def _id(value: object, size: int, where: str) -> str:
    if not isinstance(value, str):
        raise _DecodeError(f"{where}: expected a hex string, got {value!r}")
    text = value.lower()
    if len(text) == size * 2 and all(c in "0123456789abcdef" for c in text):
        return text
    # Writers using protobuf's generic JSON mapping put base64 here; accept it.
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == size:
        return raw.hex()
    raise _DecodeError(f"{where}: {value!r} is not a {size}-byte id in hex")


def _decode_any(value: object, where: str) -> AttributeValue:
    body = _object(value, where)
    if not body:
        return None
    if "stringValue" in body:
        text = body["stringValue"]
        if not isinstance(text, str):
            raise _DecodeError(f"{where}: stringValue is not a string")
        return text
    if "boolValue" in body:
        flag = body["boolValue"]
        if not isinstance(flag, bool):
            raise _DecodeError(f"{where}: boolValue is not a boolean")
        return flag
    if "intValue" in body:
        return _int(body["intValue"], f"{where}.intValue")
    if "doubleValue" in body:
        number = body["doubleValue"]
        if isinstance(number, str) and number in _SPECIAL_DOUBLES:
            return _SPECIAL_DOUBLES[number]
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            return float(number)
        raise _DecodeError(f"{where}: doubleValue {number!r} is not a number")
    if "arrayValue" in body:
        values = _object(body["arrayValue"], f"{where}.arrayValue").get("values")
        return tuple(
            _decode_any(item, f"{where}.arrayValue.values[{i}]")
            for i, item in enumerate(_list(values, f"{where}.arrayValue.values"))
        )
    if "kvlistValue" in body:
        values = _object(body["kvlistValue"], f"{where}.kvlistValue").get("values")
        return _decode_attributes(values, f"{where}.kvlistValue.values")
    if "bytesValue" in body:
        try:
            return base64.b64decode(str(body["bytesValue"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _DecodeError(f"{where}: bytesValue is not base64") from exc
    raise _DecodeError(f"{where}: unknown AnyValue {sorted(body)}")


def _decode_attributes(value: object, where: str) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for i, item in enumerate(_list(value, where)):
        pair = _object(item, f"{where}[{i}]")
        key = pair.get("key")
        if not isinstance(key, str):
            raise _DecodeError(f"{where}[{i}]: missing key")
        out[key] = _decode_any(pair.get("value", {}), f"{where}[{i}].value")
    return out


def _str(body: Mapping[str, object], key: str, where: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise _DecodeError(f"{where}.{key}: expected a string, got {value!r}")
    return value


def _decode_event(value: object, where: str) -> SpanEventRecord:
    event = _object(value, where)
    return SpanEventRecord(
        name=_str(event, "name", where),
        time_ns=_int(event.get("timeUnixNano", 0), f"{where}.timeUnixNano"),
        attributes=_decode_attributes(event.get("attributes"), f"{where}.attributes"),
    )


def _decode_link(value: object, where: str) -> SpanLinkRecord:
    link = _object(value, where)
    return SpanLinkRecord(
        trace_id=_id(link.get("traceId"), 16, f"{where}.traceId"),
        span_id=_id(link.get("spanId"), 8, f"{where}.spanId"),
        attributes=_decode_attributes(link.get("attributes"), f"{where}.attributes"),
    )


def _decode_span(
    body: Mapping[str, object],
    where: str,
    resource_attributes: dict[str, AttributeValue],
    scope_name: str,
    scope_version: str,
) -> SpanRecord:
    parent = body.get("parentSpanId")
    status = _object(body.get("status", {}), f"{where}.status")
    events = tuple(
        _decode_event(item, f"{where}.events[{i}]")
        for i, item in enumerate(_list(body.get("events"), f"{where}.events"))
    )
    links = tuple(
        _decode_link(item, f"{where}.links[{i}]")
        for i, item in enumerate(_list(body.get("links"), f"{where}.links"))
    )
    return SpanRecord(
        trace_id=_id(body.get("traceId"), 16, f"{where}.traceId"),
        span_id=_id(body.get("spanId"), 8, f"{where}.spanId"),
        parent_span_id=_id(parent, 8, f"{where}.parentSpanId") if parent else None,
        name=_str(body, "name", where),
        kind=_enum(body.get("kind", 0), _KIND_NAMES, f"{where}.kind"),
        start_ns=_int(body.get("startTimeUnixNano", 0), f"{where}.startTimeUnixNano"),
        end_ns=_int(body.get("endTimeUnixNano", 0), f"{where}.endTimeUnixNano"),
        attributes=_decode_attributes(body.get("attributes"), f"{where}.attributes"),
        events=events,
        links=links,
        status_code=_enum(status.get("code", 0), _STATUS_NAMES, f"{where}.status.code"),
        status_message=_str(status, "message", f"{where}.status"),
        resource_attributes=resource_attributes,
        scope_name=scope_name,
        scope_version=scope_version,
    )


def _decode_request(
    request: object, spans: list[SpanRecord], errors: list[str], prefix: str
) -> None:
    # Decodes what it can; a bad span costs only that span, a bad resource only its spans.
    if not isinstance(request, Mapping) or "resourceSpans" not in request:
        raise _DecodeError("not a trace request (expected a JSON object with resourceSpans)")
    body: Mapping[str, object] = request
    for r, resource_spans in enumerate(_list(body["resourceSpans"], "resourceSpans")):
        where_r = f"resourceSpans[{r}]"
        try:
            rs = _object(resource_spans, where_r)
            resource = _object(rs.get("resource", {}), f"{where_r}.resource")
            resource_attributes = _decode_attributes(
                resource.get("attributes"), f"{where_r}.resource.attributes"
            )
            scope_spans_list = _list(rs.get("scopeSpans"), f"{where_r}.scopeSpans")
        except _DecodeError as exc:
            errors.append(f"{prefix}{exc}")
            continue
        for s, scope_spans in enumerate(scope_spans_list):
            where_s = f"{where_r}.scopeSpans[{s}]"
            try:
                ss = _object(scope_spans, where_s)
                scope = _object(ss.get("scope", {}), f"{where_s}.scope")
                scope_name = _str(scope, "name", f"{where_s}.scope")
                scope_version = _str(scope, "version", f"{where_s}.scope")
                span_list = _list(ss.get("spans"), f"{where_s}.spans")
            except _DecodeError as exc:
                errors.append(f"{prefix}{exc}")
                continue
            for i, item in enumerate(span_list):
                where = f"{where_s}.spans[{i}]"
                try:
                    span = _decode_span(
                        _object(item, where), where, resource_attributes, scope_name, scope_version
                    )
                except _DecodeError as exc:
                    errors.append(f"{prefix}{exc}")
                    continue
                spans.append(span)


def read_otlp_json(path: str | os.PathLike[str]) -> OTLPJsonFile:
    """Read every span of an OTLP/JSON lines file.

    Lines that cannot be read do not stop the reading: a line that is not JSON (garbage, or
    a last line cut short because a writer was interrupted or is still appending), a line
    that is not a trace request, or a span with a malformed field is skipped and described
    in ``errors`` ("line 7: ..."), and every other span is returned. Blank lines are ignored.
    Ids written as base64 (protobuf's generic JSON mapping) and enum names are accepted too.

    Args:
        path: the file to read.

    Returns:
        The spans in file order and the list of problems found.

    Raises:
        OSError: the file cannot be opened.
    """
    file_path = os.fspath(path)
    spans: list[SpanRecord] = []
    errors: list[str] = []
    with open(file_path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            complete = raw.endswith(b"\n")
            if not raw.strip():
                continue
            prefix = f"line {number}: "
            try:
                request = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                if complete:
                    errors.append(f"{prefix}not valid JSON ({exc})")
                else:
                    errors.append(
                        f"{prefix}truncated: the last line has no newline and is not complete JSON"
                    )
                continue
            try:
                _decode_request(request, spans, errors, prefix)
            except _DecodeError as exc:
                errors.append(f"{prefix}{exc}")
    return OTLPJsonFile(path=file_path, spans=spans, errors=errors)
