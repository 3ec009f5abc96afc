"""KitMetrics: the metric catalogue, the recorded values, label safety and OTel."""

from __future__ import annotations

import itertools
import logging
import math
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from kit_telemetry.errors import ConfigError, UsageError
from kit_telemetry.events import AgentEndEvent, LLMUsageEvent, ToolResultEvent
from kit_telemetry.metrics import (
    CATALOGUE,
    MAX_LABEL_VALUE_CHARS,
    KitMetrics,
    multiprocess_registry,
)

GENAI_TOKEN_BUCKETS = [
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
]
GENAI_DURATION_BUCKETS = [
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
]
RUN_DURATION_BUCKETS = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 204.8, 409.6]
LLM_CALL_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
TOOL_CALL_BUCKETS = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512]

GENAI = ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"]

# The metric table, written out independently of kit_telemetry.metrics: name -> (type, labels, buckets).
EXPECTED: dict[str, tuple[str, list[str], Sequence[float] | None]] = {
    "gen_ai_client_token_usage": ("histogram", [*GENAI, "gen_ai_token_type"], GENAI_TOKEN_BUCKETS),
    "gen_ai_client_operation_duration_seconds": (
        "histogram", [*GENAI, "error_type"], GENAI_DURATION_BUCKETS),
    "gen_ai_invoke_agent_duration_seconds": (
        "histogram", ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_agent_name",
                      "error_type"], RUN_DURATION_BUCKETS),
    "gen_ai_execute_tool_duration_seconds": (
        "histogram", ["gen_ai_operation_name", "gen_ai_tool_name", "gen_ai_tool_type",
                      "error_type"], GENAI_DURATION_BUCKETS),
    "kit_llm_calls_total": ("counter", ["provider", "model", "outcome"], None),
    "kit_llm_tokens_total": ("counter", ["provider", "model", "token_type"], None),
    "kit_llm_reasoning_tokens_total": ("counter", ["provider", "model"], None),
    "kit_llm_cost_usd_total": ("counter", ["provider", "model"], None),
    "kit_llm_unpriced_calls_total": ("counter", ["provider", "model"], None),
    "kit_agent_runs_total": ("counter", ["agent", "stop_reason"], None),
    "kit_agent_run_duration_seconds": ("histogram", ["agent"], RUN_DURATION_BUCKETS),
    "kit_agent_run_cost_usd": ("histogram", ["agent"], None),  # checked on its own below
    "kit_agent_run_llm_calls": ("histogram", ["agent"], LLM_CALL_BUCKETS),
    "kit_agent_run_tool_calls": ("histogram", ["agent"], TOOL_CALL_BUCKETS),
    "kit_tool_calls_total": ("counter", ["tool", "outcome"], None),
    "kit_tool_duration_seconds": ("histogram", ["tool"], GENAI_DURATION_BUCKETS),
    "kit_budget_limit_usd": ("gauge", ["budget"], None),
    "kit_budget_limit": ("gauge", ["budget", "unit"], None),
    "kit_budget_spent_usd": ("gauge", ["budget", "scope_key"], None),
    "kit_budget_reserved_usd": ("gauge", ["budget", "scope_key"], None),
    "kit_budget_max_utilization_ratio": ("gauge", ["budget"], None),
    "kit_budget_window_end_timestamp_seconds": ("gauge", ["budget"], None),
    "kit_budget_decisions_total": ("counter", ["budget", "decision"], None),
    "kit_budget_alerts_total": ("counter", ["budget", "kind", "threshold"], None),
    "kit_extension_handler_errors_total": ("counter", ["extension", "event"], None),
    "kit_telemetry_internal_errors_total": ("counter", ["component"], None),
    "kit_metric_series_overflow_total": ("counter", ["metric"], None),
}  # fmt: skip
# Only a metric past its series limit has one (see the series limit tests).
OVERFLOW_ONLY = {"kit_metric_series_overflow_total"}


def llm_event(**overrides: object) -> LLMUsageEvent:
    fields: dict[str, object] = {
        "session_id": "s-1",
        "run_id": "r-1",
        "timestamp_ns": 1,
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_tokens": 1200,
        "output_tokens": 310,
        "cache_read_tokens": 4000,
        "cache_write_tokens": 100,
        "reasoning_tokens": 50,
        "cost_usd": 0.0123,
        "duration_ms": 1500.0,
        "response_id": "msg_01",
    }
    fields.update(overrides)
    return LLMUsageEvent(**fields)  # type: ignore[arg-type]


