"""The metric catalogue: every metric's name, type, labels and buckets.

Each ``MetricSpec`` names one metric twice: as Prometheus scrapes it (``name``) and as an
OpenTelemetry instrument (``otel_name`` and ``otel_unit``, which translate to the same
Prometheus name), so one dashboard reads either path.

Gauges carry their prometheus-client multi-process mode (see ``multiprocess``):

- ``kit_budget_limit_usd``, ``kit_budget_limit``, ``kit_budget_spent_usd``,
  ``kit_budget_reserved_usd``, ``kit_budget_window_end_timestamp_seconds``:
  ``livemostrecent``. Budgets shared by several processes live in one ledger (SQLite,
  Redis), so each process reports the same quantity; the freshest reading wins, where a
  sum would count it once per process.
- ``kit_budget_max_utilization_ratio``: ``livemax``, the highest utilisation any live
  process saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from .. import semconv as sc

# --- names as Prometheus scrapes them -------------------------------------------------
GEN_AI_CLIENT_TOKEN_USAGE: Final = "gen_ai_client_token_usage"
GEN_AI_CLIENT_OPERATION_DURATION: Final = "gen_ai_client_operation_duration_seconds"
GEN_AI_INVOKE_AGENT_DURATION: Final = "gen_ai_invoke_agent_duration_seconds"
GEN_AI_EXECUTE_TOOL_DURATION: Final = "gen_ai_execute_tool_duration_seconds"
KIT_LLM_CALLS: Final = "kit_llm_calls_total"
KIT_LLM_TOKENS: Final = "kit_llm_tokens_total"
KIT_LLM_REASONING_TOKENS: Final = "kit_llm_reasoning_tokens_total"
KIT_LLM_COST_USD: Final = "kit_llm_cost_usd_total"
KIT_LLM_UNPRICED_CALLS: Final = "kit_llm_unpriced_calls_total"
KIT_AGENT_RUNS: Final = "kit_agent_runs_total"
KIT_AGENT_RUN_DURATION: Final = "kit_agent_run_duration_seconds"
KIT_AGENT_RUN_COST_USD: Final = "kit_agent_run_cost_usd"
KIT_AGENT_RUN_LLM_CALLS: Final = "kit_agent_run_llm_calls"
KIT_AGENT_RUN_TOOL_CALLS: Final = "kit_agent_run_tool_calls"
KIT_TOOL_CALLS: Final = "kit_tool_calls_total"
KIT_TOOL_DURATION: Final = "kit_tool_duration_seconds"
KIT_BUDGET_LIMIT_USD: Final = "kit_budget_limit_usd"
KIT_BUDGET_LIMIT: Final = "kit_budget_limit"
KIT_BUDGET_SPENT_USD: Final = "kit_budget_spent_usd"
KIT_BUDGET_RESERVED_USD: Final = "kit_budget_reserved_usd"
KIT_BUDGET_MAX_UTILIZATION: Final = "kit_budget_max_utilization_ratio"
KIT_BUDGET_WINDOW_END: Final = "kit_budget_window_end_timestamp_seconds"
KIT_BUDGET_DECISIONS: Final = "kit_budget_decisions_total"
KIT_BUDGET_ALERTS: Final = "kit_budget_alerts_total"
KIT_EXTENSION_HANDLER_ERRORS: Final = "kit_extension_handler_errors_total"
KIT_INTERNAL_ERRORS: Final = "kit_telemetry_internal_errors_total"
KIT_METRIC_SERIES_OVERFLOW: Final = "kit_metric_series_overflow_total"

# --- buckets --------------------------------------------------------------------------
GEN_AI_TOKEN_BUCKETS: Final = tuple(float(4**i) for i in range(14))  # 1 ... 67108864
GEN_AI_DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
RUN_DURATION_BUCKETS: Final = (
    0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 204.8, 409.6,
)  # fmt: skip
# Steps of sqrt(10), rounded to three digits so the `le` labels stay readable in PromQL.
RUN_COST_BUCKETS: Final = (
    0.0001, 0.000316, 0.001, 0.00316, 0.01, 0.0316, 0.1, 0.316, 1.0, 3.16, 10.0, 31.6, 100.0,
)  # fmt: skip
RUN_LLM_CALL_BUCKETS: Final = tuple(float(2**i) for i in range(9))  # 1 ... 256
RUN_TOOL_CALL_BUCKETS: Final = (0.0, *(float(2**i) for i in range(10)))  # 0, 1 ... 512

LLM_OUTCOMES: Final = frozenset({"ok", "error", "budget_denied", "cancelled"})
BUDGET_DECISIONS: Final = frozenset({"allowed", "denied", "warned"})
BUDGET_ALERT_KINDS: Final = frozenset({"warning", "exceeded"})

MetricKind = Literal["counter", "histogram", "gauge"]
GaugeMode = Literal["livemostrecent", "livemax"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricSpec:
    """One metric of the catalogue.

    Attributes:
        name: the Prometheus name as scraped (counters end in ``_total``).
        kind: counter, histogram or gauge.
        labels: Prometheus label names, in order.
        help: the HELP text.
        otel_name: the OpenTelemetry instrument name; with ``otel_unit`` it translates to
            ``name`` under the OTLP-to-Prometheus rules (dots to underscores, unit suffix,
            ``_total`` for counters).
        otel_unit: the UCUM unit of the OpenTelemetry instrument.
        otel_attributes: OpenTelemetry attribute keys, one per label (dotted GenAI names
            for the GenAI metrics, the label names themselves for ``kit_*``).
        buckets: histogram upper bounds (``+Inf`` implied).
        multiprocess_mode: how gauges combine across processes in multi-process mode.
    """

    name: str
    kind: MetricKind
    labels: tuple[str, ...]
    help: str
    otel_name: str
    otel_unit: str
    otel_attributes: tuple[str, ...]
    buckets: tuple[float, ...] = ()
    multiprocess_mode: GaugeMode | None = None


def _spec(
    name: str,
    kind: MetricKind,
    labels: tuple[str, ...],
    help: str,
    otel: tuple[str, str],
    *,
    otel_attributes: tuple[str, ...] | None = None,
    buckets: tuple[float, ...] = (),
    multiprocess_mode: GaugeMode | None = None,
) -> MetricSpec:
    return MetricSpec(
        name=name,
        kind=kind,
        labels=labels,
        help=help,
        otel_name=otel[0],
        otel_unit=otel[1],
        otel_attributes=otel_attributes or labels,
        buckets=buckets,
        multiprocess_mode=multiprocess_mode,
    )


_GENAI_ATTRS = (sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_REQUEST_MODEL)
_GENAI_LABELS = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")
_PM = ("provider", "model")

# Units in braces are UCUM annotations: the Prometheus translation drops them, so the
# name alone carries the meaning and both paths scrape under the same name.
CATALOGUE: Final[tuple[MetricSpec, ...]] = (
    _spec(GEN_AI_CLIENT_TOKEN_USAGE, "histogram", (*_GENAI_LABELS, "gen_ai_token_type"),
          "Tokens per LLM call; input is the total input including cached tokens.",
          (sc.METRIC_GEN_AI_CLIENT_TOKEN_USAGE, "{token}"),
          otel_attributes=(*_GENAI_ATTRS, sc.GEN_AI_TOKEN_TYPE), buckets=GEN_AI_TOKEN_BUCKETS),
    _spec(GEN_AI_CLIENT_OPERATION_DURATION, "histogram", (*_GENAI_LABELS, "error_type"),
          "Duration of LLM calls that reached the model; error_type is empty on success.",
          (sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION, "s"),
          otel_attributes=(*_GENAI_ATTRS, sc.ERROR_TYPE), buckets=GEN_AI_DURATION_BUCKETS),
    _spec(GEN_AI_INVOKE_AGENT_DURATION, "histogram",
          ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_agent_name", "error_type"),
          "Duration of agent runs (invoke_agent); error_type is empty on success.",
          (sc.METRIC_GEN_AI_INVOKE_AGENT_DURATION, "s"),
          otel_attributes=(sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_PROVIDER_NAME,
                           sc.GEN_AI_AGENT_NAME, sc.ERROR_TYPE),
          buckets=RUN_DURATION_BUCKETS),
    _spec(GEN_AI_EXECUTE_TOOL_DURATION, "histogram",
          ("gen_ai_operation_name", "gen_ai_tool_name", "gen_ai_tool_type", "error_type"),
          "Duration of tool calls (execute_tool); error_type is empty on success.",
          (sc.METRIC_GEN_AI_EXECUTE_TOOL_DURATION, "s"),
          otel_attributes=(sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_TOOL_NAME,
                           sc.GEN_AI_TOOL_TYPE, sc.ERROR_TYPE),
          buckets=GEN_AI_DURATION_BUCKETS),
    _spec(KIT_LLM_CALLS, "counter", (*_PM, "outcome"),
          "LLM calls by outcome (ok, error, budget_denied, cancelled).",
          ("kit.llm.calls", "{call}")),
    _spec(KIT_LLM_TOKENS, "counter", (*_PM, "token_type"),
          "Tokens by disjoint kind (input, cache_read, cache_write, output).",
          ("kit.llm.tokens", "{token}")),
    _spec(KIT_LLM_REASONING_TOKENS, "counter", _PM,
          "Reasoning tokens, a subset of output tokens.",
          ("kit.llm.reasoning_tokens", "{token}")),
    _spec(KIT_LLM_COST_USD, "counter", _PM,
          "Cost of priced LLM calls in USD.",
          ("kit.llm.cost_usd", "{USD}")),
    _spec(KIT_LLM_UNPRICED_CALLS, "counter", _PM,
          "LLM calls whose model had no price.",
          ("kit.llm.unpriced_calls", "{call}")),
    _spec(KIT_AGENT_RUNS, "counter", ("agent", "stop_reason"),
          "Finished agent runs by stop reason.",
          ("kit.agent.runs", "{run}")),
    _spec(KIT_AGENT_RUN_DURATION, "histogram", ("agent",),
          "Duration of agent runs.",
          ("kit.agent.run.duration", "s"), buckets=RUN_DURATION_BUCKETS),
    _spec(KIT_AGENT_RUN_COST_USD, "histogram", ("agent",),
          "Cost of agent runs in USD (priced calls only).",
          ("kit.agent.run.cost_usd", "{USD}"), buckets=RUN_COST_BUCKETS),
    _spec(KIT_AGENT_RUN_LLM_CALLS, "histogram", ("agent",),
          "LLM calls per agent run.",
          ("kit.agent.run.llm_calls", "{call}"), buckets=RUN_LLM_CALL_BUCKETS),
    _spec(KIT_AGENT_RUN_TOOL_CALLS, "histogram", ("agent",),
          "Tool calls per agent run.",
          ("kit.agent.run.tool_calls", "{call}"), buckets=RUN_TOOL_CALL_BUCKETS),
    _spec(KIT_TOOL_CALLS, "counter", ("tool", "outcome"),
          "Tool calls by outcome (ok, error).",
          ("kit.tool.calls", "{call}")),
    _spec(KIT_TOOL_DURATION, "histogram", ("tool",),
          "Duration of tool calls.",
          ("kit.tool.duration", "s"), buckets=GEN_AI_DURATION_BUCKETS),
    _spec(KIT_BUDGET_LIMIT_USD, "gauge", ("budget",),
          "The current window's limit of a USD budget.",
          ("kit.budget.limit_usd", "{USD}"), multiprocess_mode="livemostrecent"),
    _spec(KIT_BUDGET_LIMIT, "gauge", ("budget", "unit"),
          "The current window's limit of a token or call budget, in its unit.",
          ("kit.budget.limit", "{limit}"), multiprocess_mode="livemostrecent"),
    _spec(KIT_BUDGET_SPENT_USD, "gauge", ("budget", "scope_key"),
          "Committed spend in the current window; scope_key is set for few-keyed budgets.",
          ("kit.budget.spent_usd", "{USD}"), multiprocess_mode="livemostrecent"),
    _spec(KIT_BUDGET_RESERVED_USD, "gauge", ("budget", "scope_key"),
          "In-flight reservations in the current window.",
          ("kit.budget.reserved_usd", "{USD}"), multiprocess_mode="livemostrecent"),
    _spec(KIT_BUDGET_MAX_UTILIZATION, "gauge", ("budget",),
          "Highest spent/limit among the live scope keys of a many-keyed budget.",
          ("kit.budget.max_utilization_ratio", "1"), multiprocess_mode="livemax"),
    _spec(KIT_BUDGET_WINDOW_END, "gauge", ("budget",),
          "Unix time at which the budget's current window ends.",
          ("kit.budget.window_end_timestamp", "s"), multiprocess_mode="livemostrecent"),
    _spec(KIT_BUDGET_DECISIONS, "counter", ("budget", "decision"),
          "Budget admission decisions (allowed, denied, warned).",
          ("kit.budget.decisions", "{decision}")),
    _spec(KIT_BUDGET_ALERTS, "counter", ("budget", "kind", "threshold"),
          "Budget alerts (warning, exceeded) by threshold.",
          ("kit.budget.alerts", "{alert}")),
    _spec(KIT_EXTENSION_HANDLER_ERRORS, "counter", ("extension", "event"),
          "Extension handlers that raised.",
          ("kit.extension.handler_errors", "{error}")),
    _spec(KIT_INTERNAL_ERRORS, "counter", ("component",),
          "Internal errors that were logged instead of raised.",
          ("kit.telemetry.internal_errors", "{error}")),
    _spec(KIT_METRIC_SERIES_OVERFLOW, "counter", ("metric",),
          "Records that went to a metric's overflow series (free-form labels 'other') "
          "because the metric had reached max_series.",
          ("kit.metric.series_overflow", "{record}")),
)  # fmt: skip
"""Every metric kit-telemetry exports, in the order of the README's metric table."""

SPECS: Final = {spec.name: spec for spec in CATALOGUE}
"""``CATALOGUE`` by Prometheus name."""
