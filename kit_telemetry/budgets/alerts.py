"""Budget alert sinks and the dispatcher that fans alerts out to them.

The enforcer decides *when* an alert happens (once per threshold, window and scope key);
this module only delivers it. Sinks:

- :class:`LogAlertSink` logs each alert at WARNING on the ``kit_telemetry`` logger.
- :class:`CallbackAlertSink` calls a Python function (or a ``"pkg.mod:function"`` string).
- ``WebhookAlertSink`` (module ``webhook``) POSTs a JSON body from one background thread,
  so delivering never blocks the agent.

:class:`AlertDispatcher` hands each alert to the sinks that want its kind; a sink that
raises is logged and reported through ``on_error`` and never stops the others.
:func:`build_sinks` builds the sinks that ``[[alert]]`` tables describe.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigError
from ..events import BudgetAlertEvent
from .config import ALERT_EVENTS, ALERT_KINDS, AlertSinkConfig

__all__ = [
    "AlertDispatcher",
    "AlertErrorHandler",
    "AlertSink",
    "CallbackAlertSink",
    "LogAlertSink",
    "build_sinks",
    "resolve_callback",
]

logger = logging.getLogger("kit_telemetry")

AlertErrorHandler = Callable[[BudgetAlertEvent, BaseException], None]
"""Called with the alert and the error when a delivery is given up or dropped.

The host counts these in ``kit_telemetry_internal_errors_total{component="budget_alerts"}``.
A webhook passes the last attempt's exception (``urllib.error.HTTPError``, ``URLError``,
``TimeoutError``, ...), ``queue.Full`` when its queue was full, or ``RuntimeError`` when it
was already closed.
"""

_DEFAULT_EVENTS: tuple[str, ...] = ("warning", "exceeded")


def _check_events(events: Iterable[str], where: str) -> tuple[str, ...]:
    if isinstance(events, str):
        # A lone string would otherwise be taken letter by letter.
        raise ConfigError(f"{where}: events {events!r} must be a list of {', '.join(ALERT_EVENTS)}")
    checked = tuple(events)
    if not checked:
        raise ConfigError(f"{where}: events () must name at least one of {', '.join(ALERT_EVENTS)}")
    for kind in checked:
        if kind not in ALERT_EVENTS:
            raise ConfigError(f"{where}: event {kind!r} is not one of {', '.join(ALERT_EVENTS)}")
    return checked


@runtime_checkable
class AlertSink(Protocol):
    """Somewhere budget alerts go.

    ``events`` names the alert kinds (``warning``, ``exceeded``) the sink wants;
    :class:`AlertDispatcher` only hands it those. ``deliver`` is called on the agent's
    thread, so it must be quick; ``close`` releases whatever the sink holds and is
    idempotent.
    """

    @property
    def events(self) -> tuple[str, ...]:
        """The alert kinds this sink receives."""
        ...

    def deliver(self, event: BudgetAlertEvent) -> None:
        """Take one alert."""
        ...

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is pending within ``timeout_s`` seconds, then release resources."""
        ...


@runtime_checkable
class _FlushableSink(Protocol):
    def flush(self, timeout_s: float = 5.0) -> bool: ...


def _amount(event: BudgetAlertEvent, amount: float) -> str:
    return f"${amount:.4g}" if event.unit == "usd" else f"{amount:g} {event.unit}"


def _describe(event: BudgetAlertEvent) -> str:
    head = f"budget {event.budget!r} ({event.scope_key})"
    if event.kind == "exceeded" and event.requested is not None:
        in_flight = f" + {_amount(event, event.reserved)} in flight" if event.reserved else ""
        return (
            f"{head} refused a call: {_amount(event, event.spent)} spent{in_flight} + "
            f"{_amount(event, event.requested)} requested would exceed its limit of "
            f"{_amount(event, event.limit)}"
        )
    if event.unit == "usd":
        figures = f"${event.spent:.4g} of ${event.limit:.4g}"
    else:
        figures = f"{event.spent:g} of {event.limit:g} {event.unit}"
    if event.kind == "exceeded":
        what = "hit its limit"
    elif event.threshold is not None:
        what = f"passed {event.threshold:.0%} of its limit"
    else:
        what = f"raised a {event.kind!r} alert"
    return f"{head} {what}: {figures}"


