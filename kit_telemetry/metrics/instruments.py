"""Instruments: the catalogue's metrics, made as prometheus-client and OpenTelemetry objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.metrics import MeterProvider
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .catalogue import CATALOGUE, MetricSpec

OtelRecord = Callable[[float, dict[str, str]], None]
"""Records one value into an OpenTelemetry instrument, with the series' attributes."""


def make_prometheus(spec: MetricSpec, registry: CollectorRegistry | None) -> Any:
    """The prometheus-client metric of ``spec``, registered in ``registry`` unless None.

    Raises:
        ValueError: ``registry`` already holds a metric of this name.
    """
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


def make_otel(meter_provider: MeterProvider) -> dict[str, OtelRecord]:
    """The record function of each catalogue metric's OpenTelemetry instrument, by name."""
    meter = meter_provider.get_meter("kit_telemetry")
    out: dict[str, OtelRecord] = {}
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
