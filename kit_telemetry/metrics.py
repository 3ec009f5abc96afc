"""The metric catalogue (``metrics.md``) and ``KitMetrics``, which records into it.

Every metric is a prometheus-client instrument in a ``CollectorRegistry`` (never the global
one), and, when a ``MeterProvider`` is given, also an OpenTelemetry instrument whose dotted
name translates to the same Prometheus name, so one dashboard reads either path.

Recording is fed from the events of ``events.py`` and is built for the hot path: the
first record of a label combination binds the prometheus-client children (and the OTel
attribute dicts) once and caches them; later records are one dict lookup and a few
increments. Recording never raises into the caller: a failure is logged and counted in
``kit_telemetry_internal_errors_total`` (unless ``strict=True``).

Label values:

- ``model``, ``tool``, ``agent`` (and the other free-form labels listed in
  ``BOUNDED_LABELS``) keep at most ``max_label_values`` distinct values per metric; later
  values are reported as ``other`` and one warning names the metric, the label and the cut.
- Values longer than ``MAX_LABEL_VALUE_CHARS`` (256) characters are truncated; characters
  that UTF-8 cannot encode (lone surrogates) are replaced, so a scrape never breaks.
  Quotes, backslashes and newlines are escaped by prometheus-client's exposition.
- No label ever holds a session, run, user, trace or response id.

Multi-process mode (prometheus-client's, ``PROMETHEUS_MULTIPROC_DIR`` set before
``prometheus_client`` is first imported): every process writes its own files; counters and
histograms add up across processes. The budget gauges use these modes:

- ``kit_budget_limit_usd``, ``kit_budget_limit``, ``kit_budget_spent_usd``,
  ``kit_budget_reserved_usd``, ``kit_budget_window_end_timestamp_seconds``:
  ``livemostrecent``. Budgets shared by several processes live in one ledger (SQLite,
  Redis), so each process reports the same quantity; the freshest reading wins, where a
  sum would count it once per process.
- ``kit_budget_max_utilization_ratio``: ``livemax``, the highest utilisation any live
  process saw.

The serving process exposes ``multiprocess_registry()`` and calls ``mark_process_dead(pid)``
when a worker exits, so its gauges stop being reported.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from opentelemetry.metrics import MeterProvider
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client import multiprocess as _prom_multiprocess

from . import semconv as sc
from .errors import ConfigError, UsageError
from .events import AgentEndEvent, LLMUsageEvent, ToolResultEvent

logger = logging.getLogger("kit_telemetry")

# Not yet in semconv.py: the GenAI attribute of gen_ai.client.token.usage.
_GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"

# --- names as Prometheus scrapes them -------------------------------------------------
GEN_AI_CLIENT_TOKEN_USAGE: Final = "gen_ai_client_token_usage"
GEN_AI_CLIENT_OPERATION_DURATION: Final = "gen_ai_client_operation_duration_seconds"
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

OTHER: Final = "other"
"""The value that replaces a bounded label's values past the cut."""

MAX_LABEL_VALUE_CHARS: Final = 256
"""Label values are truncated to this many characters."""

BOUNDED_LABELS: Final = frozenset(
    {
        "model",
        "tool",
        "agent",
        "gen_ai_request_model",
        # Free-form too (providers' and agents' own strings), so bounded the same way.
        "provider",
        "gen_ai_provider_name",
        "stop_reason",
        "error_type",
        "scope_key",
    }
)
"""Labels whose distinct values per metric are capped at ``max_label_values``."""

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
          ("gen_ai.client.token.usage", "{token}"),
          otel_attributes=(*_GENAI_ATTRS, _GEN_AI_TOKEN_TYPE), buckets=GEN_AI_TOKEN_BUCKETS),
    _spec(GEN_AI_CLIENT_OPERATION_DURATION, "histogram", (*_GENAI_LABELS, "error_type"),
          "Duration of LLM calls that reached the model; error_type is empty on success.",
          ("gen_ai.client.operation.duration", "s"),
          otel_attributes=(*_GENAI_ATTRS, sc.ERROR_TYPE), buckets=GEN_AI_DURATION_BUCKETS),
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
)  # fmt: skip
"""Every metric kit-telemetry exports, in the order of ``metrics.md``."""

