"""``MemoryLedger``: budget counters in a dict, for one process.

One lock guards every counter; admission and settlement look each counter up in a dict and
update a few integers under it. Expired reservations and rolled-off buckets are dropped
when a counter is next touched, and ended counters are swept at most once a minute, so the
ledger runs no thread. Everything is forgotten when the process exits.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Sequence

from .ledger import (
    AMOUNT_MAX,
    IDEMPOTENCY_TTL_S,
    Counter,
    CounterStatus,
    ReserveOutcome,
    check_amounts,
)

__all__ = ["MemoryLedger"]

# tuple.__new__ skips the NamedTuple's Python-level __new__ (a measurable share of a
# memory-ledger admission); the result is an ordinary ReserveOutcome.
_outcome = tuple.__new__


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
                if type(amount) is not int or not 0 <= amount <= AMOUNT_MAX:
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
            for state, (_, amount) in zip(states, amounts, strict=False):  # equal by construction
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
                if type(amount) is not int or not 0 <= amount <= AMOUNT_MAX:
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
                if idempotency_key and not self._first_use(state, idempotency_key, now_s):
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
