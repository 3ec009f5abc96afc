"""Bound series: the record function of one label combination, and bundles of them.

A series is bound once, on the first record of its labels; afterwards recording is a call
of its record function. For prometheus-client children that function skips the per-call
checks of ``inc`` and ``observe`` (``KitMetrics`` checks each figure once, before recording).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from typing import Any, cast

Record = Callable[[float], None]
"""Records one value into one series (a counter's increment, a gauge's value...)."""


def fast_inc(child: Any) -> Record:
    """``child.inc`` without its per-call checks (the callers check), when available.

    prometheus-client's ``Counter.inc`` re-validates every call; its value object (a
    mutex-guarded float, or an mmap slot in multi-process mode) is what actually adds.
    Going to it directly halves the cost; any other layout falls back to the public method.
    """
    value_inc = getattr(getattr(child, "_value", None), "inc", None)
    return value_inc if callable(value_inc) else cast(Record, child.inc)


def fast_observe(child: Any) -> Record:
    """``child.observe`` with a binary search over the buckets, when available.

    Same effect as ``Histogram.observe`` (the sum, then the first bucket whose bound is
    not below the value); callers reject NaN and negatives first.
    """
    try:
        bounds: list[float] = list(child._upper_bounds)
        bucket_incs: list[Record] = [bucket.inc for bucket in child._buckets]
        sum_inc: Record = child._sum.inc
    except AttributeError:
        return cast(Record, child.observe)
    if len(bounds) != len(bucket_incs) or bounds[-1] != math.inf:
        return cast(Record, child.observe)

    def observe(amount: float) -> None:
        sum_inc(amount)
        bucket_incs[bisect_left(bounds, amount)](1)

    return observe


def noop(_: float) -> None:
    """Records nothing: the series a ``budget_denied`` call never touches."""
    return None


class LLMSeries:
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

    def __init__(self, calls: Record) -> None:
        self.calls = calls
        # None for calls that never reached the model (budget_denied).
        self.duration: Record | None = None
        self.input: Record = noop
        self.cache_read: Record = noop
        self.cache_write: Record = noop
        self.output: Record = noop
        self.reasoning: Record = noop
        self.cost: Record = noop
        self.unpriced: Record = noop
        self.usage_input: Record = noop
        self.usage_output: Record = noop


class RunSeries:
    """Everything one ``record_run`` key touches, bound once."""

    __slots__ = ("cost", "duration", "llm_calls", "runs", "tool_calls")

    def __init__(
        self, runs: Record, duration: Record, cost: Record, llm: Record, tools: Record
    ) -> None:
        self.runs = runs
        self.duration = duration
        self.cost = cost
        self.llm_calls = llm
        self.tool_calls = tools