_SPECS: Final = {spec.name: spec for spec in CATALOGUE}
# Distinct label tuples cached per recording method; past this, the slow path runs each
# time so that a flood of distinct values cannot grow memory without bound.
_MAX_CACHED_KEYS: Final = 10_000

_Record = Callable[[float], None]
_OtelRecord = Callable[[float, dict[str, str]], None]


def multiprocess_dir() -> str | None:
    """The folder of prometheus-client's multi-process mode, or None when it is off."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def multiprocess_registry(path: str | None = None) -> CollectorRegistry:
    """A fresh registry that collects every process's metrics, for the serving process.

    Args:
        path: the multi-process folder; defaults to ``PROMETHEUS_MULTIPROC_DIR``.

    Raises:
        ConfigError: no folder is given or set, or it is not a directory.
    """
    registry = CollectorRegistry()
    _attach_multiprocess_collector(registry, path)
    return registry


def mark_process_dead(pid: int, path: str | None = None) -> None:
    """Drop a finished worker's live gauges (prometheus-client's ``mark_process_dead``).

    Counters and histograms of the worker are kept: they still add to the totals.
    """
    _prom_multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def _attach_multiprocess_collector(registry: CollectorRegistry, path: str | None) -> None:
    folder = path or multiprocess_dir()
    if not folder or not os.path.isdir(folder):
        raise ConfigError(
            f"multiprocess: folder {folder!r} is not a directory; set PROMETHEUS_MULTIPROC_DIR "
            "to an existing, empty directory before the worker processes start"
        )
    _prom_multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]


def _clean(value: object) -> str:
    """A label value that any exposition format can carry."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_LABEL_VALUE_CHARS:
        text = text[:MAX_LABEL_VALUE_CHARS]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate would make the whole scrape fail to encode; U+FFFD marks it.
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


class _LabelGuard:
    """Caps the distinct values of one label in one metric."""

    __slots__ = ("_label", "_limit", "_metric", "_seen", "_warned")

    def __init__(self, metric: str, label: str, limit: int) -> None:
        self._metric = metric
        self._label = label
        self._limit = limit
        self._seen: set[str] = set()
        self._warned = False

    def admit(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) < self._limit:
            self._seen.add(value)
            return value
        if not self._warned:
            self._warned = True
            logger.warning(
                "metric %s: label %r reached %d distinct values; further values are "
                "reported as %r (raise max_label_values to keep more)",
                self._metric,
                self._label,
                self._limit,
                OTHER,
            )
        return OTHER


class _LLMSeries:
    """Everything one ``record_llm_call`` key touches, bound once."""

    __slots__ = (
        "cache_read",
        "cache_write",
        "calls",
        "cost",
        "duration",
        "input",
        "output",
        "reasoning",
        "unpriced",
        "usage_input",
        "usage_output",
    )

    def __init__(self, calls: _Record) -> None:
        self.calls = calls
        # None for calls that never reached the model (budget_denied).
        self.duration: _Record | None = None
        self.input: _Record = _noop
        self.cache_read: _Record = _noop
        self.cache_write: _Record = _noop
        self.output: _Record = _noop
        self.reasoning: _Record = _noop
        self.cost: _Record = _noop
        self.unpriced: _Record = _noop
        self.usage_input: _Record = _noop
        self.usage_output: _Record = _noop


class _RunSeries:
    __slots__ = ("cost", "duration", "llm_calls", "runs", "tool_calls")

    def __init__(
        self, runs: _Record, duration: _Record, cost: _Record, llm: _Record, tools: _Record
    ) -> None:
        self.runs = runs
        self.duration = duration
        self.cost = cost
        self.llm_calls = llm
        self.tool_calls = tools


def _noop(_: float) -> None:
    return None


