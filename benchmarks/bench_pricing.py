"""How much a price lookup costs: cached, first time, and the one-off load of the data.

Run: ``.venv/bin/python benchmarks/bench_pricing.py``. Prints median nanoseconds per call
and ratios against baselines measured in the same run (a bare dict lookup, and
genai-prices' own ``calc_price`` per call). Not a test: timings vary by machine.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import timeit

from kit_telemetry.pricing import PriceTable

REPEATS = 7
CALLS = 200_000


def median_ns(statement: str, namespace: dict[str, object], calls: int = CALLS) -> float:
    """Median over REPEATS runs of the time per call, in nanoseconds."""
    runs = timeit.repeat(statement, globals=namespace, number=calls, repeat=REPEATS)
    return statistics.median(runs) / calls * 1e9


def first_load_ms() -> float:
    """Import plus the first lookup in a fresh process: the lazy genai-prices load."""
    code = (
        "import time; t = time.perf_counter()\n"
        "from kit_telemetry.pricing import PriceTable\n"
        "PriceTable().find_price('anthropic', 'claude-sonnet-4-5')\n"
        "print((time.perf_counter() - t) * 1e3)\n"
    )
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    return statistics.median(runs)


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
        "c('anthropic', 'claude-sonnet-4-5', input_tokens=1200, output_tokens=310,"
        " cache_read_tokens=4000)",
        {"c": table.cost_usd},
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
    print(f"import + first lookup, new process:  {load_ms:8.1f} ms  (lazy genai-prices load)")


if __name__ == "__main__":
    main()
