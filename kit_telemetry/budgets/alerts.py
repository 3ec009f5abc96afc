"""Budget alert sinks and the dispatcher that fans alerts out to them.

The enforcer decides *when* an alert happens (once per threshold, window and scope key);
this module only delivers it. Sinks:

- :class:`LogAlertSink` logs each alert at WARNING on the ``kit_telemetry`` logger.
- :class:`CallbackAlertSink` calls a Python function (or a ``"pkg.mod:function"`` string).
- :class:`WebhookAlertSink` POSTs a JSON body with :mod:`urllib`, retrying with exponential
  backoff and jitter on one background daemon thread fed by a bounded queue, so delivering
  never blocks the agent.

:class:`AlertDispatcher` hands each alert to the sinks that want its kind; a sink that
raises is logged and reported through ``on_error`` and never stops the others.
"""

from __future__ import annotations

import collections
import hashlib
import importlib
import json
import logging
import queue
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.client import HTTPException
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
    "WebhookAlertSink",
    "build_sinks",
    "resolve_callback",
    "webhook_payload",
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
# 5xx are the receiver's trouble and may pass; 429 asks us to slow down. Other 4xx won't heal.
_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_USER_AGENT = "kit-telemetry-budget-alerts"


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


def webhook_payload(event: BudgetAlertEvent) -> dict[str, Any]:
    """The JSON body a webhook receives for ``event``.

    Times are Unix seconds; ``window_end`` is ``None`` for budgets without a window, and
    ``spent_usd``/``limit_usd`` are ``None`` for token and call budgets.
    """
    return {
        "budget": event.budget,
        "scope_key": event.scope_key,
        "kind": event.kind,
        "threshold": event.threshold,
        "unit": event.unit,
        "spent": event.spent,
        "limit": event.limit,
        "spent_usd": event.spent_usd,
        "limit_usd": event.limit_usd,
        "window_end": event.window_end,
        # int / int is correctly rounded; dividing by 1e9 would round the nanoseconds first.
        "timestamp": event.timestamp_ns / 1_000_000_000,
    }


def _idempotency_key(event: BudgetAlertEvent) -> str:
    # The same alert always gets the same key, so a receiver can drop a retried delivery
    # whose first attempt did arrive but whose response was lost.
    ident = json.dumps(
        [event.budget, event.scope_key, event.kind, event.threshold, event.unit, event.window_end]
    )
    return hashlib.sha256(ident.encode("utf-8")).hexdigest()[:32]


def _describe(event: BudgetAlertEvent) -> str:
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
    return f"budget {event.budget!r} ({event.scope_key}) {what}: {figures}"


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


def _redact(url: str) -> str:
    # Webhook URLs often carry a secret in the path or query (Slack, Teams), so logs show
    # only where the alert was going.
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/..."


