"""Ledgers: where budget counters live. The ``LedgerBackend`` protocol and ``MemoryLedger``.

A counter is one (budget, unit, scope key, window) tuple: a :class:`Counter`. Amounts are
integers in the counter's unit: micro-USD for money, tokens, or calls. Every backend
provides the same operations, each atomic:

- ``reserve``: all or nothing across several counters. A counter held to its limit
  (``enforce``) refuses when ``spent + reserved + amount`` would exceed the limit, or when
  it is already at its limit; counters that only count (``warn``/``observe`` budgets)
  never refuse but are still counted.
- ``commit``: a reservation becomes the actual amount (which may be more than was
  reserved). An idempotency key (the response id) makes a repeated commit for the same
  counter count once.
- ``release``: a reservation is dropped (error or cancellation).
- Reservations carry an expiry: an expired reservation stops counting, so a crashed
  process cannot pin a budget.
- ``mark_alert_sent``: records that an alert (threshold, kind) went out for a counter and
  says whether this was the first time, so alerts fire once also across restarts.

Counters fall out of a ledger on their own: calendar counters when their window ends,
rolling counters ``rolling_s + bucket_s`` after their last spend, and ``none`` counters
after ``idle_ttl_s`` (30 days by default) without activity.

Implementations: :class:`MemoryLedger` (one process), ``SQLiteLedger`` (several processes
on one machine, survives restarts) and ``RedisLedger`` (a fleet). :func:`open_ledger`
builds one from a URL.
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

from ..errors import ConfigError, LedgerError
from .config import parse_ledger_url

__all__ = [
    "IDEMPOTENCY_TTL_S",
    "IDLE_TTL_S",
    "RUN_IDLE_TTL_S",
    "MICROS_PER_USD",
    "UNITS",
    "Counter",
    "CounterStatus",
    "LedgerBackend",
    "LedgerError",
    "MemoryLedger",
    "ReserveOutcome",
    "micros_to_usd",
    "open_ledger",
    "usd_to_micros",
]

MICROS_PER_USD = 1_000_000
UNITS = ("usd", "tokens", "llm_calls", "tool_calls")
IDEMPOTENCY_TTL_S = 3_600.0
"""How long an idempotency key is remembered: usage for a response arrives within seconds,
so an hour covers retries and late exporters while keeping the key sets small."""
IDLE_TTL_S = 30 * 86_400.0
"""How long a counter with window ``none`` outlives its last activity."""
RUN_IDLE_TTL_S = 3_600.0
"""The same for ``run`` budgets: a run idle for an hour is over, so memory stays bounded."""
ALERT_FOREVER_S = math.inf


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
        unit: ``usd`` (counted in micro-USD), ``tokens``, ``llm_calls`` or ``tool_calls``.
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


# tuple.__new__ skips the NamedTuple's Python-level __new__ (a measurable share of a
# memory-ledger admission); the result is an ordinary ReserveOutcome.
_outcome = tuple.__new__


def check_amounts(amounts: Sequence[tuple[Counter, int]]) -> None:
    """Reject negative amounts, which would let a caller mint budget."""
    for counter, amount in amounts:
        if amount < 0:
            raise ValueError(f"counter {counter.key}: amount {amount} must not be negative")


def refuses(counter: Counter, spent: int, reserved: int, amount: int) -> bool:
    """Whether an enforced counter refuses ``amount`` (the rule every backend applies)."""
    used = spent + reserved
    return counter.enforce and (used >= counter.limit or used + amount > counter.limit)


class _State:
    """One counter's figures inside a :class:`MemoryLedger` (guarded by the ledger's lock)."""

    __slots__ = (
        "alerts",
        "buckets",
        "counter",
        "idempotency",
        "idempotency_order",
        "latest_expiry",
        "next_expiry",
        "prune_at",
        "refresh_at",
        "reservations",
        "reserved",
        "spent",
        "touched",
    )

    def __init__(self, counter: Counter, now_s: float) -> None:
        self.counter = counter
        self.spent = 0
        self.reserved = 0
        self.reservations: dict[str, tuple[int, float]] = {}
        self.next_expiry = math.inf  # earliest reservation expiry
        self.latest_expiry = -math.inf  # latest reservation expiry
        self.prune_at = math.inf  # when the oldest rolling bucket falls out
        self.refresh_at = math.inf  # min(next_expiry, prune_at): one comparison on the hot path
        # Rolling windows only: bucket start -> amount, oldest first (dicts keep order).
        self.buckets: dict[int, int] = {}
        self.idempotency: dict[str, float] = {}
        # (expiry, key) oldest first: expired keys leave from the left in O(1) each.
        self.idempotency_order: deque[tuple[float, str]] = deque()
        self.alerts: dict[tuple[float, str], float] = {}
        self.touched = now_s

    def alive(self, now_s: float) -> bool:
        return self.counter.active_until(self.touched) > now_s or self.latest_expiry > now_s

    def refresh(self, now_s: float) -> None:
        if now_s >= self.next_expiry:
            live = {k: v for k, v in self.reservations.items() if v[1] > now_s}
            self.reservations = live
            self.reserved = sum(amount for amount, _ in live.values())
            self.next_expiry = min((exp for _, exp in live.values()), default=math.inf)
        if now_s >= self.prune_at:
            counter = self.counter
            horizon = now_s - counter.rolling_s - counter.bucket_s
            buckets = self.buckets
            while buckets:
                oldest = next(iter(buckets))
                if oldest > horizon:
                    break
                self.spent -= buckets.pop(oldest)
            self.prune_at = (
                next(iter(buckets)) + counter.rolling_s + counter.bucket_s if buckets else math.inf
            )
        self.refresh_at = min(self.next_expiry, self.prune_at)

    def add_spent(self, amount: int, now_s: float) -> None:
        self.spent += amount
        counter = self.counter
        if counter.rolling_s:
            size = counter.bucket_s
            start = int(now_s // size) * size
            buckets = self.buckets
            buckets[start] = buckets.get(start, 0) + amount
            if self.prune_at == math.inf:
                self.prune_at = start + counter.rolling_s + size
                self.refresh_at = min(self.refresh_at, self.prune_at)


class MemoryLedger:
    """Counters in a dict, for one process. Fast; forgets everything on exit.

    Args:
        idempotency_ttl_s: how long idempotency keys are remembered.
    """

    def __init__(self, *, idempotency_ttl_s: float = IDEMPOTENCY_TTL_S) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}
        self._idempotency_ttl_s = idempotency_ttl_s
        self._next_sweep = -math.inf

    def _state(self, counter: Counter, now_s: float) -> _State:
        state = self._states.get(counter.key)
        if state is None:
            state = self._states[counter.key] = _State(counter, now_s)
        else:
            # The newest limit wins: a restarted process may have a changed configuration.
            state.counter = counter
            if now_s >= state.refresh_at:
                state.refresh(now_s)
        return state

    def _sweep(self, now_s: float) -> None:
        # Dropping ended counters here, not on a timer, keeps the ledger free of threads.
        self._next_sweep = now_s + 60.0
        dead = [key for key, state in self._states.items() if not state.alive(now_s)]
        for key in dead:
            del self._states[key]

    def reserve(
        self,
        reservation_id: str,
        amounts: Sequence[tuple[Counter, int]],
        *,
        now_s: float,
        expires_at_s: float,
    ) -> ReserveOutcome:
        """See :meth:`LedgerBackend.reserve`."""
        # Written for speed: this and commit() are most of an in-memory admission's cost.
        usage: list[tuple[int, int]] = []
        states: list[_State] = []
        refused = -1
        with self._lock:
            if now_s >= self._next_sweep:
                self._sweep(now_s)
            states_get = self._states.get
            for counter, amount in amounts:
                if amount < 0:
                    check_amounts(amounts)  # raises with the message
                state = states_get(counter.key)
                if state is None:
                    state = self._states[counter.key] = _State(counter, now_s)
                else:
                    state.counter = counter  # the newest limit wins (configs change)
                    if now_s >= state.refresh_at:
                        state.refresh(now_s)
                spent, reserved = state.spent, state.reserved
                usage.append((spent, reserved))
                states.append(state)
                if refused < 0 and counter.enforce:
                    used = spent + reserved
                    if used >= counter.limit or used + amount > counter.limit:
                        refused = len(usage) - 1
            if refused >= 0:
                return _outcome(ReserveOutcome, (False, refused, tuple(usage)))
            for state, (_, amount) in zip(states, amounts, strict=True):
                reservations = state.reservations
                previous = reservations.get(reservation_id)
                reservations[reservation_id] = (amount, expires_at_s)
                state.reserved += amount if previous is None else amount - previous[0]
                if expires_at_s < state.next_expiry:
                    state.next_expiry = expires_at_s
                    state.refresh_at = min(state.refresh_at, expires_at_s)
                if expires_at_s > state.latest_expiry:
                    state.latest_expiry = expires_at_s
                state.touched = now_s
        return _outcome(ReserveOutcome, (True, -1, tuple(usage)))

    def commit(
        self,
        reservation_id: str | None,
        amounts: Sequence[tuple[Counter, int]],
        *,
        now_s: float,
        idempotency_key: str | None = None,
    ) -> list[tuple[int, int]]:
        """See :meth:`LedgerBackend.commit`."""
        out: list[tuple[int, int]] = []
        with self._lock:
            states_get = self._states.get
            for counter, amount in amounts:
                if amount < 0:
                    check_amounts(amounts)  # raises with the message
                state = states_get(counter.key)
                if state is None or now_s >= state.refresh_at:
                    state = self._state(counter, now_s)
                else:
                    state.counter = counter  # the newest limit wins (configs change)
                state.touched = now_s
                if reservation_id is not None:
                    held = state.reservations.pop(reservation_id, None)
                    if held is not None:
                        state.reserved -= held[0]
                if idempotency_key is not None and not self._first_use(
                    state, idempotency_key, now_s
                ):
                    out.append((state.spent, state.reserved))
                    continue
                if counter.rolling_s:
                    state.add_spent(amount, now_s)
                else:
                    state.spent += amount
                out.append((state.spent, state.reserved))
        return out

    def _first_use(self, state: _State, idempotency_key: str, now_s: float) -> bool:
        seen = state.idempotency.get(idempotency_key)
        if seen is not None and seen > now_s:
            return False
        order = state.idempotency_order
        while order and order[0][0] <= now_s:
            expiry, old = order.popleft()
            if state.idempotency.get(old) == expiry:
                del state.idempotency[old]
        expiry = now_s + self._idempotency_ttl_s
        state.idempotency[idempotency_key] = expiry
        order.append((expiry, idempotency_key))
        return True

    def release(self, reservation_id: str, counters: Sequence[Counter], *, now_s: float) -> None:
        """See :meth:`LedgerBackend.release`."""
        with self._lock:
            for counter in counters:
                state = self._states.get(counter.key)
                if state is None:
                    continue
                held = state.reservations.pop(reservation_id, None)
                if held is not None:
                    state.reserved -= held[0]

    def usage(self, counters: Sequence[Counter], *, now_s: float) -> list[tuple[int, int]]:
        """See :meth:`LedgerBackend.usage`."""
        with self._lock:
            out = []
            for counter in counters:
                state = self._states.get(counter.key)
                if state is None:
                    out.append((0, 0))
                else:
                    if now_s >= state.refresh_at:
                        state.refresh(now_s)
                    out.append((state.spent, state.reserved))
            return out

    def live_counters(self, *, now_s: float) -> list[CounterStatus]:
        """See :meth:`LedgerBackend.live_counters`."""
        with self._lock:
            out = []
            for state in self._states.values():
                if not state.alive(now_s):
                    continue
                if now_s >= state.refresh_at:
                    state.refresh(now_s)
                out.append(
                    CounterStatus(counter=state.counter, spent=state.spent, reserved=state.reserved)
                )
            return out

    def mark_alert_sent(
        self, counter: Counter, *, threshold: float, kind: str, now_s: float
    ) -> bool:
        """See :meth:`LedgerBackend.mark_alert_sent`."""
        with self._lock:
            state = self._state(counter, now_s)
            expiry = state.alerts.get((threshold, kind))
            if expiry is not None and expiry > now_s:
                return False
            state.alerts[(threshold, kind)] = counter.alert_expiry(now_s)
            state.touched = now_s
            return True

    def close(self) -> None:
        """Nothing to release; present for the protocol."""


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