def tool_event(name: str = "bash", *, is_error: bool = False, ms: float = 30.0) -> ToolResultEvent:
    return ToolResultEvent(
        session_id="s-1",
        run_id="r-1",
        timestamp_ns=1,
        tool_name=name,
        is_error=is_error,
        duration_ms=ms,
        call_id="toolu_01",
    )


def run_event(agent: str = "coder", **overrides: object) -> AgentEndEvent:
    fields: dict[str, object] = {
        "session_id": "s-1",
        "run_id": "r-1",
        "timestamp_ns": 1,
        "agent_name": agent,
        "stop_reason": "end_turn",
        "duration_ms": 5000.0,
        "cost_usd": 0.02,
        "llm_call_count": 3,
        "tool_call_count": 0,
    }
    fields.update(overrides)
    return AgentEndEvent(**fields)  # type: ignore[arg-type]


def record_everything(metrics: KitMetrics) -> None:
    """One record through every public method, so every metric has a series."""
    metrics.record_llm_call(llm_event())
    metrics.record_llm_call(
        llm_event(
            input_tokens=0,
            output_tokens=0,
            cache_read_tokens=0,
            cache_write_tokens=0,
            reasoning_tokens=0,
            cost_usd=None,
            duration_ms=200.0,
        ),
        outcome="error",
        error_type="TimeoutError",
    )
    metrics.record_tool_call(tool_event(), tool_type="function")
    metrics.record_run(run_event(), provider="anthropic")
    metrics.set_budget_limit("daily", "usd", 50.0)
    metrics.set_budget_limit("tool-loop", "tool_calls", 100)
    metrics.set_budget_usage("daily", "global", 12.5, 0.75)
    metrics.set_budget_max_utilization("per-session", 0.8)
    metrics.set_budget_window_end("daily", 1_767_225_600.0)
    metrics.record_budget_decision("daily", "allowed")
    metrics.record_budget_alert("daily", "warning", "0.5")
    metrics.record_handler_error("usage_budget", "llm_usage")
    metrics.record_internal_error("state")


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> KitMetrics:
    return KitMetrics(registry=registry, strict=True)


def test_catalogue_matches_metrics_md(metrics: KitMetrics, registry: CollectorRegistry) -> None:
    """Every documented metric is exported with its exact name, type, labels and buckets."""
    record_everything(metrics)
    found = {}
    for family in registry.collect():
        name = family.name + "_total" if family.type == "counter" else family.name
        labels: set[str] = set()
        bounds: list[float] = []
        for sample in family.samples:
            labels |= set(sample.labels) - {"le"}
            if sample.name.endswith("_bucket") and sample.labels["le"] != "+Inf":
                bound = float(sample.labels["le"])
                if bound not in bounds:
                    bounds.append(bound)
        found[name] = (family.type, sorted(labels), bounds or None)
    assert set(found) == set(EXPECTED)
    for name, (kind, label_names, buckets) in EXPECTED.items():
        if name in OVERFLOW_ONLY:
            continue
        assert found[name][0] == kind, name
        assert found[name][1] == sorted(label_names), name
        if buckets is not None:
            assert found[name][2] == [float(b) for b in buckets], name
    assert [spec.name for spec in CATALOGUE] == list(EXPECTED)


def test_run_cost_buckets_step_by_root_ten(
    metrics: KitMetrics, registry: CollectorRegistry
) -> None:
    """Run-cost buckets go from 0.0001 to 100 in steps of sqrt(10) (three digits)."""
    metrics.record_run(run_event())
    bounds = [
        float(s.labels["le"])
        for f in registry.collect()
        if f.name == "kit_agent_run_cost_usd"
        for s in f.samples
        if s.name.endswith("_bucket") and s.labels["le"] != "+Inf"
    ]
    assert bounds[0] == 0.0001 and bounds[-1] == 100.0 and len(bounds) == 13
    for low, high in itertools.pairwise(bounds):
        assert high / low == pytest.approx(math.sqrt(10), rel=0.01)