class KitMetrics:
    """Records kit-telemetry's metrics into a Prometheus registry (and optionally OTel).

    Args:
        registry: where the instruments are registered; a fresh ``CollectorRegistry`` when
            None (never the global one). In multi-process mode it receives a
            ``MultiProcessCollector`` that reads every process's files instead.
        meter_provider: when given, every record also goes to OpenTelemetry instruments
            under the dotted names of ``CATALOGUE`` (for OTLP export).
        max_label_values: distinct values kept per bounded label and metric.
        multiprocess: prometheus-client's multi-process mode; None turns it on when
            ``PROMETHEUS_MULTIPROC_DIR`` is set and prometheus-client was imported with it.
            Use one ``KitMetrics`` per process in this mode (they share the files).
        strict: re-raise recording errors instead of logging and counting them (tests).

    Raises:
        ConfigError: ``max_label_values`` is below 1, the registry already holds these
            metrics, or multi-process mode is asked for without its folder.
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        meter_provider: MeterProvider | None = None,
        max_label_values: int = 100,
        multiprocess: bool | None = None,
        strict: bool = False,
    ) -> None:
        if isinstance(max_label_values, bool) or not isinstance(max_label_values, int):
            raise ConfigError(
                f"max_label_values: {max_label_values!r} is not an integer of at least 1"
            )
        if max_label_values < 1:
            raise ConfigError(f"max_label_values: {max_label_values} is not at least 1")
        mmap_values = bool(getattr(values.ValueClass, "_multiprocess", False))
        if multiprocess is None:
            multiprocess = mmap_values and multiprocess_dir() is not None
        if multiprocess and not mmap_values:
            raise ConfigError(
                "multiprocess=True: prometheus_client was imported without "
                "PROMETHEUS_MULTIPROC_DIR set; set it (to an existing, empty directory) "
                "before the process imports prometheus_client"
            )
        self._multiprocess = multiprocess
        self._max_label_values = max_label_values
        self._strict = strict
        self._lock = threading.Lock()
        self._guards: dict[tuple[str, str], _LabelGuard] = {}
        self._registry = registry if registry is not None else CollectorRegistry()
        self._prom: dict[str, Any] = {}
        try:
            for spec in CATALOGUE:
                # In multi-process mode the values live in per-process files; the registry
                # reads them back through the collector instead of from these objects.
                self._prom[spec.name] = _make_prometheus(
                    spec, None if multiprocess else self._registry
                )
        except ValueError as exc:
            if not multiprocess:
                for metric in self._prom.values():  # leave the registry as it was
                    self._registry.unregister(metric)
            raise ConfigError(
                f"registry: {exc}; use one KitMetrics per CollectorRegistry"
            ) from None
        if multiprocess:
            _attach_multiprocess_collector(self._registry, None)
        self._otel: dict[str, _OtelRecord] | None = None
        if meter_provider is not None:
            self._otel = _make_otel(meter_provider)
        self._llm: dict[tuple[str, str, str, str, str], _LLMSeries] = {}
        self._tools: dict[tuple[str, bool], tuple[_Record, _Record]] = {}
        self._runs: dict[tuple[str, str | None], _RunSeries] = {}
        self._simple: dict[tuple[str, tuple[str, ...]], _Record] = {}

    @property
    def registry(self) -> CollectorRegistry:
        """The registry to expose (``start_metrics_server(registry=...)``)."""
        return self._registry

    @property
    def multiprocess(self) -> bool:
        """Whether values are written to prometheus-client's multi-process files."""
        return self._multiprocess

    # --- LLM calls, tools, runs: called by the aggregator once per finished span ------

    def record_llm_call(
        self,
        event: LLMUsageEvent,
        *,
        outcome: str = "ok",
        error_type: str = "",
        operation: str = sc.OP_CHAT,
    ) -> None:
        """Count one LLM call: calls, tokens, cost, token usage and duration.

        Args:
            event: the call's usage (token kinds are disjoint).
            outcome: ok, error, budget_denied (never reached the model: counted in
                ``kit_llm_calls_total`` only) or cancelled.
            error_type: the error's type for ``error`` outcomes (``_OTHER`` when empty);
                ignored otherwise.
            operation: the GenAI operation name.
        """
        try:
            key = (event.provider, event.model, outcome, error_type, operation)
            series = self._llm.get(key)
            if series is None:
                series = self._bind_llm(key)
            if series.duration is None:
                series.calls(1)
                return
            input_tokens = event.input_tokens
            cache_read = event.cache_read_tokens
            cache_write = event.cache_write_tokens
            output = event.output_tokens
            reasoning = event.reasoning_tokens
            cost = event.cost_usd
            duration_s = event.duration_ms / 1000.0
            # The fast path skips prometheus-client's own checks, and a counter must never
            # go down nor turn infinite; NaN fails these comparisons too.
            if not (
                input_tokens >= 0
                and cache_read >= 0
                and cache_write >= 0
                and output >= 0
                and reasoning >= 0
                and 0 <= duration_s < math.inf
                and (cost is None or 0 <= cost < math.inf)
            ):
                raise UsageError(f"negative or NaN figure in {event!r}")
            series.calls(1)
            if input_tokens or cache_read or cache_write or output:
                if input_tokens:
                    series.input(input_tokens)
                if cache_read:
                    series.cache_read(cache_read)
                if cache_write:
                    series.cache_write(cache_write)
                if output:
                    series.output(output)
                if reasoning:
                    series.reasoning(reasoning)
                series.usage_input(input_tokens + cache_read + cache_write)
                series.usage_output(output)
            if cost is None:
                series.unpriced(1)
            else:
                series.cost(cost)
            series.duration(duration_s)
        except Exception as exc:
            self._failed("record_llm_call", exc)

    def record_tool_call(self, event: ToolResultEvent) -> None:
        """Count one finished tool call and observe its duration."""
        try:
            key = (event.tool_name, event.is_error)
            bound = self._tools.get(key)
            if bound is None:
                bound = self._bind_tool(key)
            duration_s = event.duration_ms / 1000.0
            if not 0 <= duration_s < math.inf:
                raise UsageError(f"negative or NaN duration in {event!r}")
            bound[0](1)
            bound[1](duration_s)
        except Exception as exc:
            self._failed("record_tool_call", exc)

    def record_run(self, event: AgentEndEvent) -> None:
        """Count one finished agent run and observe its duration, cost and call counts."""
        try:
            key = (event.agent_name, event.stop_reason)
            series = self._runs.get(key)
            if series is None:
                series = self._bind_run(key)
            duration_s = event.duration_ms / 1000.0
            if not (
                0 <= duration_s < math.inf
                and 0 <= event.cost_usd < math.inf
                and event.llm_call_count >= 0
                and event.tool_call_count >= 0
            ):
                raise UsageError(f"negative or NaN figure in {event!r}")
            series.runs(1)
            series.duration(duration_s)
            series.cost(event.cost_usd)
            series.llm_calls(event.llm_call_count)
            series.tool_calls(event.tool_call_count)
        except Exception as exc:
            self._failed("record_run", exc)

    def record_handler_error(self, extension: str, event: str) -> None:
        """Count an extension handler that raised."""
        self._record(KIT_EXTENSION_HANDLER_ERRORS, (extension, event), 1)

    def record_internal_error(self, component: str) -> None:
        """Count an internal error that was logged instead of raised."""
        self._record(KIT_INTERNAL_ERRORS, (component,), 1)

    # --- budgets: called by the budget engine ------------------------------------------

    def set_budget_limit(self, budget: str, unit: str, limit: float) -> None:
        """Set the current window's limit: USD to ``kit_budget_limit_usd``, others to
        ``kit_budget_limit{unit}``."""
        if unit in ("usd", "USD"):
            self._record(KIT_BUDGET_LIMIT_USD, (budget,), limit)
        else:
            self._record(KIT_BUDGET_LIMIT, (budget, unit), limit)

    def set_budget_usage(
        self, budget: str, scope_key: str | None, spent_usd: float, reserved_usd: float
    ) -> None:
        """Set committed and reserved spend; ``scope_key`` labels few-keyed budgets only
        (None leaves the label empty, which Prometheus treats as absent)."""
        labels = (budget, "" if scope_key is None else scope_key)
        self._record(KIT_BUDGET_SPENT_USD, labels, spent_usd)
        self._record(KIT_BUDGET_RESERVED_USD, labels, reserved_usd)

    def set_budget_max_utilization(self, budget: str, ratio: float) -> None:
        """Set the highest spent/limit among a many-keyed budget's live scope keys."""
        self._record(KIT_BUDGET_MAX_UTILIZATION, (budget,), ratio)

    def set_budget_window_end(self, budget: str, timestamp_s: float) -> None:
        """Set the Unix time at which the budget's current window ends."""
        self._record(KIT_BUDGET_WINDOW_END, (budget,), timestamp_s)

    def record_budget_decision(self, budget: str, decision: str) -> None:
        """Count an admission decision: allowed, denied or warned."""
        self._record(KIT_BUDGET_DECISIONS, (budget, decision), 1)

    def record_budget_alert(self, budget: str, kind: str, threshold: str) -> None:
        """Count an alert: kind warning or exceeded, at ``threshold`` (e.g. "0.8")."""
        self._record(KIT_BUDGET_ALERTS, (budget, kind, threshold), 1)

    # --- binding (the slow path, once per label combination) ---------------------------

    def _record(self, name: str, labels: tuple[str, ...], value: float) -> None:
        try:
            record = self._simple.get((name, labels))
            if record is None:
                record = self._bind_simple(name, labels)
            record(value)
        except Exception as exc:
            self._failed(name, exc)

    def _bind_simple(self, name: str, raw: tuple[str, ...]) -> _Record:
        if name == KIT_BUDGET_DECISIONS and raw[1] not in BUDGET_DECISIONS:
            raise UsageError(f"decision {raw[1]!r} is not one of {sorted(BUDGET_DECISIONS)}")
        if name == KIT_BUDGET_ALERTS and raw[1] not in BUDGET_ALERT_KINDS:
            raise UsageError(f"alert kind {raw[1]!r} is not one of {sorted(BUDGET_ALERT_KINDS)}")
        with self._lock:
            record = self._series(name, raw)
            self._cache(self._simple, (name, raw), record)
        return record

    def _bind_llm(self, key: tuple[str, str, str, str, str]) -> _LLMSeries:
        provider, model, outcome, error_type, operation = key
        if outcome not in LLM_OUTCOMES:
            raise UsageError(f"outcome {outcome!r} is not one of {sorted(LLM_OUTCOMES)}")
        with self._lock:
            series = _LLMSeries(self._series(KIT_LLM_CALLS, (provider, model, outcome)))
            if outcome != "budget_denied":
                pm = (provider, model)
                series.input = self._series(KIT_LLM_TOKENS, (*pm, "input"))
                series.cache_read = self._series(KIT_LLM_TOKENS, (*pm, "cache_read"))
                series.cache_write = self._series(KIT_LLM_TOKENS, (*pm, "cache_write"))
                series.output = self._series(KIT_LLM_TOKENS, (*pm, "output"))
                series.reasoning = self._series(KIT_LLM_REASONING_TOKENS, pm)
                series.cost = self._series(KIT_LLM_COST_USD, pm)
                series.unpriced = self._series(KIT_LLM_UNPRICED_CALLS, pm)
                genai = (operation, provider, model)
                usage = GEN_AI_CLIENT_TOKEN_USAGE
                series.usage_input = self._series(usage, (*genai, "input"))
                series.usage_output = self._series(usage, (*genai, "output"))
                if outcome == "error":
                    error_type = error_type or "_OTHER"  # the GenAI fallback value
                elif outcome == "ok":
                    error_type = ""
                series.duration = self._series(
                    GEN_AI_CLIENT_OPERATION_DURATION, (*genai, error_type)
                )
            self._cache(self._llm, key, series)
        return series

    def _bind_tool(self, key: tuple[str, bool]) -> tuple[_Record, _Record]:
        tool, is_error = key
        with self._lock:
            bound = (
                self._series(KIT_TOOL_CALLS, (tool, "error" if is_error else "ok")),
                self._series(KIT_TOOL_DURATION, (tool,)),
            )
            self._cache(self._tools, key, bound)
        return bound

    def _bind_run(self, key: tuple[str, str | None]) -> _RunSeries:
        agent, stop_reason = key
        with self._lock:
            series = _RunSeries(
                self._series(KIT_AGENT_RUNS, (agent, stop_reason or "unknown")),
                self._series(KIT_AGENT_RUN_DURATION, (agent,)),
                self._series(KIT_AGENT_RUN_COST_USD, (agent,)),
                self._series(KIT_AGENT_RUN_LLM_CALLS, (agent,)),
                self._series(KIT_AGENT_RUN_TOOL_CALLS, (agent,)),
            )
            self._cache(self._runs, key, series)
        return series

    def _series(self, name: str, raw: Sequence[object]) -> _Record:
        """The record function of one series: cleaned and bounded labels, bound once.

        Called with ``self._lock`` held (the label guards are shared state).
        """
        spec = _SPECS[name]
        labels = tuple(
            self._admit(name, label, value) for label, value in zip(spec.labels, raw, strict=True)
        )
        child = self._prom[name].labels(*labels)
        record: _Record = (
            child.set
            if spec.kind == "gauge"
            else _fast_observe(child)
            if spec.kind == "histogram"
            else _fast_inc(child)
        )
        if self._otel is None:
            return record
        otel = self._otel[name]
        attributes = {
            key: value
            for key, value in zip(spec.otel_attributes, labels, strict=True)
            # Empty means "absent" in Prometheus; OTel omits the attribute instead.
            if value != ""
        }

        def record_both(value: float) -> None:
            record(value)
            otel(value, attributes)

        return record_both

    def _admit(self, name: str, label: str, value: object) -> str:
        text = _clean(value)
        if label not in BOUNDED_LABELS:
            return text
        guard = self._guards.get((name, label))
        if guard is None:
            guard = self._guards[(name, label)] = _LabelGuard(name, label, self._max_label_values)
        return guard.admit(text)

    @staticmethod
    def _cache(cache: dict[Any, Any], key: object, value: object) -> None:
        if len(cache) < _MAX_CACHED_KEYS:
            cache[key] = value

    def _failed(self, where: str, exc: Exception) -> None:
        if self._strict:
            raise exc
        logger.warning("metrics: %s failed: %s", where, exc, exc_info=exc)
        if where != KIT_INTERNAL_ERRORS:  # counting a failure to count would loop
            self.record_internal_error("metrics")


