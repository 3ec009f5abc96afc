"""Alert sinks and the dispatcher, with a real HTTP server on 127.0.0.1 for webhooks."""

from __future__ import annotations

import json
import logging
import queue
import random
import socket
import textwrap
import threading
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kit_telemetry.budgets.alerts import (
    AlertDispatcher,
    AlertSink,
    CallbackAlertSink,
    LogAlertSink,
    build_sinks,
    resolve_callback,
)
from kit_telemetry.budgets.config import AlertSinkConfig
from kit_telemetry.budgets.webhook import WebhookAlertSink, webhook_payload
from kit_telemetry.errors import ConfigError
from kit_telemetry.events import BudgetAlertEvent

WAIT_S = 10.0  # generous upper bound for things that should happen at once


def make_event(**overrides: Any) -> BudgetAlertEvent:
    fields: dict[str, Any] = {
        "session_id": "s-1",
        "timestamp_ns": 1_700_000_000_250_000_000,
        "budget": "per-session",
        "scope_key": "s-1",
        "kind": "warning",
        "threshold": 0.5,
        "unit": "usd",
        "spent": 0.026,
        "limit": 0.05,
        "spent_usd": 0.026,
        "limit_usd": 0.05,
        "window_end": 1_700_003_600.0,
    }
    fields.update(overrides)
    return BudgetAlertEvent(**fields)