def test_llm_call_records_tokens_cost_usage_and_duration(
    metrics: KitMetrics, registry: CollectorRegistry
) -> None:
    """One priced call lands in every LLM metric with the disjoint and the total input."""
    metrics.record_llm_call(llm_event())
    get = registry.get_sample_value
    pm = {"provider": "anthropic", "model": "claude-sonnet-4-5"}
    assert get("kit_llm_calls_total", {**pm, "outcome": "ok"}) == 1
    assert get("kit_llm_tokens_total", {**pm, "token_type": "input"}) == 1200
    assert get("kit_llm_tokens_total", {**pm, "token_type": "cache_read"}) == 4000
    assert get("kit_llm_tokens_total", {**pm, "token_type": "cache_write"}) == 100
    assert get("kit_llm_tokens_total", {**pm, "token_type": "output"}) == 310
    assert get("kit_llm_reasoning_tokens_total", pm) == 50
    assert get("kit_llm_cost_usd_total", pm) == pytest.approx(0.0123)
    assert get("kit_llm_unpriced_calls_total", pm) == 0
    genai = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "anthropic",
        "gen_ai_request_model": "claude-sonnet-4-5",
    }
    usage_in = {**genai, "gen_ai_token_type": "input"}
    assert get("gen_ai_client_token_usage_sum", usage_in) == 5300  # 1200 + 4000 + 100
    assert get("gen_ai_client_token_usage_count", usage_in) == 1
    assert get("gen_ai_client_token_usage_bucket", {**usage_in, "le": "4096.0"}) == 0
    assert get("gen_ai_client_token_usage_bucket", {**usage_in, "le": "16384.0"}) == 1
    usage_out = {**genai, "gen_ai_token_type": "output"}
    assert get("gen_ai_client_token_usage_sum", usage_out) == 310
    assert get("gen_ai_client_token_usage_bucket", {**usage_out, "le": "256.0"}) == 0
    assert get("gen_ai_client_token_usage_bucket", {**usage_out, "le": "1024.0"}) == 1
    duration = {**genai, "error_type": ""}
    assert get("gen_ai_client_operation_duration_seconds_sum", duration) == 1.5
    assert get("gen_ai_client_operation_duration_seconds_bucket", {**duration, "le": "1.28"}) == 0
    assert get("gen_ai_client_operation_duration_seconds_bucket", {**duration, "le": "2.56"}) == 1


def test_failed_call_without_usage_is_unpriced_and_timed_with_error_type(
    metrics: KitMetrics, registry: CollectorRegistry
) -> None:
    """An error with no usage counts as a call, an unpriced call and a duration; no tokens."""
    empty = {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": None,
    }
    metrics.record_llm_call(llm_event(**empty), outcome="error", error_type="RateLimitError")
    metrics.record_llm_call(llm_event(**empty), outcome="error")
    get = registry.get_sample_value
    pm = {"provider": "anthropic", "model": "claude-sonnet-4-5"}
    genai = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "anthropic",
        "gen_ai_request_model": "claude-sonnet-4-5",
    }
    assert get("kit_llm_calls_total", {**pm, "outcome": "error"}) == 2
    assert get("kit_llm_unpriced_calls_total", pm) == 2
    assert get("kit_llm_tokens_total", {**pm, "token_type": "input"}) == 0
    assert get("gen_ai_client_token_usage_count", {**genai, "gen_ai_token_type": "input"}) == 0
    duration = "gen_ai_client_operation_duration_seconds_count"
    assert get(duration, {**genai, "error_type": "RateLimitError"}) == 1
    assert get(duration, {**genai, "error_type": "_OTHER"}) == 1  # the GenAI fallback
    assert get(duration, {**genai, "error_type": ""}) is None


def test_budget_denied_call_is_only_counted(
    metrics: KitMetrics, registry: CollectorRegistry
) -> None:
    """A call refused by a budget never reached the model: no duration, cost or unpriced."""
    metrics.record_llm_call(llm_event(cost_usd=None, input_tokens=0), outcome="budget_denied")
    get = registry.get_sample_value
    pm = {"provider": "anthropic", "model": "claude-sonnet-4-5"}
    assert get("kit_llm_calls_total", {**pm, "outcome": "budget_denied"}) == 1
    assert get("kit_llm_unpriced_calls_total", pm) is None
    assert get("kit_llm_tokens_total", {**pm, "token_type": "output"}) is None
    text = generate_latest(registry).decode()
    assert "gen_ai_client_operation_duration_seconds_count{" not in text


