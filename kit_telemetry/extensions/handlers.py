"""``HandlerRunner``: how an extension's handler is called, and what its failure does.

A sync handler is called in place by dispatch; an ``async def`` one goes to its
extension's ``AsyncRunner`` (one background loop per extension), to be observed or, at a
decision point, awaited up to ``timeout_s``. A handler that raises or times out is logged
with its extension's name and counted (``kit_extension_handler_errors_total``); the agent
never sees it, unless ``strict`` (for tests) re-raises it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from ..events import Event, EventType
from .api import ExtensionContext, Handler

if TYPE_CHECKING:
    from .async_runner import AsyncRunner

logger = logging.getLogger("kit_telemetry")


class HandlerErrorMetrics(Protocol):
    """What the runtime reports (``metrics.KitMetrics`` has these)."""

    def record_handler_error(self, extension: str, event: str) -> None: ...


class HandlerTimeoutError(TimeoutError):
    """An async handler asked for a decision did not answer within ``handler_timeout_s``."""


class HandlerRunner:
    """Calls async handlers on their extension's loop; reports the handlers that fail.

    Args:
        timeout_s: an ``async def`` handler running longer is abandoned.
        metrics: counts handler errors (``kit_extension_handler_errors_total``).
        strict: re-raise handler errors (for tests).
    """

    def __init__(
        self, *, timeout_s: float, metrics: HandlerErrorMetrics | None, strict: bool
    ) -> None:
        self.timeout_s = timeout_s
        self.strict = strict
        self._metrics = metrics
        self._lock = threading.Lock()
        self._runners: dict[str, AsyncRunner] = {}  # per extension, for its async handlers

    def async_runner(self, extension: str) -> AsyncRunner:
        """The loop of ``extension``'s async handlers, started on first use."""
        # Imported and started for the first async handler: most agents register none, and
        # asyncio is a tenth of the package's import time.
        from .async_runner import AsyncRunner

        with self._lock:
            runner = self._runners.get(extension)
            if runner is None:
                runner = self._runners[extension] = AsyncRunner(
                    timeout_s=self.timeout_s,
                    on_timeout=self.timed_out,
                    name=extension,
                )
            return runner

    def submit(self, extension: str, handler: Handler, event: Event, ctx: ExtensionContext) -> None:
        """Schedule an async handler for ``event``; its failure is reported from the loop."""
        label = f"{extension}:{event.type.value}"
        self.async_runner(extension).submit(
            event.session_id,
            label,
            lambda: handler(event, ctx),
            lambda exc: self.failed(extension, event.type, exc, from_loop=True),
        )

    def await_decision(
        self, extension: str, handler: Handler, event: Event, ctx: ExtensionContext
    ) -> Any:
        """Run an async handler for ``event`` and wait up to ``timeout_s`` for its return value.

        Raises:
            HandlerTimeoutError: it did not return in time (reported already).
        """
        label = f"{extension}:{event.type.value}"
        job = self.async_runner(extension).submit(
            event.session_id, label, lambda: handler(event, ctx)
        )
        try:
            return job.future.result(self.timeout_s)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            job.future.cancel()
            if job.claim_report():  # else the runner abandoned it and reported it
                self.timed_out(label)
            raise HandlerTimeoutError(f"{label}: no decision within {self.timeout_s:g} s") from None

    def failed(
        self, extension: str, event: EventType | str, exc: BaseException, *, from_loop: bool = False
    ) -> None:
        """A handler (or an extension's raw span processor: event "span_start"...) raised."""
        name = event.value if isinstance(event, EventType) else event
        logger.error(
            "kit-telemetry: extension %r handler for %s raised %s: %s",
            extension,
            name,
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        if self._metrics is not None:
            self._metrics.record_handler_error(extension, name)
        if self.strict and not from_loop:
            raise exc

    def timed_out(self, label: str) -> None:
        """An async handler ("extension:event") ran past ``timeout_s`` and was abandoned."""
        extension, _, event = label.partition(":")
        logger.error(
            "kit-telemetry: extension %r async handler for %s timed out; abandoned",
            extension,
            event,
        )
        if self._metrics is not None:
            self._metrics.record_handler_error(extension, event)

    def flush(self, deadline: float) -> bool:
        """Wait for the async handlers until ``deadline`` (``time.monotonic()``); all done."""
        ok = True
        for runner in list(self._runners.values()):  # one deadline for all of them
            ok = runner.flush(max(deadline - time.monotonic(), 0.0)) and ok
        return ok

    def shutdown(self, deadline: float) -> None:
        """Finish the async handlers (each given at least 0.1 s) and stop their loops."""
        for runner in list(self._runners.values()):
            runner.shutdown(max(deadline - time.monotonic(), 0.1))
