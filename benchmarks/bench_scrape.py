"""Scrape time of a real ``/metrics`` endpoint holding about 10,000 live series.

Run: ``.venv/bin/python benchmarks/bench_scrape.py [--series N] [--scrapes S]``

Fills a ``KitMetrics`` with distinct models, tools and agents (as a busy multi-agent
server would) until the text exposition has at least ``N`` sample lines (each line is one
series to Prometheus; ``_created`` lines are off, as by default), serves it on 127.0.0.1 with
``start_metrics_server`` (prometheus-client's own HTTP server, which picks the format from
the ``Accept`` header and gzips at its default level when asked), and times ``S`` HTTP
scrapes in each format from a separate scraper process (text, OpenMetrics, and what
Prometheus 2.x and 3.x ask for: OpenMetrics + gzip). The baseline, measured in the same
run, is rendering the text format in process (``generate_latest``); alongside it, in
turns with it, the two answers a Prometheus 2.x server can get: OpenMetrics gzipped at
level 9 (prometheus-client's server) and the text format gzipped at level 1 (what the
hand-written server this one replaced sent). Reports medians, the slowest scrape, and the
goal of 100 ms. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from itertools import count

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from kit_telemetry.events import AgentEndEvent, LLMUsageEvent, ToolResultEvent
from kit_telemetry.exporters.prometheus import start_metrics_server
from kit_telemetry.metrics import KitMetrics

GOAL_MS = 100.0
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# What Prometheus servers send (2.x; 3.x adds escaping=allow-utf-8, which spares
# prometheus-client's per-character escaping of sample names in OpenMetrics).
PROMETHEUS_2_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
    "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
PROMETHEUS_3_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)


def series_count(registry: CollectorRegistry) -> int:
    return sum(len(family.samples) for family in registry.collect())


def fill(metrics: KitMetrics, target: int) -> int:
    """Record distinct label values until the registry holds ``target`` series."""
    for i in count():
        metrics.record_llm_call(
            LLMUsageEvent(
                session_id="s", timestamp_ns=i, provider=f"provider-{i % 4}",
                model=f"model-{i}", input_tokens=1000 + i, output_tokens=200,
                cache_read_tokens=500, reasoning_tokens=20, cost_usd=0.001, duration_ms=800.0,
            ),
            outcome="error" if i % 7 == 0 else "ok",
            error_type="TimeoutError" if i % 7 == 0 else "",
        )  # fmt: skip
        metrics.record_tool_call(
            ToolResultEvent(session_id="s", timestamp_ns=i, tool_name=f"tool-{i}", duration_ms=40)
        )
        metrics.record_run(
            AgentEndEvent(session_id="s", timestamp_ns=i, agent_name=f"agent-{i}",
                          stop_reason="end_turn", duration_ms=9000.0, llm_call_count=4)
        )  # fmt: skip
        if i % 10 == 9:
            series = series_count(metrics.registry)
            if series >= target:
                return series
    raise AssertionError("unreachable")


# The scraper is its own process, as Prometheus is: it does not share the server's GIL.
SCRAPER = """
import json, sys, time, urllib.request
url, scrapes, accept, encoding = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
headers = {k: v for k, v in (("Accept", accept), ("Accept-Encoding", encoding)) if v}
timings, size = [], 0
for _ in range(scrapes + 1):  # the first one warms up
    start = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
        size = len(response.read())
    timings.append((time.perf_counter() - start) * 1000)
print(json.dumps({"timings": timings[1:], "size": size}))
"""

# (label, Accept, Accept-Encoding).
FORMATS = (
    ("text 0.0.4", "", ""),
    ("openmetrics", OPENMETRICS, ""),
    ("as Prometheus 2.x asks (openmetrics, gzip)", PROMETHEUS_2_ACCEPT, "gzip"),
    ("as Prometheus 3.x asks (openmetrics utf-8, gzip)", PROMETHEUS_3_ACCEPT, "gzip"),
)


def time_scrapes(url: str, scrapes: int, accept: str, encoding: str) -> tuple[list[float], int]:
    """Scrape ``url`` from a child process; returns the timings (ms) and the body size."""
    result = subprocess.run(
        [sys.executable, "-c", SCRAPER, url, str(scrapes), accept, encoding],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    data = json.loads(result.stdout)
    return data["timings"], data["size"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000, help="live series to reach")
    parser.add_argument("--scrapes", type=int, default=15, help="scrapes per format")
    args = parser.parse_args(argv)

    # Raised cut so that the series are distinct rather than folded into "other".
    metrics = KitMetrics(registry=CollectorRegistry(), max_series=100_000)
    series = fill(metrics, args.series)
    out = sys.stdout
    out.write(f"{series:,} live series (sample lines), Python {sys.version.split()[0]}\n")

    renders = render_ms(metrics.registry, args.scrapes)
    baseline = renders[BASELINE]
    for label, median in renders.items():
        out.write(
            f"in process, {label}: median {median:.1f} ms ({median / baseline:.2f}x baseline)\n"
        )

    with start_metrics_server("127.0.0.1:0", registry=metrics.registry) as server:
        for label, accept, encoding in FORMATS:
            timings, size = time_scrapes(server.url, args.scrapes, accept, encoding)
            median = statistics.median(timings)
            verdict = "under" if median < GOAL_MS else "OVER"
            out.write(
                f"HTTP scrape, {label}: {size / 1e6:.2f} MB, median {median:.1f} ms "
                f"({median / baseline:.2f}x baseline), max {max(timings):.1f} ms over "
                f"{args.scrapes} scrapes; {verdict} the {GOAL_MS:.0f} ms goal\n"
            )
    return 0


BASELINE = "text (generate_latest), the baseline"
RENDERS: dict[str, Callable[[CollectorRegistry], bytes]] = {
    BASELINE: generate_latest,
    "openmetrics + gzip level 9 (prometheus-client's answer to Prometheus 2.x)": (
        lambda registry: gzip.compress(generate_openmetrics(registry))  # type: ignore[no-untyped-call]
    ),
    "text + gzip level 1 (the former hand-written server's answer)": (
        lambda registry: gzip.compress(generate_latest(registry), compresslevel=1)
    ),
}


def render_ms(registry: CollectorRegistry, rounds: int) -> dict[str, float]:
    """Median ms of each of ``RENDERS`` in this process, taking turns in each round."""
    timings: dict[str, list[float]] = {label: [] for label in RENDERS}
    for _ in range(rounds):
        for label, render in RENDERS.items():
            start = time.perf_counter()
            render(registry)
            timings[label].append((time.perf_counter() - start) * 1000)
    return {label: statistics.median(values) for label, values in timings.items()}


if __name__ == "__main__":
    raise SystemExit(main())