def test_cancelled_and_operation_labels(metrics: KitMetrics, registry: CollectorRegistry) -> None:
    """Cancelled calls keep their error type; the operation name labels the GenAI metrics."""
    metrics.record_llm_call(
        llm_event(output_tokens=0, reasoning_tokens=0),
        outcome="cancelled",
        error_type="CancelledError",
        operation="text_completion",
    )
    get = registry.get_sample_value
    labels = {
        "gen_ai_operation_name": "text_completion",
        "gen_ai_provider_name": "anthropic",
        "gen_ai_request_model": "claude-sonnet-4-5",
    }
    pm = {"provider": "anthropic", "model": "claude-sonnet-4-5"}
    assert get("kit_llm_calls_total", {**pm, "outcome": "cancelled"}) == 1
    assert (
        get(
            "gen_ai_client_operation_duration_seconds_count",
            {**labels, "error_type": "CancelledError"},
        )
        == 1
    )
    assert get("gen_ai_client_token_usage_sum", {**labels, "gen_ai_token_type": "output"}) == 0


def test_tool_calls_count_outcomes_and_durations(
    metrics: KitMetrics, registry: CollectorRegistry
) -> None:
    """Tool calls are counted as ok or error and timed in the GenAI duration buckets."""
    metrics.record_tool_call(tool_event(ms=30))
    metrics.record_tool_call(tool_event(ms=3000))
    metrics.record_tool_call(tool_event(is_error=True, ms=5))
    get = registry.get_sample_value
    assert get("kit_tool_calls_total", {"tool": "bash", "outcome": "ok"}) == 2
    assert get("kit_tool_calls_total", {"tool": "bash", "outcome": "error"}) == 1
    assert get("kit_tool_duration_seconds_count", {"tool": "bash"}) == 3
    assert get("kit_tool_duration_seconds_sum", {"tool": "bash"}) == pytest.approx(3.035)
    assert get("kit_tool_duration_seconds_bucket", {"tool": "bash", "le": "0.01"}) == 1
    assert get("kit_tool_duration_seconds_bucket", {"tool": "bash", "le": "0.04"}) == 2
    assert get("kit_tool_duration_seconds_bucket", {"tool": "bash", "le": "5.12"}) == 3


def test_runs_record_stop_reason_duration_cost_and_call_counts(
    metrics: KitMetrics, registry: CollectorRegistry
) -> None:
    """Each run adds to the run counter and the four per-run histograms."""
    metrics.record_run(run_event())
    metrics.record_run(run_event(stop_reason=None, llm_call_count=0, tool_call_count=7))
    get = registry.get_sample_value
    assert get("kit_agent_runs_total", {"agent": "coder", "stop_reason": "end_turn"}) == 1
    assert get("kit_agent_runs_total", {"agent": "coder", "stop_reason": "unknown"}) == 1
    assert get("kit_agent_run_duration_seconds_sum", {"agent": "coder"}) == 10.0
    assert get("kit_agent_run_duration_seconds_bucket", {"agent": "coder", "le": "6.4"}) == 2
    assert get("kit_agent_run_cost_usd_sum", {"agent": "coder"}) == pytest.approx(0.04)
    assert get("kit_agent_run_cost_usd_bucket", {"agent": "coder", "le": "0.0316"}) == 2
    assert get("kit_agent_run_llm_calls_bucket", {"agent": "coder", "le": "2.0"}) == 1
    assert get("kit_agent_run_llm_calls_bucket", {"agent": "coder", "le": "4.0"}) == 2
    assert get("kit_agent_run_tool_calls_bucket", {"agent": "coder", "le": "0.0"}) == 1
    assert get("kit_agent_run_tool_calls_bucket", {"agent": "coder", "le": "4.0"}) == 1
    assert get("kit_agent_run_tool_calls_bucket", {"agent": "coder", "le": "8.0"}) == 2


