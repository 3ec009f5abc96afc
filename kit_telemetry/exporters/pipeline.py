"""The export pipeline: exporter specs to exporters, exporters to guarded batch processors.

``build_span_exporters`` turns ``configure(exporters=...)`` into ``SpanExporter`` objects;
``build_export_processors`` wraps each one so that exporting can never block or break the
agent. The wrapping is ``ExportSpanProcessor(BatchSpanProcessor(GuardedSpanExporter(x)))``.

Why each layer, given how ``BatchSpanProcessor`` works in opentelemetry-sdk 1.45:

- ``on_end`` appends to a bounded deque and returns; when the queue is full the SDK drops
  the oldest span (and logs it). The agent's thread never waits and never exports.
- The SDK's worker thread calls ``export`` under an export lock. ``force_flush`` runs the
  export on the *caller's* thread under the same lock and ignores its timeout; ``shutdown``
  joins the worker for up to 30 s, then calls the exporter's ``shutdown`` with no deadline.
  A hanging ``export`` would so hang ``force_flush`` forever and ``shutdown`` for 30 s plus
  whatever the exporter's ``shutdown`` does.
- ``GuardedSpanExporter`` (``guarded.py``) runs each real export in a daemon thread and
  waits at most ``export_timeout_s``: a timeout, an exception or a FAILURE result is counted
  and reported through ``on_error("exporter", exc)``, never raised, and a stuck export makes
  later batches be refused at once. So every guarded ``export`` returns within
  ``export_timeout_s``.
- ``ExportSpanProcessor.force_flush`` runs the SDK's flush in a helper thread and waits at
  most ``timeout_millis``.
- ``ExportSpanProcessor.shutdown`` first gives the guard a deadline (``shutdown_timeout_s``):
  an export in progress waits only until then, later ones are refused, and the exporter's
  own ``shutdown`` is waited for only until then. The SDK worker therefore finishes by the
  deadline, its join returns, and ``shutdown`` returns within about ``shutdown_timeout_s``.
- Threads left behind by a hung exporter are daemon threads: they never keep the process
  alive at exit.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import TextIO

from opentelemetry.context import Context
from opentelemetry.sdk.environment_variables import OTEL_BSP_EXPORT_TIMEOUT
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from kit_telemetry.errors import ConfigError
from kit_telemetry.exporters.console import ConsoleRunExporter
from kit_telemetry.exporters.guarded import (
    ErrorCallback,
    GuardedSpanExporter,
    _call_bounded,
    _check_positive,
)
from kit_telemetry.exporters.otlp import otlp_exporter
from kit_telemetry.exporters.otlp_json import OTLPJsonFileExporter

logger = logging.getLogger("kit_telemetry")

__all__ = [
    "ALLOWED_EXPORTERS",
    "ErrorCallback",
    "ExportSpanProcessor",
    "build_export_processors",
    "build_span_exporters",
]

OTLP_JSON_PREFIX = "otlp-json:"
ALLOWED_EXPORTERS = "console, otlp-json:PATH, otlp, none (or a SpanExporter object)"


# --- specs -> exporters --------------------------------------------------------------------


def _parse_spec(spec: object) -> tuple[str, str] | SpanExporter:
    if isinstance(spec, SpanExporter):
        return spec
    if isinstance(spec, type) and issubclass(spec, SpanExporter):
        raise ConfigError(
            f"exporters: {spec.__name__} is a class; pass an instance, e.g. {spec.__name__}(...)"
        )
    if not isinstance(spec, str):
        raise ConfigError(
            f"exporters: {spec!r} ({type(spec).__name__}) is not one of {ALLOWED_EXPORTERS}"
        )
    if spec in ("console", "otlp", "none"):
        return (spec, "")
    if spec.startswith(OTLP_JSON_PREFIX):
        path = spec[len(OTLP_JSON_PREFIX) :]
        if not path.strip():
            raise ConfigError(
                f"exporters: {spec!r} needs a file path after 'otlp-json:', "
                "e.g. 'otlp-json:kit-telemetry-traces.jsonl'"
            )
        return ("otlp-json", path)
    raise ConfigError(f"exporters: {spec!r} is not one of {ALLOWED_EXPORTERS}")


def _build(kind: str, argument: str, console_stream: TextIO | None) -> SpanExporter:
    if kind == "console":
        return ConsoleRunExporter(console_stream)
    if kind == "otlp":
        return otlp_exporter()
    path = os.path.expanduser(argument)
    try:
        return OTLPJsonFileExporter(path)
    except OSError as exc:
        raise ConfigError(
            f"exporters: 'otlp-json:{argument}': cannot open {path!r} for appending: {exc}"
        ) from exc


def build_span_exporters(
    specs: Iterable[str | SpanExporter] | str | SpanExporter,
    *,
    console_stream: TextIO | None = None,
) -> list[SpanExporter]:
    """Turn exporter specs into span exporters.

    Every spec is checked before anything is built, so a bad one leaves no file open.

    Args:
        specs: any of ``"console"`` (one line per finished run, to ``console_stream``),
            ``"otlp-json:PATH"`` (OTLP/JSON lines appended to PATH; ``~`` is expanded),
            ``"otlp"`` (OTLP/HTTP, configured by the ``OTEL_EXPORTER_OTLP_*`` variables),
            ``"none"`` (alone: export nothing), or ``SpanExporter`` objects, used as given.
            A single string or exporter is taken as a one-item list.
        console_stream: where the console exporter writes; ``None`` means ``sys.stderr``.

    Returns:
        The exporters, in the order given (empty for ``("none",)`` or ``()``).

    Raises:
        ConfigError: a spec is not one of the forms above (the message names it and lists
            the allowed ones), ``otlp-json:`` has no path or the file cannot be opened, a
            spec is listed twice, ``"none"`` is combined with others, or ``"otlp"`` is asked
            for without the ``kit-telemetry[otlp]`` extra installed.
    """
    items: list[str | SpanExporter] = (
        [specs] if isinstance(specs, (str, SpanExporter)) else list(specs)
    )
    parsed = [_parse_spec(item) for item in items]
    seen: set[object] = set()
    for item, spec in zip(items, parsed, strict=True):
        key = spec if isinstance(spec, tuple) else id(spec)
        if key in seen:
            raise ConfigError(f"exporters: {item!r} is listed twice")
        seen.add(key)
    if ("none", "") in seen and len(parsed) > 1:
        raise ConfigError(
            f"exporters: 'none' cannot be combined with other exporters (got {items!r})"
        )
    built: list[SpanExporter] = []
    try:
        for spec in parsed:
            if isinstance(spec, SpanExporter):
                built.append(spec)
            elif spec[0] != "none":
                built.append(_build(spec[0], spec[1], console_stream))
    except BaseException:
        # Release files opened for earlier specs; user-given exporters are not ours to close.
        for exporter in built:
            if exporter not in items:
                exporter.shutdown()
        raise
    return built


# --- the processor -------------------------------------------------------------------------


class ExportSpanProcessor(SpanProcessor):
    """Exports finished spans off the agent's thread, in bounded time, without ever raising.

    A ``BatchSpanProcessor`` around a ``GuardedSpanExporter``; see the module docstring for
    why each layer is there.

    Args:
        exporter: the exporter (wrapped in a ``GuardedSpanExporter`` unless it is one).
        on_error: see ``GuardedSpanExporter``.
        export_timeout_s: how long one export may take (default: ``OTEL_BSP_EXPORT_TIMEOUT``,
            else 10 s).
        shutdown_timeout_s: how long ``shutdown`` may take, draining the queue included.
        max_queue_size: spans waiting for export; beyond it the oldest are dropped.
        max_export_batch_size: spans per export call (at most ``max_queue_size``).
        schedule_delay_s: how long the worker waits between exports when the queue is short.

    The batch settings not given are the OpenTelemetry SDK's, so ``OTEL_BSP_SCHEDULE_DELAY``,
    ``OTEL_BSP_MAX_QUEUE_SIZE`` and ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` apply.

    Raises:
        ConfigError: a number is not positive.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        on_error: ErrorCallback | None = None,
        export_timeout_s: float | None = None,
        shutdown_timeout_s: float = 5.0,
        max_queue_size: int | None = None,
        max_export_batch_size: int | None = None,
        schedule_delay_s: float | None = None,
    ) -> None:
        _check_positive("shutdown_timeout_s", shutdown_timeout_s)
        if schedule_delay_s is not None:
            _check_positive("schedule_delay_s", schedule_delay_s)
        if max_queue_size is not None:
            _check_count("max_queue_size", max_queue_size)
        if max_export_batch_size is not None:
            _check_count("max_export_batch_size", max_export_batch_size)
            if max_queue_size is not None:
                max_export_batch_size = min(max_export_batch_size, max_queue_size)
        if export_timeout_s is None:
            export_timeout_s = _bsp_export_timeout_s()
        _check_positive("export_timeout_s", export_timeout_s)
        self._guard = (
            exporter
            if isinstance(exporter, GuardedSpanExporter)
            else GuardedSpanExporter(exporter, on_error=on_error, export_timeout_s=export_timeout_s)
        )
        self._on_error = on_error
        self._shutdown_timeout_s = float(shutdown_timeout_s)
        # What is not given here is left to the SDK, which reads the OTEL_BSP_* variables.
        self._batch = BatchSpanProcessor(
            self._guard,
            max_queue_size=max_queue_size,
            schedule_delay_millis=None if schedule_delay_s is None else schedule_delay_s * 1000,
            max_export_batch_size=max_export_batch_size,
            export_timeout_millis=export_timeout_s * 1000,
        )
        self._lock = threading.Lock()
        self._shut_down = False

    @property
    def exporter(self) -> SpanExporter:
        """The exporter spans go to (inside the guard)."""
        return self._guard.exporter

    @property
    def guard(self) -> GuardedSpanExporter:
        """The guard around the exporter (its ``failure_count``, for instance)."""
        return self._guard

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue the span for export; returns at once, even when the queue is full."""
        try:
            self._batch.on_end(span)
        except Exception as exc:
            # The SDK's multi-processor does not catch, so this would surface in span.end().
            self._guard.report(exc)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what is queued, waiting at most ``timeout_millis``.

        Returns:
            True if everything queued was exported; False if that took too long, an export
            failed meanwhile (its spans are then dropped, and reported through ``on_error``)
            or an earlier export is still stuck (the batch it holds is not delivered).
        """
        failures_before = self._guard.failure_count
        flushed: list[bool] = []
        outcome = _call_bounded(
            lambda: flushed.append(bool(self._batch.force_flush(timeout_millis))),
            timeout_millis / 1000,
            "kit-telemetry-flush",
        )
        if outcome.error is not None:
            self._guard.report(outcome.error)
        return (
            outcome.finished
            and flushed == [True]
            and self._guard.failure_count == failures_before
            and not self._guard.stuck
        )

    def shutdown(self) -> None:
        """Export what is queued and shut the exporter down, within ``shutdown_timeout_s``.

        Spans still queued at the deadline are dropped and reported. Idempotent.
        """
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
        self._guard.set_deadline(time.monotonic() + self._shutdown_timeout_s)
        try:
            # The SDK's shutdown is unannotated; it returns nothing.
            self._batch.shutdown()  # type: ignore[no-untyped-call]
        except Exception as exc:
            self._guard.report(exc)


def _bsp_export_timeout_s() -> float:
    """``OTEL_BSP_EXPORT_TIMEOUT`` (milliseconds) in seconds, else our 10 s default."""
    raw = os.environ.get(OTEL_BSP_EXPORT_TIMEOUT, "").strip()
    if raw:
        try:
            return int(raw) / 1000
        except ValueError:
            logger.warning(
                "kit-telemetry: %s=%r is not an integer; using 10 s", OTEL_BSP_EXPORT_TIMEOUT, raw
            )
    return 10.0


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: {value!r} is not a positive integer")


def build_export_processors(
    exporters: Iterable[SpanExporter],
    *,
    on_error: ErrorCallback | None = None,
    export_timeout_s: float | None = None,
    shutdown_timeout_s: float = 5.0,
    max_queue_size: int | None = None,
    max_export_batch_size: int | None = None,
    schedule_delay_s: float | None = None,
) -> list[SpanProcessor]:
    """Wrap each exporter in an ``ExportSpanProcessor``, ready for ``add_span_processor``.

    Args:
        exporters: the exporters, e.g. from ``build_span_exporters``.
        on_error: called with ``("exporter", exc)`` for each failed, hung or refused export,
            from a background thread; the host counts it in
            ``kit_telemetry_internal_errors_total{component="exporter"}``.
        export_timeout_s: how long one export may take before it counts as hung.
        shutdown_timeout_s: how long each processor's ``shutdown`` may take.
        max_queue_size: spans each processor holds for export; more are dropped, oldest first.
        max_export_batch_size: spans per export call.
        schedule_delay_s: the longest a span waits in the queue when the queue is short.

    Settings left as None are the SDK's defaults or its ``OTEL_BSP_*`` variables.

    Returns:
        One processor per exporter, in order.

    Raises:
        ConfigError: a number is not positive.
    """
    return [
        ExportSpanProcessor(
            exporter,
            on_error=on_error,
            export_timeout_s=export_timeout_s,
            shutdown_timeout_s=shutdown_timeout_s,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay_s=schedule_delay_s,
        )
        for exporter in exporters
    ]
