"""Cost of cleaning text at the edge, per value, against an attribute dict built without it.

Each LLM call now cleans its provider and model (and record_usage its finish reason and
response id): ``edge_text`` on text that is already clean. The baseline is the work every
call does anyway with the same values (building its span attribute dict), measured in the
same process, interleaved, several rounds; medians reported as ratios.

Run: ``.venv/bin/python benchmarks/bench_text.py [--rounds 15] [--number 200000]``
"""

from __future__ import annotations

import argparse
import statistics
import timeit

from kit_telemetry._errors import ErrorPolicy
from kit_telemetry.text import edge_text

VALUES = ("anthropic", "claude-sonnet-4-5", "tool_use", "msg_01XyZ", "ünïcødé-model")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--number", type=int, default=200_000)
    args = parser.parse_args()
    errors = ErrorPolicy()

    def baseline() -> None:
        for value in VALUES:
            _ = {"gen_ai.request.model": value, "gen_ai.operation.name": "chat"}

    def cleaned() -> None:
        for value in VALUES:
            _ = {
                "gen_ai.request.model": edge_text(errors, "llm_call.model", value),
                "gen_ai.operation.name": "chat",
            }

    base_ns: list[float] = []
    clean_ns: list[float] = []
    for _ in range(args.rounds):
        per_value = args.number * len(VALUES)
        base_ns.append(timeit.timeit(baseline, number=args.number) / per_value * 1e9)
        clean_ns.append(timeit.timeit(cleaned, number=args.number) / per_value * 1e9)
    base, clean = statistics.median(base_ns), statistics.median(clean_ns)
    print(f"attribute dict only      {base:8.1f} ns per value")
    print(f"with edge_text           {clean:8.1f} ns per value")
    print(f"edge_text adds           {clean - base:8.1f} ns per value ({clean / base:.2f}x)")


if __name__ == "__main__":
    main()
