"""Cost of building an event: as the aggregator does, and as ``Event(type, data)``.

``Event`` has a metaclass (``_EventMeta``) so that ``Event(type, data)`` returns the event
of that type; the event classes have ``_SpecificEventMeta``, whose ``__call__`` is
``type``'s own, so the SDK's constructions should not pay for the routing. Two ratios,
each against a baseline measured in the same run, interleaved over several rounds,
medians reported:

- ``class call``: ``LLMUsageEvent(**fields)`` (keywords, one per LLM call, as the
  aggregator builds it) against the same frozen, slotted dataclass without a metaclass
  (what the metaclasses add to every event the SDK builds).
- ``Event(type, data)``: the generic form against ``LLMUsageEvent(**fields)`` (the
  lookup and field checks of the hand-built form; tests and extensions only).

Run: ``.venv/bin/python benchmarks/bench_events.py [--rounds 9] [--number 20000]``
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import kit_telemetry as kt

FIELDS: dict[str, Any] = {
    "session_id": "s-1",
    "timestamp_ns": 1,
    "run_id": "r-1",
    "provider": "openai",
    "model": "gpt-4o-mini",
    "step": 2,
    "input_tokens": 1200,
    "output_tokens": 300,
    "cache_read_tokens": 100,
    "cost_usd": 0.01,
    "finish_reason": "stop",
    "duration_ms": 12.5,
}


def _plain_twin() -> type:
    """``LLMUsageEvent``'s fields in a dataclass of the same kind, without the metaclass."""
    specs = [
        (f.name, Any, dataclasses.field(default=f.default, default_factory=f.default_factory))
        if f.default_factory is not dataclasses.MISSING
        else (f.name, Any, dataclasses.field(default=f.default))
        for f in dataclasses.fields(kt.LLMUsageEvent)
    ]
    return dataclasses.make_dataclass("PlainLLMUsage", specs, frozen=True, slots=True, kw_only=True)


def _per_call_us(fn: Callable[[], object], number: int) -> float:
    start = time.process_time()
    for _ in range(number):
        fn()
    return (time.process_time() - start) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=9, help="interleaved batches (median)")
    parser.add_argument("--number", type=int, default=20000, help="constructions per batch")
    args = parser.parse_args()
    plain = _plain_twin()
    data = dict(FIELDS)
    cases: dict[str, Callable[[], object]] = {
        "plain dataclass": lambda: plain(**FIELDS),
        "LLMUsageEvent(**fields)": lambda: kt.LLMUsageEvent(**FIELDS),
        "Event(type, data)": lambda: kt.Event(kt.EventType.LLM_USAGE, data),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, fn in cases.items():
            times[name].append(_per_call_us(fn, args.number))
    med = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"event construction: CPU µs per event, median of {args.rounds} rounds")
    for name, us in med.items():
        print(f"  {name:<26} {us:7.3f}")
    print(
        f"  class call ratio (metaclass / plain):       "
        f"{med['LLMUsageEvent(**fields)'] / med['plain dataclass']:.2f}"
    )
    print(
        f"  Event(type, data) ratio (/ LLMUsageEvent): "
        f"{med['Event(type, data)'] / med['LLMUsageEvent(**fields)']:.2f}"
    )


if __name__ == "__main__":
    main()