@dataclass
class HookState:
    """What the test server saw, and how it should answer."""

    fail_first: int = 0
    fail_status: int = 503
    retry_after: str | None = None
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 0
    # When set, each request waits for `release` before answering.
    gate: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    released_in_time: list[bool] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class HookServer:
    """A webhook receiver on 127.0.0.1 (an OS-chosen port), served from a thread."""

    def __init__(self, state: HookState) -> None:
        self.state = state
        server_state = state

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with server_state.lock:
                    server_state.attempts += 1
                    attempt = server_state.attempts
                    server_state.headers.append(dict(self.headers.items()))
                server_state.arrived.set()
                if server_state.gate:
                    server_state.released_in_time.append(server_state.release.wait(WAIT_S))
                if attempt <= server_state.fail_first:
                    self.send_response(server_state.fail_status)
                    if server_state.retry_after is not None:
                        self.send_header("Retry-After", server_state.retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with server_state.lock:
                    server_state.bodies.append(json.loads(raw))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/budget?token=secret"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> HookServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.state.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(WAIT_S)


@pytest.fixture
def state() -> HookState:
    return HookState()


@pytest.fixture
def server(state: HookState) -> Iterator[HookServer]:
    with HookServer(state) as srv:
        yield srv


@pytest.fixture
def errors() -> list[tuple[BudgetAlertEvent, BaseException]]:
    return []


def collect(
    errors: list[tuple[BudgetAlertEvent, BaseException]],
) -> Any:
    return lambda event, exc: errors.append((event, exc))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- webhook ------------------------------------------------------------------------------


def test_webhook_retries_503_with_backoff_then_delivers_the_json_body(
    server: HookServer, state: HookState, errors: list[Any]
) -> None:
    """A receiver that is briefly down still gets the alert, exactly once, with every field."""
    state.fail_first = 2
    sink = WebhookAlertSink(
        server.url, max_attempts=5, backoff_s=0.01, max_backoff_s=0.05, on_error=collect(errors)
    )
    event = make_event()
    try:
        sink.deliver(event)
        assert sink.flush(WAIT_S)
    finally:
        sink.close()
    assert state.attempts == 3
    assert state.bodies == [
        {
            "budget": "per-session",
            "scope_key": "s-1",
            "kind": "warning",
            "threshold": 0.5,
            "unit": "usd",
            "spent": 0.026,
            "limit": 0.05,
            "spent_usd": 0.026,
            "limit_usd": 0.05,
            "window_end": 1_700_003_600.0,
            "reserved": None,
            "requested": None,
            "timestamp": 1_700_000_000.25,
        }
    ]
    assert errors == []
    keys = {h["Idempotency-Key"] for h in state.headers}
    assert len(keys) == 1, "every attempt at one alert carries the same idempotency key"
    assert all(h["Content-Type"] == "application/json" for h in state.headers)


def test_webhook_deliver_returns_before_the_server_answers(
    server: HookServer, state: HookState
) -> None:
    """deliver() only enqueues: the agent never waits on the receiver."""
    state.gate = True
    sink = WebhookAlertSink(server.url, backoff_s=0.01)
    try:
        sink.deliver(make_event())
        # The server holds the request until this line runs; had deliver() sent the
        # request itself it would have waited WAIT_S and the server would record a timeout.
        state.release.set()
        assert sink.flush(WAIT_S)
    finally:
        sink.close()
    assert state.released_in_time == [True]
    assert len(state.bodies) == 1


def test_webhook_gives_up_after_max_attempts_and_reports_the_error(
    server: HookServer, state: HookState, errors: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver that stays down costs exactly max_attempts tries, then one reported error."""
    state.fail_first = 1_000
    sink = WebhookAlertSink(server.url, max_attempts=3, backoff_s=0.01, on_error=collect(errors))
    event = make_event(kind="exceeded", threshold=None)
    with caplog.at_level(logging.ERROR, logger="kit_telemetry"):
        try:
            sink.deliver(event)
            assert sink.flush(WAIT_S)
        finally:
            sink.close()
    assert state.attempts == 3
    assert state.bodies == []
    assert len(errors) == 1
    reported_event, exc = errors[0]
    assert reported_event is event
    assert isinstance(exc, urllib.error.HTTPError) and exc.code == 503
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("after 3 attempt(s)" in m for m in messages)
    assert all("secret" not in m for m in messages), "the URL's secret never reaches the log"


def test_webhook_does_not_retry_a_400(
    server: HookServer, state: HookState, errors: list[Any]
) -> None:
    """A request the receiver rejects will be rejected again, so it is not retried."""
    state.fail_first = 1_000
    state.fail_status = 400
    sink = WebhookAlertSink(server.url, max_attempts=5, backoff_s=0.01, on_error=collect(errors))
    try:
        sink.deliver(make_event())
        assert sink.flush(WAIT_S)
    finally:
        sink.close()
    assert state.attempts == 1
    assert [type(exc) for _, exc in errors] == [urllib.error.HTTPError]


def test_webhook_retries_429_honouring_retry_after(
    server: HookServer, state: HookState, errors: list[Any]
) -> None:
    """429 means "slow down", not "never": it is retried and then delivered."""
    state.fail_first = 1
    state.fail_status = 429
    state.retry_after = "0"
    sink = WebhookAlertSink(server.url, max_attempts=2, backoff_s=0.01, on_error=collect(errors))
    try:
        sink.deliver(make_event())
        assert sink.flush(WAIT_S)
    finally:
        sink.close()
    assert state.attempts == 2
    assert len(state.bodies) == 1
    assert errors == []


def test_webhook_retries_refused_connections_then_reports(errors: list[Any]) -> None:
    """Nobody listening is a connection error: retried, then given up and reported."""
    sink = WebhookAlertSink(
        f"http://127.0.0.1:{free_port()}/hook",
        max_attempts=2,
        backoff_s=0.01,
        on_error=collect(errors),
    )
    try:
        sink.deliver(make_event())
        assert sink.flush(WAIT_S)
    finally:
        sink.close()
    assert len(errors) == 1
    assert isinstance(errors[0][1], urllib.error.URLError)


def test_webhook_drops_when_the_queue_is_full_and_says_so(
    server: HookServer, state: HookState, errors: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A bounded queue keeps memory bounded when the receiver hangs; drops are reported."""
    state.gate = True
    sink = WebhookAlertSink(server.url, queue_size=1, backoff_s=0.01, on_error=collect(errors))
    try:
        sink.deliver(make_event(scope_key="first"))
        assert state.arrived.wait(WAIT_S)  # the worker holds "first"; the queue is empty
        sink.deliver(make_event(scope_key="second"))  # waits in the queue
        with caplog.at_level(logging.WARNING, logger="kit_telemetry"):
            sink.deliver(make_event(scope_key="third"))  # no room
        assert [(e.scope_key, type(x)) for e, x in errors] == [("third", queue.Full)]
        assert any("dropped" in r.getMessage() for r in caplog.records)
        state.release.set()
        assert sink.flush(WAIT_S)
    finally:
        sink.close()
    assert [b["scope_key"] for b in state.bodies] == ["first", "second"]


def test_webhook_flush_reports_false_while_a_delivery_is_pending(
    server: HookServer, state: HookState
) -> None:
    """flush() tells the host whether alerts may still be in the air."""
    state.gate = True
    sink = WebhookAlertSink(server.url)
    try:
        sink.deliver(make_event())
        assert state.arrived.wait(WAIT_S)
        assert sink.flush(0.05) is False
        state.release.set()
        assert sink.flush(WAIT_S) is True
    finally:
        sink.close()


def test_webhook_close_is_idempotent_and_later_alerts_are_reported(
    server: HookServer, state: HookState, errors: list[Any]
) -> None:
    """close() sends what is queued; alerts after it are dropped visibly, not silently."""
    sink = WebhookAlertSink(server.url, on_error=collect(errors))
    sink.deliver(make_event(scope_key="before"))
    sink.close(WAIT_S)
    sink.close(WAIT_S)
    assert [b["scope_key"] for b in state.bodies] == ["before"]
    sink.deliver(make_event(scope_key="after"))
    assert [(e.scope_key, type(x)) for e, x in errors] == [("after", RuntimeError)]


def test_webhook_close_gives_up_on_a_hung_receiver_within_its_timeout(
    server: HookServer, state: HookState, errors: list[Any]
) -> None:
    """Shutdown is bounded even when the receiver never answers; queued alerts are reported."""
    state.gate = True
    sink = WebhookAlertSink(server.url, on_error=collect(errors))
    sink.deliver(make_event(scope_key="in-flight"))
    assert state.arrived.wait(WAIT_S)
    sink.deliver(make_event(scope_key="queued"))
    sink.close(0.05)
    assert [(e.scope_key, type(x)) for e, x in errors] == [("queued", TimeoutError)]
    state.release.set()


def test_webhook_sends_every_alert_from_many_threads_exactly_once(
    server: HookServer, state: HookState
) -> None:
    """The queue lock loses nothing and duplicates nothing under concurrent deliver()."""
    sink = WebhookAlertSink(server.url, queue_size=10_000)
    threads_n, per_thread = 8, 25

    def work(t: int) -> None:
        for i in range(per_thread):
            sink.deliver(make_event(scope_key=f"{t}-{i}"))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sink.flush(WAIT_S * 3)
    finally:
        sink.close()
    keys = [b["scope_key"] for b in state.bodies]
    assert len(keys) == threads_n * per_thread
    assert set(keys) == {f"{t}-{i}" for t in range(threads_n) for i in range(per_thread)}


def test_webhook_filters_events_through_the_dispatcher(
    server: HookServer, state: HookState
) -> None:
    """A sink configured for "exceeded" only never hears about warnings."""
    sink = WebhookAlertSink(server.url, events=("exceeded",))
    dispatcher = AlertDispatcher([sink])
    try:
        dispatcher(make_event(kind="warning"))
        dispatcher(make_event(kind="exceeded", threshold=None))
        assert dispatcher.flush(WAIT_S)
    finally:
        dispatcher.close()
    assert [b["kind"] for b in state.bodies] == ["exceeded"]


@pytest.mark.parametrize(
    "url", ["ftp://example.com/hook", "file:///etc/passwd", "http://", "example.com/hook", ""]
)
def test_webhook_rejects_urls_that_are_not_http(url: str) -> None:
    """Only http(s) is accepted, and the message names the offending value."""
    with pytest.raises(ConfigError, match="url") as info:
        WebhookAlertSink(url)
    assert repr(url) in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field_name"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"backoff_s": -1}, "backoff_s"),
        ({"backoff_s": 2, "max_backoff_s": 1}, "max_backoff_s"),
        ({"queue_size": 0}, "queue_size"),
        ({"events": ("warning", "exhausted")}, "exhausted"),
        ({"events": "warning"}, "events"),
    ],
)
def test_webhook_rejects_bad_settings_naming_the_field(
    kwargs: dict[str, Any], field_name: str
) -> None:
    """Bad numbers fail at construction, naming the field."""
    with pytest.raises(ConfigError, match=field_name):
        WebhookAlertSink("http://127.0.0.1:1/hook", **kwargs)


