"""``KitMetrics``, which records kit-telemetry's events into the metric catalogue.

Every metric is a prometheus-client instrument in a ``CollectorRegistry`` (never the global
one), and, when a ``MeterProvider`` is given, also an OpenTelemetry instrument whose dotted
name translates to the same Prometheus name, so one dashboard reads either path.

Recording is fed from the events of ``events.py`` and happens on the caller's thread,
before the call returns, through prometheus-client's public ``inc``/``observe``/``set``.
The children (and the OTel attribute dicts) of a label combination are bound once and
cached; later records are one dict lookup and the public calls themselves (ten for a priced
LLM call; ``benchmarks/bench_metrics.py`` times them). Recording never raises into the
caller: a failure is logged and counted in ``kit_telemetry_internal_errors_total`` (unless
``strict=True``).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from typing import Any, Final

from opentelemetry.metrics import MeterProvider
from prometheus_client import CollectorRegistry

from .. import semconv as sc
from ..errors import ConfigError, UsageError
from ..events import AgentEndEvent, LLMUsageEvent, ToolResultEvent
from .catalogue import (
    BUDGET_ALERT_KINDS,
    BUDGET_DECISIONS,
    CATALOGUE,
    GEN_AI_CLIENT_OPERATION_DURATION,
    GEN_AI_CLIENT_TOKEN_USAGE,
    GEN_AI_EXECUTE_TOOL_DURATION,
    GEN_AI_INVOKE_AGENT_DURATION,
    KIT_AGENT_RUN_COST_USD,
    KIT_AGENT_RUN_DURATION,
    KIT_AGENT_RUN_LLM_CALLS,
    KIT_AGENT_RUN_TOOL_CALLS,
    KIT_AGENT_RUNS,
    KIT_BUDGET_ALERTS,
    KIT_BUDGET_DECISIONS,
    KIT_BUDGET_LIMIT,
    KIT_BUDGET_LIMIT_USD,
    KIT_BUDGET_MAX_UTILIZATION,
    KIT_BUDGET_RESERVED_USD,
    KIT_BUDGET_SPENT_USD,
    KIT_BUDGET_WINDOW_END,
    KIT_EXTENSION_HANDLER_ERRORS,
    KIT_INTERNAL_ERRORS,
    KIT_LLM_CALLS,
    KIT_LLM_COST_USD,
    KIT_LLM_REASONING_TOKENS,
    KIT_LLM_TOKENS,
    KIT_LLM_UNPRICED_CALLS,
    KIT_METRIC_SERIES_OVERFLOW,
    KIT_TOOL_CALLS,
    KIT_TOOL_DURATION,
    LLM_OUTCOMES,
    SPECS,
)
from .exposition import CatalogueCollector
from .instruments import OtelRecord, make_otel, make_prometheus
from .labels import SeriesLimit, clean_label_value
from .multiprocess import attach_multiprocess_collector, multiprocess_dir, values_in_files
from .series import LLMSeries, Record, RunSeries

logger = logging.getLogger("kit_telemetry")

DEFAULT_MAX_SERIES: Final = 1000
"""Series kept per metric before new label combinations go to its overflow series."""

# Distinct label tuples cached per recording method; past this, the slow path runs each
# time so that a flood of distinct values cannot grow memory without bound.
_MAX_CACHED_KEYS: Final = 10_000


class KitMetrics:
    """Records kit-telemetry's metrics into a Prometheus registry (and optionally OTel).

    Args:
        registry: where the instruments are registered; a fresh ``CollectorRegistry`` when
            None (never the global one). In multi-process mode it receives a
            ``MultiProcessCollector`` that reads every process's files instead.
        meter_provider: when given, every record also goes to OpenTelemetry instruments
            under the dotted names of ``CATALOGUE`` (for OTLP export).
        max_series: combinations of free-form label values (model, provider, tool,
            agent...) kept per metric; new ones past it are recorded in the metric's
            overflow series (those labels ``other``) and counted in
            ``kit_metric_series_overflow_total{metric}``. Closed-set labels (outcome,
            token_type...) multiply a metric's series by at most 4.
        created_series: also expose the ``_created`` sample of each counter and histogram
            series (off: Prometheus 2.x drops them unless a feature flag asks, and they
            double a counter's lines). Affects kit-telemetry's metrics only; other metrics
            of the registry keep prometheus-client's setting. Multi-process mode has no
            ``_created`` samples either way (prometheus-client's collector writes none).
        multiprocess: prometheus-client's multi-process mode; None turns it on when
            ``PROMETHEUS_MULTIPROC_DIR`` is set and prometheus-client was imported with it.
            Use one ``KitMetrics`` per process in this mode (they share the files).
        strict: re-raise recording errors instead of logging and counting them (tests).

    Raises:
        ConfigError: ``max_series`` is below 1, the registry already holds these
            metrics, or multi-process mode is asked for without its folder.
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        meter_provider: MeterProvider | None = None,
        max_series: int = DEFAULT_MAX_SERIES,
        created_series: bool = False,
        multiprocess: bool | None = None,
        strict: bool = False,
    ) -> None:
        if isinstance(max_series, bool) or not isinstance(max_series, int) or max_series < 1:
            raise ConfigError(f"max_series: {max_series!r} is not an integer of at least 1")
        in_files = values_in_files()
        if multiprocess is None:
            multiprocess = in_files and multiprocess_dir() is not None
        if multiprocess and not in_files:
            raise ConfigError(
                "multiprocess=True: prometheus_client was imported without "
                "PROMETHEUS_MULTIPROC_DIR set; set it (to an existing, empty directory) "
                "before the process imports prometheus_client"
            )
        self._multiprocess = multiprocess
        self._strict = strict
        self._lock = threading.Lock()
        self._limits = {
            spec.name: SeriesLimit(spec.name, spec.labels, max_series) for spec in CATALOGUE
        }
        self._registry = registry if registry is not None else CollectorRegistry()
        # Registered nowhere themselves: one collector stands for them in the registry (it
        # can leave _created out), and in multi-process mode the values live in
        # per-process files that the registry reads back instead.
        self._prom: dict[str, Any] = {spec.name: make_prometheus(spec, None) for spec in CATALOGUE}
        if multiprocess:
            attach_multiprocess_collector(self._registry, None)
        else:
            collector = CatalogueCollector(list(self._prom.values()), created_series=created_series)
            try:
                self._registry.register(collector)
            except ValueError as exc:
                raise ConfigError(
                    f"registry: {exc}; use one KitMetrics per CollectorRegistry"
                ) from None
        self._otel: dict[str, OtelRecord] | None = None
        if meter_provider is not None:
            self._otel = make_otel(meter_provider)
        self._llm: dict[tuple[str, str, str, str, str], LLMSeries] = {}
        self._tools: dict[tuple[str, bool, str, str], tuple[Record, Record, Record]] = {}
        self._runs: dict[tuple[str, str | None, str, str], RunSeries] = {}
        self._simple: dict[tuple[str, tuple[str, ...]], Record] = {}

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
            # Checked before the first increment, so a call is recorded whole or not at all
            # (a histogram takes negatives, NaN and inf without a word); NaN fails these too.
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
            elif cost or self._otel is not None:
                # A zero leaves the bound Prometheus child as it is, but an OTel counter
                # only reports an attribute set from its first add, so zeros still go there.
                series.cost(cost)
            series.duration(duration_s)
        except Exception as exc:
            self._failed("record_llm_call", exc)

    def record_tool_call(
        self, event: ToolResultEvent, *, tool_type: str = "", error_type: str = ""
    ) -> None:
        """Count one finished tool call and observe its duration.

        Args:
            event: the tool's result.
            tool_type: ``gen_ai.tool.type`` (function, extension, datastore), "" if unknown.
            error_type: the error's type when ``event.is_error`` ("tool_error" when empty).
        """
        try:
            key = (event.tool_name, event.is_error, tool_type, error_type)
            bound = self._tools.get(key)
            if bound is None:
                bound = self._bind_tool(key)
            duration_s = event.duration_ms / 1000.0
            if not 0 <= duration_s < math.inf:
                raise UsageError(f"negative or NaN duration in {event!r}")
            bound[0](1)
            bound[1](duration_s)
            bound[2](duration_s)
        except Exception as exc:
            self._failed("record_tool_call", exc)

    def record_run(self, event: AgentEndEvent, *, provider: str = "", error_type: str = "") -> None:
        """Count one finished agent run and observe its duration, cost and call counts.

        Args:
            event: the run's end.
            provider: the run's ``gen_ai.provider.name`` ("" if unknown).
            error_type: the error's type when the run failed, else "".
        """
        try:
            key = (event.agent_name, event.stop_reason, provider, error_type)
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
            series.genai_duration(duration_s)
            # A run with an unpriced call has no known cost: observing its priced part would
            # pull the histogram toward $0. Its unpriced calls are already counted, per model,
            # in kit_llm_unpriced_calls_total by record_llm_call.
            if event.cost_complete:
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

    def declare_budget_counters(self, budget: str, alerts: Sequence[tuple[str, str]]) -> None:
        """Create ``budget``'s counters at 0: one decision series per decision and one
        alert series per ``(kind, threshold)``.

        A labelled counter only appears in a scrape once its child exists; created at 0
        when the budgets load, the first denial is a step from 0 to 1 that ``increase()``
        sees, instead of a series born at 1.
        """
        for decision in sorted(BUDGET_DECISIONS):
            self._record(KIT_BUDGET_DECISIONS, (budget, decision), 0)
        for kind, threshold in alerts:
            self._record(KIT_BUDGET_ALERTS, (budget, kind, threshold), 0)

    # --- binding (the slow path, once per label combination) ---------------------------

    def _record(self, name: str, labels: tuple[str, ...], value: float) -> None:
        try:
            record = self._simple.get((name, labels))
            if record is None:
                record = self._bind_simple(name, labels)
            record(value)
        except Exception as exc:
            self._failed(name, exc)

    def _bind_simple(self, name: str, raw: tuple[str, ...]) -> Record:
        if name == KIT_BUDGET_DECISIONS and raw[1] not in BUDGET_DECISIONS:
            raise UsageError(f"decision {raw[1]!r} is not one of {sorted(BUDGET_DECISIONS)}")
        if name == KIT_BUDGET_ALERTS and raw[1] not in BUDGET_ALERT_KINDS:
            raise UsageError(f"alert kind {raw[1]!r} is not one of {sorted(BUDGET_ALERT_KINDS)}")
        with self._lock:
            record = self._series(name, raw)
            self._cache(self._simple, (name, raw), record)
        return record

    def _bind_llm(self, key: tuple[str, str, str, str, str]) -> LLMSeries:
        provider, model, outcome, error_type, operation = key
        if outcome not in LLM_OUTCOMES:
            raise UsageError(f"outcome {outcome!r} is not one of {sorted(LLM_OUTCOMES)}")
        with self._lock:
            series = LLMSeries(self._series(KIT_LLM_CALLS, (provider, model, outcome)))
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

    def _bind_tool(self, key: tuple[str, bool, str, str]) -> tuple[Record, Record, Record]:
        tool, is_error, tool_type, error_type = key
        error_type = (error_type or "tool_error") if is_error else ""
        with self._lock:
            bound = (
                self._series(KIT_TOOL_CALLS, (tool, "error" if is_error else "ok")),
                self._series(KIT_TOOL_DURATION, (tool,)),
                self._series(
                    GEN_AI_EXECUTE_TOOL_DURATION,
                    (sc.OP_EXECUTE_TOOL, tool, tool_type, error_type),
                ),
            )
            self._cache(self._tools, key, bound)
        return bound

    def _bind_run(self, key: tuple[str, str | None, str, str]) -> RunSeries:
        agent, stop_reason, provider, error_type = key
        with self._lock:
            series = RunSeries(
                self._series(KIT_AGENT_RUNS, (agent, stop_reason or "unknown")),
                self._series(KIT_AGENT_RUN_DURATION, (agent,)),
                self._series(KIT_AGENT_RUN_COST_USD, (agent,)),
                self._series(KIT_AGENT_RUN_LLM_CALLS, (agent,)),
                self._series(KIT_AGENT_RUN_TOOL_CALLS, (agent,)),
            )
            series.genai_duration = self._series(
                GEN_AI_INVOKE_AGENT_DURATION, (sc.OP_INVOKE_AGENT, provider, agent, error_type)
            )
            self._cache(self._runs, key, series)
        return series

    def _series(self, name: str, raw: Sequence[object]) -> Record:
        """The record function of one series: cleaned labels within the series limit.

        Called with ``self._lock`` held (the series limits are shared state).
        """
        spec = SPECS[name]
        labels, overflow = self._limits[name].admit(tuple(clean_label_value(v) for v in raw))
        child = self._prom[name].labels(*labels)
        record: Record = (
            child.set
            if spec.kind == "gauge"
            else child.observe
            if spec.kind == "histogram"
            else child.inc
        )
        if self._otel is not None:
            record = _with_otel(record, self._otel[name], spec.otel_attributes, labels)
        if overflow:
            record = _counted(record, self._series(KIT_METRIC_SERIES_OVERFLOW, (name,)))
        return record

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


def _with_otel(
    record: Record, otel: OtelRecord, keys: Sequence[str], labels: Sequence[str]
) -> Record:
    """``record`` that also records into the OpenTelemetry instrument, same labels."""
    attributes = {
        key: value
        for key, value in zip(keys, labels, strict=True)
        # Empty means "absent" in Prometheus; OTel omits the attribute instead.
        if value != ""
    }

    def record_both(value: float) -> None:
        record(value)
        otel(value, attributes)

    return record_both


def _counted(record: Record, count: Record) -> Record:
    """``record`` into an overflow series, each call counted in the overflow counter."""

    def record_and_count(value: float) -> None:
        record(value)
        count(1)

    return record_and_count