def _fast_inc(child: Any) -> _Record:
    """``child.inc`` without its per-call checks (the callers check), when available.

    prometheus-client's ``Counter.inc`` re-validates every call; its value object (a
    mutex-guarded float, or an mmap slot in multi-process mode) is what actually adds.
    Going to it directly halves the cost; any other layout falls back to the public method.
    """
    value_inc = getattr(getattr(child, "_value", None), "inc", None)
    return value_inc if callable(value_inc) else cast(_Record, child.inc)


def _fast_observe(child: Any) -> _Record:
    """``child.observe`` with a binary search over the buckets, when available.

    Same effect as ``Histogram.observe`` (the sum, then the first bucket whose bound is
    not below the value); callers reject NaN and negatives first.
    """
    try:
        bounds: list[float] = list(child._upper_bounds)
        bucket_incs: list[_Record] = [bucket.inc for bucket in child._buckets]
        sum_inc: _Record = child._sum.inc
    except AttributeError:
        return cast(_Record, child.observe)
    if len(bounds) != len(bucket_incs) or bounds[-1] != math.inf:
        return cast(_Record, child.observe)

    def observe(amount: float) -> None:
        sum_inc(amount)
        bucket_incs[bisect_left(bounds, amount)](1)

    return observe


def _make_prometheus(spec: MetricSpec, registry: CollectorRegistry | None) -> Any:
    if spec.kind == "counter":
        return Counter(spec.name, spec.help, spec.labels, registry=registry)
    if spec.kind == "histogram":
        return Histogram(spec.name, spec.help, spec.labels, registry=registry, buckets=spec.buckets)
    return Gauge(
        spec.name,
        spec.help,
        spec.labels,
        registry=registry,
        multiprocess_mode=spec.multiprocess_mode or "livemostrecent",
    )


def _make_otel(meter_provider: MeterProvider) -> dict[str, _OtelRecord]:
    meter = meter_provider.get_meter("kit_telemetry")
    out: dict[str, _OtelRecord] = {}
    for spec in CATALOGUE:
        if spec.kind == "counter":
            out[spec.name] = meter.create_counter(spec.otel_name, spec.otel_unit, spec.help).add
        elif spec.kind == "histogram":
            out[spec.name] = meter.create_histogram(
                spec.otel_name,
                spec.otel_unit,
                spec.help,
                explicit_bucket_boundaries_advisory=spec.buckets,
            ).record
        else:
            out[spec.name] = meter.create_gauge(spec.otel_name, spec.otel_unit, spec.help).set
    return out
