"""What every span-backed handle shares: a span open for the length of a ``with`` block."""

from __future__ import annotations

import contextvars
import sys
import time
import traceback
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from .. import semconv as sc
from ..errors import Blocked, BudgetExceeded
from ..text import MAX_MESSAGE_CHARS, MAX_STACKTRACE_CHARS, clean_content
from ..tracing import PAYLOADS, SpanPayload

if TYPE_CHECKING:
    from .._runtime import Runtime


class SpanScope:
    """A span that is open for the length of a ``with`` block."""

    _runtime: Runtime
    _span: trace_api.Span | None
    _span_id: int
    _start_ns: int
    _context: Context
    _payload: SpanPayload | None
    _ended: bool
    _var: contextvars.ContextVar[Any] | None = None
    _tokens: list[tuple[contextvars.Token[Any], object]]

    def _init_scope(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._span = None
        self._payload = None
        self._ended = False
        self._tokens = []

    def _open_span(
        self,
        name: str,
        parent: Context,
        attributes: dict[str, AttributeValue],
        payload: SpanPayload,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> trace_api.Span:
        PAYLOADS.stage(payload)
        self._start_ns = time.time_ns()  # kept: run totals need the duration before the end
        span = self._runtime.tracer.start_span(
            name, context=parent, kind=kind, attributes=attributes, start_time=self._start_ns
        )
        self._span_id = span.get_span_context().span_id
        PAYLOADS.bind(self._span_id, payload)
        self._payload = payload
        self._span = span
        self._context = trace_api.set_span_in_context(span, parent)
        return span

    def _close_span(self, exc: BaseException | None, end_ns: int | None = None) -> None:
        """End the span (at ``end_ns`` when given: work done since is not the call's)."""
        span = self._span
        if span is None:
            return
        if exc is not None:
            mark_error(span, exc)
        try:
            span.end(end_time=end_ns)
        finally:  # a strict handler may raise out of end(): the payload still goes
            PAYLOADS.unbind(self._span_id)

    @property
    def span(self) -> trace_api.Span | None:
        """This handle's span (None before it starts)."""
        return self._span

    @property
    def context(self) -> Context:
        """The OpenTelemetry context in which this handle's span is the current span."""
        return self._context

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def end(self, exc: BaseException | None = None) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _second_end(self) -> bool:
        if self._ended:
            name = type(self).__name__
            self._runtime.errors.bad_input(
                f"{name}.end", f"{name} was ended twice; the second end is ignored"
            )
            return True
        self._ended = True
        return False

    def __enter__(self: _S) -> _S:
        # Current before it starts: handlers of its start event see it (``ctx.agent``).
        token = self._var.set(self) if self._var is not None else None
        try:
            self.start()
        except BaseException:
            if token is not None and self._var is not None:
                self._var.reset(token)
            raise
        if token is not None:
            self._tokens.append((token, self._var))
        if self._span is not None:
            self._tokens.append((context_api.attach(self._context), None))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.end(exc)
        finally:
            while self._tokens:
                token, var = self._tokens.pop()
                if var is None:
                    context_api.detach(token)
                else:
                    assert isinstance(var, contextvars.ContextVar)
                    var.reset(token)

    async def __aenter__(self: _S) -> _S:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


_S = TypeVar("_S", bound=SpanScope)


def readable_span(scope: SpanScope) -> ReadableSpan | None:
    """The scope's span, when it is an SDK span that handlers can read (``ctx.span``)."""
    span = scope.span
    return span if isinstance(span, ReadableSpan) else None


def mark_error(span: trace_api.Span, exc: BaseException) -> None:
    """Mark ``span`` failed by ``exc``: ``error.type``, an ``exception`` event, the status.

    The event is the one ``Span.record_exception`` adds, built here so that its message and
    stack trace are valid UTF-8 and bounded (an exception may carry any text, or fail to
    give any).
    """
    error_type = type(exc).__qualname__
    try:
        message = clean_content(str(exc), max_chars=MAX_MESSAGE_CHARS)
    except Exception:  # an exception whose __str__ fails still marks the span
        message = f"<unprintable {error_type}>"
    try:
        stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:
        stack = ""
    span.set_attribute(sc.ERROR_TYPE, error_type)
    span.add_event(
        sc.EVENT_EXCEPTION,
        {
            sc.EXCEPTION_TYPE: error_type,
            sc.EXCEPTION_MESSAGE: message,
            sc.EXCEPTION_STACKTRACE: clean_content(stack, max_chars=MAX_STACKTRACE_CHARS),
        },
    )
    span.set_status(Status(StatusCode.ERROR, f"{error_type}: {message}"))


def stop_reason_for(exc: BaseException) -> str:
    if isinstance(exc, BudgetExceeded):
        return "budget_exceeded"
    if isinstance(exc, Blocked):
        return "stopped" if exc.kind == "run" else "blocked"
    if is_cancellation(exc):
        return "cancelled"
    return "error"


def is_cancellation(exc: BaseException) -> bool:
    """The block was cancelled (asyncio) or interrupted (Ctrl-C), rather than failing."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    # Without asyncio imported, nothing can have raised its CancelledError.
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)
