"""The guarded span exporter: a wrapper that can neither raise into nor hang its caller.

``GuardedSpanExporter`` runs each real export in a daemon thread of its own and waits at
most ``export_timeout_s``; a timeout, an exception or a FAILURE result is counted and
reported through ``on_error("exporter", exc)``, never raised. While a timed-out export is
still stuck, later batches are refused at once (dropped and reported) rather than piling up
threads. So every guarded ``export`` returns within ``export_timeout_s``.

A bounded shutdown (``ExportSpanProcessor.shutdown`` in ``pipeline``) gives the guard a
deadline: an export in progress waits only until then, later ones are refused, and the
exporter's own ``shutdown`` is waited for only until then.

Threads left behind by a hung exporter are daemon threads: they never keep the process
alive at exit.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from kit_telemetry._fork import after_fork_in_child
from kit_telemetry.errors import ConfigError

__all__ = [
    "ErrorCallback",
    "GuardedSpanExporter",
]

_logger = logging.getLogger("kit_telemetry")

ErrorCallback = Callable[[str, "BaseException | None"], None]
"""``on_error(component, exc)``: called (from a background thread) for every export problem.

``component`` is always ``"exporter"`` here; ``exc`` is the exception raised, a
``TimeoutError`` for a hang or a refused batch, or ``None`` for a FAILURE result.
"""

COMPONENT = "exporter"

_T = TypeVar("_T")


@dataclass(slots=True)
class _Call:
    """One export running in its own thread; mutated only under the guard's condition."""

    done: bool = False
    timed_out: bool = False
    result: SpanExportResult | None = None
    error: BaseException | None = None


@dataclass(slots=True)
class _Outcome:
    finished: bool
    error: BaseException | None


def _call_bounded(fn: Callable[[], object], timeout_s: float, name: str) -> _Outcome:
    """Run ``fn`` in a daemon thread and wait for it at most ``timeout_s``."""
    finished = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # a background thread must not die with a traceback dump
            errors.append(exc)
        finally:
            finished.set()

    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(run,), name=name, daemon=True).start()
    done = finished.wait(max(0.0, timeout_s))
    return _Outcome(finished=done, error=errors[0] if errors else None)


