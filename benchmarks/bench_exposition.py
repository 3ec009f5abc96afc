"""Cost of serving the catalogue through ``CatalogueCollector``, with and without ``_created``.

Run: ``.venv/bin/python benchmarks/bench_exposition.py [--combinations 2000] [--rounds 15]``

Makes the catalogue's prometheus-client instruments, gives every LLM metric ``N`` distinct
(provider, model) series, then renders the text format (``generate_latest``) in turns:

- ``baseline``: the instruments registered in a registry directly (how kit-telemetry
  registered them before ``CatalogueCollector``), ``_created`` lines included;
- ``collector, created_series=True``: through the collector, which passes families on;
- ``collector, created_series=False`` (the default): the collector rebuilds each counter
  and histogram family without its ``_created`` samples.

Reports the median time per render of each, its ratio to the baseline measured in the same
run, and the sample lines of each answer. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from kit_telemetry.metrics import CATALOGUE
from kit_telemetry.metrics.exposition import CatalogueCollector
from kit_telemetry.metrics.instruments import make_prometheus


def filled_instruments(combinations: int) -> list[Any]:
    """The catalogue's instruments, each metric labelled by provider and model filled."""
    instruments = [make_prometheus(spec, None) for spec in CATALOGUE]
    for spec, instrument in zip(CATALOGUE, instruments, strict=True):
        if "model" not in spec.labels and "gen_ai_request_model" not in spec.labels:
            continue
        for i in range(combinations):
            values = {
                label: f"provider-{i % 10}" if "provider" in label else f"model-{i}"
                for label in spec.labels
                if "provider" in label or "model" in label
            }
            labels = [values.get(label, "x") for label in spec.labels]
            child = instrument.labels(*labels)
            if spec.kind == "histogram":
                child.observe(0.8)
            elif spec.kind == "counter":
                child.inc()
            else:
                child.set(1.0)
    return instruments


def sample_lines(registry: CollectorRegistry) -> int:
    body = generate_latest(registry).decode()
    return sum(1 for line in body.splitlines() if line and not line.startswith("#"))


def run(combinations: int, rounds: int) -> None:
    instruments = filled_instruments(combinations)
    baseline = CollectorRegistry()
    for instrument in instruments:
        baseline.register(instrument)
    variants = {"baseline": baseline}
    for created in (True, False):
        registry = CollectorRegistry()
        registry.register(CatalogueCollector(instruments, created_series=created))
        variants[f"collector, created_series={created}"] = registry
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, registry in variants.items():
            start = time.perf_counter()
            generate_latest(registry)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["baseline"])
    print(f"{combinations} (provider, model) series per LLM metric, {rounds} rounds")
    for name, registry in variants.items():
        median = statistics.median(times[name])
        print(
            f"  {name:34s} {median * 1e3:8.1f} ms  x{median / base:5.2f}  "
            f"{sample_lines(registry):7d} sample lines"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--combinations", type=int, default=2000, help="series per LLM metric")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved renders per variant")
    args = parser.parse_args()
    run(args.combinations, args.rounds)


if __name__ == "__main__":
    main()
