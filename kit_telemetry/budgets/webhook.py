"""``WebhookAlertSink``: budget alerts POSTed as JSON to an HTTP(S) URL.

:meth:`WebhookAlertSink.deliver` only puts the alert on a bounded queue; one background
daemon thread sends it with :mod:`urllib`, retrying with exponential backoff and jitter, so
delivering never blocks the agent. :func:`webhook_payload` is the body a receiver gets.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import queue
import random
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from email.message import Message
from http.client import HTTPException
from typing import IO, Any

from ..errors import ConfigError
from ..events import BudgetAlertEvent
from .alerts import _DEFAULT_EVENTS, AlertErrorHandler, _check_events

__all__ = ["WebhookAlertSink", "webhook_payload"]

logger = logging.getLogger("kit_telemetry")

# 5xx are the receiver's trouble and may pass; 429 asks us to slow down. Other 4xx won't heal.
_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_USER_AGENT = "kit-telemetry-budget-alerts"
# Headers we set ourselves, as urllib.request.Request spells them; only these follow a
# redirect to another origin (a user's Authorization header must not leak there).
_OWN_HEADERS = frozenset({"Content-type", "User-agent", "Idempotency-key"})


class _PostRedirects(urllib.request.HTTPRedirectHandler):
    """Follows 307 and 308 with the same POST and body; reports 301, 302 and 303.

    urllib on its own turns a POST answered with 301/302/303 into a GET without the body,
    which a receiver may answer with 200: the alert would count as delivered although it
    never arrived. Only 307 and 308 promise that the method and body are kept.
    """

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        target = urllib.parse.urlsplit(newurl)
        if code not in (307, 308) or target.scheme not in ("http", "https"):
            raise urllib.error.HTTPError(
                req.full_url,
                code,
                f"{msg}: the webhook redirects to {_redact(newurl)} with {code}; only "
                "307/308 keep the POST and its body, so point the alert at the new URL",
                headers,
                fp,
            )
        source = urllib.parse.urlsplit(req.full_url)
        same_origin = (source.scheme, source.netloc) == (target.scheme, target.netloc)
        kept = {
            name: value for name, value in req.header_items() if same_origin or name in _OWN_HEADERS
        }
        return urllib.request.Request(
            newurl,
            data=req.data,
            headers=kept,
            method=req.get_method(),
            origin_req_host=req.origin_req_host,
            unverifiable=True,
        )


def webhook_payload(event: BudgetAlertEvent) -> dict[str, Any]:
    """The JSON body a webhook receives for ``event``.

    Times are Unix seconds; ``window_end`` is ``None`` for budgets without a window, and
    ``spent_usd``/``limit_usd`` are ``None`` for token and call budgets; ``reserved`` and
    ``requested`` are set only on the ``exceeded`` alert of a refused call.
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
        "reserved": event.reserved,
        "requested": event.requested,
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
    (started on first use) sends it with :mod:`urllib.request`. Connection errors,
    timeouts and 5xx/429 responses are retried up to ``max_attempts`` times in all, waiting
    ``backoff_s * 2**(attempt - 1)`` seconds (at most ``max_backoff_s``, honouring a
    ``Retry-After`` header within that cap), jittered down to half so many senders do not
    retry in step. Other 4xx responses are not retried. Each request has an
    ``Idempotency-Key`` header that is the same for every attempt at one alert. Redirects
    with 307 or 308 are followed with the same POST and body (to another origin without
    the extra ``headers``); 301, 302 and 303 would turn the POST into an empty GET, so they
    count as failures and are not retried. An alert given up, or dropped because the
    queue was full or the sink closed, is logged and passed to ``on_error``.

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
        self._opener = urllib.request.build_opener(_PostRedirects())
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
                with self._opener.open(request, timeout=self.timeout_s) as response:
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