class WebhookAlertSink:
    """POSTs each alert as JSON to an HTTP(S) URL from one background thread.

    :meth:`deliver` only puts the alert on a bounded queue and returns; a daemon thread
    (started on first use) sends it with :func:`urllib.request.urlopen`. Connection errors,
    timeouts and 5xx/429 responses are retried up to ``max_attempts`` times in all, waiting
    ``backoff_s * 2**(attempt - 1)`` seconds (at most ``max_backoff_s``, honouring a
    ``Retry-After`` header within that cap), jittered down to half so many senders do not
    retry in step. Other 4xx responses are not retried. Each request has an
    ``Idempotency-Key`` header that is the same for every attempt at one alert. An alert
    given up, or dropped because the queue was full or the sink closed, is logged and
    passed to ``on_error``.

    Args:
        url: an ``http://`` or ``https://`` URL.
        timeout_s: seconds each attempt may take.
        max_attempts: attempts per alert, the first included.
        backoff_s: the wait before the first retry.
        max_backoff_s: the longest wait between attempts.
        events: which alert kinds to send.
        queue_size: alerts that may wait; more are dropped.
        headers: extra request headers (e.g. ``Authorization``).
        on_error: called with the alert and the error when an alert is given up or dropped.
        rng: source of jitter (tests pass a seeded ``random.Random``).

    Raises:
        ConfigError: the URL is not http(s) or a number is out of range.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        events: Iterable[str] = _DEFAULT_EVENTS,
        queue_size: int = 1000,
        headers: Mapping[str, str] | None = None,
        on_error: AlertErrorHandler | None = None,
        rng: random.Random | None = None,
    ) -> None:
        where = "alert (webhook)"
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"{where}: url {url!r} must be an http:// or https:// URL with a host"
            )
        checks = (
            ("timeout_s", timeout_s, timeout_s > 0, "a number greater than 0"),
            ("max_attempts", max_attempts, max_attempts >= 1, "an integer >= 1"),
            ("backoff_s", backoff_s, backoff_s >= 0, "a number >= 0"),
            ("max_backoff_s", max_backoff_s, max_backoff_s >= backoff_s, "a number >= backoff_s"),
            ("queue_size", queue_size, queue_size >= 1, "an integer >= 1"),
        )
        for name, value, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"{where}: {name} {value!r} must be {allowed}")
        self.url = url
        self.timeout_s = float(timeout_s)
        self.max_attempts = int(max_attempts)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.queue_size = int(queue_size)
        self._events = _check_events(events, where)
        self._headers = {
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            **(headers or {}),
        }
        self._on_error = on_error
        self._rng = rng if rng is not None else random.Random()
        self._target = _redact(url)
        # One lock guards the queue, the in-flight count and the lifecycle flags.
        self._cond = threading.Condition()
        self._queue: collections.deque[BudgetAlertEvent] = collections.deque()
        self._in_flight = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        # Set when close() runs out of time: cuts short backoff waits and stops retries.
        self._abandon = threading.Event()

    @property
    def events(self) -> tuple[str, ...]:
        """The alert kinds this sink sends."""
        return self._events

    def deliver(self, event: BudgetAlertEvent) -> None:
        """Queue ``event`` for sending and return at once; drop it if the queue is full."""
        with self._cond:
            if self._closed:
                dropped: BaseException | None = RuntimeError("the webhook sink is closed")
            elif len(self._queue) >= self.queue_size:
                dropped = queue.Full(f"the webhook queue is full ({self.queue_size} alerts)")
            else:
                dropped = None
                self._queue.append(event)
                self._ensure_worker()
                self._cond.notify_all()
        if dropped is not None:
            logger.warning(
                "budget alert for %r dropped, not sent to %s: %s",
                event.budget,
                self._target,
                dropped,
            )
            self._report(event, dropped)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queued alert was sent or given up.

        Returns:
            True if nothing is pending, False if ``timeout_s`` passed first.
        """
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._queue and self._in_flight == 0, timeout=max(timeout_s, 0.0)
            )

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued within ``timeout_s`` seconds, then stop the thread.

        Alerts still queued when the time is up are logged and reported as dropped.
        Calling ``close`` again does nothing.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            thread.join(max(timeout_s, 0.0))
        leftovers: list[BudgetAlertEvent] = []
        if thread is not None and thread.is_alive():
            self._abandon.set()
            with self._cond:
                leftovers = list(self._queue)
                self._queue.clear()
                self._cond.notify_all()
        for event in leftovers:
            logger.warning(
                "budget alert for %r dropped at close, not sent to %s", event.budget, self._target
            )
            self._report(event, TimeoutError(f"not sent within the close timeout of {timeout_s}s"))

    def _ensure_worker(self) -> None:
        # Called under the lock. Started lazily, and again if the thread is gone (as it is
        # in a child after fork), so a sink built but never used holds no thread.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="kit-telemetry-webhook", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                event = self._queue.popleft()
                self._in_flight += 1
            try:
                self._send_with_retries(event)
            except Exception as exc:  # pragma: no cover - a bug here must not kill the thread
                logger.exception("budget alert webhook to %s failed unexpectedly", self._target)
                self._report(event, exc)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _send_with_retries(self, event: BudgetAlertEvent) -> None:
        body = json.dumps(webhook_payload(event), allow_nan=False).encode("utf-8")
        headers = {**self._headers, "Idempotency-Key": _idempotency_key(event)}
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                request = urllib.request.Request(
                    self.url, data=body, headers=headers, method="POST"
                )
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    response.read()
                return
            except urllib.error.HTTPError as exc:
                error: BaseException = exc
                retryable = exc.code in _RETRY_STATUSES
                retry_after = _retry_after_s(
                    exc.headers.get("Retry-After") if exc.headers else None
                )
                exc.close()
            except (urllib.error.URLError, HTTPException, OSError) as exc:
                # Refused or reset connections, DNS failures, timeouts, broken responses.
                error, retryable = exc, True
            if not retryable or attempt >= self.max_attempts or self._abandon.is_set():
                logger.error(
                    "budget alert for %r (%s) not delivered to %s after %d attempt(s): %s",
                    event.budget,
                    event.kind,
                    self._target,
                    attempt,
                    error,
                    exc_info=error,
                )
                self._report(event, error)
                return
            delay = self._backoff_delay(attempt, retry_after)
            logger.debug(
                "budget alert webhook attempt %d to %s failed (%s); retrying in %.3fs",
                attempt,
                self._target,
                error,
                delay,
            )
            if self._abandon.wait(delay):
                # close() ran out of time: one more try would outlive it.
                logger.error(
                    "budget alert for %r not delivered to %s: closed during retries",
                    event.budget,
                    self._target,
                )
                self._report(event, error)
                return

    def _backoff_delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        delay = self._rng.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff_s))
        return delay

    def _report(self, event: BudgetAlertEvent, error: BaseException) -> None:
        if self._on_error is None:
            return
        try:
            self._on_error(event, error)
        except Exception:
            logger.exception("the on_error handler of a budget alert webhook raised")


def _retry_after_s(value: str | None) -> float | None:
    # Only the delta-seconds form; an HTTP date is rare for webhooks and falls back to
    # the computed backoff.
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


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
