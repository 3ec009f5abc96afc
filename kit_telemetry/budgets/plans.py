"""Plans: each budget compiled for the hot path.

A ``_Plan`` holds what admission needs of one budget, ready to use: the ``match``
patterns, the scope-key getter, the limits in ledger units and the current window with
the counters built for it, so that a call in the same window and scope key reuses them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from fnmatch import translate
from operator import attrgetter

from .calls import CallScope
from .config import Budget
from .ledger import IDLE_TTL_S, MICROS_PER_USD, RUN_IDLE_TTL_S, Counter
from .windows import WindowSpec, parse_window, window_bounds

_CACHE_LIMIT = 50_000  # counters and sent alerts remembered locally before starting over

_Getter = Callable[[CallScope], "str | None"]


def _scope_getter(name: str) -> _Getter:
    if name == "global":
        return lambda scope: "global"
    if name in ("session", "run"):
        return attrgetter(f"{name}_id")  # C-level getters: they run on every admission
    if name in ("model", "provider", "agent", "user"):
        return attrgetter(name)
    key = name.removeprefix("attribute:")
    return lambda scope: scope.attributes.get(key)


class _Window:
    """A plan's current window and the counters built for it (replaced whole on a new window).

    Replacing the object rather than mutating it keeps concurrent callers consistent: a
    thread still holding the old window only ever adds old-window counters to the old
    cache.
    """

    __slots__ = ("end", "llm", "start", "tool", "valid_from", "valid_until")

    def __init__(self, valid_from: float, valid_until: float, start: float, end: float | None):
        self.valid_from = valid_from
        self.valid_until = valid_until
        self.start = start
        self.end = end
        self.llm: dict[str, tuple[Counter, ...]] = {}
        self.tool: dict[str, tuple[Counter, ...]] = {}


class _Plan:
    """A budget compiled for the hot path: matchers, scope getter, window and limits."""

    __slots__ = (
        "action",
        "alerting",
        "budget",
        "current",
        "enforce",
        "first_alert",
        "fixed_window",
        "idle_ttl_s",
        "limits",
        "llm_units",
        "matchers",
        "name",
        "scope_key_of",
        "spec",
        "warn_at",
    )

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.name = budget.name
        self.action = budget.action
        self.enforce = budget.action == "raise"
        self.warn_at = budget.warn_at
        # observe budgets never alert; others check thresholds only past the lowest one.
        self.alerting = budget.action != "observe"
        self.first_alert = budget.warn_at[0] if budget.warn_at else 1.0
        self.scope_key_of = _scope_getter(budget.scope)
        self.idle_ttl_s = RUN_IDLE_TTL_S if budget.scope == "run" else IDLE_TTL_S
        self.matchers: tuple[tuple[_Getter, re.Pattern[str]], ...] = tuple(
            (_scope_getter(key), re.compile(translate(pattern)))
            for key, pattern in budget.match.items()
            if pattern != "*"
        )
        self.spec: WindowSpec = parse_window(budget.window, budget.timezone)
        limits: dict[str, int] = {}
        if budget.limit_usd is not None:
            limits["usd"] = round(budget.limit_usd * MICROS_PER_USD)
        if budget.limit_tokens is not None:
            limits["tokens"] = budget.limit_tokens
        if budget.max_llm_calls is not None:
            limits["llm_calls"] = budget.max_llm_calls
        if budget.max_tool_calls is not None:
            limits["tool_calls"] = budget.max_tool_calls
        if budget.max_repeats is not None:
            limits["repeats"] = budget.max_repeats
        self.limits = limits
        self.llm_units = tuple(u for u in limits if u in ("usd", "tokens", "llm_calls"))
        # none and rolling windows have one counter for ever (rolling ones forget spend
        # bucket by bucket); calendar windows are recomputed when the clock leaves them.
        self.fixed_window = self.spec.kind in ("none", "rolling")
        self.current = (
            _Window(-math.inf, math.inf, 0.0, None)
            if self.fixed_window
            else _Window(math.inf, -math.inf, 0.0, None)
        )

    def scope_key(self, scope: CallScope) -> str | None:
        """The scope key this budget counts a call under; None when it does not apply.

        It does not apply when a ``match`` pattern fails or the call lacks the scope's
        value (a ``user`` budget and a call without a user).
        """
        for getter, pattern in self.matchers:
            value = getter(scope)
            if value is None or pattern.fullmatch(value) is None:
                return None
        return self.scope_key_of(scope)

    def window(self, now_s: float) -> _Window:
        """The window at ``now_s`` (the cached one while the clock stays inside it)."""
        current = self.current
        if current.valid_from <= now_s < current.valid_until:
            return current
        start, end = window_bounds(self.spec, now_s)
        current = _Window(start, math.inf if end is None else end, start, end)
        self.current = current
        return current

    def counter(self, window: _Window, unit: str, scope_key: str) -> Counter:
        spec = self.spec
        return Counter(
            budget=self.name,
            unit=unit,
            scope_key=scope_key,
            window_start=window.start,
            window_end=window.end,
            rolling_s=spec.rolling_s,
            bucket_s=spec.bucket_s,
            limit=self.limits[unit],
            enforce=self.enforce,
            idle_ttl_s=self.idle_ttl_s,
        )

    def llm_counters(self, scope_key: str, now_s: float) -> tuple[Counter, ...]:
        """This budget's USD, token and LLM-call counters for a scope key, now."""
        window = self.current
        if not window.valid_from <= now_s < window.valid_until:  # window() inlined: hot path
            window = self.window(now_s)
        counters = window.llm.get(scope_key)
        if counters is None:
            if len(window.llm) >= _CACHE_LIMIT:
                window.llm.clear()
            counters = tuple(self.counter(window, unit, scope_key) for unit in self.llm_units)
            window.llm[scope_key] = counters
        return counters

    def tool_counters(self, scope_key: str, now_s: float) -> tuple[Counter, ...]:
        """This budget's tool-call counter for a scope key, now."""
        if "tool_calls" not in self.limits:
            return ()
        window = self.window(now_s)
        counters = window.tool.get(scope_key)
        if counters is None:
            if len(window.tool) >= _CACHE_LIMIT:
                window.tool.clear()
            counters = (self.counter(window, "tool_calls", scope_key),)
            window.tool[scope_key] = counters
        return counters

    def repeat_counter(self, scope_key: str, call_key: str, now_s: float) -> Counter | None:
        """The loop guard's counter of one identical call in a scope key (a run), if any.

        Not cached: an agent that does not loop makes each key once.
        """
        if "repeats" not in self.limits:
            return None
        return self.counter(self.window(now_s), "repeats", f"{scope_key}/{call_key}")