class LogAlertSink:
    """Logs each alert at WARNING on the ``kit_telemetry`` logger.

    The record carries the alert as ``record.budget_alert`` (a JSON-safe dict), for
    structured log handlers.

    Args:
        events: which alert kinds to log.
        logger: where to log; ``logging.getLogger("kit_telemetry")`` by default.
        level: the log level.

    Raises:
        ConfigError: ``events`` names an unknown kind.
    """

    def __init__(
        self,
        *,
        events: Iterable[str] = _DEFAULT_EVENTS,
        logger: logging.Logger | None = None,
        level: int = logging.WARNING,
    ) -> None:
        self._events = _check_events(events, "alert (log)")
        self._logger = logger if logger is not None else logging.getLogger("kit_telemetry")
        self._level = level

    @property
    def events(self) -> tuple[str, ...]:
        """The alert kinds this sink logs."""
        return self._events

    def deliver(self, event: BudgetAlertEvent) -> None:
        """Log ``event``."""
        self._logger.log(
            self._level, "%s", _describe(event), extra={"budget_alert": event.to_dict()}
        )

    def close(self, timeout_s: float = 5.0) -> None:
        """Nothing to release."""

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Nothing is ever pending."""
        return True


def resolve_callback(spec: str) -> Callable[..., Any]:
    """Import the callable named by ``"pkg.mod:function"`` (or ``"pkg.mod:Class.method"``).

    Raises:
        ConfigError: the string is malformed, the module cannot be imported, the attribute
            is missing or not callable; the message names the value.
    """
    if not isinstance(spec, str):
        raise ConfigError(f"alert (callback): callback {spec!r} must be 'pkg.module:function'")
    module_name, sep, attr_path = spec.partition(":")
    if not (sep and module_name and attr_path):
        raise ConfigError(f"alert (callback): callback {spec!r} must be 'pkg.module:function'")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        # Any failure while importing user code (missing module, its own ImportError, a
        # SyntaxError) is a configuration problem of this value.
        raise ConfigError(
            f"alert (callback): callback {spec!r}: cannot import module {module_name!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(
                f"alert (callback): callback {spec!r}: {module_name!r} has no attribute "
                f"{attr_path!r}"
            ) from None
    if not callable(target):
        raise ConfigError(
            f"alert (callback): callback {spec!r} is a {type(target).__name__}, not a callable"
        )
    return target  # type: ignore[no-any-return]


class CallbackAlertSink:
    """Calls a Python function with each alert, on the thread that raised the alert.

    Args:
        callback: a callable taking a :class:`~kit_telemetry.events.BudgetAlertEvent`, or
            a ``"pkg.mod:function"`` string resolved now.
        events: which alert kinds to pass on.

    Raises:
        ConfigError: the string cannot be resolved to a callable, or ``events`` names an
            unknown kind.
    """

    def __init__(
        self,
        callback: Callable[[BudgetAlertEvent], object] | str,
        *,
        events: Iterable[str] = _DEFAULT_EVENTS,
    ) -> None:
        if isinstance(callback, str):
            callback = resolve_callback(callback)
        elif not callable(callback):
            raise ConfigError(f"alert (callback): callback {callback!r} is not callable")
        self._callback = callback
        self._events = _check_events(events, "alert (callback)")

    @property
    def events(self) -> tuple[str, ...]:
        """The alert kinds this sink passes on."""
        return self._events

    @property
    def callback(self) -> Callable[[BudgetAlertEvent], object]:
        """The function alerts are passed to."""
        return self._callback

    def deliver(self, event: BudgetAlertEvent) -> None:
        """Call the callback; whatever it raises propagates (the dispatcher contains it)."""
        self._callback(event)

    def close(self, timeout_s: float = 5.0) -> None:
        """Nothing to release."""

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Nothing is ever pending: callbacks run synchronously."""
        return True