def test_budget_gauges_and_counters(metrics: KitMetrics, registry: CollectorRegistry) -> None:
    """Budget state: USD and other-unit limits, usage with and without a scope key, alerts."""
    record_everything(metrics)
    metrics.set_budget_usage("per-session", None, 0.4, 0.1)
    metrics.set_budget_usage("daily", "global", 13.0, 0.0)  # a gauge: replaced, not added
    get = registry.get_sample_value
    assert get("kit_budget_limit_usd", {"budget": "daily"}) == 50.0
    assert get("kit_budget_limit", {"budget": "tool-loop", "unit": "tool_calls"}) == 100
    assert get("kit_budget_limit_usd", {"budget": "tool-loop"}) is None
    assert get("kit_budget_spent_usd", {"budget": "daily", "scope_key": "global"}) == 13.0
    assert get("kit_budget_reserved_usd", {"budget": "daily", "scope_key": "global"}) == 0.0
    assert get("kit_budget_spent_usd", {"budget": "per-session", "scope_key": ""}) == 0.4
    assert get("kit_budget_max_utilization_ratio", {"budget": "per-session"}) == 0.8
    assert get("kit_budget_window_end_timestamp_seconds", {"budget": "daily"}) == 1_767_225_600
    assert get("kit_budget_decisions_total", {"budget": "daily", "decision": "allowed"}) == 1
    alert = {"budget": "daily", "kind": "warning", "threshold": "0.5"}
    assert get("kit_budget_alerts_total", alert) == 1
    assert (
        get(
            "kit_extension_handler_errors_total",
            {"extension": "usage_budget", "event": "llm_usage"},
        )
        == 1
    )
    assert get("kit_telemetry_internal_errors_total", {"component": "state"}) == 1


