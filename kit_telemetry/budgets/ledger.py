"""Ledgers: where budget counters live. The ``LedgerBackend`` protocol and its counters.

A counter is one (budget, unit, scope key, window) tuple: a :class:`Counter`. Amounts are
integers in the counter's unit: micro-USD for money, tokens, or calls. Every backend
provides the same operations, each atomic:

- ``reserve``: all or nothing across several counters. A counter held to its limit
  (``enforce``) refuses when ``spent + reserved + amount`` would exceed the limit, or when
  it is already at its limit; counters that only count (``warn``/``observe`` budgets)
  never refuse but are still counted.
- ``commit``: a reservation becomes the actual amount (which may be more than was
  reserved). An idempotency key (the response id) makes a repeated commit for the same
  counter count once; an empty key is no key (every commit under it counts).
- ``release``: a reservation is dropped (error or cancellation).
- Reservations carry an expiry: an expired reservation stops counting, so a crashed
  process cannot pin a budget.
- ``mark_alert_sent``: records that an alert (threshold, kind) went out for a counter and
  says whether this was the first time, so alerts fire once also across restarts.

Counters fall out of a ledger on their own: calendar counters when their window ends,
rolling counters ``rolling_s + bucket_s`` after their last spend, and ``none`` counters
after ``idle_ttl_s`` (30 days by default) without activity.

Implementations: ``MemoryLedger`` (one process), ``SQLiteLedger`` (several processes on
one machine, survives restarts) and ``RedisLedger`` (a fleet), in the modules ``memory``,
``sqlite`` and ``redis``. :func:`open_ledger` builds one from a URL.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

from ..errors import ConfigError, LedgerError
from .config import LIMIT_MAX, parse_ledger_url

__all__ = [
    "AMOUNT_MAX",
    "IDEMPOTENCY_TTL_S",
    "IDLE_TTL_S",
    "RUN_IDLE_TTL_S",
    "MICROS_PER_USD",
    "UNITS",
    "Counter",
    "CounterStatus",
    "LedgerBackend",
    "LedgerError",
    "ReserveOutcome",
    "micros_to_usd",
    "open_ledger",
    "usd_to_micros",
]

MICROS_PER_USD = 1_000_000
UNITS = ("usd", "tokens", "llm_calls", "tool_calls", "repeats")
IDEMPOTENCY_TTL_S = 3_600.0
"""How long an idempotency key is remembered: usage for a response arrives within seconds,
so an hour covers retries and late exporters while keeping the key sets small."""
IDLE_TTL_S = 30 * 86_400.0
"""How long a counter with window ``none`` outlives its last activity."""
RUN_IDLE_TTL_S = 3_600.0
"""The same for ``run`` budgets: a run idle for an hour is over, so memory stays bounded."""
ALERT_FOREVER_S = math.inf
AMOUNT_MAX = LIMIT_MAX + 1
"""The largest amount the enforcer passes to a ledger: larger worst cases are clamped to
it. It is above every limit (so an oversized call is refused, never overflowed into an
admit) and still exact in every ledger (Redis's Lua doubles hold 2**53)."""


def usd_to_micros(usd: float) -> int:
    """USD as integer micro-USD, the unit ledgers count money in."""
    return round(usd * MICROS_PER_USD)


def micros_to_usd(micros: int) -> float:
    """Integer micro-USD back to float USD, for the edges."""
    return micros / MICROS_PER_USD


@dataclass(frozen=True, slots=True, kw_only=True)
class Counter:
    """One counter: a budget's unit for one scope key in one window, and its limit.

    Attributes:
        budget: the budget's name.
        unit: ``usd`` (counted in micro-USD), ``tokens``, ``llm_calls``, ``tool_calls`` or
            ``repeats`` (one identical tool call in a run: its scope key names the call).
        scope_key: ``global``, a session id, a model name, ...
        window_start: start of the calendar window (Unix seconds); 0 for ``none`` and
            rolling windows, whose counters never reset as a whole.
        window_end: end of the calendar window, or None.
        rolling_s: the rolling duration (0 unless rolling).
        bucket_s: the rolling bucket width (0 unless rolling).
        limit: the limit in the counter's unit (micro-USD for money).
        enforce: whether reservations beyond the limit are refused (``raise`` budgets).
        idle_ttl_s: how long a counter without a window outlives its last activity (runs
            are short-lived: their counters need not be kept for the default 30 days).
        key: the counter's identity in a ledger (budget, unit, scope key, window start).
    """

    budget: str
    unit: str
    scope_key: str
    window_start: float = 0.0
    window_end: float | None = None
    rolling_s: int = 0
    bucket_s: int = 0
    limit: int
    enforce: bool = True
    idle_ttl_s: float = field(default=IDLE_TTL_S, compare=False)
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # JSON keeps the key unambiguous whatever characters names and scope keys hold.
        key = json.dumps(
            [self.budget, self.unit, self.scope_key, int(self.window_start)],
            separators=(",", ":"),
            ensure_ascii=False,
        )
        object.__setattr__(self, "key", key)

    def active_until(self, now_s: float) -> float:
        """Until when a counter touched at ``now_s`` must be kept."""
        if self.window_end is not None:
            return self.window_end
        if self.rolling_s:
            return now_s + self.rolling_s + self.bucket_s
        return now_s + self.idle_ttl_s

    def alert_expiry(self, now_s: float) -> float:
        """Until when an alert sent at ``now_s`` is remembered (one per window)."""
        if self.window_end is not None:
            return self.window_end
        if self.rolling_s:
            # A rolling window has no end; an alert re-arms once its spend has rolled off.
            return now_s + self.rolling_s
        return ALERT_FOREVER_S


@dataclass(frozen=True, slots=True, kw_only=True)
class CounterStatus:
    """A counter and its figures at one moment, in the counter's unit.

    Attributes:
        counter: which counter (with its limit and window).
        spent: committed amount in the window.
        reserved: unexpired reservations.
    """

    counter: Counter
    spent: int
    reserved: int

    @property
    def limit(self) -> int:
        """The counter's limit."""
        return self.counter.limit

    @property
    def window_end(self) -> float | None:
        """End of the counter's calendar window, or None."""
        return self.counter.window_end


class ReserveOutcome(NamedTuple):
    """What ``reserve`` decided.

    Attributes:
        admitted: whether every counter took its reservation.
        refused: index of the first counter that refused, or -1.
        usage: ``(spent, reserved)`` of each counter just before this reservation.
    """

    admitted: bool
    refused: int
    usage: tuple[tuple[int, int], ...]


@runtime_checkable
class LedgerBackend(Protocol):
    """Where counters live. Every method is atomic; failures raise :class:`LedgerError`."""

    def reserve(
        self,
        reservation_id: str,
        amounts: Sequence[tuple[Counter, int]],
        *,
        now_s: float,
        expires_at_s: float,
    ) -> ReserveOutcome:
        """Reserve ``amount`` on every counter, or on none if an enforced one refuses."""
        ...

    def commit(
        self,
        reservation_id: str | None,
        amounts: Sequence[tuple[Counter, int]],
        *,
        now_s: float,
        idempotency_key: str | None = None,
    ) -> list[tuple[int, int]]:
        """Drop the reservation and add the actual amounts; ``(spent, reserved)`` after.

        A counter that already saw ``idempotency_key`` is not charged again. Without a
        reservation id (usage that was never admitted) the amounts are simply added.
        """
        ...

    def release(self, reservation_id: str, counters: Sequence[Counter], *, now_s: float) -> None:
        """Drop the reservation from these counters without charging anything."""
        ...

    def usage(self, counters: Sequence[Counter], *, now_s: float) -> list[tuple[int, int]]:
        """``(spent, reserved)`` of each counter now."""
        ...

    def live_counters(self, *, now_s: float) -> list[CounterStatus]:
        """Every counter still active at ``now_s``, with its figures."""
        ...

    def mark_alert_sent(
        self, counter: Counter, *, threshold: float, kind: str, now_s: float
    ) -> bool:
        """Record an alert for this counter's window; True only the first time."""
        ...

    def close(self) -> None:
        """Release connections; idempotent."""
        ...


def check_amounts(amounts: Sequence[tuple[Counter, int]]) -> None:
    """Reject amounts that are not integers in ``[0, AMOUNT_MAX]``.

    Negative amounts would let a caller mint budget; NaN compares false with everything
    and would pass every check; larger ones overflow SQLite and lose precision in Redis.
    """
    for counter, amount in amounts:
        if type(amount) is not int or not 0 <= amount <= AMOUNT_MAX:
            raise ValueError(
                f"counter {counter.key}: amount {amount!r} must be a non-negative integer "
                f"at most {AMOUNT_MAX}"
            )


def refuses(counter: Counter, spent: int, reserved: int, amount: int) -> bool:
    """Whether an enforced counter refuses ``amount`` (the rule every backend applies)."""
    used = spent + reserved
    return counter.enforce and (used >= counter.limit or used + amount > counter.limit)


def open_ledger(url: str, **options: float | str) -> LedgerBackend:
    """Open a ledger from a URL: ``memory``, ``sqlite:PATH`` or ``redis://HOST:PORT/DB``.

    Args:
        url: the ledger URL.
        **options: passed to the backend's constructor (e.g. ``timeout_s``, ``prefix``).

    Raises:
        ConfigError: the URL is none of those forms, or the Redis client is not installed.
        LedgerError: the SQLite file cannot be opened.
    """
    kind, target = parse_ledger_url(url)
    if kind == "memory":
        from .memory import MemoryLedger

        return MemoryLedger(**options)  # type: ignore[arg-type]
    if kind == "sqlite":
        from .sqlite import SQLiteLedger

        return SQLiteLedger(target, **options)  # type: ignore[arg-type]
    try:
        from .redis import RedisLedger
    except ImportError as exc:  # pragma: no cover - redis is an optional dependency
        raise ConfigError(
            f"ledger: url {url!r} needs the redis client: pip install 'kit-telemetry[redis]'"
        ) from exc
    return RedisLedger(target, **options)  # type: ignore[arg-type]