class AlertDispatcher:
    """Fans each alert out to the sinks whose ``events`` include its kind.

    A sink that raises is logged with its traceback and reported to ``on_error``; the other
    sinks still get the alert. With ``strict=True`` the first such error is re-raised once
    every sink has had its turn (for tests). A dispatcher is callable, so it can be handed
    to the enforcer as its alert callback.

    Args:
        sinks: where alerts go.
        on_error: called with the alert and the exception when a sink raises.
        strict: re-raise a sink's exception after all sinks were tried.
    """

    def __init__(
        self,
        sinks: Iterable[AlertSink],
        *,
        on_error: AlertErrorHandler | None = None,
        strict: bool = False,
    ) -> None:
        self._sinks = tuple(sinks)
        self._on_error = on_error
        self._strict = strict
        self._closed = False
        self._lock = threading.Lock()

    @property
    def sinks(self) -> tuple[AlertSink, ...]:
        """The sinks, in delivery order."""
        return self._sinks

    def dispatch(self, event: BudgetAlertEvent) -> None:
        """Deliver ``event`` to every sink that wants its kind."""
        first_error: Exception | None = None
        for sink in self._sinks:
            if event.kind not in sink.events:
                continue
            try:
                sink.deliver(event)
            except Exception as exc:
                logger.error(
                    "budget alert sink %s raised while delivering an alert for %r",
                    type(sink).__name__,
                    event.budget,
                    exc_info=exc,
                )
                if first_error is None:
                    first_error = exc
                if self._on_error is not None:
                    try:
                        self._on_error(event, exc)
                    except Exception:
                        logger.exception("the on_error handler of the alert dispatcher raised")
        if self._strict and first_error is not None:
            raise first_error

    __call__ = dispatch

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait for sinks with pending deliveries, sharing one deadline.

        Returns:
            True if every sink finished within ``timeout_s`` seconds.
        """
        deadline = time.monotonic() + timeout_s
        done = True
        for sink in self._sinks:
            if isinstance(sink, _FlushableSink):
                done = sink.flush(max(deadline - time.monotonic(), 0.0)) and done
        return done

    def close(self, timeout_s: float = 5.0) -> None:
        """Close every sink, sharing one deadline; calling it again does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        deadline = time.monotonic() + timeout_s
        for sink in self._sinks:
            try:
                sink.close(max(deadline - time.monotonic(), 0.0))
            except Exception:
                logger.exception("budget alert sink %s raised on close", type(sink).__name__)


def build_sinks(
    configs: Sequence[AlertSinkConfig], *, on_error: AlertErrorHandler | None = None
) -> list[AlertSink]:
    """Build the sinks that ``[[alert]]`` tables describe.

    Args:
        configs: the alert sink configurations.
        on_error: passed to webhook sinks, for alerts they give up or drop.

    Raises:
        ConfigError: a kind is unknown, a webhook has no URL, or a callback cannot be
            imported; sinks built before the failing one are closed.
    """
    sinks: list[AlertSink] = []
    try:
        for config in configs:
            sinks.append(_build_sink(config, on_error))
    except BaseException:
        for sink in sinks:
            sink.close(0.0)
        raise
    return sinks


def _build_sink(config: AlertSinkConfig, on_error: AlertErrorHandler | None) -> AlertSink:
    if config.kind == "log":
        return LogAlertSink(events=config.events)
    if config.kind == "callback":
        if config.callback is None:
            raise ConfigError("alert (callback): callback is missing; 'pkg.module:function'")
        return CallbackAlertSink(config.callback, events=config.events)
    if config.kind == "webhook":
        # Imported here: the webhook module builds on this one's sink helpers.
        from .webhook import WebhookAlertSink

        if config.url is None:
            raise ConfigError("alert (webhook): url is missing; an http:// or https:// URL")
        return WebhookAlertSink(
            config.url,
            timeout_s=config.timeout_s,
            max_attempts=config.max_attempts,
            events=config.events,
            on_error=on_error,
        )
    raise ConfigError(f"alert: kind {config.kind!r} is not one of {', '.join(ALERT_KINDS)}")
