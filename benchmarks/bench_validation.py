"""Cost of the validation table on the hot path, against the inline checks it replaced.

Each row checks the parameters of one ``llm_call`` + ``record_usage`` (2 names, 2 optional
counts, 5 token counts, 2 optional texts, 1 amount) with good values, as an agent passes
them on every call:

- ``inline``: the checks as the handles wrote them before the table (``type(v) is int and
  v >= 0``, ``isinstance(v, str)``, ...), the baseline;
- ``table``: the ``check_*`` functions of :mod:`kit_telemetry.validation`.

Measured interleaved, several rounds; medians reported, and the ratio table / inline.

Run: ``.venv/bin/python benchmarks/bench_validation.py [--calls 20000] [--rounds 11]``
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

from kit_telemetry._errors import ErrorPolicy
from kit_telemetry.validation import check_amount, check_count, check_required_text, check_text

ERRORS = ErrorPolicy(strict=False)
TOKENS = (1200, 350, 4000, 0, 20)
USAGE_FIELDS = (
    "record_usage.input_tokens",
    "record_usage.output_tokens",
    "record_usage.cache_read_tokens",
    "record_usage.cache_write_tokens",
    "record_usage.reasoning_tokens",
)


def inline(n: int) -> None:
    """The checks as they were written inline in the handles."""
    for _ in range(n):
        for value in ("anthropic", "claude-sonnet-4-5"):
            if not isinstance(value, str) or not value:
                raise AssertionError
        for count in (4096, None):
            if not (count is None or (type(count) is int and count >= 0)):
                raise AssertionError
        for count in TOKENS:
            if type(count) is not int or count < 0:
                raise AssertionError
        for text in ("end_turn", "msg_1"):
            if text is not None and not isinstance(text, str):
                raise AssertionError
        cost: float = 0.0125
        if isinstance(cost, bool) or not math.isfinite(cost) or cost < 0:
            raise AssertionError


def table(n: int) -> None:
    """The same parameters through the validation table."""
    for _ in range(n):
        check_required_text(ERRORS, "llm_call.provider", "anthropic")
        check_required_text(ERRORS, "llm_call.model", "claude-sonnet-4-5")
        check_count(ERRORS, "llm_call.max_tokens", 4096)
        check_count(ERRORS, "llm_call.estimated_input_tokens", None)
        for field, count in zip(USAGE_FIELDS, TOKENS, strict=True):
            if check_count(ERRORS, field, count) is None:
                raise AssertionError
        check_text(ERRORS, "record_usage.finish_reason", "end_turn")
        check_text(ERRORS, "record_usage.response_id", "msg_1")
        check_amount(ERRORS, "record_usage.cost_usd", 0.0125)


def _time(fn: Callable[[int], None], n: int) -> float:
    start = time.perf_counter()
    fn(n)
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"inline": [], "table": []}
    for _ in range(args.rounds):
        results["inline"].append(_time(inline, args.calls))
        results["table"].append(_time(table, args.calls))
    base = statistics.median(results["inline"])
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f"{name:7s} {median:6.2f} µs per call   x{median / base:.2f}")


if __name__ == "__main__":
    main()