class GuardedSpanExporter(SpanExporter):
    """Wraps a span exporter so that it can neither raise nor hang its caller.

    Each ``export`` runs the wrapped exporter's ``export`` in a daemon thread and waits at
    most ``export_timeout_s``. An exception, a FAILURE result or a timeout makes the guard
    return FAILURE, count it in ``failure_count``, log it and call ``on_error("exporter",
    exc)``. While an export that timed out is still running, new batches are refused at once
    (reported as ``TimeoutError``) so a hung exporter costs one stuck thread, not one per
    batch. ``shutdown`` and ``force_flush`` are bounded the same way.

    The caller's context is copied into the export thread, so OpenTelemetry's "suppress
    instrumentation" flag, set by the batch processor around ``export``, still keeps an
    instrumented HTTP client inside the exporter from tracing its own requests.

    Args:
        exporter: the exporter to guard.
        on_error: called with ``("exporter", exc)`` for each problem, from a background
            thread; exceptions it raises are logged and dropped.
        export_timeout_s: how long one export (or ``shutdown``) may take.

    Raises:
        ConfigError: ``export_timeout_s`` is not a positive number.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        on_error: ErrorCallback | None = None,
        export_timeout_s: float = 10.0,
    ) -> None:
        _check_positive("export_timeout_s", export_timeout_s)
        self._exporter = exporter
        self._on_error = on_error
        self._timeout_s = float(export_timeout_s)
        self._name = type(exporter).__name__
        self._cond = threading.Condition()
        self._running: _Call | None = None
        self._deadline: float | None = None  # time.monotonic() value set by a bounded shutdown
        self._shut_down = False
        self._failure_count = 0
        self._refusals = 0
        after_fork_in_child(self, GuardedSpanExporter._after_fork)

    @property
    def exporter(self) -> SpanExporter:
        """The wrapped exporter."""
        return self._exporter

    @property
    def failure_count(self) -> int:
        """Exports that raised, returned FAILURE, timed out or were refused; failed shutdowns."""
        with self._cond:
            return self._failure_count

    @property
    def stuck(self) -> bool:
        """True while an export that timed out has still not returned."""
        with self._cond:
            return self._running is not None and self._running.timed_out

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export via the wrapped exporter; returns within ``export_timeout_s``, never raises."""
        problem: BaseException | None = None
        call: _Call | None = None
        quiet = False
        with self._cond:
            if self._shut_down:
                return SpanExportResult.FAILURE
            limit = time.monotonic() + self._timeout_s
            # Concurrent callers (a flush beside the worker) take turns; one that is known to
            # be stuck is not waited for.
            self._wait_until(lambda: self._running is None or self._running.timed_out, limit)
            if self._deadline is not None and time.monotonic() >= self._deadline:
                problem = TimeoutError(
                    f"{self._name}: shutdown deadline passed, {len(spans)} spans dropped"
                )
            elif self._running is not None:
                self._refusals += 1
                quiet = self._refusals > 1
                problem = TimeoutError(
                    f"{self._name}: an earlier export is still running after its timeout, "
                    f"{len(spans)} spans dropped"
                )
            else:
                call = self._running = _Call()
                self._start(call, spans)
                if not self._wait_until(lambda: call.done, limit):
                    call.timed_out = True
                    # Waiters blocked on this call may now skip it.
                    self._cond.notify_all()
                    problem = TimeoutError(
                        f"{self._name}.export() did not return in time "
                        f"(timeout {self._timeout_s:g} s), {len(spans)} spans dropped"
                    )
        if problem is not None:
            self.report(problem, quiet=quiet)
            return SpanExportResult.FAILURE
        assert call is not None  # set on the only path that leaves problem unset
        if call.error is not None:
            self.report(call.error)
            return SpanExportResult.FAILURE
        if call.result is not SpanExportResult.SUCCESS:
            self.report(None)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter, waiting at most ``timeout_millis``; False if unfinished."""
        flushed: list[bool] = []
        outcome = _call_bounded(
            lambda: flushed.append(bool(self._exporter.force_flush(timeout_millis))),
            timeout_millis / 1000,
            f"kit-telemetry-flush-{self._name}",
        )
        if outcome.error is not None:
            self.report(outcome.error)
        return outcome.finished and bool(flushed) and flushed[0]

    def shutdown(self) -> None:
        """Shut the wrapped exporter down, waiting at most ``export_timeout_s`` (or until the
        deadline of a bounded shutdown). Idempotent; later exports return FAILURE."""
        with self._cond:
            if self._shut_down:
                return
            self._shut_down = True
            limit = time.monotonic() + self._timeout_s
            if self._deadline is not None:
                limit = min(limit, self._deadline)
            self._cond.notify_all()
        outcome = _call_bounded(
            self._exporter.shutdown, limit - time.monotonic(), f"kit-telemetry-stop-{self._name}"
        )
        if not outcome.finished:
            self.report(TimeoutError(f"{self._name}.shutdown() did not return in time"))
        elif outcome.error is not None:
            self.report(outcome.error)

    def _after_fork(self) -> None:
        # The child has no export thread: an export in flight at fork time would otherwise
        # look stuck forever there, and the condition's lock may have been held.
        self._cond = threading.Condition()
        self._running = None
        self._refusals = 0

    def set_deadline(self, deadline: float) -> None:
        """Bound everything still to come (exports, shutdown) by ``deadline`` (monotonic s)."""
        with self._cond:
            if self._deadline is None or deadline < self._deadline:
                self._deadline = deadline
            self._cond.notify_all()

    def _wait_until(self, ready: Callable[[], bool], limit: float) -> bool:
        # Called with self._cond held; a deadline set meanwhile shortens the wait.
        while not ready():
            end = limit if self._deadline is None else min(limit, self._deadline)
            remaining = end - time.monotonic()
            if remaining <= 0:
                return False
            self._cond.wait(remaining)
        return True

    def _start(self, call: _Call, spans: Sequence[ReadableSpan]) -> None:
        context = contextvars.copy_context()
        threading.Thread(
            target=context.run,
            args=(self._run, call, spans),
            name=f"kit-telemetry-export-{self._name}",
            daemon=True,
        ).start()

    def _run(self, call: _Call, spans: Sequence[ReadableSpan]) -> None:
        result: SpanExportResult | None = None
        error: BaseException | None = None
        try:
            result = self._exporter.export(spans)
        except BaseException as exc:  # reported by the waiting caller; must not kill silently
            error = exc
        with self._cond:
            call.result, call.error, call.done = result, error, True
            if self._running is call:
                self._running = None
                self._refusals = 0
            self._cond.notify_all()
            late = call.timed_out
        if late:
            _logger.info(
                "%s.export() returned after its timeout (result %s, error %r)",
                self._name,
                result,
                error,
            )

    def report(self, exc: BaseException | None, *, quiet: bool = False) -> None:
        """Count and log a failed export (``exc`` None: the exporter returned FAILURE)."""
        with self._cond:
            self._failure_count += 1
        if exc is None:
            _logger.warning("span exporter %s returned FAILURE", self._name)
        elif quiet:
            # One warning per stuck export is enough; the rest only count.
            _logger.debug("span exporter %s: %s", self._name, exc)
        else:
            # A timeout made here has no traceback worth printing.
            trace = exc if exc.__traceback__ is not None else None
            _logger.warning("span exporter %s failed: %s", self._name, exc, exc_info=trace)
        if self._on_error is not None:
            try:
                self._on_error(COMPONENT, exc)
            except Exception:
                _logger.warning("on_error callback raised", exc_info=True)


def _check_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{name}: {value!r} is not a positive number of seconds")