def test_webhook_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    """Retries spread out exponentially, capped, and never in lock-step across senders."""
    sink = WebhookAlertSink(
        "http://127.0.0.1:1/hook", backoff_s=1.0, max_backoff_s=5.0, rng=random.Random(7)
    )
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        delays = {sink._backoff_delay(attempt, None) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1
    assert sink._backoff_delay(1, retry_after=3.0) >= 3.0
    assert sink._backoff_delay(1, retry_after=60.0) <= 5.0
    sink.close()


def test_webhook_payload_is_json_safe_for_token_budgets() -> None:
    """Token and call budgets have no USD figures: they are null, not missing."""
    payload = webhook_payload(
        make_event(unit="tokens", spent=900, limit=1000, spent_usd=None, limit_usd=None)
    )
    assert json.loads(json.dumps(payload)) == payload
    assert payload["spent_usd"] is None and payload["limit_usd"] is None
    assert payload["unit"] == "tokens"


# --- log and callback ---------------------------------------------------------------------


def test_log_sink_logs_a_warning_naming_budget_scope_and_figures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The zero-configuration sink makes alerts visible in the host's logs."""
    sink = LogAlertSink()
    with caplog.at_level(logging.WARNING, logger="kit_telemetry"):
        sink.deliver(make_event())
        sink.deliver(
            make_event(kind="exceeded", threshold=None, unit="llm_calls", spent=25, limit=25)
        )
    first, second = caplog.records
    assert first.levelno == logging.WARNING and first.name == "kit_telemetry"
    assert (
        first.getMessage() == "budget 'per-session' (s-1) passed 50% of its limit: $0.026 of $0.05"
    )
    assert second.getMessage() == "budget 'per-session' (s-1) hit its limit: 25 of 25 llm_calls"
    assert first.budget_alert["budget"] == "per-session"  # type: ignore[attr-defined]


def test_callback_sink_calls_a_python_callable() -> None:
    """Callbacks receive the event object itself."""
    got: list[BudgetAlertEvent] = []
    sink = CallbackAlertSink(got.append)
    event = make_event()
    sink.deliver(event)
    assert got == [event]


@pytest.fixture
def hook_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An importable module with a recording callback, as a user's package would be."""
    pkg = tmp_path / "alerthooks_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "hooks.py").write_text(
        textwrap.dedent(
            """
            RECEIVED = []
            NOT_CALLABLE = 42

            def on_alert(event):
                RECEIVED.append(event)

            class Pager:
                @staticmethod
                def page(event):
                    RECEIVED.append(("paged", event.budget))
            """
        )
    )
    (pkg / "broken.py").write_text("import definitely_not_installed_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "alerthooks_pkg"


def test_callback_sink_resolves_a_module_function_string(hook_module: str) -> None:
    """The TOML form "pkg.mod:function" is imported once, at construction."""
    import importlib

    sink = CallbackAlertSink(f"{hook_module}.hooks:on_alert")
    event = make_event()
    sink.deliver(event)
    received = importlib.import_module(f"{hook_module}.hooks").RECEIVED
    assert received == [event]
    assert resolve_callback(f"{hook_module}.hooks:Pager.page") is not None


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("no_such_module_abc:fn", "cannot import module 'no_such_module_abc'"),
        ("{pkg}.hooks:missing", "has no attribute 'missing'"),
        ("{pkg}.hooks:NOT_CALLABLE", "not a callable"),
        ("{pkg}.broken:fn", "ModuleNotFoundError"),
        ("{pkg}.hooks", "must be 'pkg.module:function'"),
        (":fn", "must be 'pkg.module:function'"),
    ],
)
def test_callback_sink_rejects_unresolvable_strings_naming_the_value(
    hook_module: str, spec: str, why: str
) -> None:
    """A typo in the callback is a start-up error that names it, not a silent no-op."""
    spec = spec.format(pkg=hook_module)
    with pytest.raises(ConfigError) as info:
        CallbackAlertSink(spec)
    assert repr(spec) in str(info.value)
    assert why in str(info.value)