def test_bad_input_is_logged_and_counted_not_raised(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """The hot path never raises into the agent: bad figures are counted as internal errors."""
    metrics = KitMetrics(registry=registry)
    with caplog.at_level(logging.WARNING, logger="kit_telemetry"):
        metrics.record_llm_call(llm_event(), outcome="exploded")
        metrics.record_llm_call(llm_event(input_tokens=-5))
        metrics.record_llm_call(llm_event(duration_ms=math.nan))
        metrics.record_llm_call(llm_event(cost_usd=math.inf))
        metrics.record_tool_call(tool_event(ms=-1))
        metrics.record_budget_decision("daily", "maybe")
    get = registry.get_sample_value
    assert get("kit_telemetry_internal_errors_total", {"component": "metrics"}) == 6
    pm = {"provider": "anthropic", "model": "claude-sonnet-4-5"}
    # Rejected before any increment: no half-recorded call.
    assert not get("kit_llm_calls_total", {**pm, "outcome": "ok"})
    assert not get("kit_tool_calls_total", {"tool": "bash", "outcome": "ok"})
    assert "exploded" in caplog.text and "maybe" in caplog.text


def test_strict_mode_raises(metrics: KitMetrics) -> None:
    """strict=True surfaces recording errors, for tests."""
    with pytest.raises(UsageError, match="outcome 'exploded'"):
        metrics.record_llm_call(llm_event(), outcome="exploded")
    with pytest.raises(UsageError, match="alert kind"):
        metrics.record_budget_alert("daily", "panic", "1")


def test_configuration_errors(registry: CollectorRegistry) -> None:
    """Bad settings fail at construction, naming the value."""
    with pytest.raises(ConfigError, match="max_series: 0"):
        KitMetrics(max_series=0)
    KitMetrics(registry=registry)
    with pytest.raises(ConfigError, match="one KitMetrics per CollectorRegistry"):
        KitMetrics(registry=registry)
    # prometheus-client was imported here without PROMETHEUS_MULTIPROC_DIR.
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR"):
        KitMetrics(multiprocess=True)
    with pytest.raises(ConfigError, match="not a directory"):
        multiprocess_registry("/nonexistent/kit-telemetry")


def test_records_land_before_the_call_returns_on_the_callers_thread(
    registry: CollectorRegistry,
) -> None:
    """No queue and no background thread: a read right after a record sees it, flush or not."""
    threads_before = threading.active_count()
    metrics = KitMetrics(registry=registry)
    metrics.record_llm_call(llm_event())
    metrics.record_tool_call(tool_event())
    metrics.record_run(run_event())
    get = registry.get_sample_value
    pm = {"provider": "anthropic", "model": "claude-sonnet-4-5"}
    assert get("kit_llm_calls_total", {**pm, "outcome": "ok"}) == 1
    assert get("kit_llm_tokens_total", {**pm, "token_type": "cache_read"}) == 4000
    assert get("kit_tool_calls_total", {"tool": "bash", "outcome": "ok"}) == 1
    assert get("kit_agent_runs_total", {"agent": "coder", "stop_reason": "end_turn"}) == 1
    assert threading.active_count() == threads_before


def test_default_registry_is_fresh_not_global() -> None:
    """Without a registry, KitMetrics never touches prometheus-client's global REGISTRY."""
    from prometheus_client import REGISTRY

    first, second = KitMetrics(), KitMetrics()
    assert first.registry is not REGISTRY and first.registry is not second.registry
    first.record_internal_error("x")
    assert (
        REGISTRY.get_sample_value("kit_telemetry_internal_errors_total", {"component": "x"}) is None
    )


def test_series_limit_folds_new_combinations_into_one_other_series(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """Past max_series label combinations, new ones land in the overflow series, counted."""
    metrics = KitMetrics(registry=registry, max_series=3, strict=True)
    with caplog.at_level(logging.WARNING, logger="kit_telemetry"):
        for i in range(6):
            metrics.record_llm_call(llm_event(model=f"model-{i}"))
            metrics.record_tool_call(tool_event(f"tool-{i}"))
            metrics.record_run(run_event(f"agent-{i}"))
        metrics.record_llm_call(llm_event(model="model-1"))  # a kept value stays itself
    get = registry.get_sample_value
    calls = "kit_llm_calls_total"
    assert [
        get(calls, {"provider": "anthropic", "model": f"model-{i}", "outcome": "ok"})
        for i in range(4)
    ] == [1, 2, 1, None]
    assert get(calls, {"provider": "other", "model": "other", "outcome": "ok"}) == 3
    # The cut is the same for every token type: model-0's output is not "other".
    tokens = "kit_llm_tokens_total"
    pm0 = {"provider": "anthropic", "model": "model-0"}
    assert get(tokens, {**pm0, "token_type": "output"}) is not None
    assert get(tokens, {**pm0, "token_type": "input"}) is not None
    genai = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "other",
        "gen_ai_request_model": "other",
        "error_type": "",
    }
    assert get("gen_ai_client_operation_duration_seconds_count", genai) == 3
    assert get("kit_tool_calls_total", {"tool": "other", "outcome": "ok"}) == 3
    assert get("kit_agent_runs_total", {"agent": "other", "stop_reason": "other"}) == 3
    models = {
        s.labels["model"]
        for f in registry.collect()
        if f.name == "kit_llm_calls"
        for s in f.samples
    }
    assert models == {"model-0", "model-1", "model-2", "other"}
    # Every record into an overflow series is counted, per metric.
    assert get("kit_metric_series_overflow_total", {"metric": calls}) == 3
    assert get("kit_metric_series_overflow_total", {"metric": "kit_tool_calls_total"}) == 3
    warnings = [r.getMessage() for r in caplog.records if "label combinations" in r.getMessage()]
    assert sum(w.startswith(f"metric {calls} reached 3") for w in warnings) == 1
    assert len(warnings) == len(set(warnings))  # once per metric


def test_series_limit_bounds_the_scrape_of_a_label_flood(registry: CollectorRegistry) -> None:
    """100 providers x 100 models once made 700,064 samples; the limit keeps it bounded."""
    from prometheus_client import generate_latest

    metrics = KitMetrics(registry=registry, max_series=50)
    for p in range(100):
        for m in range(100):
            metrics.record_llm_call(llm_event(provider=f"provider-{p}", model=f"model-{m}"))
    samples = sum(len(family.samples) for family in registry.collect())
    lines = [
        line for line in generate_latest(registry).decode().splitlines() if not line.startswith("#")
    ]
    assert len(lines) == samples
    # 51 combinations (50 + "other") of each LLM metric, token_type x4 at most, 16 lines
    # per histogram series: well under what 10,000 combinations made.
    assert samples < 51 * (4 + 4 * 16 + 16 + 4) + 100
    overflow = "kit_metric_series_overflow_total"
    assert registry.get_sample_value(overflow, {"metric": "kit_llm_calls_total"}) == 10_000 - 50
    assert (
        registry.get_sample_value(
            "kit_llm_calls_total", {"provider": "other", "model": "other", "outcome": "ok"}
        )
        == 10_000 - 50
    )


def test_series_limit_holds_exactly_under_many_threads(registry: CollectorRegistry) -> None:
    """Threads racing for the last free combinations: exactly max_series kept, rest counted."""
    metrics = KitMetrics(registry=registry, max_series=10, strict=True)
    per_thread, threads = 50, 8

    def record(t: int) -> None:
        for i in range(per_thread):
            metrics.record_tool_call(tool_event(f"tool-{t}-{i}"))

    workers = [threading.Thread(target=record, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    calls = [
        s
        for f in registry.collect()
        if f.name == "kit_tool_calls"
        for s in f.samples
        if s.name == "kit_tool_calls_total"
    ]
    total = per_thread * threads
    assert len(calls) == 11  # 10 kept + other
    assert sum(s.value for s in calls) == total
    overflow = registry.get_sample_value(
        "kit_metric_series_overflow_total", {"metric": "kit_tool_calls_total"}
    )
    assert overflow == total - 10


ODD_VALUES = [
    'quote " and backslash \\ and\nnewline',
    "trailing backslash \\",
    "unicode: 模型 ✓ émoji 🚀",
    "x" * 10_000,
    "lone surrogate \udcff here",
    "",
    "{}=,",
]


def test_odd_label_values_keep_the_exposition_valid(
    metrics: KitMetrics, registry: CollectorRegistry
) -> None:
    """Quotes, backslashes, newlines, 10 kB and unencodable values still give valid scrapes."""
    for value in ODD_VALUES:
        metrics.record_llm_call(llm_event(model=value))
        metrics.record_tool_call(tool_event(value))
        metrics.record_run(run_event(value, stop_reason=value))
        metrics.record_handler_error(value, value)
    text = generate_latest(registry).decode("utf-8")
    parsed = list(text_string_to_metric_families(text))
    models = {s.labels["model"] for f in parsed if f.name == "kit_llm_calls" for s in f.samples}
    expected = {v[:MAX_LABEL_VALUE_CHARS] for v in ODD_VALUES if "\udcff" not in v}
    assert expected <= models
    assert "lone surrogate \ufffd here" in models
    assert max(len(m) for m in models) == MAX_LABEL_VALUE_CHARS
    assert len(text) < 400_000  # the 10 kB value is truncated in every series
    # OpenMetrics (what Prometheus negotiates first) must parse too.
    openmetrics_text = generate_openmetrics(registry).decode("utf-8")  # type: ignore[no-untyped-call]
    om = list(parse_openmetrics(openmetrics_text))  # type: ignore[no-untyped-call]
    tools = {s.labels["tool"] for f in om if f.name == "kit_tool_calls" for s in f.samples}
    assert 'quote " and backslash \\ and\nnewline' in tools


def test_concurrent_records_from_many_threads_add_up_exactly(
    metrics: KitMetrics, registry: CollectorRegistry
) -> None:
    """Threads racing on first-time label binding and on increments lose no count."""
    threads_n, per_thread = 8, 1000
    barrier = threading.Barrier(threads_n)

    def work(index: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            metrics.record_llm_call(llm_event(model=f"m-{(i + index) % 5}", duration_ms=10.0))
            metrics.record_tool_call(tool_event(f"t-{i % 3}"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    get = registry.get_sample_value
    total = sum(
        get("kit_llm_calls_total", {"provider": "anthropic", "model": f"m-{k}", "outcome": "ok"})
        or 0
        for k in range(5)
    )
    assert total == threads_n * per_thread
    tokens = sum(
        get(
            "kit_llm_tokens_total",
            {"provider": "anthropic", "model": f"m-{k}", "token_type": "input"},
        )
        or 0
        for k in range(5)
    )
    assert tokens == threads_n * per_thread * 1200
    tool_calls = sum(
        get("kit_tool_calls_total", {"tool": f"t-{k}", "outcome": "ok"}) or 0 for k in range(3)
    )
    assert tool_calls == threads_n * per_thread
    assert get("kit_telemetry_internal_errors_total", {"component": "metrics"}) is None


# --- the OpenTelemetry path ----------------------------------------------------------


def otel_metrics(reader: InMemoryMetricReader) -> dict[str, Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


def otel_to_prometheus_name(name: str, unit: str, kind: str) -> str:
    """The OTLP-to-Prometheus name translation (dots to underscores, unit suffix, _total)."""
    units = {"s": "seconds", "1": ""}
    suffix = "" if unit.startswith("{") else units.get(unit, unit)
    out = name.replace(".", "_")
    if suffix and not out.endswith("_" + suffix):
        out += "_" + suffix
    if unit == "1" and kind == "gauge" and not out.endswith("_ratio"):
        out += "_ratio"
    if kind == "counter":
        out += "_total"
    return out


def test_otel_instruments_translate_to_the_prometheus_names() -> None:
    """One dashboard for both paths: each OTel name translates to the Prometheus name."""
    for spec in CATALOGUE:
        assert otel_to_prometheus_name(spec.otel_name, spec.otel_unit, spec.kind) == spec.name


def test_otel_path_records_names_units_buckets_and_values(registry: CollectorRegistry) -> None:
    """With a meter provider, the same records reach OTel instruments with GenAI attributes."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics = KitMetrics(registry=registry, meter_provider=provider, strict=True)
    record_everything(metrics)
    found = otel_metrics(reader)
    assert set(found) == {spec.otel_name for spec in CATALOGUE if spec.name not in OVERFLOW_ONLY}

    usage = found["gen_ai.client.token.usage"]
    assert usage.unit == "{token}"
    points = {p.attributes["gen_ai.token.type"]: p for p in usage.data.data_points}
    input_point = points["input"]
    assert isinstance(input_point, HistogramDataPoint)
    assert list(input_point.explicit_bounds) == GENAI_TOKEN_BUCKETS
    assert input_point.sum == 5300 and input_point.count == 1
    assert dict(input_point.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.token.type": "input",
    }
    duration = found["gen_ai.client.operation.duration"]
    assert duration.unit == "s"
    by_error = {p.attributes.get("error.type"): p for p in duration.data.data_points}
    # error.type is absent on success (the GenAI convention), set on errors.
    assert set(by_error) == {None, "TimeoutError"}
    assert list(by_error[None].explicit_bounds) == GENAI_DURATION_BUCKETS
    assert by_error[None].sum == 1.5 and by_error["TimeoutError"].sum == 0.2

    calls = {p.attributes["outcome"]: p.value for p in found["kit.llm.calls"].data.data_points}
    assert calls == {"ok": 1, "error": 1}
    assert found["kit.llm.calls"].data.is_monotonic
    spent = found["kit.budget.spent_usd"].data.data_points[0]
    assert spent.value == 12.5 and dict(spent.attributes) == {
        "budget": "daily",
        "scope_key": "global",
    }
    assert found["kit.agent.run.duration"].unit == "s"
    run_duration = found["kit.agent.run.duration"].data.data_points[0]
    assert list(run_duration.explicit_bounds) == RUN_DURATION_BUCKETS
    # The Prometheus side got the same record.
    assert (
        registry.get_sample_value(
            "kit_budget_spent_usd", {"budget": "daily", "scope_key": "global"}
        )
        == 12.5
    )
    provider.shutdown()


def test_unscoped_budget_usage_omits_the_otel_attribute(registry: CollectorRegistry) -> None:
    """scope_key None: an empty Prometheus label, and no OTel attribute at all."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics = KitMetrics(registry=registry, meter_provider=provider, strict=True)
    metrics.set_budget_usage("per-session", None, 0.3, 0.0)
    point = otel_metrics(reader)["kit.budget.spent_usd"].data.data_points[0]
    assert dict(point.attributes) == {"budget": "per-session"}
    provider.shutdown()


def test_a_refused_registry_is_left_as_it_was() -> None:
    """A clash with a metric already in the registry registers none of ours."""
    from prometheus_client import Counter

    registry = CollectorRegistry()
    Counter("kit_tool_calls", "someone else's", registry=registry)
    with pytest.raises(ConfigError, match="kit_tool_calls"):
        KitMetrics(registry=registry)
    names = {family.name for family in registry.collect()}
    assert names == {"kit_tool_calls"}
