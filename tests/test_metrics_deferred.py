"""Deferred recording: finished calls are folded into the series off the agent's thread,
and every scrape, flush and shutdown still sees all of them."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
import urllib.request

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from test_metrics import llm_event, run_event, tool_event

import kit_telemetry as kt
from kit_telemetry.exporters.prometheus import start_metrics_server
from kit_telemetry.metrics import KitMetrics
from kit_telemetry.metrics.deferred import RecordQueue

PM = {"provider": "anthropic", "model": "claude-sonnet-4-5"}


def test_records_wait_in_the_queue_until_a_scrape_folds_them() -> None:
    """The agent's thread only queues; collecting the registry folds first, so nothing is missed."""
    registry = CollectorRegistry()
    metrics = KitMetrics(registry=registry)
    assert metrics._queue is not None
    metrics.record_llm_call(llm_event())
    metrics.record_tool_call(tool_event())
    metrics.record_run(run_event())
    assert len(metrics._queue) == 3
    get = registry.get_sample_value
    assert get("kit_llm_calls_total", {**PM, "outcome": "ok"}) == 1
    assert len(metrics._queue) == 0
    assert get("kit_llm_tokens_total", {**PM, "token_type": "cache_read"}) == 4000
    assert get("kit_tool_calls_total", {"tool": "bash", "outcome": "ok"}) == 1
    assert get("kit_agent_runs_total", {"agent": "coder", "stop_reason": "end_turn"}) == 1
    metrics.shutdown()


def test_a_scrape_over_http_sees_calls_recorded_just_before() -> None:
    """The /metrics endpoint reads the registry after the fold: the last call is there."""
    registry = CollectorRegistry()
    metrics = KitMetrics(registry=registry)
    server = start_metrics_server("127.0.0.1:0", registry=registry)
    try:
        for _ in range(7):
            metrics.record_llm_call(llm_event())
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            text = r.read().decode()
    finally:
        server.shutdown()
        metrics.shutdown()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    key = ("kit_llm_calls_total", tuple(sorted({**PM, "outcome": "ok"}.items())))
    assert samples[key] == 7


def test_background_thread_folds_without_a_scrape() -> None:
    """Nobody scraping: the folding thread still applies the records within its interval."""
    seen: list[int] = []
    queue = RecordQueue(seen.append, interval_s=0.02)
    for i in range(5):
        queue.put(i)
    deadline = time.monotonic() + 5
    while len(seen) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == [0, 1, 2, 3, 4]
    assert len(queue) == 0
    queue.shutdown()


def test_a_filling_queue_wakes_the_folding_thread_before_its_interval() -> None:
    """Past wake_pending the folding thread folds at once, so the agent's thread never has to."""
    folded_on: list[str] = []
    queue = RecordQueue(
        lambda _: folded_on.append(threading.current_thread().name),
        wake_pending=2,
        interval_s=3600,
    )
    for i in range(3):
        queue.put(i)
    deadline = time.monotonic() + 5
    while len(folded_on) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert folded_on == ["kit-telemetry-metrics-fold"] * 3
    queue.shutdown()


def test_overflow_folds_on_the_callers_thread() -> None:
    """Past max_pending the caller folds itself, so the queue's memory stays bounded."""
    folded_on: list[str] = []
    queue = RecordQueue(
        lambda _: folded_on.append(threading.current_thread().name),
        wake_pending=3,
        max_pending=3,
        interval_s=3600,
    )
    for i in range(3):
        queue.put(i)
    assert folded_on == [] and len(queue) == 3
    queue.put(3)
    assert folded_on == [threading.current_thread().name] * 4
    assert len(queue) == 0
    queue.shutdown()


def test_shutdown_folds_the_rest_stops_the_thread_and_is_idempotent() -> None:
    """Nothing queued is lost at shutdown, and the folding thread ends."""
    seen: list[str] = []
    queue = RecordQueue(seen.append, interval_s=3600)
    queue.put("last")
    thread = queue._folder
    assert thread is not None and thread.is_alive()
    queue.shutdown()
    queue.shutdown()
    assert seen == ["last"]
    assert not thread.is_alive()


def test_force_flush_folds_and_strict_records_inline() -> None:
    """force_flush applies the queue; strict mode records (and fails) before returning."""
    registry = CollectorRegistry()
    metrics = KitMetrics(registry=registry)
    metrics.record_tool_call(tool_event())
    assert metrics._queue is not None and len(metrics._queue) == 1
    assert metrics.force_flush() is True
    assert len(metrics._queue) == 0
    metrics.shutdown()
    strict = KitMetrics(registry=CollectorRegistry(), strict=True)
    assert strict._queue is None


