"""How much a price lookup costs: cached, first time, and the one-off load of the data.

Run: ``.venv/bin/python benchmarks/bench_pricing.py``. Prints median nanoseconds per call
and ratios against baselines measured in the same run (a bare dict lookup, and
genai-prices' own ``calc_price`` per call), then the one-off costs in fresh processes:
``preload()`` and a first lookup with the price cache warm, against importing genai-prices
and pricing a call with it (what a first call waited for before the cache), and building
the cache from a cold start. Not a test: timings vary by machine.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import kit_telemetry as kt
from kit_telemetry.pricing import PriceTable

REPEATS = 7
CALLS = 200_000


def median_ns(statement: str, namespace: dict[str, object], calls: int = CALLS) -> float:
    """Median over REPEATS runs of the time per call, in nanoseconds."""
    runs = timeit.repeat(statement, globals=namespace, number=calls, repeat=REPEATS)
    return statistics.median(runs) / calls * 1e9


def _child_ms(code: str) -> float:
    """Median over 3 fresh interpreters of the milliseconds ``code`` prints."""
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    return statistics.median(runs)


def first_load_ms() -> float:
    """preload() and the first lookup in a fresh process, the cache warm (package imported)."""
    return _child_ms(
        "import time, kit_telemetry\n"
        "from kit_telemetry.pricing import PriceTable\n"
        "t = time.perf_counter(); table = PriceTable(); table.preload()\n"
        "table.find_price('anthropic', 'claude-sonnet-4-5')\n"
        "print((time.perf_counter() - t) * 1e3)\n"
    )


def cold_build_ms() -> float:
    """Building the cache in a fresh process (once per machine and genai-prices version)."""
    with tempfile.TemporaryDirectory() as directory:
        code = (
            "import time, kit_telemetry\n"
            "from kit_telemetry.pricing.bundled import BundledPrices\n"
            f"t = time.perf_counter(); BundledPrices({directory!r}).catalogue()\n"
            "print((time.perf_counter() - t) * 1e3)\n"
        )
        runs = []
        for _ in range(3):
            for cache in Path(directory).glob("prices-*.json"):
                cache.unlink()
            result = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            )
            runs.append(float(result.stdout))
        return statistics.median(runs)


def genai_prices_load_ms() -> float:
    """Baseline: importing genai-prices and pricing one call with it, in a fresh process."""
    return _child_ms(
        "import time, kit_telemetry\n"
        "t = time.perf_counter()\n"
        "import genai_prices\n"
        "genai_prices.calc_price(genai_prices.Usage(input_tokens=1, output_tokens=1),"
        " 'claude-sonnet-4-5', provider_id='anthropic')\n"
        "print((time.perf_counter() - t) * 1e3)\n"
    )


def first_lookup_ns(table: PriceTable, pairs: list[tuple[str, str]]) -> float:
    """Median time of a lookup the table has not seen before (data already loaded)."""
    times = []
    for provider, model in pairs:
        start = time.perf_counter_ns()
        table.find_price(provider, model)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times)


def main() -> None:
    import genai_prices

    table = PriceTable(subscription_providers=["github-copilot"])
    table.find_price("anthropic", "claude-sonnet-4-5")  # loads the bundled data

    baseline = {("anthropic", "claude-sonnet-4-5"): object()}
    dict_ns = median_ns("d['anthropic', 'claude-sonnet-4-5']", {"d": baseline})
    cached_ns = median_ns("f('anthropic', 'claude-sonnet-4-5')", {"f": table.find_price})
    cost_ns = median_ns(
        "c('anthropic', 'claude-sonnet-4-5', u)",
        {
            "c": table.cost_usd,
            "u": kt.TokenUsage(input_tokens=1200, output_tokens=310, cache_read_tokens=4000),
        },
    )
    usage = genai_prices.Usage(input_tokens=5200, output_tokens=310, cache_read_tokens=4000)
    calc_ns = median_ns(
        "calc(usage, 'claude-sonnet-4-5', provider_id='anthropic')",
        {"calc": genai_prices.calc_price, "usage": usage},
        calls=2_000,
    )

    rows = table.known_models()
    fresh = PriceTable()
    fresh.find_price("anthropic", "claude-sonnet-4-5")
    first_ns = first_lookup_ns(fresh, [(row.provider, row.model) for row in rows])
    # OpenTelemetry names and dated ids go through alias mapping and genai-prices matching.
    aliased = [("gcp.vertex_ai", row.model) for row in rows if row.provider == "google"]
    aliased += [("", f"{row.model}-20250101") for row in rows if row.provider == "openai"]
    first_aliased_ns = first_lookup_ns(PriceTable(), aliased)
    load_ms = first_load_ms()
    genai_ms = genai_prices_load_ms()
    cold_ms = cold_build_ms()

    print(f"bundled models listed:               {len(rows)}")
    print(f"dict lookup (baseline):              {dict_ns:8.0f} ns")
    ratio = cached_ns / dict_ns
    print(f"find_price, cached:                  {cached_ns:8.0f} ns  ({ratio:.1f}x dict)")
    print(f"cost_usd, cached price:              {cost_ns:8.0f} ns")
    print(
        f"genai_prices.calc_price per call:    {calc_ns:8.0f} ns"
        f"  ({calc_ns / cost_ns:.0f}x cost_usd)"
    )
    print(f"find_price, first lookup (median):   {first_ns:8.0f} ns  over {len(rows)} models")
    print(f"  aliased/dated names (median):      {first_aliased_ns:8.0f} ns  over {len(aliased)}")
    print(f"preload + first lookup, new process: {load_ms:8.1f} ms  (cache warm)")
    print(
        f"  genai-prices import + calc_price:  {genai_ms:8.1f} ms"
        f"  ({genai_ms / load_ms:.0f}x; what the first call waited for before)"
    )
    print(f"cache build, new process (cold):     {cold_ms:8.1f} ms  (in a child interpreter)")


if __name__ == "__main__":
    main()