# --- dispatcher and build_sinks -----------------------------------------------------------


class ExplodingSink:
    events = ("warning", "exceeded")

    def __init__(self) -> None:
        self.closed = 0

    def deliver(self, event: BudgetAlertEvent) -> None:
        raise RuntimeError("sink is broken")

    def close(self, timeout_s: float = 5.0) -> None:
        self.closed += 1


def test_dispatcher_keeps_delivering_when_a_sink_raises(
    errors: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """One broken sink never costs the other sinks their alert."""
    before: list[BudgetAlertEvent] = []
    after: list[BudgetAlertEvent] = []
    broken = ExplodingSink()
    assert isinstance(broken, AlertSink)
    dispatcher = AlertDispatcher(
        [CallbackAlertSink(before.append), broken, CallbackAlertSink(after.append)],
        on_error=collect(errors),
    )
    event = make_event()
    with caplog.at_level(logging.ERROR, logger="kit_telemetry"):
        dispatcher.dispatch(event)
    assert before == [event] and after == [event]
    assert [(e, str(x)) for e, x in errors] == [(event, "sink is broken")]
    assert any(r.exc_info for r in caplog.records), "the traceback is logged"


def test_dispatcher_strict_reraises_after_every_sink_had_its_turn() -> None:
    """strict=True surfaces sink bugs in tests without hiding the later sinks' delivery."""
    after: list[BudgetAlertEvent] = []
    dispatcher = AlertDispatcher([ExplodingSink(), CallbackAlertSink(after.append)], strict=True)
    with pytest.raises(RuntimeError, match="sink is broken"):
        dispatcher(make_event())
    assert len(after) == 1


def test_dispatcher_routes_by_event_kind() -> None:
    """Each sink gets exactly the kinds its `events` names."""
    warnings: list[str] = []
    exceeded: list[str] = []
    both: list[str] = []
    dispatcher = AlertDispatcher(
        [
            CallbackAlertSink(lambda e: warnings.append(e.kind), events=("warning",)),
            CallbackAlertSink(lambda e: exceeded.append(e.kind), events=("exceeded",)),
            CallbackAlertSink(lambda e: both.append(e.kind)),
        ]
    )
    dispatcher(make_event(kind="warning"))
    dispatcher(make_event(kind="exceeded", threshold=None))
    assert warnings == ["warning"]
    assert exceeded == ["exceeded"]
    assert both == ["warning", "exceeded"]


def test_dispatcher_close_closes_each_sink_once() -> None:
    """Shutdown paths may call close twice; sinks see it once."""
    sink = ExplodingSink()
    dispatcher = AlertDispatcher([sink])
    dispatcher.close()
    dispatcher.close()
    assert sink.closed == 1


def test_build_sinks_makes_one_sink_per_config(hook_module: str, errors: list[Any]) -> None:
    """[[alert]] tables become working sinks of the right kind and event filter."""
    sinks = build_sinks(
        [
            AlertSinkConfig(kind="log", events=("exceeded",)),
            AlertSinkConfig(kind="callback", callback=f"{hook_module}.hooks:on_alert"),
            AlertSinkConfig(
                kind="webhook", url="http://127.0.0.1:9/hook", timeout_s=2.0, max_attempts=3
            ),
        ],
        on_error=collect(errors),
    )
    try:
        log, callback, webhook = sinks
        assert isinstance(log, LogAlertSink) and log.events == ("exceeded",)
        assert isinstance(callback, CallbackAlertSink)
        assert isinstance(webhook, WebhookAlertSink)
        assert (webhook.timeout_s, webhook.max_attempts) == (2.0, 3)
        assert webhook.events == ("warning", "exceeded")
    finally:
        for sink in sinks:
            sink.close()


def test_build_sinks_names_the_callback_that_cannot_be_imported() -> None:
    """A bad callback string in a file fails at start-up with the value in the message."""
    with pytest.raises(ConfigError, match="'nope_mod_xyz:fn'"):
        build_sinks([AlertSinkConfig(kind="callback", callback="nope_mod_xyz:fn")])