def test_many_threads_recording_give_exact_totals() -> None:
    """Appends from many threads and a concurrent folder: every call counted exactly once."""
    registry = CollectorRegistry()
    metrics = KitMetrics(registry=registry)
    per_thread, threads = 500, 8
    stop = threading.Event()

    def scrape_repeatedly() -> None:
        while not stop.is_set():
            registry.get_sample_value("kit_llm_calls_total", {**PM, "outcome": "ok"})

    def record() -> None:
        for _ in range(per_thread):
            metrics.record_llm_call(llm_event())

    scraper = threading.Thread(target=scrape_repeatedly)
    scraper.start()
    workers = [threading.Thread(target=record) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    scraper.join()
    get = registry.get_sample_value
    assert get("kit_llm_calls_total", {**PM, "outcome": "ok"}) == per_thread * threads
    assert get("kit_llm_tokens_total", {**PM, "token_type": "input"}) == 1200 * per_thread * threads
    metrics.shutdown()


def _record_in_forked_child(queue: RecordQueue, out: multiprocessing.Queue[object]) -> None:
    seen: list[int] = []
    queue._apply = seen.append
    queue.put(1)
    thread = queue._folder
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    out.put((thread is not None and thread.is_alive(), seen))


def test_a_forked_child_starts_its_own_folding_thread() -> None:
    """After fork the parent's thread is gone: the child's first record starts a new one."""
    queue = RecordQueue(lambda _: None, interval_s=0.02)
    queue.put(0)
    assert queue._folder is not None
    queue.fold()  # the child starts with an empty queue
    context = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[object] = context.Queue()
    child = context.Process(target=_record_in_forked_child, args=(queue, out))
    child.start()
    result = out.get(timeout=10)
    child.join(timeout=10)
    assert result == (True, [1])
    assert child.exitcode == 0
    queue.shutdown()


def test_a_scrape_restricted_by_name_folds_first_too() -> None:
    """prometheus-client's name[] filter skips the fold collector; the endpoint folds itself."""
    registry = CollectorRegistry()
    metrics = KitMetrics(registry=registry)
    server = start_metrics_server(
        "127.0.0.1:0", registry=registry, before_scrape=metrics.force_flush
    )
    try:
        metrics.record_tool_call(tool_event())
        url = f"http://127.0.0.1:{server.port}/metrics?name[]=kit_tool_calls_total"
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    finally:
        server.shutdown()
        metrics.shutdown()
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    assert [(s.name, s.labels, s.value) for s in samples] == [
        ("kit_tool_calls_total", {"tool": "bash", "outcome": "ok"}, 1.0)
    ]


def test_configured_endpoint_serves_the_last_run_to_a_restricted_scrape() -> None:
    """configure(prometheus=...) wires the fold into its endpoint: no lag for name[] scrapes."""
    with kt.Telemetry(exporters=(), prometheus="127.0.0.1:0") as tel:
        with tel.session("s-1") as session, session.run("hi", agent_name="coder") as run:
            with run.turn() as turn, turn.tool_call("grep"):
                pass
        assert tel.metrics_server is not None
        url = f"{tel.metrics_server.url}?name[]=kit_tool_calls_total"
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    assert [(s.labels, s.value) for s in samples] == [({"tool": "grep", "outcome": "ok"}, 1.0)]


def test_a_failing_record_is_logged_and_never_reaches_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An overflow folds on the agent's thread: a broken record must not raise there."""
    seen: list[int] = []

    def apply(record: int) -> None:
        if record == 1:
            raise RuntimeError("boom")
        seen.append(record)

    queue = RecordQueue(apply, max_pending=1, interval_s=3600)
    with caplog.at_level(logging.ERROR, logger="kit_telemetry"):
        queue.put(1)
        queue.put(2)  # overflows: folds here, past the broken record
    assert seen == [2]
    assert "queued metrics record failed" in caplog.text and "boom" in caplog.text
    queue.shutdown()


def test_records_after_shutdown_land_at_once() -> None:
    """With the folding thread stopped, a late record is applied in place, not left waiting."""
    seen: list[str] = []
    queue = RecordQueue(seen.append, interval_s=3600)
    queue.put("early")
    queue.shutdown()
    queue.put("late")
    assert seen == ["early", "late"] and len(queue) == 0
    assert queue._folder is None
