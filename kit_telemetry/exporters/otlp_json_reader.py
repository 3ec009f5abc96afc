"""OTLP/JSON lines read back: the spans of a file as plain frozen records.

``read_otlp_json`` turns a file in the format ``otlp_json`` writes (the Collector's too)
into ``SpanRecord`` s; it keeps going past lines it cannot read and says which ones in
``OTLPJsonFile.errors``. It accepts what other writers produce as well: ids in base64,
enum names, 64-bit integers as JSON numbers.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

__all__ = [
    "AttributeValue",
    "OTLPJsonFile",
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
    "read_otlp_json",
]

# OTLP enum values (opentelemetry-proto trace.proto); the Python SDK's SpanKind is one lower.
SPAN_KIND_INTERNAL = 1
SPAN_KIND_SERVER = 2
SPAN_KIND_CLIENT = 3
SPAN_KIND_PRODUCER = 4
SPAN_KIND_CONSUMER = 5
STATUS_CODE_UNSET = 0
STATUS_CODE_OK = 1
STATUS_CODE_ERROR = 2

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


# Where a trace request may begin inside a line: after a cut record, a writer that did not
# clean up (an old kit-telemetry, another tool) glues the next request to it.
_REQUEST_START = re.compile(rb'\{\s*"resourceSpans"\s*:')


def _glued_request(raw: bytes) -> tuple[int, object] | None:
    """The first complete request that follows a cut one on the same line, with its offset."""
    for match in _REQUEST_START.finditer(raw, 1):
        try:
            return match.start(), json.loads(raw[match.start() :].decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue
    return None


def read_otlp_json(path: str | os.PathLike[str]) -> OTLPJsonFile:
    """Read every span of an OTLP/JSON lines file.

    Lines that cannot be read do not stop the reading: a line that is not JSON (garbage, or
    a last line cut short because a writer was interrupted or is still appending), a line
    that is not a trace request, or a span with a malformed field is skipped and described
    in ``errors`` ("line 7: ..."), and every other span is returned. Blank lines are ignored.
    When a cut request has the next complete one glued to it on the same line (a writer that
    ran out of disk space and went on appending), the cut part is reported and the complete
    one is read. Ids written as base64 (protobuf's generic JSON mapping) and enum names are
    accepted too.

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
                glued = _glued_request(raw) if complete else None
                if glued is not None:
                    offset, request = glued
                    errors.append(
                        f"{prefix}the first {offset} bytes are a cut record (skipped); "
                        "the complete one glued after it was read"
                    )
                elif complete:
                    errors.append(f"{prefix}not valid JSON ({exc})")
                    continue
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
